"""The ``model-check`` command on a small ONNX graph."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner

from tamperscope.cli.main import app


def test_model_check_runs_a_forward_pass(tmp_path: Path, mean_model: Callable[..., Path]) -> None:
    path = mean_model(tmp_path / "f.onnx", 4, {"kind": "frame", "input_size": 16, "mean": [0, 0, 0],
                                               "std": [1, 1, 1], "output": "probability"})
    result = CliRunner().invoke(app, ["model-check", str(path)])
    assert result.exit_code == 0, result.output
    assert "frame model f.onnx" in result.output and "grey-input score 0.5020" in result.output
    missing = CliRunner().invoke(app, ["model-check", str(tmp_path / "absent.onnx")])
    assert missing.exit_code != 0
