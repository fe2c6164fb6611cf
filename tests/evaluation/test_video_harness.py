"""``tamperscope eval-video`` end to end on four tiny generated videos with tiny per-fold ONNX models."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select
from typer.testing import CliRunner

from tamperscope.cli.main import app
from tamperscope.evaluation.video_pipeline import pipeline_stages
from tamperscope.evaluation.video_systems import SYSTEMS
from tamperscope.settings import Settings
from tamperscope.store.models import StageRun
from tamperscope.workspace import Workspace
from tests.conftest import ffmpeg

SPEC = {"input_size": 16, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "output": "logit", "clip_length": 16}


def _mean_graph(path: Path, rank: int, kind: str) -> None:
    """A graph whose logit is the mean of its input."""
    onnx = pytest.importorskip("onnx")
    helper = onnx.helper
    shape: list[int | str] = ["N", *(["T"] if rank == 5 else []), 3, "S", "S"]
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, shape)
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 1])
    axes = helper.make_tensor("axes", onnx.TensorProto.INT64, [rank - 1], list(range(1, rank)))
    new_shape = helper.make_tensor("shape", onnx.TensorProto.INT64, [2], [-1, 1])
    nodes = [helper.make_node("ReduceMean", ["x", "axes"], ["m"], keepdims=0),
             helper.make_node("Reshape", ["m", "shape"], ["y"])]
    graph = helper.make_graph(nodes, "mean", [x], [y], initializer=[axes, new_shape])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.save(model, str(path))
    path.with_suffix(".yaml").write_text(yaml.safe_dump({**SPEC, "kind": kind}), encoding="utf-8")


@pytest.mark.slow
def test_eval_video_runs_each_fold_with_its_models_and_caches(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    lines = ["path,label,family,identity,group,fold"]
    for n, (pattern, label, fold) in enumerate([("testsrc2", 0, 0), ("smptebars", 1, 0), ("testsrc", 0, 1),
                                                ("rgbtestsrc", 1, 1)]):
        ffmpeg("-f", "lavfi", "-i", f"{pattern}=size=128x96:rate=10:duration=1", "-c:v", "libx264",
               "-pix_fmt", "yuv420p", str(data / f"v{n}.mp4"))
        lines.append(f"v{n}.mp4,{label},{'gen' if label else 'real'},i{n},g{n},{fold}")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("\n".join(lines) + "\n")
    models = tmp_path / "cv"
    for k in (0, 1):
        (models / f"fold{k}").mkdir(parents=True)
        _mean_graph(models / f"fold{k}" / "frame.onnx", 4, "frame")
        _mean_graph(models / f"fold{k}" / "clip.onnx", 5, "clip")
    out, workspace = tmp_path / "out", tmp_path / "ws"
    args = ["--home", str(tmp_path / "home"), "eval-video", "--data", str(data), "--manifest", str(manifest),
            "--models-dir", str(models), "--out", str(out), "--workspace", str(workspace), "--forensics-frames", "1",
            "--no-write-artifact"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    ran = [set(line.split(", ran ")[1].split(",")) for line in first.output.splitlines() if "/4] v" in line]
    assert len(ran) == 4 and all({"metadata", "video", "deep"} <= r <= set(pipeline_stages()) for r in ran), (
        first.output)  # per video, the stages that ran: every one the harness names, fusion never
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["videos"] == 4 and summary["timing"]["ran_now"] == 4 and not summary["failed"]
    # every system is either evaluated or listed as lacking evidence (test patterns have few or no faces)
    assert set(summary["systems"]) | set(summary["skipped_systems"]) == set(SYSTEMS)
    assert "metadata" in summary["systems"] and (out / "metrics.md").is_file() and (out / "videos.csv").is_file()
    assert all(m["n"] == 4 and 0.0 <= m["ece"] <= 1.0 for m in summary["systems"].values())
    assert "artifact" not in summary
    ws = Workspace.open(Settings(home=workspace))
    try:
        with ws.db.session() as s:
            deep = {r.asset_id: r.params_json["frame_path"]
                    for r in s.scalars(select(StageRun).where(StageRun.stage == "deep"))}
    finally:
        ws.close()
    with (out / "videos.csv").open(newline="") as fh:
        videos = list(csv.DictReader(fh))
    assert len(videos) == 4
    for video in videos:
        assert deep[video["asset_id"]] == str(models / f"fold{video['fold']}" / "frame.onnx")
    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0, second.output
    assert sum(line.endswith(", cached") for line in second.output.splitlines()) == 4, second.output
    again = json.loads((out / "metrics.json").read_text())
    assert again["timing"]["ran_now"] == 0
    assert again["systems"]["metadata"]["auc"] == summary["systems"]["metadata"]["auc"]
    # a fold's model retrained in place (here: its sidecar changed) re-runs that fold's videos only: the deep
    # stage's fingerprint covers the model files' bytes
    sidecar = models / "fold0" / "frame.yaml"
    sidecar.write_text(sidecar.read_text() + "# retrained\n")
    third = CliRunner().invoke(app, args)
    assert third.exit_code == 0, third.output
    assert json.loads((out / "metrics.json").read_text())["timing"]["ran_now"] == 2
