"""Small ONNX graphs built with ``onnx.helper`` for the runtime and stage tests (real sessions)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

MeanModel = Callable[[Path, int, dict[str, object]], Path]


@pytest.fixture(scope="session")
def mean_model() -> MeanModel:
    """Factory writing a graph whose score is the mean of its input, plus an ``|x|`` saliency output."""
    onnx = pytest.importorskip("onnx")
    helper = onnx.helper

    def write(path: Path, rank: int, spec: dict[str, object]) -> Path:
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

    return write
