"""Training reads media through the runtime's readers: its frames and face crops are the pipeline's pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from tamperscope.custody.intake import ingest_path
from tamperscope.media.video_reader import VideoReader
from tamperscope.pipeline.runner import analyze_asset
from tamperscope.samples.shots import face_video
from tamperscope.settings import VideoSettings
from tamperscope.stages.video import decode_png
from tamperscope.store.models import Frame
from tamperscope.workspace import Workspace
from tamperscope_train.dataset import face_frames, load_tracks, scan
from tests.conftest import ffmpeg


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 1 s 1440x810 face video, and the same pictures stored turned a quarter clockwise with a display rotation
    that turns them back (larger than the detection long side, so faces are found on a scaled detail rendering)."""
    folder = tmp_path_factory.mktemp("same_pixels")
    upright = face_video(folder / "upright.mp4", seconds=1.0, size="1440x810", preset="ultrafast")
    sideways = folder / "sideways.mp4"
    ffmpeg("-i", str(upright), "-vf", "transpose=clock", "-c:v", "libx264", "-preset", "ultrafast", str(sideways))
    rotated = folder / "rotated.mp4"
    ffmpeg("-i", str(sideways), "-metadata:s:v:0", "rotate=90", "-c", "copy", str(rotated))
    return upright, rotated


def _exif_image(path: Path) -> tuple[Path, np.ndarray]:
    """A JPEG stored turned a quarter counter-clockwise with EXIF orientation 6, and its upright pixels."""
    upright = np.full((560, 800, 3), 90, np.uint8)
    upright[24:536, 144:656] = data.astronaut()
    exif = Image.Exif()
    exif[274] = 6  # turn 90 degrees clockwise to display
    Image.fromarray(np.rot90(upright, 1)).save(path, quality=95, exif=exif.tobytes())
    return path, upright


def _stage_crops(ws: Workspace, path: Path) -> dict[int, np.ndarray]:
    """The largest face crop per sampled frame, by ``t_ms``, as the ``video`` stage stored it (lossless PNG)."""
    asset_id = ingest_path(ws, path).asset_id
    assert not analyze_asset(ws, asset_id, only=["video"]).failed
    with ws.db.session() as session:
        frames = [(f.t_ms, f.faces_json) for f in session.query(Frame).filter(Frame.asset_id == asset_id)]
    crops = {}
    for t_ms, faces in frames:
        if faces:
            face = max(faces, key=lambda f: (f["box"][2] - f["box"][0]) * (f["box"][3] - f["box"][1]))
            crops[t_ms] = decode_png(ws.store.get_bytes(ws.store.key_of(face["crop_uri"])))
    return crops


def test_video_frames_are_the_stage_detail_renderings_upright(videos: tuple[Path, Path]) -> None:
    upright, rotated = videos
    settings = VideoSettings()
    for path in (upright, rotated):
        sampled = list(face_frames(path, 8.0, 240))
        with VideoReader(path, long_side=settings.long_side,
                         detail_long_side=settings.face_detect_long_side) as reader:
            stage = {f.t_ms: f.detail() for f in reader if f.detail is not None}  # what the stage detects on
        assert [k for k, _, _ in sampled] == list(range(8))
        for _, t_ms, rgb in sampled:
            assert rgb.shape == (720, 1280, 3)
            np.testing.assert_array_equal(rgb, stage[t_ms])
    # the rotated file renders upright: its frames are the upright file's, up to the second encode's loss
    pairs = zip(face_frames(upright, 8.0, 3), face_frames(rotated, 8.0, 3), strict=True)
    assert all(np.abs(a[2].astype(int) - b[2].astype(int)).mean() < 3 for a, b in pairs)


def test_max_frames_caps_the_grid(videos: tuple[Path, Path]) -> None:
    sampled = list(face_frames(videos[0], 4.0, 3))
    assert [(k, t_ms) for k, t_ms, _ in sampled] == [(0, 0), (1, 267), (2, 500)]


@pytest.mark.parametrize("which", [0, 1], ids=["upright", "rotated"])
def test_video_crops_equal_the_stage_crops(ws: Workspace, videos: tuple[Path, Path], which: int,
                                           tmp_path: Path) -> None:
    source = videos[which]
    (tmp_path / "data" / "real").mkdir(parents=True)
    (tmp_path / "data" / "real" / source.name).symlink_to(source)
    track = load_tracks(scan(tmp_path / "data"), tmp_path / "cache", fps=8.0, max_frames=240, progress=False)[0]
    stage = _stage_crops(ws, source)
    common = [n for n, t_ms in enumerate(track.t_ms) if int(t_ms) in stage]
    assert len(track.crops) >= 7 and len(common) >= 4  # the stage samples its own instants; half are shared
    for n in common:
        np.testing.assert_array_equal(track.crops[n], stage[int(track.t_ms[n])])


def test_image_with_exif_orientation_gives_the_stage_crop(ws: Workspace, tmp_path: Path) -> None:
    path, upright = _exif_image(tmp_path / "photo.jpg")
    (_, _, rgb), = face_frames(path, 8.0, 240)
    assert rgb.shape == upright.shape  # 800 px is under the detection long side: the upright image itself
    assert np.abs(rgb.astype(int) - upright.astype(int)).mean() < 4
    (tmp_path / "data" / "real").mkdir(parents=True)
    (tmp_path / "data" / "real" / path.name).symlink_to(path)
    track = load_tracks(scan(tmp_path / "data"), tmp_path / "cache", fps=8.0, max_frames=240, progress=False)[0]
    assert list(track.t_ms) == [0]
    np.testing.assert_array_equal(track.crops[0], _stage_crops(ws, path)[0])


def test_an_image_the_runtime_refuses_gives_no_frames(tmp_path: Path) -> None:
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"\xff\xd8 not a picture")
    assert list(face_frames(junk, 8.0, 240)) == []
