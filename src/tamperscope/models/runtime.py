"""ONNX Runtime inference for user or shipped deep detectors (frame and clip models).

A model is an ``.onnx`` file plus a small YAML sidecar (same stem, ``.yaml``) that states what the network
expects and what it returns, so any checkpoint exported to ONNX can be plugged in without code::

    kind: frame            # frame: N x C x S x S input; clip: N x T x C x S x S input (or N x T x D embeddings)
    input: crops           # clip models: crops, or embeddings (the frame model's "embedding" output per frame)
    input_size: 224        # side S of the square input
    mean: [0.485, 0.456, 0.406]   # per-channel, on [0, 1] RGB
    std: [0.229, 0.224, 0.225]
    output: logit          # logit (sigmoid applied) or probability, index 0 of the first output = "manipulated"
    clip_length: 16        # clip models only: frames per window T

Only ``onnxruntime`` is imported here; training code (torch) lives in ``tamperscope_train`` and is never imported
at runtime.

References
----------
.. [1] ONNX Runtime, https://onnxruntime.ai (inference sessions, CPU execution provider).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import onnxruntime as ort
import yaml
from pydantic import BaseModel, Field, ValidationError

from tamperscope.errors import NotFoundError, UsageError


class ModelSpec(BaseModel):
    """What an ONNX detector expects and returns (the YAML sidecar)."""

    kind: Literal["frame", "clip"] = Field(description="frame model (one crop) or clip model (a window of crops)")
    input_size: int = Field(224, ge=16, le=1024, description="side of the square RGB input")
    mean: tuple[float, float, float] = Field((0.485, 0.456, 0.406), description="per-channel mean on [0, 1] RGB")
    std: tuple[float, float, float] = Field((0.229, 0.224, 0.225), description="per-channel std on [0, 1] RGB")
    output: Literal["logit", "probability"] = Field("logit", description="meaning of output 0, column 0")
    clip_length: int = Field(16, ge=1, le=64, description="frames per window (clip models)")
    input: Literal["crops", "embeddings"] = Field(
        "crops", description="clip models: face crops, or per-frame embeddings from the frame model's "
                             "'embedding' output")
    embedding_dim: int | None = Field(None, ge=1, description="length of the per-frame embedding (if any)")


def load_spec(path: Path) -> ModelSpec:
    """Read and validate a model's YAML sidecar.

    Parameters
    ----------
    path
        The ``.yaml`` file.

    Returns
    -------
    ModelSpec
        The validated specification.

    Raises
    ------
    NotFoundError
        If the file does not exist.
    UsageError
        If it is not valid YAML or does not match :class:`ModelSpec`.
    """
    if not path.is_file():
        raise NotFoundError(f"model spec not found: {path}")
    try:
        return ModelSpec.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    except (yaml.YAMLError, ValidationError) as exc:
        raise UsageError(f"invalid model spec {path}: {exc}") from exc


def preprocess(crops: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """Resize and normalise uint8 RGB crops to the network layout.

    Parameters
    ----------
    crops
        ``(..., H, W, 3)`` uint8 RGB images (any leading batch/time axes).
    spec
        The model specification (input size, mean, std).

    Returns
    -------
    numpy.ndarray
        ``(..., 3, S, S)`` float32 tensor.
    """
    if crops.ndim < 3 or crops.shape[-1] != 3:
        raise UsageError(f"expected (..., H, W, 3) RGB crops, got shape {crops.shape}")
    lead = crops.shape[:-3]
    flat = crops.reshape((-1, *crops.shape[-3:]))
    size = spec.input_size
    resized = np.stack([
        img if img.shape[:2] == (size, size) else cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
        for img in flat
    ]) if len(flat) else np.zeros((0, size, size, 3), np.uint8)
    x = (resized.astype(np.float32) / 255.0 - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2).reshape((*lead, 3, size, size)))


def session_options(threads: int) -> ort.SessionOptions:
    """CPU session options: ``threads`` intra-op threads that sleep when idle instead of spinning.

    Spinning idle threads wait for the next operator by busy-looping; on a few shared cores that burns CPU the
    other stages need (measured on the deep stage: 12.2-12.9 -> 8.1-8.9 CPU-ms per crop), with the same outputs.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


