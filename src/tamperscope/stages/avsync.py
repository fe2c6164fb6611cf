"""The ``avsync`` stage: audio-video offset and bilabial closure of the main face track against the audio.

Audio comes from the media session (collected by the video stage's decode pass, else extracted with
:mod:`tamperscope.media.audio`), speech found by energy, phones
recognised by pocketsphinx (:mod:`tamperscope.temporal.phones`) and the lips taken from the dense landmark
pass shared with the ``temporal`` stage: the outer-lip height against the 1-4 kHz envelope for the offset,
the inner-lip gap for bilabial closure. Rows:

- ``avsync.offset`` and ``avsync.bilabial`` for the ``asset`` (whole clip; the evidence lists the offset,
  confidence and bilabial mismatch rate of each speech segment) and for each clip window of a main face
  track that overlaps speech;
- ``not_applicable`` (``asset``) when there is no audio stream, no speech or no visible face;
  ``insufficient_data`` when the offset confidence is not above its chance level for the overlap (the
  evidence still carries the offset and confidence) or there are too few bilabials to score.

The envelopes, lip series, correlation curve and phones are stored as ``derived/<asset_id>/avsync/
series.npz`` and ``phones.json``.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import numpy as np

from tamperscope.records import DetectionRecord, MediaType, StageOutput
from tamperscope.stages.base import Stage, StageContext
from tamperscope.stages.temporal import DENSE_SETTINGS, dense_for, face_plan, not_applicable, npz_bytes
from tamperscope.temporal.avsync import OffsetResult, audio_features, estimate_offset, mouth_opening, sync_score
from tamperscope.temporal.bilabial import Phone, bilabial_check, closed_threshold
from tamperscope.temporal.mesh import OUTER_LIP_PAIRS
from tamperscope.temporal.phones import recognise_phones
from tamperscope.temporal.scoring import ramp
from tamperscope.temporal.tracks import with_gaps

# 0.2.0: offset from the outer lips and the 1-4 kHz envelope in the 0.5-8 Hz band, SyncNet confidence
# (peak minus median) gated by its chance level for the overlap (was: z-score ramp from 2.5, 0 on real speech).
VERSION = "0.2.0"
MODULES = ("avsync.offset", "avsync.bilabial")
#: the ``settings.temporal`` fields this stage's results depend on (its fingerprint covers these only)
AVSYNC_SETTINGS = (*DENSE_SETTINGS, "max_offset_s", "sync_chance_margin", "min_bilabials")
# Mismatch rates mapped onto 0..1. Recognised phones are noisy (pocketsphinx phone loop), so real speech
# already shows some mismatches (0.2 on the synthetic clips, up to 0.6 on a few real bilabials); provisional.
BILABIAL_RANGE = (0.5, 0.9)
# Seconds of context around a clip window or speech segment for its local offset: 2 s give too few
# independent envelope samples for a trustworthy peak.
WINDOW_CONTEXT_S = 6.0



class AVSyncStage(Stage):
    """Lip-sync offset and bilabial check."""

    name: ClassVar[str] = "avsync"
    version: ClassVar[str] = VERSION
    requires: ClassVar[tuple[str, ...]] = ("video",)
    order: ClassVar[int] = 50
    media_types: ClassVar[frozenset[str] | None] = frozenset({MediaType.VIDEO})
    settings_section: ClassVar[str | None] = "temporal"
    settings_fields: ClassVar[tuple[str, ...] | None] = AVSYNC_SETTINGS

    def run(self, ctx: StageContext) -> StageOutput:
        params = self.params(ctx.settings)
        cfg = ctx.settings.temporal
        audio = ctx.media.audio(max_seconds=ctx.settings.limits.max_duration_s)  # the duration budget
        ctx.check_budget()
        if audio is None:
            return StageOutput(detections=not_applicable(MODULES, "no audio stream", params, version=VERSION),
                               summary={"audio": False})
        features = audio_features(audio.samples, audio.rate, audio.start_s)
        segments = features.segments
        if not segments:
            return StageOutput(detections=not_applicable(MODULES, "no speech detected", params, version=VERSION),
                               summary={"audio": True, "speech_segments": 0})
        plan = face_plan(ctx)
        if not plan.has_face:
            return StageOutput(detections=not_applicable(MODULES, "no visible face", params, version=VERSION),
                               summary={"audio": True, "faces": 0})
        # Phones first: they need only the audio, so they overlap the dense pass the temporal stage may hold.
        ctx.report(0.05, "phones")
        phones = [Phone(p.label, p.start_s + audio.start_s, p.end_s + audio.start_s)
                  for p in recognise_phones(audio.samples)]
        ctx.report(0.3, "dense landmarks")
        track, dense_uri = dense_for(ctx, plan)
        t, lm = with_gaps(track, plan.ranges_ms)
        mouth_t = t / 1000.0
        mouth = mouth_opening(lm)
        lips = mouth_opening(lm, OUTER_LIP_PAIRS)
        ctx.report(0.9, "offset")
        threshold = closed_threshold(mouth)
        env_t, env = features.t_s, features.sync_envelope
        margin = cfg.sync_chance_margin
        overall = estimate_offset(mouth_t, lips, env_t, env, max_lag_s=cfg.max_offset_s, min_overlap_s=2.0,
                                  chance_margin=margin)
        offset_s = overall.offset_ms / 1000.0 if overall is not None else 0.0
        per_segment = [self._segment(seg, mouth_t, mouth, lips, env_t, env, phones, threshold, cfg.max_offset_s,
                                     margin, offset_s) for seg in segments]
        store = ctx.ws.store
        series_uri = store.put_bytes(ctx.derived_key("series.npz"), npz_bytes(
            mouth_t_s=mouth_t, mouth=mouth, lips=lips, env_t_s=env_t, env=features.envelope, sync_env=env,
            lags_ms=overall.lags_ms if overall else np.zeros(0), corr=overall.corr if overall else np.zeros(0),
            speech=np.array(segments).reshape(-1, 2)))
        phones_uri = store.put_bytes(ctx.derived_key("phones.json"), json.dumps(
            [[p.label, round(p.start_s, 3), round(p.end_s, 3)] for p in phones]).encode())
        extra = {"series_uri": series_uri, "phones_uri": phones_uri, "dense_uri": dense_uri}
        span = (round(segments[0][0] * 1000), round(segments[-1][1] * 1000))
        rows = [self._offset_row("asset", span, overall, params, {"segments": per_segment, **extra})]
        bilabial = bilabial_check(phones, mouth_t, mouth, offset_s=offset_s, threshold=threshold)
        rows.append(self._bilabial_row("asset", span, bilabial.n_bilabials, bilabial.n_mismatch, threshold,
                                       cfg.min_bilabials, params, extra))
        for window in plan.windows:
            if window.track_id not in plan.main_tracks:
                continue
            lo, hi = window.t_start_ms / 1000.0, window.t_end_ms / 1000.0
            if not any(s < hi and e > lo for s, e in segments):
                continue
            centre, half = (lo + hi) / 2, max(hi - lo, WINDOW_CONTEXT_S) / 2
            local = estimate_offset(mouth_t, lips, env_t, env, max_lag_s=cfg.max_offset_s,
                                    span=(centre - half, centre + half), chance_margin=margin)
            wspan = (window.t_start_ms, window.t_end_ms)
            rows.append(self._offset_row(window.window_id, wspan, local, params, extra))
            check = bilabial_check(phones, mouth_t, mouth, offset_s=offset_s, threshold=threshold,
                                   span=(lo + offset_s, hi + offset_s))
            rows.append(self._bilabial_row(window.window_id, wspan, check.n_bilabials, check.n_mismatch,
                                           threshold, cfg.min_bilabials, params, extra))
        summary = {"audio": True, "speech_segments": len(segments), "phones": len(phones),
                   "offset_ms": round(overall.offset_ms, 1) if overall else None,
                   "confidence": round(overall.confidence, 3) if overall else None,
                   "chance_confidence": round(overall.chance, 3) if overall else None,
                   "bilabials": bilabial.n_bilabials, "bilabial_mismatch": bilabial.n_mismatch}
        return StageOutput(detections=rows, summary=summary)

    @staticmethod
    def _segment(segment: tuple[float, float], mouth_t: np.ndarray, mouth: np.ndarray, lips: np.ndarray,
                 env_t: np.ndarray, env: np.ndarray, phones: list[Phone], threshold: float, max_lag_s: float,
                 chance_margin: float, offset_s: float) -> dict[str, Any]:
        start, end = segment
        centre, half = (start + end) / 2, max(end - start + 0.5, WINDOW_CONTEXT_S) / 2
        local = estimate_offset(mouth_t, lips, env_t, env, max_lag_s=max_lag_s, span=(centre - half, centre + half),
                                chance_margin=chance_margin) if end - start >= 1.5 else None
        check = bilabial_check(phones, mouth_t, mouth, offset_s=offset_s, threshold=threshold, span=segment)
        return {"start_ms": round(start * 1000), "end_ms": round(end * 1000),
                "offset_ms": round(local.offset_ms, 1) if local else None,
                "confidence": round(local.confidence, 3) if local else None,
                "bilabials": check.n_bilabials, "mismatch_rate": check.mismatch_rate}

    @staticmethod
    def _offset_row(window_id: str, span: tuple[int, int], result: OffsetResult | None,
                    params: dict[str, Any], extra: dict[str, Any]) -> DetectionRecord:
        score = sync_score(result)
        if result is None or score is None:
            evidence = result.evidence() if result else {"reason": "too little overlap of face and speech"}
            return DetectionRecord("avsync.offset", VERSION, window_id=window_id, status="insufficient_data",
                                   t_start_ms=span[0], t_end_ms=span[1], params=params,
                                   evidence={**evidence, **extra})
        return DetectionRecord("avsync.offset", VERSION, window_id=window_id, score=score,
                               t_start_ms=span[0], t_end_ms=span[1], params=params,
                               logits={"offset_ms": result.offset_ms, "confidence": result.confidence},
                               evidence={**result.evidence(), **extra})

    @staticmethod
    def _bilabial_row(window_id: str, span: tuple[int, int], n: int, mismatched: int, threshold: float,
                      min_n: int, params: dict[str, Any], extra: dict[str, Any]) -> DetectionRecord:
        evidence = {"bilabials": n, "mismatched": mismatched, "closed_threshold": round(threshold, 4), **extra}
        if n < min_n:
            return DetectionRecord("avsync.bilabial", VERSION, window_id=window_id, status="insufficient_data",
                                   t_start_ms=span[0], t_end_ms=span[1], params=params, evidence=evidence)
        rate = mismatched / n
        return DetectionRecord("avsync.bilabial", VERSION, window_id=window_id, score=ramp(rate, *BILABIAL_RANGE),
                               t_start_ms=span[0], t_end_ms=span[1], params=params,
                               evidence={**evidence, "mismatch_rate": round(rate, 3)})
