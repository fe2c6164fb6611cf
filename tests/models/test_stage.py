"""The ``deep`` stage end to end on a synthetic talking head, with small ONNX graphs as models."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from tamperscope.custody.intake import ingest_path
from tamperscope.pipeline.registry import load_stage
from tamperscope.pipeline.runner import analyze_asset
from tamperscope.samples.talking_head import astronaut_rig, talking_head
from tamperscope.settings import Settings
from tamperscope.stages.deep import SALIENCY_FRAMES, saliency_png
from tamperscope.store.models import Detection
from tamperscope.workspace import Workspace

SPEC = {"input_size": 32, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "output": "logit", "clip_length": 16}


def _rows(ws: Workspace, asset_id: str) -> list[Detection]:
    with ws.db.session() as session:
        rows = list(session.scalars(select(Detection).where(Detection.asset_id == asset_id,
                                                            Detection.stage == "deep")))
        session.expunge_all()
    return rows


def test_registered_after_video() -> None:
    assert load_stage("deep").requires == ("video",)


def test_saliency_png_is_a_grey_image() -> None:
    import cv2

    png = saliency_png(np.arange(2 * 8 * 8, dtype=np.float32).reshape(2, 8, 8))
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    assert img.shape == (8, 8) and img.min() == 0 and img.max() == 255


def test_without_models_branches_are_explicitly_missing(tmp_path: Path, small_video: Path) -> None:
    settings = Settings(home=tmp_path / "home", actor="tester", models={"frame_path": "", "clip_path": ""})
    ws = Workspace.open(settings)
    try:
        asset_id = ingest_path(ws, small_video).asset_id
        assert not analyze_asset(ws, asset_id, only=["video", "deep"]).failed
        rows = _rows(ws, asset_id)
    finally:
        ws.close()
    assert {(r.module_name, r.status) for r in rows} == {("deep.frame", "not_applicable"),
                                                         ("deep.clip", "not_applicable")}


@pytest.fixture
def model_ws(tmp_path: Path, mean_model: Callable[..., Path]) -> Iterator[Workspace]:
    frame = mean_model(tmp_path / "frame.onnx", 4, {**SPEC, "kind": "frame"})
    clip = mean_model(tmp_path / "clip.onnx", 5, {**SPEC, "kind": "clip"})
    settings = Settings(home=tmp_path / "home", actor="tester",
                        models={"frame_path": frame, "clip_path": clip})
    workspace = Workspace.open(settings)
    yield workspace
    workspace.close()


@pytest.mark.slow
def test_face_video_scores_frames_and_windows(model_ws: Workspace, tmp_path: Path) -> None:
    clip = talking_head(tmp_path / "talk.mp4", rig=astronaut_rig(256, 256), duration_s=3.0)
    asset_id = ingest_path(model_ws, clip.path).asset_id
    result = analyze_asset(model_ws, asset_id, only=["video", "deep"])
    assert not result.failed and "deep" in result.ran
    rows = _rows(model_ws, asset_id)
    frames = [r for r in rows if r.module_name == "deep.frame" and r.status == "scored"]
    clips = [r for r in rows if r.module_name == "deep.clip"]
    assert len(frames) >= 10 and clips
    # The mean graph's logit is the normalised crop mean, so scores are a monotone function of brightness.
    assert all(0.0 < r.score < 1.0 for r in frames)
    kept = sum(r.saliency_uri is not None for r in frames)
    assert kept == min(SALIENCY_FRAMES, len(frames))  # the highest-scoring frames' maps, no more
    assert any(r.status == "scored" for r in clips)
