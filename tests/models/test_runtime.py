"""ONNX Runtime detectors on small graphs built with ``onnx.helper`` (real sessions, no mocks)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from tamperscope.errors import NotFoundError, UsageError
from tamperscope.models.runtime import ClipModel, FrameModel, ModelSpec, load_model, preprocess

SHIPPED_FRAME = Path(__file__).resolve().parents[2] / "src" / "tamperscope" / "models" / "weights" / "frame.onnx"


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


@pytest.mark.skipif(not SHIPPED_FRAME.is_file(), reason="no shipped frame model")
def test_idle_threads_sleep_and_outputs_match_a_spinning_session() -> None:
    model = load_model(SHIPPED_FRAME, threads=2)
    options = model.session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.get_session_config_entry("session.inter_op.allow_spinning") == "0"
    spinning_options = ort.SessionOptions()
    spinning_options.intra_op_num_threads = 2
    spinning_options.inter_op_num_threads = 1
    spinning = ort.InferenceSession(str(SHIPPED_FRAME), spinning_options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(7)
    crops = rng.integers(0, 256, (6, 200, 180, 3), dtype=np.uint8)
    x = preprocess(crops, model.spec)
    ours = model.session.run(model.output_names, {model.input_name: x})
    theirs = spinning.run(model.output_names, {model.input_name: x})
    assert len(ours) == len(theirs) >= 1
    for a, b in zip(ours, theirs, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == b.tobytes()
