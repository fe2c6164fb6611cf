"""The ``deep`` stage: ONNX frame and clip detectors over the face crops and windows of the ``video`` stage.

Writes one ``deep.frame`` row per sampled frame with a face (the strongest face's score), with a saliency PNG for
the highest-scoring frames when the model has a second (map) output, and one ``deep.clip`` row per window.
Without a configured model (``settings.models.frame_path`` / ``clip_path``) the branch is reported as an explicit
``not_applicable`` asset row, so fusion sees the missing branch.
"""

from __future__ import annotations

from typing import Any, ClassVar

import cv2
import numpy as np
from sqlalchemy import select

from tamperscope.custody.objectstore import ObjectStore
from tamperscope.media.windows import load_window
from tamperscope.models.runtime import ClipModel, FrameModel
from tamperscope.pipeline.stage import DetectionRecord, StageContext, StageOutput
from tamperscope.settings import Settings
from tamperscope.store.models import Asset, Frame, Window

SALIENCY_FRAMES = 3


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


class DeepStage:
    """Frame and clip deep detectors (ONNX Runtime)."""

    name: ClassVar[str] = "deep"
    version: ClassVar[str] = "1"
    requires: ClassVar[tuple[str, ...]] = ("video",)
    owns_tables: ClassVar[tuple[str, ...]] = ()

    def params(self, settings: Settings) -> dict[str, Any]:
        """Model paths and limits (a different checkpoint makes stored results stale)."""
        m = settings.models
        return {"frame_path": str(m.frame_path) if m.frame_path else None,
                "clip_path": str(m.clip_path) if m.clip_path else None, "max_frames": m.max_frames}

    def applies_to(self, asset: Asset) -> bool:
        """Every asset the ``video`` stage handled (images are one-frame videos)."""
        return True

    def run(self, ctx: StageContext) -> StageOutput:
        """Score face crops per frame and windows per clip."""
        m = ctx.settings.models
        out = StageOutput()
        if m.frame_path is None:
            out.detections.append(DetectionRecord("deep.frame", self.version, status="not_applicable",
                                                  evidence={"reason": "no frame model configured"}))
        else:
            out.detections += self._frames(ctx, FrameModel(m.frame_path, threads=m.threads))
        ctx.report(0.5, "frame model done")
        if m.clip_path is None:
            out.detections.append(DetectionRecord("deep.clip", self.version, status="not_applicable",
                                                  evidence={"reason": "no clip model configured"}))
        else:
            out.detections += self._clips(ctx, ClipModel(m.clip_path, threads=m.threads))
        out.summary = {"frame_rows": sum(d.module_name == "deep.frame" for d in out.detections),
                       "clip_rows": sum(d.module_name == "deep.clip" for d in out.detections)}
        return out

    def _frames(self, ctx: StageContext, model: FrameModel) -> list[DetectionRecord]:
        with ctx.read_session() as s:
            frames = s.scalars(select(Frame).where(Frame.asset_id == ctx.asset.asset_id).order_by(Frame.t_ms)).all()
            items = [(f.frame_id, f.t_ms, list(f.faces_json or [])) for f in frames]
        crops: list[np.ndarray] = []
        owners: list[tuple[str, int, int]] = []
        for frame_id, t_ms, faces in items[: ctx.settings.models.max_frames]:
            for face in faces:
                if face.get("crop_uri"):
                    raw = ctx.ws.store.get_bytes(ObjectStore.key_of(face["crop_uri"]))
                    bgr = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
                    if bgr is None:
                        continue
                    crops.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
                    owners.append((frame_id, t_ms, int(face.get("track_id", 0))))
        if not crops:
            return [DetectionRecord("deep.frame", self.version, status="not_applicable",
                                    evidence={"reason": "no face crops"})]
        size = model.spec.input_size
        pred = model.predict(np.stack([cv2.resize(c, (size, size), interpolation=cv2.INTER_AREA) for c in crops]))
        best: dict[str, int] = {}
        for i, (frame_id, _, _) in enumerate(owners):
            if frame_id not in best or pred.scores[i] > pred.scores[best[frame_id]]:
                best[frame_id] = i
        shown = set(sorted(best.values(), key=lambda i: -pred.scores[i])[:SALIENCY_FRAMES])
        maps = next(iter(pred.extra.values()), None)
        rows = []
        for frame_id, i in best.items():
            uri = None
            if maps is not None and i in shown:
                uri = ctx.ws.store.put_bytes(ctx.derived_key(f"saliency_{frame_id.split(':')[-1]}.png"),
                                             saliency_png(maps[i]))
            rows.append(DetectionRecord("deep.frame", self.version, window_id=frame_id, score=float(pred.scores[i]),
                                        t_start_ms=owners[i][1], t_end_ms=owners[i][1],
                                        logits={"logit": float(pred.logits[i])}, saliency_uri=uri,
                                        params={"model": model.path.name},
                                        evidence={"track_id": owners[i][2], "faces_scored": sum(
                                            o[0] == frame_id for o in owners)}))
        return rows

    def _clips(self, ctx: StageContext, model: ClipModel) -> list[DetectionRecord]:
        with ctx.read_session() as s:
            windows = s.scalars(select(Window).where(Window.asset_id == ctx.asset.asset_id)
                                .order_by(Window.t_start_ms)).all()
            items = [(w.window_id, w.t_start_ms, w.t_end_ms, w.track_id) for w in windows]
        rows = []
        length = model.spec.clip_length
        for window_id, t0, t1, track in items:
            clip = load_window(ctx.ws, window_id)
            if track is None or len(clip) < length:
                rows.append(DetectionRecord("deep.clip", self.version, window_id=window_id, status="insufficient_data"
                                            if track is not None else "not_applicable", t_start_ms=t0, t_end_ms=t1,
                                            evidence={"frames": len(clip), "face_track": track is not None}))
                continue
            idx = np.linspace(0, len(clip) - 1, length).round().astype(int)
            pred = model.predict(clip[idx][None])
            rows.append(DetectionRecord("deep.clip", self.version, window_id=window_id, score=float(pred.scores[0]),
                                        t_start_ms=t0, t_end_ms=t1, logits={"logit": float(pred.logits[0])},
                                        params={"model": model.path.name}, evidence={"track_id": track}))
        return rows
