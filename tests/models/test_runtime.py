"""ONNX Runtime detectors on small graphs built with ``onnx.helper`` (real sessions, no mocks)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tamperscope.errors import NotFoundError, UsageError
from tamperscope.models.runtime import ClipModel, FrameModel, ModelSpec, load_model, preprocess


def test_frame_model_scores_follow_normalised_mean(tmp_path: Path, mean_model: Callable[..., Path]) -> None:
    spec = {"kind": "frame", "input_size": 32, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "output": "logit"}
    model = load_model(mean_model(tmp_path / "f.onnx", 4, spec))
    assert isinstance(model, FrameModel)
    crops = np.stack([np.full((48, 40, 3), v, np.uint8) for v in (0, 128, 255)])
    pred = model.predict(crops)
    expected_logits = np.array([-1.0, 128 / 255 * 2 - 1, 1.0])
    np.testing.assert_allclose(pred.logits, expected_logits, atol=1e-5)
    np.testing.assert_allclose(pred.scores, 1 / (1 + np.exp(-expected_logits)), atol=1e-6)
    assert pred.extra["saliency"].shape == (3, 3, 32, 32)


def test_clip_model_checks_window_length(tmp_path: Path, mean_model: Callable[..., Path]) -> None:
    spec = {"kind": "clip", "input_size": 16, "mean": [0, 0, 0], "std": [1, 1, 1], "output": "probability",
            "clip_length": 4}
    model = load_model(mean_model(tmp_path / "c.onnx", 5, spec))
    assert isinstance(model, ClipModel)
    windows = np.zeros((2, 4, 16, 16, 3), np.uint8)
    windows[1] = 255
    np.testing.assert_allclose(model.predict(windows).scores, [0.0, 1.0], atol=1e-6)
    with pytest.raises(UsageError):
        model.predict(np.zeros((1, 3, 16, 16, 3), np.uint8))
    with pytest.raises(UsageError):
        FrameModel(tmp_path / "c.onnx")


def test_missing_and_invalid_specs(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        load_model(tmp_path / "absent.onnx")
    (tmp_path / "bad.yaml").write_text("kind: audio\n", encoding="utf-8")
    with pytest.raises(UsageError):
        load_model(tmp_path / "bad.onnx")


def test_preprocess_layout_keeps_leading_axes() -> None:
    spec = ModelSpec(kind="clip", input_size=16, mean=(0, 0, 0), std=(1, 1, 1))
    x = np.zeros((2, 3, 10, 12, 3), np.uint8)
    x[..., 0] = 255
    out = preprocess(x, spec)
    assert out.shape == (2, 3, 3, 16, 16) and out.dtype == np.float32
    assert np.allclose(out[:, :, 0], 1.0) and np.allclose(out[:, :, 1:], 0.0)
