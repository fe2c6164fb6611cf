"""The frame model's training samples and their frozen-trunk features.

Each real face crop gives two augmented real samples, a self-blend and an identity swap (:mod:`.synthesis`);
labelled fakes are used as they are. The features of the trunk's frozen blocks are computed once per sample
through ONNX Runtime (3-4x faster than torch on this CPU) and kept in a :class:`SampleBank` that every
cross-validation fold shares.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import cv2
import numpy as np
import torch

from tamperscope_train.backbone import MEAN, STD, load_pretrained
from tamperscope_train.config import FrameConfig
from tamperscope_train.dataset import FaceTrack
from tamperscope_train.networks import Trunk
from tamperscope_train.synthesis.blending import self_blend
from tamperscope_train.synthesis.swap import landmark_swap


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
class SampleBank:
    """Training samples with their frozen-trunk features, computed once and shared by cross-validation folds."""

    samples: list[Sample]
    features: np.ndarray


def _select(track: FaceTrack, count: int) -> np.ndarray:
    if len(track.crops) <= count:
        return np.arange(len(track.crops))
    return np.unique(np.linspace(0, len(track.crops) - 1, count).round().astype(int))


@dataclass(frozen=True)
class Augmentation:
    """How hard the transport degradations shared by real and fake samples are (probabilities and ranges).

    ``degrade`` and a zero ``double_jpeg_p`` skip their random draws, so ``basic`` and ``strong`` draw exactly what
    they drew before the presets were data and earlier runs reproduce for their seeds.
    """

    degrade: bool
    resize_p: float = 0.0
    resize_scale: tuple[float, float] = (0.35, 0.9)
    blur_p: float = 0.0
    colour_p: float = 0.0
    jpeg_p: float = 0.7
    jpeg_quality: tuple[int, int] = (60, 96)
    #: probability of a second, earlier JPEG compression (a re-encoded upload), heavy only
    double_jpeg_p: float = 0.0


#: ``basic`` (v2): flip + JPEG 60-95; ``strong`` (v3): + resolution loss, blur, colour and JPEG 30-95; ``heavy``:
#: more and deeper resolution loss, more blur, JPEG on almost every sample, sometimes twice (the collections'
#: resolution and compression moved the v3 scores more than the manipulation did)
AUGMENTATIONS: dict[str, Augmentation] = {
    "basic": Augmentation(degrade=False),
    "strong": Augmentation(degrade=True, resize_p=0.4, blur_p=0.2, colour_p=0.5, jpeg_p=0.8, jpeg_quality=(30, 96)),
    "heavy": Augmentation(degrade=True, resize_p=0.7, resize_scale=(0.25, 0.9), blur_p=0.3, colour_p=0.5,
                          jpeg_p=0.95, jpeg_quality=(20, 96), double_jpeg_p=0.3),
}


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.cvtColor(cast(np.ndarray, cv2.imdecode(buf, cv2.IMREAD_COLOR)), cv2.COLOR_BGR2RGB) if ok else image


def _degrade(image: np.ndarray, rng: np.random.Generator, aug: Augmentation) -> np.ndarray:
    """Transport degradations shared by real and fake samples: resolution loss (c40, small faces), blur, colour."""
    if rng.random() < aug.resize_p:
        height, width = image.shape[:2]
        scale = rng.uniform(*aug.resize_scale)
        small = cv2.resize(image, (max(8, round(width * scale)), max(8, round(height * scale))),
                           interpolation=cv2.INTER_AREA)
        image = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    if rng.random() < aug.blur_p:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.5, 1.5))
    if rng.random() < aug.colour_p:
        gain, offset = rng.uniform(0.8, 1.2), rng.uniform(-20.0, 20.0)
        image = np.clip(image.astype(np.float32) * gain + offset, 0, 255).astype(np.uint8)
    return image


def _finish(image: np.ndarray, size: int, rng: np.random.Generator, *, augment: str = "basic",
            mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Augmentation shared by real and fake samples, then the runtime's resize; the mask follows the flip.

    ``mask`` (crop resolution, float) comes back at the trunk's resolution (``size // 32``), the target of the
    auxiliary blend-mask output.
    """
    aug = AUGMENTATIONS[augment]
    if rng.random() < 0.5:
        image = image[:, ::-1]
        mask = None if mask is None else mask[:, ::-1]
    if aug.degrade:
        image = _degrade(np.ascontiguousarray(image), rng, aug)
    if aug.double_jpeg_p and rng.random() < aug.double_jpeg_p:
        image = _jpeg(image, int(rng.integers(*aug.jpeg_quality)))
    if rng.random() < aug.jpeg_p:
        image = _jpeg(image, int(rng.integers(*aug.jpeg_quality)))
    side = size // 32
    small = None if mask is None else cv2.resize(np.ascontiguousarray(mask, np.float32), (side, side),
                                                 interpolation=cv2.INTER_AREA).astype(np.float16)
    return cv2.resize(np.ascontiguousarray(image), (size, size), interpolation=cv2.INTER_AREA), small


def make_samples(tracks: Sequence[FaceTrack], cfg: FrameConfig) -> list[Sample]:
    """Real crops (two augmentations each) against self-blends and identity swaps of the same crops.

    Swaps pair a crop with a random crop of another identity; user-supplied fakes (label 1 tracks) are used as
    they are unless ``cfg.labelled_fakes`` is off. The list is deterministic for ``cfg.seed``.
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
            blended, mask = self_blend(crop, marks, rng)
            add(blended, 1, track.item.identities, "sbi", mask)
            if others:
                donor = others[int(rng.integers(len(others)))]
                j = int(rng.integers(len(donor.crops)))
                swapped, mask = landmark_swap(donor.crops[j], donor.landmarks[j], crop, marks, rng)
                add(swapped, 1, track.item.identities + donor.item.identities, "swap", mask)
    for track in (t for t in tracks if t.item.label == 1 and cfg.labelled_fakes):
        for i in _select(track, cfg.per_track):
            add(track.crops[i], 1, track.item.identities, track.item.family, None)
    return samples


def normalise(images: np.ndarray) -> np.ndarray:
    """``N x S x S x 3`` uint8 RGB crops as the backbone's normalised ``N x 3 x S x S`` float32 input."""
    x = (images.astype(np.float32) / 255.0 - np.float32(MEAN[0])) / np.float32(STD[0])
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def _onnx_trunk(trunk: Trunk, size: int, path: Path) -> Any:
    import onnxruntime as ort

    torch.onnx.export(trunk.eval(), (torch.zeros(1, 3, size, size),), str(path), input_names=["x"],
                      output_names=["features"], dynamic_axes={"x": {0: "n"}, "features": {0: "n"}},
                      opset_version=17, dynamo=False)
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _run_batched(session: Any, images: np.ndarray, batch: int = 64) -> np.ndarray:
    """Trunk outputs of uint8 images, normalised batch by batch (a whole float copy of a large bank would not fit
    in memory: 40,000 crops at 160 px are 12 GB as float32)."""
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: normalise(images[i:i + batch])})[0]
                           for i in range(0, len(images), batch)])


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
