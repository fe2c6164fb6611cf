from __future__ import annotations

import io
import subprocess
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from tamperscope.custody.intake import ingest_path
from tamperscope.pipeline.registry import load_stage
from tamperscope.pipeline.runner import analyze_asset
from tamperscope.store.models import Detection, StageRun, Window
from tamperscope.workspace import Workspace

STAGES = ["video", "temporal", "avsync"]


def _detections(ws: Workspace, asset_id: str) -> list[Detection]:
    with ws.db.session() as session:
        rows = list(session.execute(select(Detection).where(Detection.asset_id == asset_id,
                                                            Detection.stage.in_(["temporal", "avsync"])))
                    .scalars())
        session.expunge_all()
    return rows


def test_stages_are_registered() -> None:
    assert load_stage("temporal").requires == ("video",)
    assert load_stage("avsync").requires == ("video",)


@pytest.mark.slow
def test_talking_head_end_to_end(ws: Workspace, make_clip) -> None:
    clip = make_clip(duration_s=6.0, offset_ms=300.0, blink_onsets_ms=(1000.0, 3500.0))
    asset_id = ingest_path(ws, clip.path).asset_id
    result = analyze_asset(ws, asset_id, only=STAGES)
    assert not result.failed and {"temporal", "avsync"} <= set(result.ran)
    rows = _detections(ws, asset_id)
    by = {(r.module_name, r.window_id): r for r in rows}
    offset = by[("avsync.offset", "asset")]
    assert offset.status == "scored" and offset.evidence_json["offset_ms"] == pytest.approx(300, abs=40)
    assert offset.score > 0.3  # 300 ms of audio lag is beyond the BT.1359 acceptability of 185 ms
    assert offset.evidence_json["segments"]
    assert by[("temporal.blink", "asset")].status == "insufficient_data"  # 6 s < min_face_s
    assert len(by[("temporal.blink", "asset")].evidence_json["events"]) == 2
    assert by[("temporal.head_pose", "asset")].status == "scored"
    assert by[("temporal.landmarks", "asset")].status == "scored"
    with ws.db.session() as session:
        windows = [w.window_id for w in session.execute(select(Window).where(Window.asset_id == asset_id))
                   .scalars()]
        runs = {r.stage: r for r in session.execute(select(StageRun).where(StageRun.asset_id == asset_id))
                .scalars()}
        session.expunge_all()
    assert windows
    for module in ("temporal.head_pose", "temporal.landmarks", "avsync.offset"):
        assert {w for (m, w) in by if m == module} >= set(windows)
    assert all(r.t_start_ms is not None and r.t_end_ms is not None for r in rows)
    assert runs["temporal"].summary_json["dense_frames"] == 150
    # One dense pass shared by both stages; the stored series opens.
    assert offset.evidence_json["dense_uri"] == by[("temporal.head_pose", "asset")].evidence_json["dense_uri"]
    series = ws.store.get_bytes(ws.store.key_of(by[("temporal.blink", "asset")].evidence_json["series_uri"]))
    with np.load(io.BytesIO(series)) as npz:
        assert npz["yaw_pitch_roll"].shape == (150, 3)
    again = analyze_asset(ws, asset_id, only=STAGES)
    assert not again.ran


@pytest.mark.slow
def test_face_without_audio_and_audio_without_face(ws: Workspace, make_clip, small_video: Path,
                                                   tmp_path: Path) -> None:
    mute = tmp_path / "mute.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(make_clip(duration_s=4.0).path), "-an",
                    "-c", "copy", str(mute)], check=True)
    mute_id = ingest_path(ws, mute).asset_id
    assert not analyze_asset(ws, mute_id, only=STAGES).failed
    rows = {(r.module_name, r.window_id): r for r in _detections(ws, mute_id)}
    assert rows[("avsync.offset", "asset")].status == "not_applicable"
    assert rows[("avsync.bilabial", "asset")].evidence_json["reason"] == "no audio stream"
    assert rows[("temporal.head_pose", "asset")].status == "scored"

    faceless_id = ingest_path(ws, small_video).asset_id  # testsrc2 pattern with a tone
    assert not analyze_asset(ws, faceless_id, only=STAGES).failed
    faceless = _detections(ws, faceless_id)
    assert faceless and all(r.status == "not_applicable" and r.score is None for r in faceless)
    assert {r.module_name for r in faceless} == {"temporal.blink", "temporal.head_pose", "temporal.landmarks",
                                                 "avsync.offset", "avsync.bilabial"}
