"""What the temporal stages read from the ``video`` stage: the face track to follow and the windows.

The ``video`` stage tracks faces within each shot (track ids are unique per asset). The temporal stages
follow, in each shot, the track seen on the most sampled frames (the main speaker) together with the
fragments of the same face that the detector lost and re-found (:func:`chain_tracks`); their sampled
boxes guide the dense landmark pass, whose Face Mesh tracking also covers the frames where the detector
missed the face, and their clip windows receive the per-window rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from tamperscope.records import FrameRecord, ShotRecord, WindowRecord
from tamperscope.temporal.dense import DenseTrack, limit_ranges

Box = tuple[float, float, float, float]


@dataclass
class FacePlan:
    """The face tracks to follow and the rows to write for one asset."""

    guides: list[tuple[int, Box]] = field(default_factory=list)
    ranges_ms: list[tuple[int, int]] = field(default_factory=list)
    main_tracks: set[int] = field(default_factory=set)
    other_tracks: set[int] = field(default_factory=set)
    frame_size: tuple[int, int] | None = None
    windows: list[WindowRecord] = field(default_factory=list)
    shots: list[ShotRecord] = field(default_factory=list)

    @property
    def has_face(self) -> bool:
        return bool(self.guides)


def plan_faces(shots: Sequence[ShotRecord], frames: Sequence[FrameRecord], windows: Sequence[WindowRecord], *,
               pad_ms: int, budget_ms: int | None = None) -> FacePlan:
    """Main face track per shot, its guide boxes and padded time ranges, and the windows to score.

    Parameters
    ----------
    shots, frames, windows : sequence of records
        The ``video`` stage's rows for one asset (frames in time order, windows by start time).
    pad_ms : int
        Padding of each shot's face range (clipped to the shot).
    budget_ms : int, optional
        Most milliseconds for the dense pass (:func:`~tamperscope.temporal.dense.limit_ranges`).

    Returns
    -------
    FacePlan
    """
    plan = FacePlan()
    per_shot: dict[str | None, dict[int, list[tuple[int, Box]]]] = {}
    for frame in frames:
        if plan.frame_size is None and frame.width and frame.height:
            plan.frame_size = (frame.width, frame.height)
        for face in frame.faces:
            per_shot.setdefault(frame.shot_id, {}).setdefault(face.track_id, []).append((int(frame.t_ms), face.box))
    bounds: dict[str | None, tuple[int, int]] = {s.shot_id: (s.t_start_ms, s.t_end_ms) for s in shots}
    for shot_id, tracks in per_shot.items():
        chain = chain_tracks(tracks)
        plan.main_tracks.update(chain)
        plan.other_tracks.update(t for t in tracks if t not in chain)
        samples = sorted(s for tid in chain for s in tracks[tid])
        plan.guides.extend(samples)
        lo, hi = bounds.get(shot_id, (0, 2**62))
        start = max(lo, samples[0][0] - pad_ms)
        end = min(hi, samples[-1][0] + pad_ms)
        plan.ranges_ms.append((int(start), int(end)))
    plan.guides.sort(key=lambda g: g[0])
    plan.ranges_ms.sort()
    if budget_ms is not None:
        plan.ranges_ms = limit_ranges(plan.ranges_ms, budget_ms)
    plan.windows = list(windows)
    plan.shots = list(shots)
    return plan


def chain_tracks(tracks: dict[int, list[tuple[int, Box]]]) -> list[int]:
    """The main track of a shot plus the fragments of the same face (the detector drops and re-finds faces).

    Starting from the track with the most samples, a track joins when its time span overlaps none of the
    chosen tracks and its first or last box lies within one box side of the chosen sample nearest in time.

    Parameters
    ----------
    tracks : dict
        ``track_id -> [(t_ms, box), ...]`` of one shot, each in time order.

    Returns
    -------
    list of int
        Chosen track ids, main track first.
    """
    order = sorted(tracks, key=lambda tid: (-len(tracks[tid]), tid))
    chosen = [order[0]]
    for tid in order[1:]:
        samples = tracks[tid]
        start, end = samples[0][0], samples[-1][0]
        if any(not (end < tracks[c][0][0] or start > tracks[c][-1][0]) for c in chosen):
            continue
        pool = [s for c in chosen for s in tracks[c]]
        if all(_near(sample, pool) for sample in (samples[0], samples[-1])):
            chosen.append(tid)
    return chosen


def _near(sample: tuple[int, Box], pool: list[tuple[int, Box]]) -> bool:
    _, box = sample
    _, other = min(pool, key=lambda s: abs(s[0] - sample[0]))
    side = max(box[2] - box[0], box[3] - box[1], other[2] - other[0], other[3] - other[1])
    dx = (box[0] + box[2] - other[0] - other[2]) / 2
    dy = (box[1] + box[3] - other[1] - other[3]) / 2
    return bool(np.hypot(dx, dy) <= side)


def with_gaps(track: DenseTrack, ranges_ms: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Times and landmarks with a NaN row inserted where consecutive frames fall in different ranges.

    The detectors difference consecutive rows; the NaN row stops a difference across a shot cut or a gap.
    """
    t = track.t_ms.astype(np.float64)
    lm = track.landmarks.astype(np.float64)
    if len(t) < 2:
        return t, lm
    label = np.searchsorted(np.array([a for a, _ in ranges_ms]), t, side="right")
    breaks = np.flatnonzero(np.diff(label) != 0) + 1
    if len(breaks) == 0:
        return t, lm
    t_out = np.insert(t, breaks, (t[breaks - 1] + t[breaks]) / 2.0)
    lm_out = np.insert(lm, breaks, np.nan, axis=0)
    return t_out, lm_out


def span_mask(t_ms: np.ndarray, start_ms: float, end_ms: float, *, min_ms: float = 1000.0) -> np.ndarray:
    """Frames within a window, widened symmetrically to at least ``min_ms`` (clips span ~2 s at 8 fps)."""
    centre, half = (start_ms + end_ms) / 2.0, max(end_ms - start_ms, min_ms) / 2.0
    return (t_ms >= centre - half) & (t_ms <= centre + half)
