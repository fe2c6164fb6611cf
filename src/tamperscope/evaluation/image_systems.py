"""The evaluated image systems: each one's leave-one-fold-out cross-validation on the fitted real images (the
synthetic ones as extra training samples where the system takes them) and its metrics."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tamperscope.evaluation.image_pipeline import ImageRecord
from tamperscope.fusion.branches import BRANCHES
from tamperscope.fusion.cv import Augment, CrossValidation, cross_validate
from tamperscope.fusion.model import Sample, auc_or_none, reliability, stratified_auc
from tamperscope.fusion.policy import LIKELY_MANIPULATED, LIKELY_REAL, UNSURE, band_metrics
from tamperscope.fusion.timeline import branch_values

MODEL_ID = "image-v2"
#: candidate branches of the shipped image model; each fit keeps those that raise the held-out AUC.
IMAGE_BRANCHES = ("forensics_synth", "meta_flags")
SELECT_GAIN = 0.01
#: each evaluated system: (branches, whether synthetic images are added to its training folds). ``forensics``
#: refits the nine forensic weights per fold on the real and synthetic training images; ``forensics_synth`` keeps
#: ``image-v1``'s synthetic-benchmark direction and only recalibrates it; ``fused`` (shipped) may add the metadata
#: flags to it. The synthetic images enter ``forensics_synth`` through ``image-v1`` (fitted on them), so they are
#: not added again there.
SYSTEMS: dict[str, tuple[tuple[str, ...], bool]] = {
    "forensics": (("forensics",), True), "forensics_synth": (("forensics_synth",), False),
    "metadata": (("meta_flags",), False), "fused": (IMAGE_BRANCHES, False),
}
#: kinds that count as pristine camera output for the "never Likely Manipulated" goal.
CAMERA_KINDS = ("camera",)



def image_samples(records: Sequence[ImageRecord], branches: Sequence[str]) -> list[Sample]:
    """``({branch: features or None}, label)`` per image."""
    return [(branch_values(r.rows, branches), r.item.label) for r in records]


def synthetic_augment(fitted: Sequence[ImageRecord], synthetic: Sequence[ImageRecord],
                      branches: Sequence[str]) -> Augment:
    """Training-only extra samples: the synthetic images of the folds the given real positions come from."""
    extra = image_samples(synthetic, branches)

    def augment(positions: Sequence[int]) -> list[Sample]:
        folds = {fitted[p].item.fold for p in positions}
        return [s for s, r in zip(extra, synthetic, strict=True) if r.item.fold in folds]

    return augment


@dataclass
class SystemResult:
    """One system's out-of-fold results on the fitted real images, and its fold models."""

    name: str
    branches: tuple[str, ...]
    cv: CrossValidation
    metrics: dict[str, Any]


def evaluate_system(name: str, branches: Sequence[str], use_synthetic: bool, fitted: Sequence[ImageRecord],
                    synthetic: Sequence[ImageRecord], *, c: float, calibration: str,
                    target_precision: float) -> SystemResult:
    """Leave-one-fold-out CV of one system on the fitted real images."""
    samples = image_samples(fitted, branches)
    folds = [r.item.fold for r in fitted]
    augment = synthetic_augment(fitted, synthetic, branches) if use_synthetic and synthetic else None
    select = name == "fused"
    cv = cross_validate(MODEL_ID if name == "fused" else f"{MODEL_ID}-{name}",
                        {b: BRANCHES[b].features for b in branches}, samples, folds, c=c,
                        calibration=calibration, target_precision=target_precision, augment=augment,
                        select_gain=SELECT_GAIN if select else None)
    labels = np.array([y for _, y in samples])
    curve, ece = reliability(cv.probabilities, labels)
    metrics: dict[str, Any] = {"n": len(labels), "positives": int(labels.sum()),
                               "auc": auc_or_none(labels, cv.probabilities), "ece": ece, "reliability": curve,
                               "synthetic_training": bool(augment), **band_metrics(cv.bands, labels)}
    metrics["within_source"] = stratified_auc(cv.probabilities, labels, [r.item.source for r in fitted])
    metrics["within_group"] = stratified_auc(cv.probabilities, labels, [r.item.group for r in fitted])
    if select:
        metrics["selected_branches"] = {str(k): list(m.branches) for k, m in cv.models.items()}
    camera = [i for i, r in enumerate(fitted) if r.item.kind in CAMERA_KINDS]
    metrics["camera_bands"] = {b: sum(cv.bands[i] == b for i in camera) for b in (LIKELY_REAL, UNSURE,
                                                                                  LIKELY_MANIPULATED)}
    if synthetic:
        # each synthetic image scored by the model of its own (held-out) fold
        probs = np.array([cv.models[r.item.fold].probability(v)[0]
                          for r, (v, _) in zip(synthetic, image_samples(synthetic, branches), strict=True)])
        metrics["synthetic_auc"] = auc_or_none(np.array([r.item.label for r in synthetic]), probs)
    return SystemResult(name, tuple(branches), cv, metrics)


def held_out_scores(result: SystemResult, records: Sequence[ImageRecord]) -> list[tuple[float, str]]:
    """``(probability, band)`` of images outside the fit (processed) by the model of their fold."""
    out = []
    for r, (v, _) in zip(records, image_samples(records, result.branches), strict=True):
        model = result.cv.models[r.item.fold]
        p = model.probability(v)[0]
        out.append((p, model.policy.band(p)))
    return out

