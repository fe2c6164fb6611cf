"""Frame-model ablation on the pooled identity-disjoint folds: each training change against the previous recipe.

For each configuration (augmentation ``basic``/``strong``/``heavy`` x auxiliary blend-mask loss weight), one frame
model per fold is trained without that fold's identity groups (``fit_frame`` on a sample bank shared by the folds) and
scores the face tracks of the held-out identities, as ``tamperscope-train cv`` does. The table gives the
out-of-fold video AUC of the track's mean and top-10 % mean frame probability, overall, within collections (only
fake-real pairs from the same source repository in ``--shared``'s ``MANIFEST.tsv``), on the development videos and
per family, and the training minutes. ``--synthetic-fakes-only`` trains without the labelled fake videos
(self-blends and swaps of the real crops only). ``--scores NAME=CSV`` adds a ``cv_frame_scores.csv`` written by
``tamperscope-train cv`` (e.g. the shipped recipe) to the table; ``--models NAME=DIR`` scores fold models trained
before on the crops of ``--cache`` (e.g. models trained on another decoder's crops, scored on the run-time pixels).

Usage::

    .venv/bin/python bench/frame_ablation.py --data /work/pooldata --cache /work/traincache \\
        --manifest src/tamperscope/evaluation/manifests/pool_video.csv --out /work/ablation \\
        --config basic:0 --config strong:0 --config basic:0.5 --scores strong:0.5=/work/cv3/cv_frame_scores.csv
"""

from __future__ import annotations

import argparse
import csv
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from tamperscope.evaluation.video_pipeline import data_sources
from tamperscope.fusion.model import stratified_auc
from tamperscope_train.config import FrameConfig
from tamperscope_train.cross_validation import score_tracks, write_scores
from tamperscope_train.dataset import media_tracks
from tamperscope_train.frame_model import fit_frame
from tamperscope_train.frame_samples import build_bank

ROOT = Path(__file__).resolve().parents[1]


def read_manifest(path: Path) -> tuple[dict[str, dict[str, str]], dict[str, tuple[str, ...]]]:
    """Rows by file name, and fold -> identity groups it holds."""
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    by_name = {Path(r["path"]).name: r for r in rows}
    if len(by_name) != len(rows):
        raise SystemExit("file names in the manifest are not unique")
    folds: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        folds[r["fold"]].add(r["group"])
    return by_name, {k: tuple(sorted(v)) for k, v in sorted(folds.items())}


def auc(rows: list[dict[str, Any]], key: str) -> float | None:
    labels = np.array([int(r["label"]) for r in rows])
    if len(set(labels.tolist())) < 2:
        return None
    return float(roc_auc_score(labels, np.array([float(r[key]) for r in rows])))


def summarise(name: str, scores: list[dict[str, Any]], manifest: dict[str, dict[str, str]],
              minutes: float | None, sources: dict[str, str] | None = None) -> dict[str, Any]:
    """AUCs of one configuration's out-of-fold track scores (tracks without faces are left out), pooled and within
    collections (only fake-real pairs of the same source repository)."""
    rows = [{**r, **{k: manifest[r["path"]][k] for k in ("family", "split")}} for r in scores if r["mean"] != ""]
    within = stratified_auc(np.array([float(r["top10_mean"]) for r in rows]),
                            np.array([int(r["label"]) for r in rows]),
                            [(sources or {}).get(r["path"], "") for r in rows])
    out: dict[str, Any] = {"name": name, "videos": len(rows), "minutes": minutes,
                           "auc_mean": auc(rows, "mean"), "auc_top10": auc(rows, "top10_mean"),
                           "within_top10": within["auc"],
                           "dev_auc_top10": auc([r for r in rows if r["split"] == "dev"], "top10_mean")}
    reals = [r for r in rows if r["label"] in (0, "0")]
    for family in sorted({r["family"] for r in rows} - {"real"}):
        out[family] = auc(reals + [r for r in rows if r["family"] == family], "top10_mean")
    return out


def run_config(augment: str, mask_weight: float, tune: int, per_track: int, items: list[Any], tracks: list[Any],
               held_out: dict[str, tuple], bank: Any, out: Path,
               trainable: set[str] | None = None, seed: int = 0,
               labelled_fakes: bool = True) -> tuple[list[dict[str, Any]], float]:
    """``trainable``: file names the fold models may train on (all when ``None``); every held-out track is scored."""
    started = time.monotonic()
    cfg = FrameConfig(augment=augment, mask_weight=mask_weight, per_track=per_track, tune=tune, seed=seed,
                      labelled_fakes=labelled_fakes)
    scores: list[dict[str, Any]] = []
    for fold, excluded in held_out.items():
        fold_tracks = [t for t in tracks if not t.item.shows_any(excluded)
                       and (trainable is None or t.item.path.name in trainable)]
        fold_items = [t.item for t in fold_tracks]
        fold_dir = out / f"{augment}-{mask_weight}-{tune}" / f"fold{fold}"
        result = fit_frame(fold_items, fold_tracks, fold_dir, replace(cfg, exclude=excluded), bank=bank,
                           say=lambda _: None)
        scores += score_tracks(result.onnx, [t for t in tracks if t.item.shows_any(excluded)], fold)
    return scores, (time.monotonic() - started) / 60


