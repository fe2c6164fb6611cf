"""Cross-validation by identity folds: one frame and one clip model per fold, and the out-of-fold track scores."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tamperscope.models.runtime import FrameModel
from tamperscope_train.clip_model import build_clip_bank, fit_clip
from tamperscope_train.config import ClipConfig, FrameConfig, Progress, TrainResult
from tamperscope_train.dataset import FaceTrack, media_tracks
from tamperscope_train.frame_model import fit_frame
from tamperscope_train.frame_samples import build_bank


def train_cv(data: Path, out: Path, held_out: dict[str, tuple[str, ...]], *, frame_cfg: FrameConfig,
             clip_cfg: ClipConfig | None, cache: Path | None = None, final: Path | None = None,
             say: Progress = print) -> dict[str, TrainResult]:
    """One frame and one clip model per fold (``held_out``: fold -> identities it leaves out) in ``out/fold<k>``.

    Samples and their trunk features are computed once over all identities; each fold keeps those showing only
    its training identities, so no face of a held-out identity (not even as a swap donor) reaches its models.
    Each fold's frame model scores the face tracks of its held-out identities (``out/cv_frame_scores.csv``).
    ``clip_cfg=None`` trains frame models only (ablations). ``final`` also trains the models on every identity
    into that folder from the same banks (what ``train frame`` and ``train clip`` give, without building the
    banks again).
    """
    items, tracks = media_tracks(data, (), frame_cfg.fps, frame_cfg.max_frames, cache, say)
    bank = build_bank(tracks, frame_cfg, out)
    clip_bank = (build_clip_bank(tracks, clip_cfg, frame_cfg, out) if clip_cfg is not None and frame_cfg.tune == 0
                 else None)  # a fine-tuned trunk: each fold's clip model builds its bank from its frame model
    say(f"banks: {len(bank.samples)} frame samples, {len(clip_bank.labels) if clip_bank else 0} clips")
    results: dict[str, TrainResult] = {}
    scores: list[dict[str, Any]] = []
    for fold, excluded in sorted(held_out.items()):
        say(f"fold {fold}: leaving out {', '.join(excluded)}")
        fold_items = [i for i in items if not i.shows_any(excluded)]
        fold_tracks = [t for t in tracks if not t.item.shows_any(excluded)]
        fold_dir = out / f"fold{fold}"
        frame = fit_frame(fold_items, fold_tracks, fold_dir, _with_exclude(frame_cfg, excluded), bank=bank, say=say)
        results[fold] = frame
        if clip_cfg is not None:
            results[fold] = fit_clip(fold_items, fold_tracks, frame.onnx, fold_dir,
                                     _with_exclude(clip_cfg, excluded), bank=clip_bank, say=say)
        held = [t for t in tracks if t.item.shows_any(excluded)]
        scores.extend(score_tracks(frame.onnx, held, fold))
    write_scores(out / "cv_frame_scores.csv", scores)
    if final is not None:
        say(f"final models on all {len(items)} media")
        results["final"] = fit_frame(items, tracks, final, frame_cfg, bank=bank, say=say)
        if clip_cfg is not None:
            results["final"] = fit_clip(items, tracks, final / "frame.onnx", final, clip_cfg, bank=clip_bank, say=say)
    return results


def crop_probabilities(model: FrameModel, crops: np.ndarray, batch: int = 64) -> np.ndarray:
    """The frame model's probability for each crop, ``batch`` crops per run (bounded memory)."""
    if not len(crops):
        return np.zeros(0)
    return np.concatenate([model.predict(crops[i:i + batch]).scores for i in range(0, len(crops), batch)])


def score_tracks(model: Path, tracks: Sequence[FaceTrack], fold: str) -> list[dict[str, Any]]:
    """Per medium: the frame model's mean and top-10 % mean probability over its face track (as at run time)."""
    from tamperscope.fusion.branches import top_fraction_mean

    frames = FrameModel(model, threads=torch.get_num_threads())
    rows = []
    for track in tracks:
        n = len(track.crops)
        probs = crop_probabilities(frames, track.crops)
        rows.append({"path": track.item.path.name, "fold": fold, "label": track.item.label, "frames": n,
                     "mean": float(probs.mean()) if n else "",
                     "top10_mean": top_fraction_mean(probs.tolist()) if n else ""})
    return rows


def write_scores(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Out-of-fold per-medium scores of :func:`train_cv` as CSV."""
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["path", "fold", "label", "frames", "mean", "top10_mean"])
        writer.writeheader()
        writer.writerows(rows)


def _with_exclude(cfg: Any, excluded: tuple[str, ...]) -> Any:
    return replace(cfg, exclude=excluded)
