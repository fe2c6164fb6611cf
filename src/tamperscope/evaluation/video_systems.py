"""The evaluated video systems (one branch alone, or fused): each one's leave-one-fold-out cross-validation and
the metrics of its out-of-fold probabilities."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tamperscope.evaluation.video_pipeline import VideoRecord
from tamperscope.fusion.augment import splice_rows
from tamperscope.fusion.branches import BRANCHES
from tamperscope.fusion.cv import Augment, cross_validate
from tamperscope.fusion.model import FusionModel, Sample, auc_or_none, reliability, stratified_auc
from tamperscope.fusion.policy import band_metrics
from tamperscope.fusion.timeline import WINDOW_LOCAL_BRANCHES, WindowSpan, branch_values, timeline

MODEL_ID = "video-v3"
#: the candidate branches of the shipped video model (each fit keeps those that earn their place): the detectors
#: trained to detect manipulation. AV sync and the temporal cues are evidence in every report but not candidates:
#: the AV offset does not separate fakes from reals among videos with speech (docs/temporal.md, AUC 0.50 on the
#: training pool), and what either branch ranks on the pooled videos is the collection (whether a video has speech;
#: blink and head-pose scores that rank reals *above* fakes, which a fit would use inverted) rather than
#: manipulation. Both are reported as single-branch systems and in ``fused_all``.
VIDEO_BRANCHES = ("deep_frame", "deep_clip")
#: inner-AUC gain a branch must bring to join the fusion (:func:`tamperscope.fusion.cv.select_branches`).
SELECT_GAIN = 0.01
#: each evaluated system: its branches. The single-branch systems show what each detector does alone;
#: ``fused`` is the shipped ``video-v3``; ``fused_all`` adds the temporal, AV-sync, classical forensics and
#: metadata branches (reported only).
SYSTEMS: dict[str, tuple[str, ...]] = {
    "frame": ("deep_frame",), "clip": ("deep_clip",), "temporal": ("temporal",), "avsync": ("avsync",),
    "forensics": ("forensics",), "metadata": ("metadata",), "fused": VIDEO_BRANCHES,
    "fused_all": (*VIDEO_BRANCHES, "temporal", "avsync", "forensics", "metadata"),
}
#: the raw score of a deep model alone, before any fitting: (branch, feature).
RAW_SCORES = {"frame": ("deep_frame", "top10_mean"), "clip": ("deep_clip", "max")}
#: the detection rows each system's finer-grained AUC is computed on.
UNIT_ROWS = {"frame": "deep.frame", "clip": "deep.clip"}
SPLICE_FRACTION = 0.1


def video_samples(records: Sequence[VideoRecord], branches: Sequence[str]) -> list[Sample]:
    """``({branch: features or None}, label)`` per video."""
    return [(branch_values(r.rows, branches), r.item.label) for r in records]


def splicer(records: Sequence[VideoRecord], branches: Sequence[str], *,
            fraction: float = SPLICE_FRACTION) -> Augment:
    """Spliced samples from training videos: each real one with a run of windows from a fake one (label 1).

    Real video ``i`` (in position order) takes its windows from the ``i``-th fake video (cycling), placed at an
    offset cycling through the start, middle and end. Only videos among the given positions are used.
    """

    def augment(positions: Sequence[int]) -> list[Sample]:
        reals = [p for p in positions if records[p].item.label == 0]
        fakes = [p for p in positions if records[p].item.label == 1]
        if not fakes:
            return []
        out: list[Sample] = []
        for n, p in enumerate(reals):
            spliced = splice_rows(records[p].rows, records[fakes[n % len(fakes)]].rows, fraction=fraction,
                                  offset=(n % 3) / 2)
            if spliced != records[p].rows:
                out.append((branch_values(spliced, branches), 1))
        return out

    return augment


def system_metrics(probs: np.ndarray, labels: np.ndarray, families: Sequence[str], bands: Sequence[str],
                   controls: Mapping[str, Sequence[str]] | None = None) -> dict[str, Any]:
    """Video-level AUC (overall, per family against all reals), ECE + reliability curve, band metrics.

    ``controls`` maps a key (``source``: the collection a file came from; ``group``: its identity group) to each
    video's value. Per key, the system and each family get ``within_<key>``: the AUC over only the (fake, real)
    pairs that share the value (:func:`~tamperscope.fusion.model.stratified_auc`), with the fakes and reals of the
    values that have both. A detector that scores one collection's material low overall then is not read as
    missing that family's manipulation.
    """
    fam = np.array(families)
    keyed = {key: np.array(values) for key, values in (controls or {}).items()}
    per_family: dict[str, dict[str, Any]] = {}
    for f in sorted({f for f, y in zip(families, labels, strict=True) if y == 1}):
        sel = (labels == 0) | (fam == f)
        per_family[f] = {"auc": auc_or_none(labels[sel], probs[sel]), "n": int(((fam == f) & (labels == 1)).sum())}
        for key, value in keyed.items():
            within_family = stratified_auc(probs[sel], labels[sel], value[sel])
            strata = within_family["by_stratum"].values()
            per_family[f][f"within_{key}"] = {"auc": within_family["auc"], "fakes": sum(s["fakes"] for s in strata),
                                              "reals": sum(s["reals"] for s in strata)}
    within = {f"within_{key}": stratified_auc(probs, labels, value) for key, value in keyed.items()}
    curve, ece = reliability(probs, labels)
    return {"n": len(labels), "positives": int(labels.sum()), "auc": auc_or_none(labels, probs), **within,
            "families": per_family, "ece": ece, "reliability": curve, **band_metrics(bands, labels)}


def controls_of(records: Sequence[VideoRecord]) -> dict[str, list[str]]:
    """The per-video keys :func:`system_metrics` compares a family within: source collection and identity group."""
    return {"source": [r.item.source for r in records], "group": [r.item.group for r in records]}


def fold_mean_auc(probs: np.ndarray, labels: np.ndarray, folds: Sequence[Any]) -> float | None:
    """Mean over folds of the AUC within each fold.

    The pooled out-of-fold AUC also ranks videos *across* folds, scored by different fold models whose
    calibration differs a little; on a few dozen videos with a weak signal that alone can cost 0.1 of AUC. The
    within-fold mean shows how much of a gap between the pooled AUC and a raw score's AUC is such a shift.
    """
    f = np.array(folds)
    values = [a for k in sorted(set(folds), key=str) if (a := auc_or_none(labels[f == k], probs[f == k])) is not None]
    return float(np.mean(values)) if values else None


def unit_auc(records: Sequence[VideoRecord], module: str) -> dict[str, Any]:
    """AUC of every scored row of ``module`` (frames or windows), labelled by its video's label."""
    scores, labels = [], []
    for r in records:
        for row in r.rows:
            if row.module_name == module and row.status == "scored" and row.score is not None:
                scores.append(row.score)
                labels.append(r.item.label)
    return {"auc": auc_or_none(np.array(labels), np.array(scores)), "n": len(scores), "module": module}


