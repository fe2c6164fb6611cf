"""The video evaluation harness: every branch alone and fused, with leave-one-fold-out cross-validation.

Manifest: a CSV with ``path`` (relative to the data directory), ``label`` (1 = manipulated), ``family``,
``identity``, ``group`` and ``fold`` (identity-disjoint CV folds; ``evaluation/manifests/shared_video.csv``).

Steps (:func:`evaluate_videos`):

1. **Pipeline, once, cached** (:mod:`tamperscope.evaluation.video_pipeline`). Every video is ingested into one
   evaluation workspace and every stage but ``fusion`` runs on it. The ``deep`` stage of a video in fold ``k``
   uses fold ``k``'s models (``<models_dir>/fold<k>/frame.onnx`` and ``clip.onnx``, trained without fold ``k``'s
   identity groups), so every video is scored by models that never saw its identities. Stage results are stored
   in the workspace; a re-run only hashes the files and skips every current stage.
2. **Features.** Each video's detection rows give the branch features (:mod:`tamperscope.fusion.branches`).
3. **Cross-validation** (:mod:`tamperscope.evaluation.video_systems`). For each system (one branch alone, or the
   fused ``video-v3`` branches) the fusion model for fold ``k`` is fitted on the other folds' videos (calibrated
   on inner held-out logits, :mod:`tamperscope.fusion.cv`), giving an out-of-fold probability and band for every
   video. Systems with window-local branches are trained with spliced samples (:mod:`tamperscope.fusion.augment`).
4. **Tables** (:mod:`tamperscope.evaluation.video_tables`). Per system: video-level ROC AUC overall and per family
   (that family's fakes against all real videos), the AUC of the raw model score without any fitting (frame /
   clip models), frame- or window-level AUC, ECE (10 bins) with the reliability curve, the share of *Unsure* and
   the precision of the *Likely Manipulated* and *Likely Real* bands (each fold's own thresholds). Written as
   ``metrics.md``, ``metrics.json``, ``metrics.csv``, with per-video ``videos.csv`` and per-window ``windows.csv``.
5. **Shipped model.** ``video-v3`` keeps the branches that raise the inner leave-one-fold-out AUC (greedy forward
   selection; in cross-validation each fold model selects on its own training folds) and is fitted on all videos;
   its policy thresholds are chosen on the out-of-fold probabilities for the target precision; the artifact
   carries the CV metrics, the selection trials and the training manifest. With a ``split`` column (the pooled
   manifest), the ``dev`` rows get their own tables as well.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from tamperscope.custody.hashing import sha256_file
from tamperscope.errors import UsageError
from tamperscope.evaluation.video_pipeline import VideoRecord, fold_model_paths, read_video_manifest, run_pipeline
from tamperscope.evaluation.video_systems import (
    MODEL_ID,
    SELECT_GAIN,
    SPLICE_FRACTION,
    SYSTEMS,
    VIDEO_BRANCHES,
    SystemResult,
    evaluate_system,
    splicer,
    video_samples,
)
from tamperscope.evaluation.video_tables import write_outputs
from tamperscope.fusion.branches import BRANCHES
from tamperscope.fusion.cv import fit_selected
from tamperscope.fusion.model import ARTIFACTS, FusionModel
from tamperscope.fusion.policy import ThresholdPolicy, band_metrics
from tamperscope.settings import Settings


def ship_model(records: Sequence[VideoRecord], fused: SystemResult, summary: dict[str, Any], *, c: float,
               calibration: str, target_precision: float, training: dict[str, Any]) -> FusionModel:
    """The video model fitted on every video with the branches that earn their place on all folds; policy
    thresholds chosen on the out-of-fold fused probabilities."""
    samples = video_samples(records, VIDEO_BRANCHES)
    labels = np.array([y for _, y in samples])
    model = fit_selected(MODEL_ID, {b: BRANCHES[b].features for b in VIDEO_BRANCHES}, samples,
                         [r.item.fold for r in records], min_gain=SELECT_GAIN, c=c, calibration=calibration,
                         target_precision=target_precision, training=training,
                         augment_for=lambda chosen: splicer(records, chosen))
    policy = ThresholdPolicy.choose(fused.probabilities, labels, target_precision=target_precision,
                                    version=f"{MODEL_ID}/p{int(target_precision * 100)}")
    oof_bands = [policy.band(float(p)) for p in fused.probabilities]
    metrics = {**model.metrics, "cv": {k: v for k, v in summary["systems"]["fused"].items()},
               "cv_shipped_policy": {**band_metrics(oof_bands, labels), "note": (
                   "shipped thresholds applied to the out-of-fold probabilities they were chosen on (optimistic); "
                   "'cv' uses each fold model's own thresholds")},
               "cv_systems": {name: {"auc": m["auc"], "auc_fold_mean": m.get("auc_fold_mean"), "ece": m["ece"],
                                     "raw_auc": m.get("raw", {}).get("auc"), "unit_auc": m.get("unit", {}).get("auc")}
                              for name, m in summary["systems"].items()}}
    return replace(model, policy=policy, metrics=metrics)


def evaluate_videos(data_dir: Path, manifest: Path, out_dir: Path, *, settings: Settings,
                    models_dir: Path | None = None, artifact_dir: Path | None = ARTIFACTS,
                    target_precision: float = 0.9, c: float = 1.0, calibration: str = "temperature",
                    progress: Callable[[VideoRecord, int, int], None] | None = None,
                    stages: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the whole evaluation (see the module docstring); returns the summary written to ``metrics.json``.

    Parameters
    ----------
    data_dir
        Directory the manifest paths are relative to.
    manifest
        The video manifest CSV.
    out_dir
        Directory for the tables.
    settings
        Settings of the evaluation workspace (home, sampling, forensics frames).
    models_dir
        Per-fold deep models (``fold<k>/frame.onnx``, ``fold<k>/clip.onnx``); ``None``: no deep branches.
    artifact_dir
        Where ``video-v3.json`` is written; ``None``: not written.
    target_precision
        Precision each confident band must reach.
    c
        Inverse L2 regularisation strength of the fusion regressions.
    calibration
        ``temperature`` or ``platt``.
    progress
        Called after each video's pipeline run.
    stages
        Run only these stages, reading the others' stored rows as they are (``run_pipeline``); recorded in the
        summary and the artifact.
    """
    t0 = time.perf_counter()
    items = read_video_manifest(manifest, data_dir)
    if len({it.fold for it in items}) < 2:
        raise UsageError("the manifest needs at least two folds")
    records, rejected = run_pipeline(items, settings, models_dir, progress, stages)
    t_pipeline = time.perf_counter() - t0
    results = []
    skipped = []
    for name, branches in SYSTEMS.items():
        result = evaluate_system(name, branches, records, c=c, calibration=calibration,
                                 target_precision=target_precision)
        if result is None:
            skipped.append(name)
        else:
            results.append(result)
    t_fit = time.perf_counter() - t0 - t_pipeline
    labels = np.array([r.item.label for r in records])
    video_seconds = sum(r.duration_s for r in records)
    summary: dict[str, Any] = {
        "manifest": manifest.name, "manifest_sha256": sha256_file(manifest)[0], "videos": len(records),
        "positives": int(labels.sum()), "folds": len({r.item.fold for r in records}),
        "target_precision": target_precision, "calibration": calibration, "c": c,
        "splice_fraction": SPLICE_FRACTION, "stages_run": list(stages) if stages else "all",
        "models": {str(k): {n: (str(p), sha256_file(p)[0]) if p else None
                            for n, p in zip(("frame", "clip"), fold_model_paths(models_dir, k), strict=True)}
                   for k in sorted({r.item.fold for r in records})},
        "settings": {"video_sample_fps": settings.video.sample_fps,
                     "forensics_max_frames_per_video": settings.forensics.max_frames_per_video,
                     "models_max_frames": settings.models.max_frames, "temporal_max_fps": settings.temporal.max_fps},
        "failed": {r.item.rel: r.failed for r in records if r.failed}, "rejected_at_intake": rejected,
        "systems": {r.name: r.metrics for r in results}, "skipped_systems": skipped,
        "timing": {"pipeline_s": t_pipeline, "fit_s": t_fit, "video_seconds": video_seconds,
                   "ran_now": sum(bool(r.ran) for r in records),
                   "per_video_s": {r.item.rel: round(r.seconds, 2) for r in records}},
    }
    fused = next((r for r in results if r.name == "fused"), None)
    if artifact_dir is not None and fused is not None:
        training = {"manifest": manifest.name, "manifest_sha256": summary["manifest_sha256"],
                    "videos": len(records), "folds": summary["folds"], "models": summary["models"],
                    "settings": summary["settings"], "splice_fraction": SPLICE_FRACTION,
                    "stages_run": summary["stages_run"],
                    "features": "deep scores of the fold models that never saw each video's identity group"}
        model = ship_model(records, fused, summary, c=c, calibration=calibration,
                           target_precision=target_precision, training=training)
        artifact_dir.mkdir(parents=True, exist_ok=True)
        (artifact_dir / f"{MODEL_ID}.json").write_text(json.dumps(model.to_json(), indent=1, sort_keys=True) + "\n")
        summary["artifact"] = {"path": str(artifact_dir / f"{MODEL_ID}.json"), "policy": model.policy.to_json()}
    summary["timing"]["total_s"] = time.perf_counter() - t0
    write_outputs(summary, results, records, out_dir)
    return summary
