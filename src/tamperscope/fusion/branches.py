"""Branches: named groups of fusion features, each extracted from one stage's detection rows.

A :class:`Branch` turns the detections of an asset into a ``{feature: value}`` dict, or ``None`` when the branch
has nothing to say (stage not run, no face, no audio): the fusion model then masks it with an explicit
missing indicator instead of reading a zero. Register new branches with :func:`register_branch`.

Built in: ``forensics`` and ``metadata`` (images and videos), ``forensics_synth`` (the ``image-v1`` logit of the
forensic scores: one feature whose direction was learned on the synthetic benchmark) and ``meta_flags`` (one
indicator per metadata finding and the C2PA status), both read by ``image-v2``, and for videos ``deep_frame``
(robust aggregates of the frame model's per-frame probabilities), ``deep_clip`` (max and mean over clip
windows), ``temporal`` (blink, head-pose and landmark-stability scores of the asset) and ``avsync`` (lip-sync
offset and bilabial scores of the asset). The video aggregates are chosen so that a short manipulated segment in
a long real video still moves them: the maximum and the mean of the top 10 % react to a few high windows or
frames, the mean and median describe the video as a whole.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from tamperscope.forensics.registry import DETECTORS


@dataclass(frozen=True)
class Row:
    """The part of a detection row that fusion reads."""

    module_name: str
    window_id: str
    score: float | None
    status: str
    evidence: dict[str, Any] | None = None
    t_start_ms: int | None = None
    t_end_ms: int | None = None


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


#: the row the fusion stage adds when the metadata stage ran (no detection row is written for a clean file, so
#: without it "no flags" could not be told from "metadata not analysed"); its status is the C2PA status.
META_CHECKED = "meta.checked"
#: ``meta_flags`` features: each the indicator of the metadata rules of that kind (1 raised, 0 checked and clean),
#: and ``c2pa`` +1 for a manifest that fails validation, -1 for a valid one, 0 for none.
META_FLAG_GROUPS: dict[str, tuple[str, ...]] = {
    "editing": ("editing_software", "edit_history"),
    "date_gap": ("datetime_mismatch", "exif_container_time"),
    "reencode": ("reencode_chain",),
    "no_exif": ("camera_without_exif",),
    "structure": ("thumbnail_mismatch", "makernote_mismatch", "gps_inconsistent"),
}
C2PA_VALUE = {"invalid": 1.0, "valid": -1.0}


def metadata_checked_row(provenance_status: str | None) -> Row:
    """The :data:`META_CHECKED` row of an asset whose metadata stage ran, carrying its C2PA status."""
    return Row(META_CHECKED, "asset", None, provenance_status or "unknown")


def _meta_flags(rows: Sequence[Row]) -> dict[str, float] | None:
    checked = [r for r in rows if r.module_name == META_CHECKED]
    raised = {r.module_name.removeprefix("meta.") for r in rows if r.module_name.startswith("meta.")
              and r.status == "flag"}
    if not checked and not raised:
        return None
    values = {name: float(any(rule in raised for rule in rules)) for name, rules in META_FLAG_GROUPS.items()}
    status = "invalid" if "invalid_c2pa" in raised else checked[0].status if checked else "unknown"
    return values | {"c2pa": C2PA_VALUE.get(status, 0.0)}


#: the model whose forensic direction ``forensics_synth`` reads (fitted on the synthetic benchmark only).
SYNTH_FORENSICS_MODEL = "image-v1"


@cache
def _synth_model() -> Any:
    from tamperscope.fusion.model import load_model

    return load_model(SYNTH_FORENSICS_MODEL)


def _forensics_synth(rows: Sequence[Row]) -> dict[str, float] | None:
    """The uncalibrated ``image-v1`` logit of the forensic scores: nine scores folded into one learned direction, so
    a few dozen real images only have to calibrate it, not learn nine weights."""
    values = _forensics(rows)
    return None if values is None else {"logit": float(_synth_model().logit({"forensics": values})[0])}


register_branch(Branch("forensics", "forensics", tuple(DETECTORS), _forensics))
register_branch(Branch("metadata", "metadata", ("flags", "max_score"), _metadata))
register_branch(Branch("meta_flags", "metadata", (*META_FLAG_GROUPS, "c2pa"), _meta_flags))
register_branch(Branch("forensics_synth", "forensics", ("logit",), _forensics_synth))


def scored(rows: Sequence[Row], module: str, *, window_id: str | None = None) -> list[float]:
    """Scores of the ``scored`` rows of ``module`` (only the row of ``window_id`` when given), in row order."""
    return [float(r.score) for r in rows if r.module_name == module and r.status == "scored"
            and r.score is not None and (window_id is None or r.window_id == window_id)]


def top_fraction_mean(scores: Sequence[float], fraction: float = 0.1) -> float:
    """Mean of the highest ``ceil(fraction * n)`` scores (at least one).

    A robust "peak" of a score series: unlike the maximum it needs several high frames, unlike the mean it is not
    diluted by a long real remainder (a 5 % manipulated segment fills half of the top 10 %).

    Parameters
    ----------
    scores
        Non-empty sequence of scores.
    fraction
        Share of the scores averaged, in ``(0, 1]``.

    Returns
    -------
    float
        The mean of the top scores.

    Examples
    --------
    >>> top_fraction_mean([0.1] * 18 + [0.9, 0.7], 0.1)
    0.8
    """
    if not scores:
        raise ValueError("scores must not be empty")
    if not 0.0 < fraction <= 1.0:
        raise ValueError("fraction must be in (0, 1]")
    values = np.sort(np.asarray(scores, dtype=np.float64))[::-1]
    k = max(1, int(np.ceil(fraction * len(values) - 1e-9)))
    return float(values[:k].mean())


def _deep_frame(rows: Sequence[Row]) -> dict[str, float] | None:
    scores = scored(rows, "deep.frame")
    if not scores:
        return None
    return {"top10_mean": top_fraction_mean(scores, 0.1), "median": float(np.median(scores))}


def _deep_clip(rows: Sequence[Row]) -> dict[str, float] | None:
    scores = scored(rows, "deep.clip")
    if not scores:
        return None
    return {"max": max(scores), "mean": float(np.mean(scores))}


def asset_scores(rows: Sequence[Row], prefix: str, modules: Sequence[str]) -> dict[str, float] | None:
    """``{module: score}`` of the scored ``asset`` rows named ``prefix + module``; ``None`` if there are none.

    Modules without a scored asset row (``insufficient_data``: too little face time for a blink rate, too few
    bilabials) are left out, so the model imputes them.
    """
    values = {m: s[0] for m in modules if (s := scored(rows, prefix + m, window_id="asset"))}
    return values or None


TEMPORAL_MODULES = ("blink", "head_pose", "landmarks")
AVSYNC_MODULES = ("offset", "bilabial")


def _temporal(rows: Sequence[Row]) -> dict[str, float] | None:
    return asset_scores(rows, "temporal.", TEMPORAL_MODULES)


def _avsync(rows: Sequence[Row]) -> dict[str, float] | None:
    return asset_scores(rows, "avsync.", AVSYNC_MODULES)


register_branch(Branch("deep_frame", "deep", ("top10_mean", "median"), _deep_frame))
register_branch(Branch("deep_clip", "deep", ("max", "mean"), _deep_clip))
register_branch(Branch("temporal", "temporal", TEMPORAL_MODULES, _temporal))
register_branch(Branch("avsync", "avsync", AVSYNC_MODULES, _avsync))
