"""Branches: named groups of fusion features, each extracted from one stage's detection rows.

A :class:`Branch` turns the detections of an asset into a ``{feature: value}`` dict, or ``None`` when the branch
has nothing to say (stage not run, no face, no audio): the fusion model then masks it with an explicit
missing indicator instead of reading a zero. Register new branches with :func:`register_branch`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tamperscope.forensics.registry import DETECTORS


@dataclass(frozen=True)
class Row:
    """The part of a detection row that fusion reads."""

    module_name: str
    window_id: str
    score: float | None
    status: str
    evidence: dict[str, Any] | None = None


Extractor = Callable[[Sequence[Row]], dict[str, float] | None]


@dataclass(frozen=True)
class Branch:
    """A named feature group: its stage, its feature names and the extractor from detection rows."""

    name: str
    stage: str
    features: tuple[str, ...]
    extract: Extractor


BRANCHES: dict[str, Branch] = {}


def register_branch(branch: Branch) -> Branch:
    """Add (or replace) a branch in the registry; returns it."""
    BRANCHES[branch.name] = branch
    return branch


def max_score_by_module(rows: Sequence[Row], prefix: str, modules: Sequence[str]) -> dict[str, float] | None:
    """``{module: max score over windows}`` of scored rows named ``prefix + module``; ``None`` if none scored.

    Modules without a scored row (e.g. ``jpeg_dq`` on PNG frames) are left out, so the model imputes them.
    """
    values: dict[str, float] = {}
    for row in rows:
        if row.status != "scored" or row.score is None or not row.module_name.startswith(prefix):
            continue
        module = row.module_name[len(prefix):]
        if module in modules:
            values[module] = max(values.get(module, 0.0), float(row.score))
    return values or None


def _forensics(rows: Sequence[Row]) -> dict[str, float] | None:
    return max_score_by_module(rows, "forensics.", list(DETECTORS))


def _metadata(rows: Sequence[Row]) -> dict[str, float] | None:
    meta = [r for r in rows if r.module_name.startswith("meta.")]
    if not meta:
        return None
    flags = sum(1 for r in meta if r.status == "flag")
    top = max((float(r.score) for r in meta if r.score is not None), default=0.0)
    return {"flags": float(flags), "max_score": top}


register_branch(Branch("forensics", "forensics", tuple(DETECTORS), _forensics))
register_branch(Branch("metadata", "metadata", ("flags", "max_score"), _metadata))
