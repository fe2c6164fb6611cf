"""The video evaluation harness: every branch alone and fused, with leave-one-fold-out cross-validation.

Manifest: a CSV with ``path`` (relative to the data directory), ``label`` (1 = manipulated), ``family``,
``identity``, ``group`` and ``fold`` (identity-disjoint CV folds; ``evaluation/manifests/shared_video.csv``).

Steps (:func:`evaluate_videos`):

1. **Pipeline, once, cached.** Every video is ingested into one evaluation workspace and every stage but
   ``fusion`` runs on it (:func:`run_pipeline`). The ``deep`` stage of a video in fold ``k`` uses fold ``k``'s
   models (``<models_dir>/fold<k>/frame.onnx`` and ``clip.onnx``, trained without fold ``k``'s identity groups),
   so every video is scored by models that never saw its identities. Stage results are stored in the workspace;
   a re-run only hashes the files and skips every current stage.
2. **Features.** Each video's detection rows give the branch features (:mod:`tamperscope.fusion.branches`).
3. **Cross-validation.** For each system (one branch alone, or the fused ``video-v3`` branches) the fusion
   model for fold ``k`` is fitted on the other folds' videos (calibrated on inner held-out logits,
   :mod:`tamperscope.fusion.cv`), giving an out-of-fold probability and band for every video. Systems with
   window-local branches are trained with spliced samples (:mod:`tamperscope.fusion.augment`).
4. **Tables.** Per system: video-level ROC AUC overall and per family (that family's fakes against all real
   videos), the AUC of the raw model score without any fitting (frame / clip models), frame- or window-level
   AUC, ECE (10 bins) with the reliability curve, the share of *Unsure* and the precision of the *Likely
   Manipulated* and *Likely Real* bands (each fold's own thresholds). Written as ``metrics.md``, ``metrics.json``,
   ``metrics.csv``, with per-video ``videos.csv`` and per-window ``windows.csv``.
5. **Shipped model.** ``video-v3`` keeps the branches that raise the inner leave-one-fold-out AUC (greedy forward
   selection; in cross-validation each fold model selects on its own training folds) and is fitted on all videos;
   its policy thresholds are chosen on the out-of-fold probabilities for the target precision; the artifact
   carries the CV metrics, the selection trials and the training manifest. With a ``split`` column (the pooled
   manifest), the ``dev`` rows get their own tables as well.
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

from tamperscope.errors import InputRejectedError, UsageError
from tamperscope.fusion.augment import splice_rows
from tamperscope.fusion.branches import BRANCHES, Row
from tamperscope.fusion.cv import Augment, cross_validate, fit_selected
from tamperscope.fusion.model import ARTIFACTS, FusionModel, Sample, auc_or_none, reliability
from tamperscope.fusion.policy import LIKELY_MANIPULATED, LIKELY_REAL, ThresholdPolicy, band_metrics
from tamperscope.fusion.timeline import WINDOW_LOCAL_BRANCHES, WindowSpan, branch_values, timeline
from tamperscope.settings import Settings

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


@dataclass(frozen=True)
class VideoItem:
    """One manifest video."""

    path: Path
    rel: str
    label: int
    family: str
    identity: str
    group: str
    fold: int
    split: str = ""


@dataclass
class VideoRecord:
    """A video after the pipeline: its rows, windows and what the run cost."""

    item: VideoItem
    asset_id: str
    rows: list[Row]
    windows: list[WindowSpan]
    seconds: float
    duration_s: float = 0.0
    ran: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def read_video_manifest(manifest: Path, root: Path) -> list[VideoItem]:
    """Parse a video manifest; paths are resolved against ``root``.

    Raises
    ------
    UsageError
        If the file is missing, a column is missing, or a listed video does not exist.
    """
    if not manifest.is_file():
        raise UsageError(f"manifest {manifest} does not exist")
    items = []
    with manifest.open(newline="") as fh:
        for rec in csv.DictReader(fh):
            missing = {"path", "label", "fold"} - {k for k, v in rec.items() if v not in (None, "")}
            if missing:
                raise UsageError(f"{manifest}: row {rec} lacks {', '.join(sorted(missing))}")
            path = root / rec["path"]
            if not path.is_file():
                raise UsageError(f"{manifest}: {path} does not exist")
            label = int(rec["label"])
            items.append(VideoItem(path=path, rel=rec["path"], label=label,
                                   family=rec.get("family") or ("fake" if label else "real"),
                                   identity=rec.get("identity") or "", group=rec.get("group") or "",
                                   fold=int(rec["fold"]), split=rec.get("split") or ""))
    if not items:
        raise UsageError(f"{manifest} lists no videos")
    return items


def fold_model_paths(models_dir: Path | None, fold: int) -> tuple[Path | None, Path | None]:
    """``(frame.onnx, clip.onnx)`` of ``<models_dir>/fold<fold>``; ``None`` for each file that does not exist."""
    if models_dir is None:
        return None, None
    base = models_dir / f"fold{fold}"
    frame, clip = base / "frame.onnx", base / "clip.onnx"
    return (frame if frame.is_file() else None), (clip if clip.is_file() else None)


def pipeline_stages() -> list[str]:
    """Every registered stage except ``fusion`` (fitted here, not run)."""
    from tamperscope.pipeline.registry import STAGES

    return [s for s in STAGES if s != "fusion"]


def load_rows(ws: Any, asset_id: str) -> tuple[list[Row], list[WindowSpan], float]:
    """An asset's detection rows (without fusion's own), clip windows and duration in seconds."""
    from tamperscope.store.models import Asset, Detection, Window

    with ws.db.session() as s:
        asset = s.get(Asset, asset_id)
        duration = (asset.duration_ms or 0) / 1000.0 if asset is not None else 0.0
        rows = [Row(d.module_name, d.window_id, d.score, d.status, d.evidence_json, d.t_start_ms, d.t_end_ms)
                for d in s.scalars(select(Detection).where(Detection.asset_id == asset_id,
                                                           Detection.stage != "fusion")
                                   .order_by(Detection.detection_id))]
        windows = [WindowSpan(w.window_id, w.t_start_ms, w.t_end_ms, w.track_id)
                   for w in s.scalars(select(Window).where(Window.asset_id == asset_id)
                                      .order_by(Window.t_start_ms, Window.window_id))]
    return rows, windows, duration


def run_pipeline(items: Sequence[VideoItem], settings: Settings, models_dir: Path | None,
                 progress: Callable[[VideoRecord, int, int], None] | None = None,
                 ) -> tuple[list[VideoRecord], dict[str, str]]:
    """Ingest and analyse every video (all stages but fusion), fold by fold with that fold's deep models.

    Parameters
    ----------
    items
        The manifest videos.
    settings
        Settings of the evaluation workspace (its ``models`` section is replaced per fold).
    models_dir
        Directory with ``fold<k>/frame.onnx`` and ``fold<k>/clip.onnx``; ``None``: no deep models.
    progress
        Called after each video with its record, the count done and the total.

    Returns
    -------
    list of VideoRecord
        In manifest order, without the videos that intake rejects.
    dict
        Rejected video (manifest path) -> the typed reason.
    """
    from tamperscope.custody.intake import IntakeRecord, ingest_path
    from tamperscope.pipeline.runner import analyze_asset
    from tamperscope.workspace import Workspace

    stages = pipeline_stages()
    records: dict[int, VideoRecord] = {}
    rejected: dict[str, str] = {}
    done = 0
    # Each fold's deep models score its videos; the deep stage's fingerprint covers the model files' bytes, so a
    # video scored by another fold's (or a retrained) model is re-run, not read from the cache.
    for fold in sorted({it.fold for it in items}):
        frame, clip = fold_model_paths(models_dir, fold)
        fold_settings = settings.model_copy(update={"models": settings.models.model_copy(
            update={"frame_path": frame, "clip_path": clip})})
        ws = Workspace.open(fold_settings)
        try:
            for n, item in enumerate(items):
                if item.fold != fold:
                    continue
                start = time.perf_counter()
                try:
                    intake = ingest_path(ws, item.path, IntakeRecord(
                        original_name=item.path.name, source=item.rel, label=str(item.label),
                        subject=item.group or None))
                except InputRejectedError as exc:  # the product rejects it: it is not evaluated, and listed
                    rejected[item.rel] = f"{exc.reason.value}: {exc.message}"
                    done += 1
                    continue
                result = analyze_asset(ws, intake.asset_id, only=stages)
                rows, windows, duration = load_rows(ws, intake.asset_id)
                records[n] = VideoRecord(item, intake.asset_id, rows, windows, time.perf_counter() - start,
                                         duration, result.ran, result.failed)
                done += 1
                if progress is not None:
                    progress(records[n], done, len(items))
        finally:
            ws.close()
    return [records[n] for n in range(len(items)) if n in records], rejected


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


def system_metrics(probs: np.ndarray, labels: np.ndarray, families: Sequence[str],
                   bands: Sequence[str]) -> dict[str, Any]:
    """Video-level AUC (overall, per family against all reals), ECE + reliability curve, band metrics."""
    fam = np.array(families)
    per_family = {}
    for f in sorted({f for f, y in zip(families, labels, strict=True) if y == 1}):
        sel = (labels == 0) | (fam == f)
        per_family[f] = {"auc": auc_or_none(labels[sel], probs[sel]), "n": int(((fam == f) & (labels == 1)).sum())}
    curve, ece = reliability(probs, labels)
    return {"n": len(labels), "positives": int(labels.sum()), "auc": auc_or_none(labels, probs),
            "families": per_family, "ece": ece, "reliability": curve, **band_metrics(bands, labels)}


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
    metrics = system_metrics(cv.probabilities, labels, [r.item.family for r in records], cv.bands)
    metrics["auc_fold_mean"] = fold_mean_auc(cv.probabilities, labels, folds)
    if select:
        metrics["selected_branches"] = {str(k): list(m.branches) for k, m in cv.models.items()}
    dev = np.array([r.item.split == "dev" for r in records])
    if dev.any() and not dev.all():
        metrics["dev"] = system_metrics(cv.probabilities[dev], labels[dev],
                                        [r.item.family for r, d in zip(records, dev, strict=True) if d],
                                        [b for b, d in zip(cv.bands, dev, strict=True) if d])
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


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _precision(m: dict[str, Any], band: str) -> str:
    return f"{_fmt(m[band]['precision'], 2)} ({m[band]['n']})"


def metrics_markdown(summary: dict[str, Any]) -> str:
    """The Markdown tables of an evaluation summary."""
    systems = summary["systems"]
    families = sorted({f for m in systems.values() for f in m["families"]})
    lines = [f"# Video evaluation: {summary['manifest']}", "",
             f"{summary['videos']} videos ({summary['positives']} manipulated), leave-one-fold-out over "
             f"{summary['folds']} identity-disjoint folds; out-of-fold probabilities, bands by each fold model's "
             f"policy (target precision {summary['target_precision']}). Calibration: {summary['calibration']}, "
             f"C = {summary['c']}.", "",
             "## Video level", "",
             "AUC: pooled out-of-fold; fold AUC: mean of the within-fold AUCs; raw AUC: the model's own score "
             "without fitting; unit AUC: frames, clip windows or timeline windows.", "",
             "| system | AUC | fold AUC | raw AUC | unit AUC (n) | ECE | unsure | likely manipulated prec. (n) "
             "| likely real prec. (n) |", "|---" * 9 + "|"]
    for name, m in systems.items():
        unit = m.get("unit")
        unit_cell = f"{_fmt(unit['auc'])} ({unit['n']} {unit['module']})" if unit else "-"
        lines.append(f"| {name} | {_fmt(m['auc'])} | {_fmt(m.get('auc_fold_mean'))} | "
                     f"{_fmt(m.get('raw', {}).get('auc'))} | {unit_cell} | "
                     f"{_fmt(m['ece'])} | {_fmt(m['unsure_share'], 2)} | {_precision(m, LIKELY_MANIPULATED)} | "
                     f"{_precision(m, LIKELY_REAL)} |")
    lines += ["", "## Video-level AUC per family (family fakes vs all real videos)", "",
              "| system | " + " | ".join(f"{f} (n={systems['fused']['families'][f]['n']})" if 'fused' in systems
                                         else f for f in families) + " |", "|---" * (len(families) + 1) + "|"]
    for name, m in systems.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(m["families"].get(f, {}).get("auc")) for f in families) + " |")
    dev = {name: m["dev"] for name, m in systems.items() if "dev" in m}
    if dev:
        dev_families = sorted({f for m in dev.values() for f in m["families"]})
        lines += ["", "## Development videos only (split = dev; same out-of-fold probabilities)", "",
                  "| system | AUC | ECE | unsure | likely manipulated prec. (n) | likely real prec. (n) | "
                  + " | ".join(dev_families) + " |", "|---" * (6 + len(dev_families)) + "|"]
        for name, m in dev.items():
            lines.append(f"| {name} | {_fmt(m['auc'])} | {_fmt(m['ece'])} | {_fmt(m['unsure_share'], 2)} | "
                         f"{_precision(m, LIKELY_MANIPULATED)} | {_precision(m, LIKELY_REAL)} | "
                         + " | ".join(_fmt(m["families"].get(f, {}).get("auc")) for f in dev_families) + " |")
    selected = systems.get("fused", {}).get("selected_branches")
    if selected:
        lines += ["", "Branches kept by each fold's fused model (selected on its training folds): "
                  + "; ".join(f"fold {k}: {', '.join(v)}" for k, v in selected.items())]
    lines += ["", "## Reliability (out-of-fold, 10 equal-width bins): confidence / accuracy (n)", ""]
    for name, m in systems.items():
        cells = ", ".join(f"{b['confidence']:.2f}/{b['accuracy']:.2f} ({b['n']})" for b in m["reliability"])
        lines.append(f"- **{name}**: {cells}")
    lines += ["", "## Branch coverage (videos with evidence)", ""]
    for name, m in systems.items():
        lines.append(f"- **{name}**: " + ", ".join(f"{b} {n}/{summary['videos']}"
                                                   for b, n in m["branch_present"].items()))
    if summary.get("rejected_at_intake"):
        lines += ["", "Rejected at intake (not evaluated): " + "; ".join(
            f"{path} ({reason})" for path, reason in summary["rejected_at_intake"].items())]
    if summary.get("skipped_systems"):
        lines += ["", "Not evaluated (no evidence on any video): " + ", ".join(summary["skipped_systems"])]
    timing = summary["timing"]
    lines += ["", "## Runtime", "",
              f"pipeline {timing['pipeline_s']:.0f} s wall for {summary['videos']} videos "
              f"({timing['video_seconds']:.0f} s of video), cross-validation and fitting {timing['fit_s']:.0f} s, "
              f"total {timing['total_s']:.0f} s.", ""]
    return "\n".join(lines)


def write_outputs(summary: dict[str, Any], results: Sequence[SystemResult], records: Sequence[VideoRecord],
                  out_dir: Path) -> None:
    """``metrics.md``, ``metrics.json``, ``metrics.csv``, ``videos.csv`` and ``windows.csv`` under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    (out_dir / "metrics.md").write_text(metrics_markdown(summary))
    families = sorted({f for m in summary["systems"].values() for f in m["families"]})
    with (out_dir / "metrics.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["system", "auc", "auc_fold_mean", "raw_auc", "unit_auc", "unit_n", "ece", "unsure_share",
                    "likely_manipulated_precision", "likely_manipulated_n", "likely_real_precision", "likely_real_n",
                    *(f"auc_{f}" for f in families)])
        for name, m in summary["systems"].items():
            unit = m.get("unit", {})
            w.writerow([name, m["auc"], m.get("auc_fold_mean"), m.get("raw", {}).get("auc"), unit.get("auc"),
                        unit.get("n"), m["ece"],
                        m["unsure_share"], m[LIKELY_MANIPULATED]["precision"], m[LIKELY_MANIPULATED]["n"],
                        m[LIKELY_REAL]["precision"], m[LIKELY_REAL]["n"],
                        *(m["families"].get(f, {}).get("auc") for f in families)])
    with (out_dir / "videos.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        feature_cols = [(b, f) for b in BRANCHES for f in BRANCHES[b].features]
        w.writerow(["path", "label", "family", "group", "fold", "asset_id", "seconds",
                    *(f"p_{r.name}" for r in results), *(f"band_{r.name}" for r in results),
                    *(f"{b}.{f}" for b, f in feature_cols)])
        for i, rec in enumerate(records):
            values = branch_values(rec.rows, list(BRANCHES))
            flat = {f"{b}.{f}": v for b, fv in values.items() if fv is not None for f, v in fv.items()}
            w.writerow([rec.item.rel, rec.item.label, rec.item.family, rec.item.group, rec.item.fold, rec.asset_id,
                        round(rec.seconds, 2), *(f"{r.probabilities[i]:.6f}" for r in results),
                        *(r.bands[i] for r in results),
                        *(f"{flat[f'{b}.{f}']:.6f}" if f"{b}.{f}" in flat else "" for b, f in feature_cols)])
    fused = next((r for r in results if r.name == "fused"), None)
    with (out_dir / "windows.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "window_id", "t_start_ms", "t_end_ms", "p_fused"])
        for i, span, p in fused.windows if fused else []:
            w.writerow([records[i].item.rel, records[i].item.label, span.window_id, span.t_start_ms, span.t_end_ms,
                        f"{p:.6f}"])


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


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
                    progress: Callable[[VideoRecord, int, int], None] | None = None) -> dict[str, Any]:
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
    """
    t0 = time.perf_counter()
    items = read_video_manifest(manifest, data_dir)
    if len({it.fold for it in items}) < 2:
        raise UsageError("the manifest needs at least two folds")
    records, rejected = run_pipeline(items, settings, models_dir, progress)
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
        "manifest": manifest.name, "manifest_sha256": _sha256(manifest), "videos": len(records),
        "positives": int(labels.sum()), "folds": len({r.item.fold for r in records}),
        "target_precision": target_precision, "calibration": calibration, "c": c,
        "splice_fraction": SPLICE_FRACTION,
        "models": {str(k): {n: (str(p), _sha256(p)) if p else None
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
                    "features": "deep scores of the fold models that never saw each video's identity group"}
        model = ship_model(records, fused, summary, c=c, calibration=calibration,
                           target_precision=target_precision, training=training)
        artifact_dir.mkdir(parents=True, exist_ok=True)
        (artifact_dir / f"{MODEL_ID}.json").write_text(json.dumps(model.to_json(), indent=1, sort_keys=True) + "\n")
        summary["artifact"] = {"path": str(artifact_dir / f"{MODEL_ID}.json"), "policy": model.policy.to_json()}
    summary["timing"]["total_s"] = time.perf_counter() - t0
    write_outputs(summary, results, records, out_dir)
    return summary
