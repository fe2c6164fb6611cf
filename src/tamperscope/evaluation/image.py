"""The image evaluation harness: the image fusion (``image-v2``) cross-validated on real images, then shipped.

Manifest (``evaluation/manifests/shared_image.csv``): ``path`` (relative to the data directory), ``label``
(1 = manipulated), ``kind``, ``source``, ``group`` and ``fold``. A forgery and its original share a group, every
group lies in one fold. Kind ``processed`` marks authentic photos re-saved by an editor (the GIMP-rescaled
``ianare`` samples, a Lightroom export, files resized by a transfer tool): neither pristine nor manipulated, they
are scored and reported but never fitted. The seeded synthetic benchmark (``tamperscope synth-bench``) can be
added: its images are grouped by source photograph and spread over the same folds by source.

Steps (:func:`evaluate_images`), mirroring :mod:`tamperscope.evaluation.video`:

1. **Pipeline, once, cached.** Every image is ingested into one evaluation workspace and the ``metadata``,
   ``video`` and ``forensics`` stages run on it; a re-run only hashes the files and skips every current stage.
2. **Features.** The ``forensics``, ``forensics_synth`` and ``meta_flags`` branches
   (:mod:`tamperscope.fusion.branches`) of each image's detection rows, plus the ``meta.checked`` row the
   fusion stage adds.
3. **Cross-validation.** Leave one fold out (:func:`tamperscope.fusion.cv.cross_validate`). The real images are
   the samples: calibration and thresholds see only real images. For the ``forensics`` system the synthetic
   images of the training folds are extra training samples (the ``augment`` hook, prior-preserving weights),
   never calibration data; the shipped ``fused`` system reads them through ``image-v1``'s direction instead.
4. **Tables.** AUC of each system on the real fitted images, band counts, precision and *Unsure* share,
   per-image ``images.csv`` (with the processed images scored by their fold's model).
5. **Shipped model.** ``image-v2`` is fitted on every real image (plus all synthetic ones) and its policy
   thresholds are chosen on the out-of-fold fused probabilities for the target precision.
"""

from __future__ import annotations

import csv
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from tamperscope.errors import UsageError
from tamperscope.fusion.branches import BRANCHES, Row
from tamperscope.fusion.cv import Augment, CrossValidation, cross_validate, fit_selected
from tamperscope.fusion.model import ARTIFACTS, FusionModel, Sample, auc_or_none, reliability
from tamperscope.fusion.policy import LIKELY_MANIPULATED, LIKELY_REAL, UNSURE, ThresholdPolicy, band_metrics
from tamperscope.settings import Settings

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
STAGES = ["metadata", "video", "forensics"]
PROCESSED = "processed"
#: kinds that count as pristine camera output for the "never Likely Manipulated" goal.
CAMERA_KINDS = ("camera",)


@dataclass(frozen=True)
class ImageItem:
    """One image: real (from the manifest) or synthetic (from a ``synth-bench`` manifest)."""

    path: Path
    rel: str
    label: int
    kind: str
    group: str
    fold: int
    synthetic: bool = False

    @property
    def fitted(self) -> bool:
        """Real, not processed: a sample of the cross-validation."""
        return not self.synthetic and self.kind != PROCESSED


@dataclass
class ImageRecord:
    """An image after the pipeline: its detection rows and what the run cost."""

    item: ImageItem
    asset_id: str
    rows: list[Row]
    seconds: float
    ran: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def read_image_manifest(manifest: Path, root: Path) -> list[ImageItem]:
    """Parse the real-image manifest; paths are resolved against ``root``.

    Raises
    ------
    UsageError
        If the file or a column is missing, a listed image does not exist, or a group spans two folds.
    """
    if not manifest.is_file():
        raise UsageError(f"manifest {manifest} does not exist")
    items = []
    with manifest.open(newline="") as fh:
        for rec in csv.DictReader(fh):
            missing = {"path", "label", "kind", "group", "fold"} - {k for k, v in rec.items() if v not in (None, "")}
            if missing:
                raise UsageError(f"{manifest}: row {rec} lacks {', '.join(sorted(missing))}")
            path = root / rec["path"]
            if not path.is_file():
                raise UsageError(f"{manifest}: {path} does not exist")
            items.append(ImageItem(path, rec["path"], int(rec["label"]), rec["kind"], rec["group"], int(rec["fold"])))
    if not items:
        raise UsageError(f"{manifest} lists no images")
    folds_of: dict[str, set[int]] = {}
    for it in items:
        folds_of.setdefault(it.group, set()).add(it.fold)
    split = sorted(g for g, f in folds_of.items() if len(f) > 1)
    if split:
        raise UsageError(f"{manifest}: groups in several folds: {', '.join(split)}")
    return items


