"""The evaluation harness: run detectors over a manifest of images (and masks), score them, write tables.

Manifest: a CSV with at least ``path`` (relative to the data directory) and ``label`` (1 = manipulated); optional
``mask`` (PNG, relative), ``mask_polarity`` (``white`` = tampered pixels are bright, the default, or ``black``),
``kind``, ``split`` and ``source``. Metrics per detector: image-level ROC AUC (overall and per kind against the
pristine images), TPR at FPR <= 0.1, and pixel-level F1 / IoU / MCC averaged over masked images, both at the
per-image best threshold ("oracle", the usual upper bound in the literature) and at a fixed threshold.

Other harnesses (e.g. a video one in ``evaluation/video.py``) can reuse :func:`pixel_metrics`,
:func:`image_metrics` and :func:`write_tables`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from tamperscope.errors import UsageError
from tamperscope.forensics import analyze_image
from tamperscope.forensics.registry import DETECTORS

THRESHOLDS = np.linspace(0.05, 0.95, 19)


@dataclass
class ManifestRow:
    """One image of an evaluation set."""

    path: Path
    label: int
    mask: Path | None = None
    mask_polarity: str = "white"
    kind: str = ""
    split: str = ""
    source: str = ""


@dataclass
class ImageScores:
    """Every detector's score for one image, and its pixel metrics when the image has a mask."""

    row: ManifestRow
    scores: dict[str, float]
    evidence: dict[str, dict[str, Any]] = field(default_factory=dict)
    pixel: dict[str, dict[str, float]] = field(default_factory=dict)


def read_manifest(manifest: Path, root: Path) -> list[ManifestRow]:
    """Parse a manifest CSV; paths are resolved against ``root``."""
    if not manifest.is_file():
        raise UsageError(f"manifest {manifest} does not exist")
    rows = []
    with manifest.open(newline="") as fh:
        for rec in csv.DictReader(fh):
            if "path" not in rec or "label" not in rec:
                raise UsageError(f"{manifest}: columns 'path' and 'label' are required")
            rows.append(ManifestRow(path=root / rec["path"], label=int(rec["label"]),
                                    mask=root / rec["mask"] if rec.get("mask") else None,
                                    mask_polarity=rec.get("mask_polarity") or "white", kind=rec.get("kind") or "",
                                    split=rec.get("split") or "", source=rec.get("source") or ""))
    return rows


def load_mask(path: Path, shape: tuple[int, int], polarity: str = "white") -> np.ndarray:
    """A boolean tampering mask at ``shape`` (nearest-neighbour resize when the sizes differ)."""
    with Image.open(path) as img:
        gray = img.convert("L")
        if gray.size != (shape[1], shape[0]):
            gray = gray.resize((shape[1], shape[0]), Image.Resampling.NEAREST)
        values = np.asarray(gray)
    if polarity not in ("white", "black"):
        raise UsageError(f"mask_polarity must be 'white' or 'black', got {polarity!r}")
    return values >= 128 if polarity == "white" else values < 128


def pixel_metrics(heat: np.ndarray, truth: np.ndarray, thresholds: Iterable[float] = THRESHOLDS,
                  fixed: float = 0.5) -> dict[str, float]:
    """F1, IoU and MCC of ``heat >= t`` against ``truth``: at the best ``t`` (by F1) and at ``fixed``.

    Maps have a fixed polarity (higher = more suspicious; two-sided detectors fold deviations into it), so
    they are never scored inverted: an empty map scores 0, not the F1 of "everything is tampered".
    """
    t_pos = truth.ravel()
    h = heat.ravel()

    def confusion(pred: np.ndarray) -> dict[str, float]:
        tp = float(np.count_nonzero(pred & t_pos))
        fp = float(np.count_nonzero(pred & ~t_pos))
        fn = float(np.count_nonzero(~pred & t_pos))
        tn = float(pred.size - tp - fp - fn)
        f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
        iou = tp / (tp + fp + fn) if tp + fp + fn else 0.0
        denom = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
        mcc = (tp * tn - fp * fn) / denom if denom else 0.0
        return {"f1": f1, "iou": iou, "mcc": float(mcc)}

    best = {"f1": 0.0, "iou": 0.0, "mcc": 0.0, "threshold": 0.0}
    for t in thresholds:
        m = confusion(h >= t)
        if m["f1"] > best["f1"]:
            best = {**m, "threshold": float(t)}
    at_fixed = confusion(h >= fixed)
    return {"f1_best": best["f1"], "iou_best": best["iou"], "mcc_best": best["mcc"],
            "f1_fixed": at_fixed["f1"], "iou_fixed": at_fixed["iou"], "mcc_fixed": at_fixed["mcc"]}


def image_metrics(labels: np.ndarray, scores: np.ndarray, max_fpr: float = 0.1) -> dict[str, float | None]:
    """ROC AUC and the best TPR with FPR <= ``max_fpr`` (``None`` when a class is missing)."""
    from sklearn.metrics import roc_auc_score, roc_curve

    if len(set(labels.tolist())) < 2:
        return {"auc": None, "tpr_at_fpr": None, "n": len(labels)}
    fpr, tpr, _ = roc_curve(labels, scores)
    return {"auc": float(roc_auc_score(labels, scores)), "tpr_at_fpr": float(tpr[fpr <= max_fpr].max()),
            "n": len(labels)}