@dataclass
class Prediction:
    """Scores in [0, 1] (higher = more likely manipulated) and the raw network outputs."""

    scores: np.ndarray
    logits: np.ndarray
    extra: dict[str, np.ndarray]


class OnnxModel:
    """Common interface of frame and clip detectors over an ONNX Runtime session.

    Parameters
    ----------
    path
        The ``.onnx`` file; its sidecar ``<stem>.yaml`` is read unless ``spec`` is given.
    spec
        An explicit specification.
    threads
        Intra-op threads of the CPU session.
    """

    kind: Literal["frame", "clip"] = "frame"

    def __init__(self, path: Path, spec: ModelSpec | None = None, *, threads: int = 1) -> None:
        if not path.is_file():
            raise NotFoundError(f"model not found: {path}")
        self.path = path
        self.spec = spec if spec is not None else load_spec(path.with_suffix(".yaml"))
        if self.spec.kind != self.kind:
            raise UsageError(f"{path} is a {self.spec.kind} model, not a {self.kind} model")
        self.session = ort.InferenceSession(str(path), session_options(threads), providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]

    def _run(self, x: np.ndarray) -> Prediction:
        outputs = self.session.run(self.output_names, {self.input_name: x})
        raw = np.asarray(outputs[0], dtype=np.float64).reshape(len(x), -1)[:, 0]
        scores = 1.0 / (1.0 + np.exp(-raw)) if self.spec.output == "logit" else np.clip(raw, 0.0, 1.0)
        extra = {name: np.asarray(out) for name, out in zip(self.output_names[1:], outputs[1:], strict=True)}
        return Prediction(scores=scores, logits=raw, extra=extra)


class FrameModel(OnnxModel):
    """Per-face-crop detector (input ``N x 3 x S x S``)."""

    kind = "frame"

    def predict(self, crops: np.ndarray) -> Prediction:
        """Score face crops.

        Parameters
        ----------
        crops
            ``(N, H, W, 3)`` uint8 RGB crops.

        Returns
        -------
        Prediction
            One score per crop; extra outputs (e.g. a saliency map) by output name.
        """
        return self._run(preprocess(crops, self.spec))


class ClipModel(OnnxModel):
    """Per-window temporal detector (input ``N x T x 3 x S x S``)."""

    kind = "clip"

    def predict(self, windows: np.ndarray) -> Prediction:
        """Score windows of face crops (or of per-frame embeddings, when the spec's ``input`` says so).

        Parameters
        ----------
        windows
            ``(N, T, H, W, 3)`` uint8 RGB windows, or ``(N, T, D)`` float embeddings; ``T`` must equal the
            spec's ``clip_length``.

        Returns
        -------
        Prediction
            One score per window.
        """
        length = self.spec.clip_length
        if self.spec.input == "embeddings":
            if windows.ndim != 3 or windows.shape[1] != length:
                raise UsageError(f"expected (N, {length}, D) embeddings, got {windows.shape}")
            return self._run(np.ascontiguousarray(windows, dtype=np.float32))
        if windows.ndim != 5 or windows.shape[1] != length:
            raise UsageError(f"expected (N, {length}, H, W, 3) windows, got {windows.shape}")
        return self._run(preprocess(windows, self.spec))


def load_model(path: Path, *, threads: int = 1) -> FrameModel | ClipModel:
    """Open an ONNX detector of either kind, as its YAML sidecar says.

    Parameters
    ----------
    path
        The ``.onnx`` file (sidecar ``<stem>.yaml`` next to it).
    threads
        Intra-op threads.

    Returns
    -------
    FrameModel or ClipModel
        The loaded model.
    """
    spec = load_spec(path.with_suffix(".yaml"))
    cls = FrameModel if spec.kind == "frame" else ClipModel
    return cls(path, spec, threads=threads)
