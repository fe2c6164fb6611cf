"""What determines a training run (data, frame and clip configurations, all stored in the manifests) and what a
run returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    #: a preset of ``frame_samples.AUGMENTATIONS``: ``basic`` (v2), ``strong`` (v3) or ``heavy``.
    augment: str = "strong"
    #: weight of the auxiliary blend-mask loss (Face X-ray / SBI-style boundary supervision); 0 switches it off.
    mask_weight: float = 0.5
    #: the trunk's last ``tune`` blocks are fine-tuned with the head (0: frozen trunk); the sample bank then holds
    #: the features of the first ``cut - tune`` blocks.
    tune: int = 0
    #: learning rate of the fine-tuned blocks relative to ``lr`` (pretrained weights move slowly).
    tune_lr_scale: float = 0.1
    #: train on the crops of the labelled fake videos too; False keeps only fakes synthesised from the real crops
    #: (self-blends and swaps), which pair every fake with a real of the same collection.
    labelled_fakes: bool = True

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
class TrainResult:
    """Paths and metrics of a training run."""

    onnx: Path
    spec: Path
    manifest: Path
    metrics: dict[str, Any] = field(default_factory=dict)