def synthetic_items(synth_dir: Path, folds: Sequence[int]) -> list[ImageItem]:
    """The images of a ``synth-bench`` directory, grouped by source photograph; source ``i`` (sorted) in fold
    ``folds[i % len(folds)]``, so every crop and forgery of one photograph lies in one fold."""
    manifest = synth_dir / "manifest.csv"
    if not manifest.is_file():
        raise UsageError(f"{manifest} does not exist (run `tamperscope synth-bench {synth_dir}`)")
    with manifest.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    sources = sorted({r["source"] for r in rows})
    fold_of = {s: folds[i % len(folds)] for i, s in enumerate(sources)}
    return [ImageItem(synth_dir / r["path"], f"synthetic/{r['path']}", int(r["label"]), r["kind"],
                      f"synthetic-{r['source']}", fold_of[r["source"]], synthetic=True) for r in rows]


def load_image_rows(ws: Any, asset_id: str) -> list[Row]:
    """An asset's detection rows (without fusion's own) plus the context rows the fusion stage adds."""
    from tamperscope.stages.fusion import context_rows
    from tamperscope.store.models import Detection

    with ws.db.session() as s:
        rows = [Row(d.module_name, d.window_id, d.score, d.status, d.evidence_json, d.t_start_ms, d.t_end_ms)
                for d in s.scalars(select(Detection).where(Detection.asset_id == asset_id, Detection.stage != "fusion")
                                   .order_by(Detection.detection_id))]
        return rows + context_rows(s, asset_id)


def run_pipeline(items: Sequence[ImageItem], settings: Settings,
                 progress: Callable[[ImageRecord, int, int], None] | None = None) -> list[ImageRecord]:
    """Ingest every image and run the metadata and forensics stages (cached in the workspace)."""
    from tamperscope.custody.intake import IntakeRecord, ingest_path
    from tamperscope.pipeline.runner import analyze_asset
    from tamperscope.workspace import Workspace

    records = []
    ws = Workspace.open(settings)
    try:
        for n, item in enumerate(items):
            start = time.perf_counter()
            intake = ingest_path(ws, item.path, IntakeRecord(original_name=item.path.name, source=item.rel,
                                                             label=str(item.label), subject=item.group))
            result = analyze_asset(ws, intake.asset_id, only=STAGES)
            records.append(ImageRecord(item, intake.asset_id, load_image_rows(ws, intake.asset_id),
                                       time.perf_counter() - start, result.ran, result.failed))
            if progress is not None:
                progress(records[-1], n + 1, len(items))
    finally:
        ws.close()
    return records


def image_samples(records: Sequence[ImageRecord], branches: Sequence[str]) -> list[Sample]:
    """``({branch: features or None}, label)`` per image."""
    return [({b: BRANCHES[b].extract(r.rows) for b in branches}, r.item.label) for r in records]


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


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def metrics_markdown(summary: dict[str, Any]) -> str:
    """The Markdown tables of an evaluation summary."""
    lines = [f"# Image evaluation: {summary['manifest']}", "",
             f"{summary['fitted']} real images ({summary['positives']} manipulated) in {summary['folds']} "
             f"source-disjoint folds, leave-one-fold-out; {summary['synthetic']} synthetic images as extra training "
             f"samples of their folds (`forensics` system only); {summary['processed']} processed images scored, "
             f"not fitted. Bands by each fold model's policy (target precision {summary['target_precision']}); "
             f"calibration {summary['calibration']}, C = {summary['c']}.", "",
             "| system | AUC | ECE | synthetic AUC | unsure | likely manipulated prec. (n) "
             "| likely real prec. (n) | camera files R/U/M |", "|---" * 8 + "|"]
    for name, m in summary["systems"].items():
        cam = m["camera_bands"]
        lines.append(
            f"| {name} | {_fmt(m['auc'])} | {_fmt(m['ece'])} | {_fmt(m.get('synthetic_auc'))} | "
            f"{_fmt(m['unsure_share'], 2)} | {_fmt(m[LIKELY_MANIPULATED]['precision'], 2)} "
            f"({m[LIKELY_MANIPULATED]['n']}) | {_fmt(m[LIKELY_REAL]['precision'], 2)} ({m[LIKELY_REAL]['n']}) | "
            f"{cam[LIKELY_REAL]}/{cam[UNSURE]}/{cam[LIKELY_MANIPULATED]} |")
    if "artifact" in summary:
        shipped = summary["artifact"]
        lines += ["", f"Shipped `{MODEL_ID}` policy (chosen on the out-of-fold fused probabilities): "
                      f"low {shipped['policy']['low']:.3f}, high {shipped['policy']['high']:.3f}.", ""]
    lines += ["", "## Per image (out of fold, fused)", "", "| image | label | kind | fold | p | band |",
              "|---|---|---|---|---|---|"]
    for row in summary["images"]:
        lines.append(f"| {row['path']} | {row['label']} | {row['kind']} | {row['fold']} | {row['p_fused']:.3f} | "
                     f"{row['band_fused']} |")
    timing = summary["timing"]
    lines += ["", f"Pipeline {timing['pipeline_s']:.0f} s wall ({timing['ran_now']} images analysed now, the rest "
                  f"cached), fitting {timing['fit_s']:.0f} s.", ""]
    return "\n".join(lines)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


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


