"""The clip model: a temporal head on the frame model's per-frame trunk embeddings (``train`` extra, torch).

A per-frame 1x1 reduction of the frame model's trunk maps, their frame-to-frame change and a GRU over 16-frame
windows (:class:`~tamperscope_train.networks.ClipHead`), trained on real runs of consecutive sampled faces against
temporally inconsistent self-blends (:func:`tamperscope_train.synthesis.temporal.inconsistent_clip`), calibrated
like the frame model (:mod:`.fitting`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import yaml
from torch.nn import functional as F

from tamperscope.custody.hashing import sha256_file
from tamperscope.models.runtime import FrameModel
from tamperscope_train.config import ClipConfig, FrameConfig, Progress, TrainResult
from tamperscope_train.dataset import FaceTrack, MediaItem, media_tracks
from tamperscope_train.fitting import (
    calibration_metrics,
    check_export,
    fit_temperature,
    split_identities,
    split_of,
    write_manifest,
)
from tamperscope_train.frame_samples import trunk_features
from tamperscope_train.networks import ClipHead, ExportedClipModel, trunk_embedding
from tamperscope_train.synthesis.temporal import inconsistent_clip


def clip_samples(tracks: Sequence[FaceTrack], cfg: ClipConfig) -> Iterator[tuple[np.ndarray, int, tuple[str, ...]]]:
    """Real runs of ``clip_length`` consecutive sampled faces, each also turned into an inconsistent fake
    (labelled fake tracks give their runs as they are). A generator: the bank keeps only resized frames."""
    rng = np.random.default_rng(cfg.seed)
    for track in tracks:
        for run in track.runs(cfg.clip_length):
            frames = track.crops[run]
            if track.item.label == 1:
                yield frames, 1, track.item.identities
                continue
            yield frames, 0, track.item.identities
            fake, _ = inconsistent_clip(frames, track.landmarks[run], rng)
            yield fake, 1, track.item.identities


def train_clip(data: Path, frame_model: Path, out: Path, cfg: ClipConfig, *, cache: Path | None = None,
               say: Progress = print) -> TrainResult:
    """Train the clip head on the frame model's embeddings; export ``out/clip.onnx`` (+ yaml, json)."""
    items, tracks = media_tracks(data, cfg.exclude, cfg.fps, cfg.max_frames, cache, say)
    return fit_clip(items, tracks, frame_model, out, cfg, say=say)


@dataclass
class ClipBank:
    """Clip samples (identities, label) and their per-frame trunk embeddings ``N x T x D``."""

    identities: list[tuple[str, ...]]
    labels: np.ndarray
    embeddings: np.ndarray
    map_shape: tuple[int, ...]


def frame_embeddings(images: np.ndarray, frame_cfg: FrameConfig, workdir: Path,
                     frame_model: Path | None = None) -> tuple[np.ndarray, tuple[int, ...]]:
    """The frame model's ``embedding`` output for resized uint8 crops, and the map shape it flattens.

    A frozen trunk (``tune`` = 0) gives the same embeddings for every fold's model, computed here from the
    pretrained trunk; a fine-tuned trunk needs ``frame_model``, the exported model whose embeddings they are.
    """
    if frame_cfg.tune == 0:
        features = trunk_features(images, frame_cfg, workdir)
        return trunk_embedding(torch.from_numpy(features)).numpy(), tuple(int(v) for v in features.shape[1:])
    if frame_model is None:
        raise ValueError("a fine-tuned trunk's embeddings need its frame model")
    spec = yaml.safe_load(frame_model.with_suffix(".yaml").read_text(encoding="utf-8"))
    model = FrameModel(frame_model, threads=torch.get_num_threads())
    emb = np.concatenate([model.predict(images[i:i + 64]).extra["embedding"] for i in range(0, len(images), 64)])
    return emb, tuple(int(v) for v in spec["embedding_shape"])


def build_clip_bank(tracks: Sequence[FaceTrack], cfg: ClipConfig, frame_cfg: FrameConfig,
                    workdir: Path, frame_model: Path | None = None) -> ClipBank:
    """Clips of :func:`clip_samples` and their embeddings (:func:`frame_embeddings`: with a frozen trunk one bank
    serves every cross-validation fold; with a fine-tuned one each fold's frame model needs its own bank)."""
    size = frame_cfg.input_size
    identities: list[tuple[str, ...]] = []
    labels: list[int] = []
    resized: list[np.ndarray] = []
    for frames, label, ids in clip_samples(tracks, cfg):
        resized.extend(cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in frames)
        identities.append(ids)
        labels.append(label)
    emb, shape = frame_embeddings(np.stack(resized), frame_cfg, workdir, frame_model)
    del resized
    return ClipBank(identities, np.array(labels, np.float32), emb.reshape(len(labels), cfg.clip_length, -1), shape)