def score_images(rows: list[ManifestRow], names: list[str] | None = None, fixed_threshold: float = 0.5,
                 progress: Callable[[int, int], None] | None = None) -> list[ImageScores]:
    """Run the detectors on every row (JPEG bytes passed as context) and compute pixel metrics for masks."""
    results = []
    for n, row in enumerate(rows):
        data = row.path.read_bytes()
        with Image.open(row.path) as img:
            image = np.asarray(img.convert("RGB"))
            is_jpeg = img.format == "JPEG"
        outputs = analyze_image(image, jpeg_bytes=data if is_jpeg else None, names=names)
        item = ImageScores(row=row, scores={k: v.score for k, v in outputs.items()},
                           evidence={k: v.evidence for k, v in outputs.items()})
        if row.mask is not None:
            truth = load_mask(row.mask, image.shape[:2], row.mask_polarity)
            if truth.any():
                item.pixel = {k: pixel_metrics(v.map, truth, fixed=fixed_threshold) for k, v in outputs.items()}
        results.append(item)
        if progress is not None:
            progress(n + 1, len(rows))
    return results


def summarise(results: list[ImageScores], names: list[str]) -> dict[str, Any]:
    """Per detector: image-level metrics (all, and each kind vs. pristine) and mean pixel metrics per kind."""
    labels = np.array([r.row.label for r in results])
    kinds = sorted({r.row.kind for r in results if r.row.label == 1 and r.row.kind})
    table: dict[str, Any] = {}
    for name in names:
        scores = np.array([r.scores[name] for r in results])
        entry: dict[str, Any] = {"image": {"all": image_metrics(labels, scores)}, "pixel": {}}
        for kind in kinds:
            sel = np.array([r.row.label == 0 or r.row.kind == kind for r in results])
            entry["image"][kind] = image_metrics(labels[sel], scores[sel])
        for kind in [*kinds, "all"]:
            pix = [r.pixel[name] for r in results if r.pixel and (kind == "all" or r.row.kind == kind)]
            if pix:
                entry["pixel"][kind] = {k: float(np.mean([p[k] for p in pix])) for k in pix[0]} | {"n": len(pix)}
        table[name] = entry
    return {"images": len(results), "positives": int(labels.sum()), "detectors": table}


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def write_tables(summary: dict[str, Any], out_dir: Path, title: str) -> tuple[Path, Path]:
    """Write ``summary`` as ``metrics.json`` and a Markdown ``metrics.md`` under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "metrics.json"
    json_path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    lines = [f"# {title}", "", f"{summary['images']} images, {summary['positives']} manipulated.", "",
             "## Image level (ROC AUC / TPR at FPR <= 0.1)", ""]
    detectors = summary["detectors"]
    kinds = sorted({k for d in detectors.values() for k in d["image"]} - {"all"})
    lines.append("| detector | all | " + " | ".join(kinds) + " |")
    lines.append("|---" * (len(kinds) + 2) + "|")
    for name, d in detectors.items():
        cells = [f"{_fmt(d['image'][k]['auc'])} / {_fmt(d['image'][k]['tpr_at_fpr'])}" if k in d["image"] else "-"
                 for k in ["all", *kinds]]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "## Pixel level (mean over masked images: F1 / IoU / MCC, best threshold ; fixed 0.5)", ""]
    pkinds = sorted({k for d in detectors.values() for k in d["pixel"]})
    if pkinds:
        lines.append("| detector | " + " | ".join(pkinds) + " |")
        lines.append("|---" * (len(pkinds) + 1) + "|")
        for name, d in detectors.items():
            cells = []
            for k in pkinds:
                p = d["pixel"].get(k)
                cells.append("-" if p is None else f"{p['f1_best']:.2f}/{p['iou_best']:.2f}/{p['mcc_best']:.2f} ; "
                             f"{p['f1_fixed']:.2f}/{p['iou_fixed']:.2f}/{p['mcc_fixed']:.2f}")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    md_path = out_dir / "metrics.md"
    md_path.write_text("\n".join(lines) + "\n")
    return md_path, json_path


def write_scores(results: list[ImageScores], names: list[str], path: Path) -> Path:
    """Per-image scores as CSV (the fusion trainer reads this)."""
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "label", "kind", "split", "source", *names])
        for r in results:
            writer.writerow([r.row.path.name, r.row.label, r.row.kind, r.row.split, r.row.source,
                             *(f"{r.scores[n]:.6f}" for n in names)])
    return path


def evaluate(data_dir: Path, manifest: Path, out_dir: Path, *, names: list[str] | None = None,
             fixed_threshold: float = 0.5, title: str | None = None,
             progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Score every manifest image with the detectors and write ``metrics.md``, ``metrics.json``, ``scores.csv``."""
    names = names or list(DETECTORS)
    rows = read_manifest(manifest, data_dir)
    results = score_images(rows, names, fixed_threshold, progress)
    summary = summarise(results, names)
    summary["fixed_threshold"] = fixed_threshold
    write_tables(summary, out_dir, title or f"Forensics evaluation: {manifest.name}")
    write_scores(results, names, out_dir / "scores.csv")
    return summary
