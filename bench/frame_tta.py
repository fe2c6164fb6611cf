"""Test-time flip and track aggregation of the frame model, measured out of fold on the pooled identity folds.

Each fold's frame model (``tamperscope-train cv`` output, ``MODELS/fold<k>/frame.onnx``) scores the cached face
tracks of its held-out identities twice: as is and mirrored left-right (the training augmentation flips, so a
mirrored face is in distribution). The table gives the out-of-fold video AUC of each track aggregation (mean,
median, top-10 % mean, top-25 % mean) without and with flip averaging, overall and on the development videos.

Usage::

    .venv/bin/python bench/frame_tta.py --data /work/pooldata --cache /work/traincache --models /work/cv3 \\
        --manifest src/tamperscope/evaluation/manifests/pool_video.csv
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from tamperscope.fusion.branches import top_fraction_mean
from tamperscope.models.runtime import FrameModel
from tamperscope_train.config import FrameConfig
from tamperscope_train.cross_validation import crop_probabilities
from tamperscope_train.dataset import media_tracks

sys.path.insert(0, str(Path(__file__).resolve().parent))
from frame_ablation import read_manifest

AGGREGATES = {
    "mean": lambda p: float(np.mean(p)),
    "median": lambda p: float(np.median(p)),
    "top10": lambda p: top_fraction_mean(p.tolist(), 0.10),
    "top25": lambda p: top_fraction_mean(p.tolist(), 0.25),
}


def track_probabilities(model: FrameModel, crops: np.ndarray, flip: bool) -> np.ndarray:
    """Per-crop probabilities; with ``flip``, the mean of the crop's and its mirror image's probability."""
    probs = crop_probabilities(model, crops)
    if flip:
        probs = (probs + crop_probabilities(model, np.ascontiguousarray(crops[:, :, ::-1]))) / 2
    return probs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--models", type=Path, required=True)
    parser.add_argument("--manifest", type=Path, required=True)
    args = parser.parse_args()
    manifest, held_out = read_manifest(args.manifest)
    cfg = FrameConfig()
    _, tracks = media_tracks(args.data, (), cfg.fps, cfg.max_frames, args.cache, print)
    started = time.monotonic()
    rows: list[dict[str, object]] = []
    for fold, excluded in held_out.items():
        model = FrameModel(args.models / f"fold{fold}" / "frame.onnx")
        for track in tracks:
            if not track.item.shows_any(excluded) or not len(track.crops):
                continue
            row: dict[str, object] = {"path": track.item.path.name, "label": track.item.label,
                                      "split": manifest[track.item.path.name]["split"]}
            for flip in (False, True):
                probs = track_probabilities(model, track.crops, flip)
                row |= {f"{name}{'+flip' if flip else ''}": agg(probs) for name, agg in AGGREGATES.items()}
            rows.append(row)
    print(f"{len(rows)} held-out videos with faces, {time.monotonic() - started:.0f} s")
    print(f"{'aggregate':<12} {'AUC all':>8} {'AUC dev':>8}")
    labels = np.array([r["label"] for r in rows])
    dev = np.array([r["split"] == "dev" for r in rows])
    for key in [k for k in rows[0] if k not in ("path", "label", "split")]:
        scores = np.array([r[key] for r in rows], dtype=float)
        print(f"{key:<12} {roc_auc_score(labels, scores):>8.3f} {roc_auc_score(labels[dev], scores[dev]):>8.3f}")


if __name__ == "__main__":
    main()
