"""The video stage end to end: shots, stored frames, faces_json, windows, on SQLite and PostgreSQL."""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from tamperscope.custody.intake import ingest_path
from tamperscope.media.windows import load_window
from tamperscope.pipeline.runner import analyze_asset
from tamperscope.samples.shots import face_video, video_with_known_cuts
from tamperscope.settings import Settings
from tamperscope.stages.video import collector_paused, decode_png
from tamperscope.store.models import Frame, Shot, StageRun, Window
from tamperscope.workspace import Workspace


def _rows(ws: Workspace, asset_id: str) -> tuple[list[Shot], list[Frame], list[Window]]:
    with ws.db.session() as session:
        shots = list(session.execute(select(Shot).where(Shot.asset_id == asset_id).order_by(Shot.index)).scalars())
        frames = list(session.execute(select(Frame).where(Frame.asset_id == asset_id).order_by(Frame.t_ms))
                      .scalars())
        windows = list(session.execute(select(Window).where(Window.asset_id == asset_id)).scalars())
        session.expunge_all()
    return shots, frames, windows


@pytest.fixture
def no_faces(settings: Settings) -> Settings:
    return settings.model_copy(update={"video": settings.video.model_copy(update={"faces": False})})


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def cut_ws(request: pytest.FixtureRequest, no_faces: Settings) -> Iterator[Workspace]:
    settings = no_faces
    if request.param == "postgres":
        settings = settings.model_copy(update={"db_url": request.getfixturevalue("postgres_url")})
    workspace = Workspace.open(settings)
    yield workspace
    workspace.close()


def test_shots_frames_and_windows(cut_ws: Workspace, tmp_path: Path) -> None:
    known = video_with_known_cuts(tmp_path / "cuts.mp4", [40, 9, 50], rate=30, size="320x180")
    asset_id = ingest_path(cut_ws, known.path).asset_id
    result = analyze_asset(cut_ws, asset_id, only=["video"])
    assert result.ran == ["video"] and not result.failed
    shots, frames, windows = _rows(cut_ws, asset_id)
    assert [s.frame_start for s in shots] == [0, 40, 49]
    assert shots[1].t_start_ms == 1333 and shots[1].t_end_ms == 1633
    assert shots[0].detector == "start" and "adaptive" in shots[1].detector and 0.5 <= shots[1].confidence <= 1
    per_shot = {s.shot_id: [f for f in frames if f.shot_id == s.shot_id] for s in shots}
    assert all(len(fs) >= 3 for fs in per_shot.values())  # the 0.3 s inserted shot too
    assert all(fs[0].keyframe and fs[0].frame_index == s.frame_start for s, fs in zip(shots, per_shot.values(),
                                                                                         strict=True))
    assert len(frames) == pytest.approx(99 / 30 * 8, abs=4)
    first = frames[0]
    png = cut_ws.store.get_bytes(cut_ws.store.key_of(first.uri or ""))
    assert hashlib.sha1(png).hexdigest() == first.sha1
    assert decode_png(png).shape == (first.height, first.width, 3) == (288, 512, 3)
    assert first.frame_id == f"{asset_id}:f000000000" and len(first.phash or "") == 16
    assert all(f.faces_json == [] for f in frames)
    assert {w.shot_id for w in windows} == {s.shot_id for s in shots} and all(w.track_id is None for w in windows)
    clip = load_window(cut_ws, windows[0].window_id)
    assert clip.dtype == np.uint8 and clip.shape[1:] == (224, 224, 3)
    assert clip.shape[0] == len(windows[0].frame_ids_json) <= 16
    # Re-running rewrites the same rows.
    analyze_asset(cut_ws, asset_id, only=["video"], force=True)
    again = _rows(cut_ws, asset_id)
    assert [f.frame_id for f in again[1]] == [f.frame_id for f in frames]
    assert sorted(w.window_id for w in again[2]) == sorted(w.window_id for w in windows)


@pytest.mark.slow
def test_faces_tracks_and_face_windows(ws: Workspace, tmp_path: Path) -> None:
    video = face_video(tmp_path / "face.mp4", seconds=2.5, size="480x270")
    asset_id = ingest_path(ws, video).asset_id
    assert not analyze_asset(ws, asset_id, only=["video"]).failed
    shots, frames, windows = _rows(ws, asset_id)
    assert len(shots) == 1
    with_face = [f for f in frames if f.faces_json]
    assert len(with_face) >= 0.9 * len(frames)
    face = with_face[0].faces_json[0]
    assert set(face) == {"track_id", "box", "score", "landmarks", "crop_uri", "crop_box"}
    assert len(face["landmarks"]) == 478 and all(len(p) == 3 for p in face["landmarks"])
    points = np.array(face["landmarks"])
    assert points[:, 0].min() >= 0 and points[:, 0].max() <= with_face[0].width
    assert {f.faces_json[0]["track_id"] for f in with_face} == {0}
    crop = decode_png(ws.store.get_bytes(ws.store.key_of(face["crop_uri"])))
    assert crop.shape == (224, 224, 3)
    face_windows = [w for w in windows if w.track_id == 0]
    assert face_windows and windows[0].window_id == f"{asset_id}:c0:0"
    assert load_window(ws, face_windows[0].window_id).shape == (16, 224, 224, 3)
    with ws.db.session() as session:
        summary = session.get(StageRun, (asset_id, "video")).summary_json
    assert summary["tracks"] == 1 and summary["faces"] == len(with_face)


def test_image_is_one_shot_one_frame(ws: Workspace, small_jpeg: Path) -> None:
    asset_id = ingest_path(ws, small_jpeg).asset_id
    assert not analyze_asset(ws, asset_id, only=["video"]).failed
    shots, frames, windows = _rows(ws, asset_id)
    assert len(shots) == 1 and len(frames) == 1 and len(windows) == 1
    assert frames[0].keyframe and (frames[0].width, frames[0].height) == (512, 384)
    assert shots[0].t_start_ms == shots[0].t_end_ms == 0


@pytest.mark.parametrize("enabled", [True, False])
def test_collector_paused_while_building_and_left_as_it_was(enabled: bool) -> None:
    (gc.enable if enabled else gc.disable)()
    try:
        with collector_paused():
            assert not gc.isenabled()
            rows = [[float(n), 0.5, 1.5] for n in range(5000)]  # far past the young generation's threshold
            assert gc.get_count()[0] >= len(rows)  # no young collection ran in between (it resets the count)
        assert gc.isenabled() is enabled
        with pytest.raises(RuntimeError), collector_paused():
            raise RuntimeError("building failed")
        assert gc.isenabled() is enabled
    finally:
        gc.enable()
