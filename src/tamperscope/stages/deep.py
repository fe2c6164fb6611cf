"""The ``deep`` stage: ONNX frame and clip detectors over the face crops and windows of the ``video`` stage.

Writes one ``deep.frame`` row per sampled frame with a face (the strongest face's score), with a saliency PNG for
the highest-scoring frames when the model has a map output (``saliency``, or else its second output), and one
``deep.clip`` row per window. Each crop goes through the frame model once: crops of face-track windows are scored
window by window and their ``embedding`` outputs feed a clip model whose spec says ``input: embeddings``.
Without a configured model (``settings.models.frame_path`` / ``clip_path``) the branch is reported as an explicit
``not_applicable`` asset row, so fusion sees the missing branch.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import cv2
import numpy as np

from tamperscope.custody.objectstore import ObjectStore
from tamperscope.errors import UsageError
from tamperscope.media.windows import load_window
from tamperscope.records import DetectionRecord, StageOutput
from tamperscope.settings import Settings
from tamperscope.stages.base import Stage, StageContext
from tamperscope.stages.video import decode_png
from tamperscope.store import queries

if TYPE_CHECKING:  # onnxruntime is imported when the stage runs, not when the registry lists the stages
    from tamperscope.models.runtime import ClipModel, FrameModel

#: frames whose Grad-CAM map is kept: the highest-scoring ones, as many as the case page's face strip shows
SALIENCY_FRAMES = 8


@dataclass
class _Scored:
    """Frame-model outputs for one face crop."""

    score: float
    logit: float
    saliency: np.ndarray | None
    embedding: np.ndarray | None


def saliency_png(saliency: np.ndarray) -> bytes:
    """Encode a model's saliency output for one item as an 8-bit PNG (channels averaged, min-max scaled).

    Parameters
    ----------
    saliency
        ``(H, W)`` or ``(C, H, W)`` map.

    Returns
    -------
    bytes
        PNG bytes.
    """
    m = np.abs(saliency.astype(np.float64))
    if m.ndim == 3:
        m = m.mean(axis=0)
    span = float(m.max() - m.min())
    img = np.zeros(m.shape, np.uint8) if span == 0 else ((m - m.min()) / span * 255).astype(np.uint8)
    ok, buf = cv2.imencode(".png", img)
    return bytes(buf) if ok else b""


def _saliency_maps(extra: dict[str, np.ndarray]) -> np.ndarray | None:
    """A frame model's map output: ``saliency``, or else its second output (None with only a score)."""
    return extra.get("saliency", next(iter(extra.values()), None))


