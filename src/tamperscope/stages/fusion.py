"""The ``fusion`` stage: one calibrated verdict per asset from every registered branch's detections.

For a model with window-local branches (``video-v3``: deep frame and clip scores) it also writes the timeline:
one ``fusion.window`` row per clip window (its time span, calibrated probability and band, see
:mod:`tamperscope.fusion.timeline`), ``insufficient_data`` for windows without deep evidence.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import select

from tamperscope.fusion.branches import BRANCHES, Row, metadata_checked_row
from tamperscope.fusion.model import FusionModel, load_model
from tamperscope.fusion.timeline import WindowSpan, has_timeline, timeline
from tamperscope.records import DetectionRecord, StageOutput
from tamperscope.settings import Settings
from tamperscope.stages.base import Stage, StageContext
from tamperscope.store.models import Asset, Detection, StageRun, Window

#: model artifact per media type. Images use ``image-v2`` (fitted on real camera files, forgery pairs and the
#: synthetic benchmark by ``tamperscope eval-image``; ``image-v1``, fitted on the synthetic benchmark alone, stays
#: loadable); videos use ``video-v3`` (fitted by ``tamperscope eval-video`` on 257 labelled videos; ``video-v2``
#: stays loadable). Each keeps the candidate branches that raised the held-out AUC (``training.branch_selection``).
MODEL_FOR_MEDIA: dict[str, str] = {"image": "image-v2", "video": "video-v3"}
UNCALIBRATED_MEDIA = ("video",)


def context_rows(session: Any, asset_id: str) -> list[Row]:
    """Rows fusion adds from the asset's state: the metadata stage's ``meta.checked`` row when it ran."""
    run = session.get(StageRun, (asset_id, "metadata"))
    if run is None or run.status != "done":
        return []
    asset = session.get(Asset, asset_id)
    return [metadata_checked_row(asset.provenance_status if asset is not None else None)]


class FusionStage(Stage):
    """Branch features -> calibrated probability -> band, stored as a ``fusion`` detection on ``asset``."""

    name: ClassVar[str] = "fusion"
    version: ClassVar[str] = "1.2"
    requires: ClassVar[tuple[str, ...]] = ("metadata", "forensics", "temporal", "avsync", "deep")
    order: ClassVar[int] = 1000  # the verdict: after any stage ready together with it

    def _model(self, media_type: str | None) -> FusionModel:
        return load_model(MODEL_FOR_MEDIA.get(media_type or "", MODEL_FOR_MEDIA["image"]))

    def params(self, settings: Settings) -> dict[str, Any]:
        """Policy version and artifact hash per model: refitted coefficients make stored verdicts stale."""
        models = {m: load_model(mid) for m, mid in MODEL_FOR_MEDIA.items()}
        return {"models": {m: model.policy.version for m, model in models.items()},
                "artifact_sha256": {m: model.artifact_sha256 for m, model in models.items()}}

    def applies_to(self, asset: Asset) -> bool:
        return asset.media_type in MODEL_FOR_MEDIA or asset.media_type in UNCALIBRATED_MEDIA

    def run(self, ctx: StageContext) -> StageOutput:
        with ctx.read_session() as s:
            rows = [Row(d.module_name, d.window_id, d.score, d.status, d.evidence_json, d.t_start_ms, d.t_end_ms)
                    for d in s.scalars(select(Detection).where(Detection.asset_id == ctx.asset.asset_id,
                                                               Detection.stage != self.name))]
            windows = [WindowSpan(w.window_id, w.t_start_ms, w.t_end_ms, w.track_id)
                       for w in s.scalars(select(Window).where(Window.asset_id == ctx.asset.asset_id)
                                          .order_by(Window.t_start_ms, Window.window_id))]
            rows += context_rows(s, ctx.asset.asset_id)
        scored = sorted({r.module_name for r in rows if r.score is not None})
        if ctx.asset.media_type not in MODEL_FOR_MEDIA:
            return self._no_verdict(f"no calibrated fusion model for {ctx.asset.media_type} yet; each module's "
                                    "scores stand on their own", scored)
        model = self._model(ctx.asset.media_type)
        values = {b: BRANCHES[b].extract(rows) for b in model.branches}
        if all(v is None for v in values.values()):
            return self._no_verdict(f"none of {model.model_id}'s branches ({', '.join(model.branches)}) has "
                                    "evidence for this asset (no face, no speech, or those stages did not run); "
                                    "each module's scores stand on their own", scored)
        probability, contributions = model.probability(values)
        band = model.policy.band(probability)
        evidence = {"policy_version": model.policy.version, "model_id": model.model_id,
                    "branches_present": [b for b, v in values.items() if v is not None],
                    "branches_missing": [b for b, v in values.items() if v is None],
                    "contributions": {k: round(v, 5) for k, v in contributions.items()},
                    "features": {b: v for b, v in values.items() if v is not None}}
        window_records = self._timeline(model, rows, windows) if has_timeline(model) else []
        points = [r for r in window_records if r.score is not None]
        if window_records:
            peak = max(points, key=lambda r: r.score or 0.0, default=None)
            evidence["timeline"] = {"windows": len(window_records), "scored": len(points),
                                    "peak_window": peak.window_id if peak else None,
                                    "peak_probability": peak.score if peak else None}
        record = DetectionRecord(module_name="fusion", module_version=f"{self.version}+{model.model_id}",
                                 window_id="asset", score=probability, params={"model_id": model.model_id},
                                 logits={"logit": sum(contributions.values()) + model.intercept},
                                 threshold=model.policy.high, band=band, evidence=evidence)
        return StageOutput(detections=[record, *window_records],
                           summary={"probability": probability, "band": band, "windows": len(points)})

    def _no_verdict(self, reason: str, scored: list[str]) -> StageOutput:
        """An explicit non-verdict: a probability from the model's prior alone would only restate its base rate."""
        record = DetectionRecord(module_name="fusion", module_version=self.version, window_id="asset",
                                 status="insufficient_data", evidence={"reason": reason, "modules_scored": scored})
        return StageOutput(detections=[record], summary={"band": None})

    def _timeline(self, model: FusionModel, rows: list[Row], windows: list[WindowSpan]) -> list[DetectionRecord]:
        """One ``fusion.window`` row per clip window."""
        out = []
        version = f"{self.version}+{model.model_id}"
        for point in timeline(model, rows, windows):
            w = point.window
            if point.probability is None:
                out.append(DetectionRecord(
                    module_name="fusion.window", module_version=version, window_id=w.window_id,
                    status="insufficient_data", t_start_ms=w.t_start_ms, t_end_ms=w.t_end_ms,
                    evidence={"reason": "no deep frame or clip score in this window", "track_id": w.track_id}))
                continue
            out.append(DetectionRecord(
                module_name="fusion.window", module_version=version, window_id=w.window_id,
                score=point.probability, t_start_ms=w.t_start_ms, t_end_ms=w.t_end_ms,
                params={"model_id": model.model_id}, threshold=model.policy.high,
                band=model.policy.band(point.probability),
                evidence={"policy_version": model.policy.version, "track_id": w.track_id,
                          "branches_present": point.branches_present, "features": point.features}))
        return out
