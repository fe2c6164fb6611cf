"""The per-window timeline: the video fusion model applied to each clip window's own evidence.

A window's features are its own ``deep.clip`` score and the ``deep.frame`` scores inside its time span (the
window-local branches), with the asset-level values of every other branch (temporal, AV sync, metadata,
forensics), which have no finer resolution in the model. The same branch extractors as for the whole video are
used, so a window's features are the video features of that window alone: the video's own probability comes from
the robust video-level aggregates (max / top-10 % mean), which a single manipulated window already raises.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from tamperscope.fusion.branches import BRANCHES, Row
from tamperscope.fusion.model import FusionModel

#: the modules that have a window-local meaning (everything else is taken at asset level).
CLIP_MODULE = "deep.clip"
FRAME_MODULE = "deep.frame"
WINDOW_LOCAL_BRANCHES = ("deep_frame", "deep_clip")


@dataclass(frozen=True)
class WindowSpan:
    """A clip window of the ``windows`` table."""

    window_id: str
    t_start_ms: int
    t_end_ms: int
    track_id: int | None = None


@dataclass(frozen=True)
class WindowProbability:
    """One point of the timeline: the window's calibrated probability, or ``None`` without local evidence."""

    window: WindowSpan
    probability: float | None
    branches_present: list[str] = field(default_factory=list)
    features: dict[str, dict[str, float]] = field(default_factory=dict)


def window_rows(rows: Sequence[Row], window: WindowSpan) -> list[Row]:
    """The rows describing one window: its ``deep.clip`` row, the ``deep.frame`` rows in its span, all others.

    Parameters
    ----------
    rows
        Every detection row of the asset.
    window
        The window.

    Returns
    -------
    list of Row
        The subset, in input order. Frame rows without a time are left out.
    """
    out = []
    for r in rows:
        if r.module_name == CLIP_MODULE:
            if r.window_id == window.window_id:
                out.append(r)
        elif r.module_name == FRAME_MODULE:
            if r.t_start_ms is not None and window.t_start_ms <= r.t_start_ms <= window.t_end_ms:
                out.append(r)
        else:
            out.append(r)
    return out


def has_timeline(model: FusionModel) -> bool:
    """Whether the model has a window-local branch, i.e. whether a per-window timeline means anything."""
    return any(b in model.branches for b in WINDOW_LOCAL_BRANCHES)


def branch_values(rows: Sequence[Row], branches: Sequence[str]) -> dict[str, dict[str, float] | None]:
    """``{branch: features or None}`` of the registered ``branches`` over ``rows``."""
    return {b: BRANCHES[b].extract(rows) for b in branches}


def timeline(model: FusionModel, rows: Sequence[Row], windows: Sequence[WindowSpan]) -> list[WindowProbability]:
    """The model's probability for each window, in the given order.

    A window without window-local evidence (no scored clip row and no scored frame in its span, e.g. a shot-level
    window without a face) gets ``probability=None``: its value would only restate the asset-level branches.

    Parameters
    ----------
    model
        A fusion model with at least one of the branches in :data:`WINDOW_LOCAL_BRANCHES`.
    rows
        Every detection row of the asset.
    windows
        The asset's clip windows.

    Returns
    -------
    list of WindowProbability
        One entry per window.
    """
    local = [b for b in WINDOW_LOCAL_BRANCHES if b in model.branches]
    out = []
    for window in windows:
        values = branch_values(window_rows(rows, window), model.branches)
        present = [b for b, v in values.items() if v is not None]
        if not any(b in present for b in local):
            out.append(WindowProbability(window, None, present))
            continue
        probability, _ = model.probability(values)
        out.append(WindowProbability(window, probability, present, {b: v for b, v in values.items() if v}))
    return out