class DeepStage(Stage):
    """Frame and clip deep detectors (ONNX Runtime) on every asset the ``video`` stage handled (images are
    one-frame videos)."""

    name: ClassVar[str] = "deep"
    version: ClassVar[str] = "1.1"  # 1.1: Grad-CAM kept for 8 frames (was 3)
    requires: ClassVar[tuple[str, ...]] = ("video",)
    order: ClassVar[int] = 60

    def params(self, settings: Settings) -> dict[str, Any]:
        """Which models run, and the frame limit (their bytes enter the fingerprint via :meth:`model_files`)."""
        m = settings.models
        return {"frame_path": str(m.frame_path) if m.frame_path else None,
                "clip_path": str(m.clip_path) if m.clip_path else None, "max_frames": m.max_frames}

    def model_files(self, settings: Settings) -> list[Path]:
        """Each configured model and its YAML sidecar (preprocessing and outputs): a different checkpoint or
        spec makes stored results stale."""
        models = [p for p in (settings.models.frame_path, settings.models.clip_path) if p is not None]
        return [f for p in models for f in (p, p.with_suffix(".yaml"))]

    def run(self, ctx: StageContext) -> StageOutput:
        """Score face crops per frame and windows per clip (each crop goes through the frame model once)."""
        from tamperscope.models.runtime import ClipModel, FrameModel

        m = ctx.settings.models
        out = StageOutput()
        frame_model = FrameModel(m.frame_path, threads=m.threads) if m.frame_path is not None else None
        clip_model = ClipModel(m.clip_path, threads=m.threads) if m.clip_path is not None else None
        if clip_model is not None and clip_model.spec.input == "embeddings" and frame_model is None:
            raise UsageError("the clip model reads frame-model embeddings: configure a frame model too")
        windows = self._windows(ctx)
        scored = self._score_windows(frame_model, windows) if frame_model is not None else {}
        ctx.report(0.4, "window crops scored")
        out.detections += (self._frames(ctx, frame_model, scored) if frame_model is not None
                           else self._unconfigured("frame"))
        ctx.report(0.7, "frame model done")
        out.detections += (self._clips(clip_model, windows, scored) if clip_model is not None
                           else self._unconfigured("clip"))
        out.summary = {"frame_rows": sum(d.module_name == "deep.frame" for d in out.detections),
                       "clip_rows": sum(d.module_name == "deep.clip" for d in out.detections)}
        return out

    def _unconfigured(self, branch: str) -> list[DetectionRecord]:
        """The explicit ``not_applicable`` asset row of a branch (``frame``, ``clip``) without a model, so fusion
        sees it missing."""
        return [DetectionRecord(f"deep.{branch}", self.version, status="not_applicable",
                                evidence={"reason": f"no {branch} model configured"})]

    @staticmethod
    def _windows(ctx: StageContext) -> list[tuple[str, int, int, int | None, list[str], np.ndarray]]:
        """Every window of the asset: id, span, face track, frame ids and its crops (shot windows: no crops)."""
        with ctx.read_session() as s:
            items = [(w.window_id, w.t_start_ms, w.t_end_ms, w.track_id, list(w.frame_ids))
                     for w in queries.windows(s, ctx.asset.asset_id)]
        return [(wid, t0, t1, track, frame_ids,
                 load_window(ctx.ws, wid) if track is not None else np.zeros((0, 1, 1, 3), np.uint8))
                for wid, t0, t1, track, frame_ids in items]

    @staticmethod
    def _score_windows(model: FrameModel, windows: list[tuple[str, int, int, int | None, list[str], np.ndarray]]
                       ) -> dict[tuple[str, int], _Scored]:
        """Frame-model outputs for every crop of every face-track window, keyed by ``(frame id, track)``."""
        scored: dict[tuple[str, int], _Scored] = {}
        for _, _, _, track, frame_ids, crops in windows:
            if track is None or not len(crops):
                continue
            todo = [i for i, f in enumerate(frame_ids[: len(crops)]) if (f, track) not in scored]
            if not todo:
                continue
            pred = model.predict(crops[todo])
            maps = _saliency_maps(pred.extra)
            embedding = pred.extra.get("embedding")
            for j, i in enumerate(todo):
                scored[(frame_ids[i], track)] = _Scored(
                    float(pred.scores[j]), float(pred.logits[j]), None if maps is None else maps[j],
                    None if embedding is None else embedding[j].astype(np.float32))
        return scored

    def _frames(self, ctx: StageContext, model: FrameModel, scored: dict[tuple[str, int], _Scored]
                ) -> list[DetectionRecord]:
        """One row per frame with a face: the best-scoring face; crops outside windows are scored here."""
        items = [(f.frame_id, f.t_ms, f.faces) for f in ctx.frames()]
        per_frame: dict[str, list[tuple[int, _Scored]]] = {}
        missing: list[tuple[str, int, np.ndarray]] = []
        for frame_id, _, faces in items:
            for face in faces:
                track = face.track_id
                if (frame_id, track) in scored:
                    per_frame.setdefault(frame_id, []).append((track, scored[(frame_id, track)]))
                elif face.crop_uri and len(missing) < ctx.settings.models.max_frames:
                    with contextlib.suppress(ValueError):  # an unreadable crop is left out
                        crop = decode_png(ctx.ws.store.get_bytes(ObjectStore.key_of(face.crop_uri)))
                        missing.append((frame_id, track, crop))
        if missing:
            pred = model.predict(np.stack([c for _, _, c in missing]))
            maps = _saliency_maps(pred.extra)
            for j, (frame_id, track, _) in enumerate(missing):
                per_frame.setdefault(frame_id, []).append((track, _Scored(
                    float(pred.scores[j]), float(pred.logits[j]), None if maps is None else maps[j], None)))
        if not per_frame:
            return [DetectionRecord("deep.frame", self.version, status="not_applicable",
                                    evidence={"reason": "no face crops"})]
        best = {f: max(faces, key=lambda tf: tf[1].score) for f, faces in per_frame.items()}
        shown = set(sorted(best, key=lambda f: -best[f][1].score)[:SALIENCY_FRAMES])
        rows = []
        for frame_id, t_ms, _ in items:
            if frame_id not in best:
                continue
            track, result = best[frame_id]
            uri = None
            if result.saliency is not None and frame_id in shown:
                uri = ctx.ws.store.put_bytes(ctx.derived_key(f"saliency_{frame_id.split(':')[-1]}.png"),
                                             saliency_png(result.saliency))
            rows.append(DetectionRecord("deep.frame", self.version, window_id=frame_id, score=result.score,
                                        t_start_ms=t_ms, t_end_ms=t_ms, logits={"logit": result.logit},
                                        saliency_uri=uri, params={"model": model.path.name},
                                        evidence={"track_id": track, "faces_scored": len(per_frame[frame_id])}))
        return rows

    def _clips(self, model: ClipModel, windows: list[tuple[str, int, int, int | None, list[str], np.ndarray]],
               scored: dict[tuple[str, int], _Scored]) -> list[DetectionRecord]:
        rows = []
        length = model.spec.clip_length
        for window_id, t0, t1, track, frame_ids, clip in windows:
            if track is None or len(clip) < length:
                rows.append(DetectionRecord("deep.clip", self.version, window_id=window_id, status="insufficient_data"
                                            if track is not None else "not_applicable", t_start_ms=t0, t_end_ms=t1,
                                            evidence={"frames": len(clip), "face_track": track is not None}))
                continue
            idx = np.linspace(0, len(clip) - 1, length).round().astype(int)
            if model.spec.input == "embeddings":
                vectors = [scored[(frame_ids[i], track)].embedding for i in idx]
                if any(v is None for v in vectors):
                    raise UsageError("the frame model has no 'embedding' output, which the clip model reads")
                pred = model.predict(np.stack(vectors)[None])  # type: ignore[arg-type]
            else:
                pred = model.predict(clip[idx][None])
            rows.append(DetectionRecord("deep.clip", self.version, window_id=window_id, score=float(pred.scores[0]),
                                        t_start_ms=t0, t_end_ms=t1, logits={"logit": float(pred.logits[0])},
                                        params={"model": model.path.name}, evidence={"track_id": track}))
        return rows