def write_images_csv(path: Path, records: Sequence[ImageRecord], scores: dict[str, list[tuple[float, str]]]) -> None:
    """Per image: manifest fields, each system's out-of-fold probability and band, and the branch features."""
    cols = [(b, f) for b in IMAGE_BRANCHES for f in BRANCHES[b].features]
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "kind", "group", "fold", "fitted", "asset_id", "seconds",
                    *(f"p_{s}" for s in scores), *(f"band_{s}" for s in scores), *(f"{b}.{f}" for b, f in cols)])
        for i, r in enumerate(records):
            values = {b: BRANCHES[b].extract(r.rows) or {} for b in IMAGE_BRANCHES}
            w.writerow([r.item.rel, r.item.label, r.item.kind, r.item.group, r.item.fold, int(r.item.fitted),
                        r.asset_id, round(r.seconds, 2), *(f"{s[i][0]:.6f}" for s in scores.values()),
                        *(s[i][1] for s in scores.values()),
                        *(f"{values[b][f]:.6f}" if f in values[b] else "" for b, f in cols)])


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
        "manifest": manifest.name, "manifest_sha256": _sha256(manifest), "fitted": len(fitted),
        "positives": int(labels.sum()), "processed": len(processed), "synthetic": len(synthetic),
        "synth_manifest_sha256": _sha256(synth_dir / "manifest.csv") if synth_dir is not None else None,
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
        training = {"manifest": manifest.name, "manifest_sha256": summary["manifest_sha256"],
                    "real_images": len(fitted), "synthetic_images": len(synthetic) if
                    results["fused"].metrics["synthetic_training"] else 0,
                    "synth_manifest_sha256": summary["synth_manifest_sha256"], "folds": len(folds),
                    "forensics_direction": "image-v1 logit (fitted on tamperscope synth-bench --seed 0 --size 384 "
                                           "--crops 3 by fusion-train)",
                    "command": "tamperscope eval-image --data ../shared/testdata --manifest "
                               "src/tamperscope/evaluation/manifests/shared_image.csv --synth <synth-bench dir> "
                               "--out <dir> (synth-bench --seed 0 --size 384 --crops 1)"}
        model = ship_model(fitted, synthetic, results["fused"], summary, c=c, calibration=calibration,
                           target_precision=target_precision, training=training)
        artifact_dir.mkdir(parents=True, exist_ok=True)
        (artifact_dir / f"{MODEL_ID}.json").write_text(json.dumps(model.to_json(), indent=1, sort_keys=True) + "\n")
        summary["artifact"] = {"path": str(artifact_dir / f"{MODEL_ID}.json"), "policy": model.policy.to_json(),
                               "oof_bands": model.metrics["cv_shipped_policy"]}
        shipped = [model.policy.band(p) for p, _ in scores["fused"]]
        for row, band in zip(summary["images"], shipped, strict=True):
            row["band_shipped_policy"] = band
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    (out_dir / "metrics.md").write_text(metrics_markdown(summary))
    write_images_csv(out_dir / "images.csv", real, scores)
    return summary
