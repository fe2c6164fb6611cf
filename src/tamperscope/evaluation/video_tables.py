"""The video evaluation's tables: ``metrics.md``, ``metrics.json``, ``metrics.csv``, ``videos.csv`` and
``windows.csv``."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tamperscope.evaluation.video_pipeline import VideoRecord
from tamperscope.evaluation.video_systems import SystemResult
from tamperscope.fusion.branches import BRANCHES
from tamperscope.fusion.policy import LIKELY_MANIPULATED, LIKELY_REAL
from tamperscope.fusion.timeline import branch_values


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
    lines += _within_tables(systems, families)
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


#: the keys a family is also compared within (:func:`~tamperscope.evaluation.video_systems.controls_of`)
WITHIN = {"source": "the same collections (source repositories of the shared data)",
          "group": "the same identity groups"}


def _within_tables(systems: dict[str, Any], families: list[str]) -> list[str]:
    """The AUC over same-key pairs only, then per key of :data:`WITHIN` each family's fakes against the reals that
    share that key with them."""
    reference: dict[str, Any] = next(iter(systems.values()), {})
    keys = [key for key in WITHIN if f"within_{key}" in reference]
    if not keys:
        return []
    lines = ["", "## Within collections and identity groups", "",
             "AUC over only the (manipulated, real) pairs that share the key: differences between collections "
             "cannot raise it, so a gap to the pooled AUC is what the system tells apart by collection rather than "
             "by manipulation. Cells: AUC (pairs, strata with both classes).", "",
             "| system | AUC | " + " | ".join(f"within {WITHIN[key]}" for key in keys) + " |",
             "|---" * (len(keys) + 2) + "|"]
    for name, m in systems.items():
        cells = [f"{_fmt(m[f'within_{key}']['auc'])} ({m[f'within_{key}']['pairs']}, {m[f'within_{key}']['strata']})"
                 for key in keys]
        lines.append(f"| {name} | {_fmt(m['auc'])} | " + " | ".join(cells) + " |")
    strata = reference["within_source"]["by_stratum"] if "within_source" in reference else {}
    if strata:
        lines += ["", "Per collection with both classes (AUC; n = manipulated / real):", "",
                  "| collection | " + " | ".join(systems) + " |", "|---" * (len(systems) + 1) + "|"]
        for stratum, c in strata.items():
            lines.append(f"| {stratum} (n={c['fakes']}/{c['reals']}) | " + " | ".join(
                _fmt(m["within_source"]["by_stratum"].get(stratum, {}).get("auc")) for m in systems.values()) + " |")
    for key in keys:
        counts = {f: reference["families"][f][f"within_{key}"] for f in families
                  if f"within_{key}" in reference["families"].get(f, {})}
        lines += ["", f"## Video-level AUC per family against the reals of {WITHIN[key]}", "",
                  "Only the family's (fake, real) pairs that share the key (n = fakes / reals of the values holding "
                  "both). A family far lower in the all-reals table than here is scored low with its whole "
                  "collection, not missed for its manipulation.", "",
                  "| system | " + " | ".join(f"{f} (n={c['fakes']}/{c['reals']})" for f, c in counts.items()) + " |",
                  "|---" * (len(counts) + 1) + "|"]
        for name, m in systems.items():
            lines.append(f"| {name} | " + " | ".join(
                _fmt(m["families"].get(f, {}).get(f"within_{key}", {}).get("auc")) for f in counts) + " |")
    return lines


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
                    *(f"auc_{f}" for f in families),
                    *(f"auc_within_{key}_{f}" for key in WITHIN for f in families)])
        for name, m in summary["systems"].items():
            unit = m.get("unit", {})
            w.writerow([name, m["auc"], m.get("auc_fold_mean"), m.get("raw", {}).get("auc"), unit.get("auc"),
                        unit.get("n"), m["ece"],
                        m["unsure_share"], m[LIKELY_MANIPULATED]["precision"], m[LIKELY_MANIPULATED]["n"],
                        m[LIKELY_REAL]["precision"], m[LIKELY_REAL]["n"],
                        *(m["families"].get(f, {}).get("auc") for f in families),
                        *(m["families"].get(f, {}).get(f"within_{key}", {}).get("auc")
                          for key in WITHIN for f in families)])
    with (out_dir / "videos.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        feature_cols = [(b, f) for b in BRANCHES for f in BRANCHES[b].features]
        w.writerow(["path", "label", "family", "source", "group", "fold", "asset_id", "seconds",
                    *(f"p_{r.name}" for r in results), *(f"band_{r.name}" for r in results),
                    *(f"{b}.{f}" for b, f in feature_cols)])
        for i, rec in enumerate(records):
            values = branch_values(rec.rows, list(BRANCHES))
            flat = {f"{b}.{f}": v for b, fv in values.items() if fv is not None for f, v in fv.items()}
            w.writerow([rec.item.rel, rec.item.label, rec.item.family, rec.item.source, rec.item.group,
                        rec.item.fold, rec.asset_id,
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