def fit_clip(items: Sequence[MediaItem], tracks: Sequence[FaceTrack], frame_model: Path, out: Path,
             cfg: ClipConfig, *, bank: ClipBank | None = None, say: Progress = print) -> TrainResult:
    """The training proper of :func:`train_clip`, on face tracks already extracted."""
    started = time.monotonic()
    torch.manual_seed(cfg.seed)
    out.mkdir(parents=True, exist_ok=True)
    frames_model = FrameModel(frame_model, threads=torch.get_num_threads())
    frame_yaml = yaml.safe_load(frame_model.with_suffix(".yaml").read_text(encoding="utf-8"))
    frame_cfg = FrameConfig(input_size=frames_model.spec.input_size, cut=int(frame_yaml.get("cut", FrameConfig.cut)),
                            tune=int(frame_yaml.get("tune", 0)))
    splits = split_identities(tracks, cfg.cal_share, cfg.seed)
    bank = bank if bank is not None else build_clip_bank(tracks, cfg, frame_cfg, out, frame_model)
    keep = [i for i, ids in enumerate(bank.identities) if split_of(ids, splits) is not None]
    x = torch.from_numpy(bank.embeddings[keep])
    y = torch.from_numpy(bank.labels[keep])
    split = np.array([split_of(bank.identities[i], splits) for i in keep])
    tr, ca = np.flatnonzero(split == "train"), np.flatnonzero(split == "cal")
    probe = next((t for t in tracks if len(t.crops)), None)
    embedding_check = 0.0
    if probe is not None:  # the bank's trunk embeddings must be what the frame model emits at run time
        runtime = frames_model.predict(probe.crops[:4]).extra["embedding"]
        size = frame_cfg.input_size
        small = np.stack([cv2.resize(c, (size, size), interpolation=cv2.INTER_AREA) for c in probe.crops[:4]])
        direct = frame_embeddings(small, frame_cfg, out, frame_model)[0]
        embedding_check = float(np.abs(runtime - direct).max())
    say(f"{len(keep)} clips (train {len(tr)}, cal {len(ca)}), embeddings ready after "
        f"{time.monotonic() - started:.0f} s")
    head = ClipHead(bank.map_shape[0], bank.map_shape[1], cfg.hidden)
    opt = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=1e-3)
    gen = torch.Generator().manual_seed(cfg.seed)
    history = []
    for epoch in range(cfg.epochs):
        head.train()
        order = torch.from_numpy(tr)[torch.randperm(len(tr), generator=gen)]
        for b in range(0, len(order), 32):
            idx = order[b:b + 32]
            loss = F.binary_cross_entropy_with_logits(head(x[idx])[:, 0], y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        head.eval()
        with torch.no_grad():
            cal_logits = head(x[ca])[:, 0].numpy()
        history.append({"epoch": epoch, "cal_auc": calibration_metrics(cal_logits, y[ca].numpy(), (1.0, 0.0))["auc"]})
    calibration = fit_temperature(cal_logits, y[ca].numpy())
    metrics: dict[str, Any] = {
        "cal": calibration_metrics(cal_logits, y[ca].numpy(), calibration), "history": history[-5:],
        "embedding_check_max_abs_diff": embedding_check, "seconds": round(time.monotonic() - started, 1)}
    exported = ExportedClipModel(head, calibration).eval()
    onnx_path = out / "clip.onnx"
    torch.onnx.export(exported, (x[:1],), str(onnx_path), input_names=["embeddings"], output_names=["logit"],
                      dynamic_axes={"embeddings": {0: "n"}, "logit": {0: "n"}}, opset_version=17, dynamo=False)
    metrics["export_max_abs_diff"] = check_export(exported, onnx_path, x[ca[:8]].numpy())
    spec = frames_model.spec
    spec_path = out / "clip.yaml"
    spec_path.write_text(yaml.safe_dump({
        "kind": "clip", "input": "embeddings", "input_size": spec.input_size, "mean": list(spec.mean),
        "std": list(spec.std), "output": "logit", "clip_length": cfg.clip_length,
        "embedding_model": frame_model.name, "embedding_dim": int(x.shape[2])}, sort_keys=False))
    manifest = out / "clip.json"
    write_manifest(manifest, kind="clip", config=cfg, items=items, splits=splits, metrics=metrics,
                   extra={"frame_model": {"path": frame_model.name, "sha256": sha256_file(frame_model)[0]},
                          "clips": {"total": len(keep), "fake": int(y.sum())}})
    say(f"clip model: cal AUC {metrics['cal']['auc']:.3f}, ECE {metrics['cal']['ece']:.3f} "
        f"(T = {calibration[0]:.2f}, b = {calibration[1]:.2f}) in {metrics['seconds']} s")
    return TrainResult(onnx_path, spec_path, manifest, metrics)
