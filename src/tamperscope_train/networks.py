"""The torch networks: the frozen trunk, the trained frame head, the clip head and the graphs exported to ONNX.

The exported frame graph returns the calibrated logit, a Grad-CAM map [1]_ (for a head that pools linearly,
Grad-CAM's channel weights are the head's pooled weights, so it is computed inside the graph) and the frozen
trunk's feature map, flattened, which the clip model reads.

References
----------
.. [1] R. R. Selvaraju et al., "Grad-CAM: Visual explanations from deep networks via gradient-based
       localization", ICCV 2017.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from tamperscope_train.backbone import EfficientNetLite0


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
