"""The image evaluation's tables: the Markdown summary and the per-image ``images.csv``."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tamperscope.evaluation.image_pipeline import ImageRecord
from tamperscope.evaluation.image_systems import IMAGE_BRANCHES, MODEL_ID
from tamperscope.fusion.branches import BRANCHES
from tamperscope.fusion.policy import LIKELY_MANIPULATED, LIKELY_REAL, UNSURE


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
    within = [(name, m) for name, m in summary["systems"].items() if "within_source" in m]
    if within:
        lines += ["", "## Within sources and groups", "",
                  "AUC over only the (manipulated, real) pairs from the same source (collection) or the same group "
                  "(e.g. an edited image and its original): differences between collections cannot raise it. "
                  "Cells: AUC (pairs, strata with both classes).", "",
                  "| system | AUC | within sources | within groups |", "|---|---|---|---|"]
        for name, m in within:
            cells = [f"{_fmt(m[k]['auc'])} ({m[k]['pairs']}, {m[k]['strata']})" for k in ("within_source",
                                                                                          "within_group")]
            lines.append(f"| {name} | {_fmt(m['auc'])} | {cells[0]} | {cells[1]} |")
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

