"""The ``temporal`` stage: blinks, head pose and landmark stability on the main face track of each shot.

Reads the ``video`` stage's sampled faces (``frames.faces_json``) and clip ``windows``, runs the dense
landmark pass (:mod:`tamperscope.temporal.dense`, shared with ``avsync``) and writes:

- ``temporal.head_pose`` and ``temporal.landmarks``: one row per clip window of a main track (series
  statistics over the window, widened to at least 1 s), and one ``asset`` row over the whole track;
- ``temporal.blink``: one row per shot with a face and one ``asset`` row (a 2 s clip is far too short for
  a blink rate), ``insufficient_data`` below ``temporal.min_face_s`` of face time;
- ``not_applicable`` rows (``asset``) when no face was found, and for windows of secondary face tracks,
  which the dense pass does not follow.

The per-frame series (EAR, yaw/pitch/roll, inconsistency, landmark acceleration) go to
``derived/<asset_id>/temporal/series.npz``, referenced from each row's evidence as ``series_uri``.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from tamperscope.records import DetectionRecord, MediaType, StageOutput
from tamperscope.stages.base import Stage, StageContext
from tamperscope.store import queries
from tamperscope.temporal.blinks import analyze_blinks
from tamperscope.temporal.dense import DenseTrack, cached_dense_landmarks
from tamperscope.temporal.head_pose import analyze_head_pose, score_pose_series
from tamperscope.temporal.landmarks import analyze_landmarks, score_acceleration
from tamperscope.temporal.tracks import FacePlan, plan_faces, span_mask, with_gaps

# 0.2.0: landmark acceleration per unit time (inter-ocular units per (1/30 s)^2, from the frame timestamps), so
# it no longer depends on the dense rate (was: per frame step); identical on 30 fps video, x (fps / 30)^2 on others.
VERSION = "0.2.0"
MODULES = ("temporal.blink", "temporal.head_pose", "temporal.landmarks")
#: ``settings.temporal`` fields of the dense landmark pass and face plan, which ``temporal`` and ``avsync`` share
DENSE_SETTINGS = ("long_side", "max_fps", "range_pad_ms", "max_dense_s")
#: the fields this stage's results depend on: its fingerprint covers these only, so an AV-sync setting does not
#: make its results stale
TEMPORAL_SETTINGS = (*DENSE_SETTINGS, "min_face_s", "blink_drop")


def face_plan(ctx: StageContext) -> FacePlan:
    """The main face tracks to follow densely, planned from the ``video`` stage's shots, frames and windows."""
    cfg = ctx.settings.temporal
    with ctx.read_session() as session:
        shots, windows = queries.shots(session, ctx.asset.asset_id), queries.windows(session, ctx.asset.asset_id)
    return plan_faces(shots, ctx.frames(), windows, pad_ms=cfg.range_pad_ms,
                      budget_ms=round(cfg.max_dense_s * 1000))


def dense_for(ctx: StageContext, plan: FacePlan) -> tuple[DenseTrack, str]:
    """The (cached) dense landmark pass of an asset's main face tracks, on the frames the video stage's decode
    left in the media session when it left them all."""
    cfg = ctx.settings.temporal
    return cached_dense_landmarks(ctx.ws.store, ctx.asset.asset_id, ctx.media_path, plan.ranges_ms,
                                  long_side=cfg.long_side, max_fps=cfg.max_fps, guides=plan.guides,
                                  guide_size=plan.frame_size, cache=ctx.media.cached_frames(cfg.long_side),
                                  limits=ctx.decode_limits())


def not_applicable(modules: tuple[str, ...], reason: str, params: dict[str, Any],
                   window_id: str = "asset", t_start_ms: int | None = None,
                   t_end_ms: int | None = None, version: str = VERSION) -> list[DetectionRecord]:
    """Explicit non-results, one per module (``version``: the module version of the calling stage)."""
    return [DetectionRecord(module_name=m, module_version=version, window_id=window_id, status="not_applicable",
                            t_start_ms=t_start_ms, t_end_ms=t_end_ms, params=params, evidence={"reason": reason})
            for m in modules]