def raw_auc(records: Sequence[VideoRecord], branch: str, feature: str) -> dict[str, Any]:
    """AUC of one raw branch feature over the videos that have it (no fitting)."""
    values = [(BRANCHES[branch].extract(r.rows), r.item.label) for r in records]
    present = [(v[feature], y) for v, y in values if v is not None and feature in v]
    if not present:
        return {"auc": None, "n": 0, "feature": f"{branch}.{feature}"}
    scores, labels = zip(*present, strict=True)
    return {"auc": auc_or_none(np.array(labels), np.array(scores)), "n": len(present),
            "feature": f"{branch}.{feature}"}


@dataclass
class SystemResult:
    """One system's out-of-fold results and metrics."""

    name: str
    branches: tuple[str, ...]
    probabilities: np.ndarray
    bands: list[str]
    metrics: dict[str, Any]
    fold_models: dict[Any, FusionModel]
    windows: list[tuple[int, WindowSpan, float]] = field(default_factory=list)


def evaluate_system(name: str, branches: Sequence[str], records: Sequence[VideoRecord], *, c: float,
                    calibration: str, target_precision: float) -> SystemResult | None:
    """Leave-one-fold-out CV of one system; ``None`` when none of its branches has evidence on any video."""
    samples = video_samples(records, branches)
    if all(all(v[b] is None for b in branches) for v, _ in samples):
        return None
    features = {b: BRANCHES[b].features for b in branches}
    local = any(b in WINDOW_LOCAL_BRANCHES for b in branches)
    folds = [r.item.fold for r in records]
    select = name == "fused"
    cv = cross_validate(MODEL_ID if name == "fused" else f"{MODEL_ID}-{name}", features, samples, folds, c=c,
                        calibration=calibration, target_precision=target_precision,
                        augment=splicer(records, branches) if local else None,
                        select_gain=SELECT_GAIN if select else None,
                        augment_for=(lambda chosen: splicer(records, chosen)) if select else None)
    labels = np.array([y for _, y in samples])
    metrics = system_metrics(cv.probabilities, labels, [r.item.family for r in records], cv.bands,
                             controls_of(records))
    metrics["auc_fold_mean"] = fold_mean_auc(cv.probabilities, labels, folds)
    if select:
        metrics["selected_branches"] = {str(k): list(m.branches) for k, m in cv.models.items()}
    dev = np.array([r.item.split == "dev" for r in records])
    if dev.any() and not dev.all():
        metrics["dev"] = system_metrics(cv.probabilities[dev], labels[dev],
                                        [r.item.family for r, d in zip(records, dev, strict=True) if d],
                                        [b for b, d in zip(cv.bands, dev, strict=True) if d],
                                        controls_of([r for r, d in zip(records, dev, strict=True) if d]))
    metrics["branch_present"] = {b: sum(v[b] is not None for v, _ in samples) for b in branches}
    if name in RAW_SCORES:
        metrics["raw"] = raw_auc(records, *RAW_SCORES[name])
    if name in UNIT_ROWS:
        metrics["unit"] = unit_auc(records, UNIT_ROWS[name])
    points: list[tuple[int, WindowSpan, float]] = []
    if local:
        for i, r in enumerate(records):
            for point in timeline(cv.models[r.item.fold], r.rows, r.windows):
                if point.probability is not None:
                    points.append((i, point.window, point.probability))
        if name not in UNIT_ROWS and points:
            metrics["unit"] = {"module": "fusion.window", "n": len(points), "auc": auc_or_none(
                np.array([records[i].item.label for i, _, _ in points]), np.array([p for _, _, p in points]))}
    return SystemResult(name, tuple(branches), cv.probabilities, cv.bands, metrics, cv.models, points)
