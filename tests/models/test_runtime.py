"""ONNX Runtime detectors on small graphs built with ``onnx.helper`` (real sessions, no mocks)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from tamperscope.errors import NotFoundError, UsageError
from tamperscope.models.runtime import ClipModel, FrameModel, ModelSpec, load_model, preprocess

onnx = pytest.importorskip("onnx")
helper = onnx.helper


def _mean_model(path: Path, rank: int, spec: dict[str, object]) -> Path:
    """Write a graph whose output is the mean of its input (one column per item) plus a saliency output."""
    axes = list(range(1, rank))
    shape: list[int | str] = ["N", *(["T"] if rank == 5 else []), 3, "S", "S"]
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, shape)
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 1])
    sal = helper.make_tensor_value_info("saliency", onnx.TensorProto.FLOAT, shape)
    axes_t = helper.make_tensor("axes", onnx.TensorProto.INT64, [len(axes)], axes)
    shape_t = helper.make_tensor("shape", onnx.TensorProto.INT64, [2], [-1, 1])
    nodes = [
        helper.make_node("ReduceMean", ["x", "axes"], ["m"], keepdims=0),
        helper.make_node("Reshape", ["m", "shape"], ["y"]),
        helper.make_node("Abs", ["x"], ["saliency"]),
    ]
    graph = helper.make_graph(nodes, "mean", [x], [y, sal], initializer=[axes_t, shape_t])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    path.with_suffix(".yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    return path


def test_frame_model_scores_follow_normalised_mean(tmp_path: Path) -> None:
    spec = {"kind": "frame", "input_size": 32, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "output": "logit"}
    model = load_model(_mean_model(tmp_path / "f.onnx", 4, spec))
    assert isinstance(model, FrameModel)
    crops = np.stack([np.full((48, 40, 3), v, np.uint8) for v in (0, 128, 255)])
    pred = model.predict(crops)
    expected_logits = np.array([-1.0, 128 / 255 * 2 - 1, 1.0])
    np.testing.assert_allclose(pred.logits, expected_logits, atol=1e-5)
    np.testing.assert_allclose(pred.scores, 1 / (1 + np.exp(-expected_logits)), atol=1e-6)
    assert pred.extra["saliency"].shape == (3, 3, 32, 32)


def test_clip_model_checks_window_length(tmp_path: Path) -> None:
    spec = {"kind": "clip", "input_size": 16, "mean": [0, 0, 0], "std": [1, 1, 1], "output": "probability",
            "clip_length": 4}
    model = load_model(_mean_model(tmp_path / "c.onnx", 5, spec))
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