def npz_bytes(**arrays: np.ndarray) -> bytes:
    """Compressed ``.npz`` bytes of named arrays."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, allow_pickle=False, **arrays)
    return buffer.getvalue()


def window_rows(plan: FacePlan, t: np.ndarray, module: str, params: dict[str, Any],
                analyse: Callable[[np.ndarray], tuple[float | None, dict[str, Any]]],
                extra: dict[str, Any]) -> list[DetectionRecord]:
    """One row of ``module`` per clip window: main-track windows analysed, others ``not_applicable``."""
    rows = []
    for window in plan.windows:
        if window.track_id is None:
            continue
        base: dict[str, Any] = {"window_id": window.window_id, "t_start_ms": window.t_start_ms,
                "t_end_ms": window.t_end_ms, "params": params}
        if window.track_id not in plan.main_tracks:
            rows.append(DetectionRecord(module, VERSION, status="not_applicable",
                                        evidence={"reason": "secondary face track (only each shot's main "
                                                  "track is followed densely)"}, **base))
            continue
        mask = span_mask(t, window.t_start_ms, window.t_end_ms)
        score, evidence = analyse(mask)
        status = "scored" if score is not None else "insufficient_data"
        rows.append(DetectionRecord(module, VERSION, score=score, status=status, evidence={**evidence, **extra},
                                    **base))
    return rows


class TemporalStage(Stage):
    """Blinks, head pose and landmark stability of the main face tracks."""

    name: ClassVar[str] = "temporal"
    version: ClassVar[str] = VERSION
    requires: ClassVar[tuple[str, ...]] = ("video",)
    order: ClassVar[int] = 40
    media_types: ClassVar[frozenset[str] | None] = frozenset({MediaType.VIDEO})
    settings_section: ClassVar[str | None] = "temporal"
    settings_fields: ClassVar[tuple[str, ...] | None] = TEMPORAL_SETTINGS

    def run(self, ctx: StageContext) -> StageOutput:
        params = self.params(ctx.settings)
        cfg = ctx.settings.temporal
        plan = face_plan(ctx)
        if not plan.has_face:
            return StageOutput(detections=not_applicable(MODULES, "no visible face", params),
                               summary={"faces": 0})
        ctx.report(0.05, "dense landmarks")
        track, dense_uri = dense_for(ctx, plan)
        ctx.report(0.8, "blinks, head pose, landmarks")
        t, lm = with_gaps(track, plan.ranges_ms)
        size = (track.width, track.height)
        blink = analyze_blinks(lm, t, drop=cfg.blink_drop, min_face_s=cfg.min_face_s)
        pose = analyze_head_pose(lm, t, size)
        stability = analyze_landmarks(lm, t)
        series_uri = ctx.ws.store.put_bytes(ctx.derived_key("series.npz"), npz_bytes(
            t_ms=t, ear=blink.ear, yaw_pitch_roll=pose.angles, inconsistency=pose.inconsistency,
            landmark_acceleration=stability.acceleration))
        extra = {"series_uri": series_uri, "dense_uri": dense_uri}
        span = (int(np.nanmin(track.t_ms)), int(np.nanmax(track.t_ms))) if len(track.t_ms) else (None, None)
        rows: list[DetectionRecord] = []

        def asset_row(module: str, score: float | None, evidence: dict[str, Any], status: str) -> DetectionRecord:
            return DetectionRecord(module, VERSION, window_id="asset", score=score, status=status,
                                   t_start_ms=span[0], t_end_ms=span[1], params=params,
                                   evidence={**evidence, **extra})

        rows.append(asset_row("temporal.blink", blink.score, blink.evidence(), blink.status))
        rows.append(asset_row("temporal.head_pose", pose.score, pose.evidence(),
                              "scored" if pose.score is not None else "insufficient_data"))
        rows.append(asset_row("temporal.landmarks", stability.score, stability.evidence(),
                              "scored" if stability.score is not None else "insufficient_data"))
        for shot in plan.shots:
            inside = (t >= shot.t_start_ms) & (t <= shot.t_end_ms)
            if not np.isfinite(lm[inside, 0, 0]).any():
                continue
            shot_blink = analyze_blinks(lm[inside], t[inside], drop=cfg.blink_drop, min_face_s=cfg.min_face_s)
            rows.append(DetectionRecord("temporal.blink", VERSION, window_id=shot.shot_id,
                                        score=shot_blink.score, status=shot_blink.status,
                                        t_start_ms=shot.t_start_ms, t_end_ms=shot.t_end_ms, params=params,
                                        evidence={**shot_blink.evidence(), **extra}))

        def pose_window(mask: np.ndarray) -> tuple[float | None, dict[str, Any]]:
            result = score_pose_series(pose.angles[mask], pose.inconsistency[mask], t[mask])
            return result.score, result.evidence()

        def landmark_window(mask: np.ndarray) -> tuple[float | None, dict[str, Any]]:
            result = score_acceleration(stability.acceleration[mask])
            return result.score, result.evidence()

        rows += window_rows(plan, t, "temporal.head_pose", params, pose_window, extra)
        rows += window_rows(plan, t, "temporal.landmarks", params, landmark_window, extra)
        summary = {"dense_frames": len(track.t_ms), "face_frames": int(np.isfinite(lm[:, 0, 0]).sum()),
                   "dense_fps": round(track.fps, 3), "decode_s": round(track.decode_s, 2),
                   "mesh_s": round(track.mesh_s, 2), "blink_status": blink.status,
                   "blinks": len(blink.events)}
        return StageOutput(detections=rows, summary=summary)