def fmt(v: Any) -> str:
    return "-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--config", action="append", default=[],
                        help="AUGMENT:MASK_WEIGHT[:TUNE] (TUNE: trunk blocks fine-tuned, default 0), repeatable")
    parser.add_argument("--scores", action="append", default=[], help="NAME=cv_frame_scores.csv, repeatable")
    parser.add_argument("--models", action="append", default=[],
                        help="NAME=DIR: score DIR/fold<k>/frame.onnx (fold models trained before) on the held-out "
                             "tracks of --cache, without training; repeatable")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample bank and the training")
    parser.add_argument("--per-track", type=int, default=48, help="crops per face track (fewer: a cheaper run)")
    parser.add_argument("--train-split", default=None,
                        help="train only on manifest rows of this split (e.g. dev: the previous data), score all")
    parser.add_argument("--synthetic-fakes-only", action="store_true",
                        help="train on self-blends and swaps of the real crops only, not on the labelled fake videos")
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "testdata",
                        help="the shared test data folder; its MANIFEST.tsv names each file's collection")
    args = parser.parse_args()
    sources = {Path(path).name: source for path, source in data_sources(args.shared).items()}
    manifest, held_out = read_manifest(args.manifest)
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    if args.config or args.models:
        items, tracks = media_tracks(args.data, (), 8.0, 240, args.cache, print)
    for spec in args.models:
        name, folder = spec.split("=", 1)
        scores = [row for fold, excluded in held_out.items()
                  for row in score_tracks(Path(folder) / f"fold{fold}" / "frame.onnx",
                                          [t for t in tracks if t.item.shows_any(excluded)], fold)]
        write_scores(args.out / f"scores-{name}.csv", scores)
        results.append(summarise(name, scores, manifest, None, sources))
        print(results[-1], flush=True)
    if args.config:
        banks: dict[tuple[str, int], Any] = {}
        for spec in args.config:
            augment, weight, *rest = spec.split(":")
            tune = int(rest[0]) if rest else 0
            key = (augment, tune)
            if key not in banks:
                t0 = time.monotonic()
                source = tracks if not args.train_split else [
                    t for t in tracks if manifest[t.item.path.name]["split"] == args.train_split]
                banks[key] = build_bank(source, FrameConfig(augment=augment, per_track=args.per_track, tune=tune,
                                                            seed=args.seed,
                                                            labelled_fakes=not args.synthetic_fakes_only), args.out)
                print(f"bank {key}: {len(banks[key].samples)} samples in {time.monotonic() - t0:.0f} s")
            trainable = ({n for n, r in manifest.items() if r["split"] == args.train_split}
                         if args.train_split else None)
            scores, minutes = run_config(augment, float(weight), tune, args.per_track, items, tracks, held_out,
                                         banks[key], args.out, trainable, args.seed, not args.synthetic_fakes_only)
            write_scores(args.out / f"scores-{augment}-{weight}-{tune}.csv", scores)
            label = f"{spec} (trained on {args.train_split} only)" if args.train_split else spec
            label += " (synthetic fakes only)" if args.synthetic_fakes_only else ""
            results.append(summarise(label, scores, manifest, minutes, sources))
            print(results[-1], flush=True)
    for spec in args.scores:
        name, path = spec.split("=", 1)
        with open(path, newline="") as fh:
            results.append(summarise(name, list(csv.DictReader(fh)), manifest, None, sources))
    families = sorted({k for r in results for k in r} - {"name", "videos", "minutes", "auc_mean", "auc_top10",
                                                           "within_top10", "dev_auc_top10"})
    lines = ["| augment:mask weight[:tuned blocks] | videos | AUC (mean) | AUC (top-10 %) | within collections "
             "(top-10 %) | dev AUC | " + " | ".join(families) + " | train min (5 folds) |",
             "|---" * (7 + len(families)) + "|"]
    for r in results:
        lines.append(f"| {r['name']} | {r['videos']} | {fmt(r['auc_mean'])} | {fmt(r['auc_top10'])} | "
                     f"{fmt(r['within_top10'])} | {fmt(r['dev_auc_top10'])} | "
                     + " | ".join(fmt(r.get(f)) for f in families) + f" | {fmt(r['minutes'])} |")
    (args.out / "ablation.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
