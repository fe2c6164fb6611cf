"""The image evaluation harness: the image fusion (``image-v2``) cross-validated on real images, then shipped.

Manifest (``evaluation/manifests/shared_image.csv``): ``path`` (relative to the data directory), ``label``
(1 = manipulated), ``kind``, ``source``, ``group`` and ``fold``. A forgery and its original share a group, every
group lies in one fold. Kind ``processed`` marks authentic photos re-saved by an editor (the GIMP-rescaled
``ianare`` samples, a Lightroom export, files resized by a transfer tool): neither pristine nor manipulated, they
are scored and reported but never fitted. The seeded synthetic benchmark (``tamperscope synth-bench``) can be
added: its images are grouped by source photograph and spread over the same folds by source.

Steps (:func:`evaluate_images`), mirroring :mod:`tamperscope.evaluation.video`:

1. **Pipeline, once, cached** (:mod:`tamperscope.evaluation.image_pipeline`). Every image is ingested into one
   evaluation workspace and the ``metadata``, ``video`` and ``forensics`` stages run on it; a re-run only hashes
   the files and skips every current stage.
2. **Features.** The ``forensics``, ``forensics_synth`` and ``meta_flags`` branches
   (:mod:`tamperscope.fusion.branches`) of each image's detection rows, plus the ``meta.checked`` row the
   fusion stage adds.
3. **Cross-validation** (:mod:`tamperscope.evaluation.image_systems`). Leave one fold out
   (:func:`tamperscope.fusion.cv.cross_validate`). The real images are the samples: calibration and thresholds see
   only real images. For the ``forensics`` system the synthetic images of the training folds are extra training
   samples (the ``augment`` hook, prior-preserving weights), never calibration data; the shipped ``fused`` system
   reads them through ``image-v1``'s direction instead.
4. **Tables** (:mod:`tamperscope.evaluation.image_tables`). AUC of each system on the real fitted images, band
   counts, precision and *Unsure* share, per-image ``images.csv`` (with the processed images scored by their fold's
   model).
5. **Shipped model.** ``image-v2`` is fitted on every real image (plus all synthetic ones) and its policy
   thresholds are chosen on the out-of-fold fused probabilities for the target precision.
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
from tamperscope.evaluation.image_pipeline import ImageRecord, read_image_manifest, run_pipeline, synthetic_items
from tamperscope.evaluation.image_systems import (
    IMAGE_BRANCHES,
    MODEL_ID,
    SELECT_GAIN,
    SYSTEMS,
    SystemResult,
    evaluate_system,
    held_out_scores,
    image_samples,
    synthetic_augment,
)
from tamperscope.evaluation.image_tables import metrics_markdown, write_images_csv
from tamperscope.fusion.branches import BRANCHES
from tamperscope.fusion.cv import Augment, fit_selected
from tamperscope.fusion.model import ARTIFACTS, FusionModel
from tamperscope.fusion.policy import LIKELY_MANIPULATED, LIKELY_REAL, UNSURE, ThresholdPolicy, band_metrics
from tamperscope.settings import Settings


def ship_model(fitted: Sequence[ImageRecord], synthetic: Sequence[ImageRecord], fused: SystemResult,
               summary: dict[str, Any], *, c: float, calibration: str, target_precision: float,
               training: dict[str, Any]) -> FusionModel:
    """``image-v2`` fitted on every real image (plus the synthetic ones); thresholds on the out-of-fold fused
    probabilities."""
    samples = image_samples(fitted, IMAGE_BRANCHES)
    labels = np.array([y for _, y in samples])
    def augment_for(chosen: tuple[str, ...]) -> Augment:
        return synthetic_augment(fitted, synthetic, chosen)

    model = fit_selected(MODEL_ID, {b: BRANCHES[b].features for b in IMAGE_BRANCHES}, samples,
                         [r.item.fold for r in fitted], min_gain=SELECT_GAIN, c=c, calibration=calibration,
                         target_precision=target_precision, training=training,
                         augment_for=augment_for if fused.metrics["synthetic_training"] else None)
    policy = ThresholdPolicy.choose(fused.cv.probabilities, labels, target_precision=target_precision,
                                    version=f"{MODEL_ID}/p{int(target_precision * 100)}")
    oof_bands = [policy.band(float(p)) for p in fused.cv.probabilities]
    metrics = {**model.metrics, "cv": {k: v for k, v in summary["systems"]["fused"].items()},
               "cv_shipped_policy": {**band_metrics(oof_bands, labels), "note": (
                   "shipped thresholds applied to the out-of-fold probabilities they were chosen on (optimistic); "
                   "'cv' uses each fold model's own thresholds")},
               "cv_systems": {n: {"auc": m["auc"], "ece": m["ece"], "synthetic_auc": m.get("synthetic_auc")}
                              for n, m in summary["systems"].items()}}
    return replace(model, policy=policy, metrics=metrics)


def write_shipped_model(fitted: Sequence[ImageRecord], synthetic: Sequence[ImageRecord], fused: SystemResult,
                        summary: dict[str, Any], fused_scores: Sequence[tuple[float, str]], artifact_dir: Path, *,
                        c: float, calibration: str, target_precision: float) -> None:
    """Fit ``image-v2`` (:func:`ship_model`), write it to ``artifact_dir`` and note in ``summary`` its policy and the
    band that policy gives each real image (``fused_scores``: the out-of-fold fused probabilities, in the order of
    ``summary["images"]``)."""
    training = {"manifest": summary["manifest"], "manifest_sha256": summary["manifest_sha256"],
                "real_images": len(fitted), "synthetic_images": len(synthetic) if
                fused.metrics["synthetic_training"] else 0,
                "synth_manifest_sha256": summary["synth_manifest_sha256"], "folds": summary["folds"],
                "forensics_direction": "image-v1 logit (fitted on tamperscope synth-bench --seed 0 --size 384 "
                                       "--crops 3 by fusion-train)",
                "command": "tamperscope eval-image --data ../shared/testdata --manifest "
                           "src/tamperscope/evaluation/manifests/shared_image.csv --synth <synth-bench dir> "
                           "--out <dir> (synth-bench --seed 0 --size 384 --crops 1)"}
    model = ship_model(fitted, synthetic, fused, summary, c=c, calibration=calibration,
                       target_precision=target_precision, training=training)
    artifact_dir.mkdir(parents=True, exist_ok=True)
    (artifact_dir / f"{MODEL_ID}.json").write_text(json.dumps(model.to_json(), indent=1, sort_keys=True) + "\n")
    summary["artifact"] = {"path": str(artifact_dir / f"{MODEL_ID}.json"), "policy": model.policy.to_json(),
                           "oof_bands": model.metrics["cv_shipped_policy"]}
    shipped = [model.policy.band(p) for p, _ in fused_scores]
    for row, band in zip(summary["images"], shipped, strict=True):
        row["band_shipped_policy"] = band


def evaluate_images(data_dir: Path, manifest: Path, out_dir: Path, *, settings: Settings,
                    synth_dir: Path | None = None, artifact_dir: Path | None = ARTIFACTS,
                    target_precision: float = 0.9, c: float = 1.0, calibration: str = "temperature",
                    progress: Callable[[ImageRecord, int, int], None] | None = None) -> dict[str, Any]:
    """Run the whole evaluation (see the module docstring); returns the summary written to ``metrics.json``.

    Parameters
    ----------
    data_dir
        Directory the manifest paths are relative to.
    manifest
        The real-image manifest CSV.
    out_dir
        Directory for ``metrics.md``, ``metrics.json`` and ``images.csv``.
    settings
        Settings of the evaluation workspace.
    synth_dir
        A ``synth-bench`` output directory whose images join the training folds; ``None``: real images only.
    artifact_dir
        Where ``image-v2.json`` is written; ``None``: not written.
    target_precision
        Precision each confident band must reach.
    c
        Inverse L2 regularisation strength of the fusion regressions.
    calibration
        ``temperature`` or ``platt``.
    progress
        Called after each image's pipeline run.
    """
    t0 = time.perf_counter()
    items = read_image_manifest(manifest, data_dir)
    folds = sorted({it.fold for it in items})
    if len(folds) < 2:
        raise UsageError("the manifest needs at least two folds")
    synth = synthetic_items(synth_dir, folds) if synth_dir is not None else []
    records = run_pipeline([*items, *synth], settings, progress)
    t_pipeline = time.perf_counter() - t0
    fitted = [r for r in records if r.item.fitted]
    processed = [r for r in records if not r.item.fitted and not r.item.synthetic]
    synthetic = [r for r in records if r.item.synthetic]
    results = {name: evaluate_system(name, branches, use_synth, fitted, synthetic, c=c, calibration=calibration,
                                     target_precision=target_precision)
               for name, (branches, use_synth) in SYSTEMS.items()}
    t_fit = time.perf_counter() - t0 - t_pipeline
    real = fitted + processed
    scores = {name: [(float(p), b) for p, b in zip(res.cv.probabilities, res.cv.bands, strict=True)]
              + held_out_scores(res, processed) for name, res in results.items()}
    labels = np.array([r.item.label for r in fitted])
    summary: dict[str, Any] = {
        "manifest": manifest.name, "manifest_sha256": sha256_file(manifest)[0], "fitted": len(fitted),
        "positives": int(labels.sum()), "processed": len(processed), "synthetic": len(synthetic),
        "synth_manifest_sha256": sha256_file(synth_dir / "manifest.csv")[0] if synth_dir is not None else None,
        "folds": len(folds), "target_precision": target_precision, "calibration": calibration, "c": c,
        "failed": {r.item.rel: r.failed for r in records if r.failed},
        "systems": {name: res.metrics for name, res in results.items()},
        "processed_bands": {name: {b: sum(s[len(fitted) + i][1] == b for i in range(len(processed)))
                                   for b in (LIKELY_REAL, UNSURE, LIKELY_MANIPULATED)} for name, s in scores.items()},
        "images": [{"path": r.item.rel, "label": r.item.label, "kind": r.item.kind, "group": r.item.group,
                    "fold": r.item.fold, "p_fused": scores["fused"][i][0], "band_fused": scores["fused"][i][1]}
                   for i, r in enumerate(real)],
        "timing": {"pipeline_s": t_pipeline, "fit_s": t_fit, "ran_now": sum(bool(r.ran) for r in records)},
    }
    if artifact_dir is not None:
        write_shipped_model(fitted, synthetic, results["fused"], summary, scores["fused"], artifact_dir, c=c,
                            calibration=calibration, target_precision=target_precision)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    (out_dir / "metrics.md").write_text(metrics_markdown(summary))
    write_images_csv(out_dir / "images.csv", real, scores)
    return summary
