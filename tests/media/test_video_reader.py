"""The video reader: PTS timestamps (also VFR), rotation, sample aspect ratio, detail renderings, corrupt input."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from tamperscope.errors import InputRejectedError
from tamperscope.media.frames import normalised_size
from tamperscope.media.video_reader import VideoReader
from tests.conftest import ffmpeg


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 s of 640x360 at 30 fps whose left half is red (orientation marker)."""
    out = tmp_path_factory.mktemp("decode") / "base.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=c=blue:size=640x360:rate=30:duration=2", "-vf",
           "drawbox=x=0:y=0:w=320:h=360:color=red:t=fill", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(out))
    return out


def _frames(path: Path, long_side: int = 256) -> list:
    with VideoReader(path, long_side=long_side) as reader:
        return list(reader)


def test_normalised_size_keeps_aspect() -> None:
    assert normalised_size(1920, 1080, 512) == (512, 288)
    assert normalised_size(1080, 1920, 512) == (288, 512)
    with pytest.raises(ValueError):
        normalised_size(0, 10, 512)


def test_decodes_every_frame_with_pts_times(base: Path) -> None:
    frames = _frames(base)
    assert len(frames) == 60
    assert [f.index for f in frames] == list(range(60))
    assert frames[0].t_ms == 0 and frames[30].t_ms == 1000 and frames[-1].t_ms == 1967
    assert frames[0].key
    assert frames[0].rgb.shape == (144, 256, 3) and frames[0].rgb.dtype == np.uint8
    left, right = frames[0].rgb[:, :100].mean(axis=(0, 1)), frames[0].rgb[:, -100:].mean(axis=(0, 1))
    assert left[0] > 200 and left[2] < 50 and right[2] > 200


def test_variable_frame_rate_times_come_from_pts(tmp_path: Path, base: Path) -> None:
    vfr = tmp_path / "vfr.mkv"
    # First second at 30 fps, then every frame's timestamp stretched 3x: t_ms must follow the PTS.
    ffmpeg("-i", str(base), "-vf", "setpts='if(lt(N,30),N,30+(N-30)*3)/30/TB'", "-fps_mode", "vfr",
           "-c:v", "libx264", str(vfr))
    frames = _frames(vfr)
    times = [f.t_ms for f in frames]
    assert times[29] == pytest.approx(967, abs=2)
    assert times[31] - times[30] == pytest.approx(100, abs=2)
    assert times[-1] == pytest.approx(1000 + 29 * 100, abs=3)


def test_rotation_side_data_is_applied(tmp_path: Path, base: Path) -> None:
    rotated = tmp_path / "rot.mp4"
    ffmpeg("-i", str(base), "-metadata:s:v:0", "rotate=90", "-c", "copy", str(rotated))
    frame = _frames(rotated)[0]
    assert frame.rgb.shape == (256, 144, 3)
    # ffmpeg's own autorotation is the reference.
    reference = tmp_path / "ref.png"
    ffmpeg("-i", str(rotated), "-frames:v", "1", "-vf", "scale=144:256:flags=area", str(reference))
    expected = np.asarray(Image.open(reference).convert("RGB")).astype(int)
    assert np.abs(frame.rgb.astype(int) - expected).mean() < 6


def test_sample_aspect_ratio_is_honoured(tmp_path: Path, base: Path) -> None:
    anamorphic = tmp_path / "sar.mp4"
    ffmpeg("-i", str(base), "-vf", "scale=320:360,setsar=2", "-c:v", "libx264", str(anamorphic))
    assert _frames(anamorphic)[0].rgb.shape == (144, 256, 3)


def test_corrupt_input_is_rejected(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00" * 1000)
    with pytest.raises(InputRejectedError):
        _frames(junk)


def test_resolution_change_mid_stream_keeps_one_output_size(tmp_path: Path) -> None:
    parts = []
    for n, size in enumerate(["320x240", "640x360"]):
        part = tmp_path / f"p{n}.ts"
        ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration=1", "-c:v", "libx264", "-pix_fmt",
               "yuv420p", str(part))
        parts.append(part.read_bytes())
    joined = tmp_path / "joined.ts"
    joined.write_bytes(b"".join(parts))
    frames = _frames(joined)
    assert len(frames) == 50
    assert {f.rgb.shape for f in frames} == {(192, 256, 3)}


def test_detail_rendering_is_larger_and_upright(tmp_path: Path, base: Path) -> None:
    rotated = tmp_path / "rot.mp4"
    ffmpeg("-i", str(base), "-metadata:s:v:0", "rotate=90", "-c", "copy", str(rotated))
    with VideoReader(rotated, long_side=128, detail_long_side=400) as reader:
        frame = next(iter(reader))
        assert frame.detail is not None
        detail = frame.detail()
    assert detail.shape == (400, 225, 3) and frame.rgb.shape == (128, 72, 3)
    small = cv2.resize(detail, (72, 128), interpolation=cv2.INTER_AREA)
    assert np.abs(small.astype(int) - frame.rgb.astype(int)).mean() < 4
    with VideoReader(base, long_side=1024, detail_long_side=1280) as reader:
        assert next(iter(reader)).detail is None  # source (640) not larger than the normalised frame


def test_raw_frames_rendered_on_demand_match_the_iteration(base: Path) -> None:
    """``raw_frames`` + ``render`` (what the dense landmark pass uses) gives the frames ``__iter__`` gives."""
    frames = _frames(base)
    with VideoReader(base, long_side=256) as reader:
        raw = list(reader.raw_frames())
        rendered = {index: reader.render(frame) for index, _, _, frame in raw if index % 7 == 0}
    assert [(i, t, k) for i, t, k, _ in raw] == [(f.index, f.t_ms, f.key) for f in frames]
    assert rendered and all(np.array_equal(rgb, frames[i].rgb) for i, rgb in rendered.items())


def test_decoded_subset_equals_the_iteration(tmp_path: Path, base: Path) -> None:
    """``decoded`` on some raw frames (what training uses) gives those frames' ``rgb`` and ``detail`` as iterated."""
    rotated = tmp_path / "rot.mp4"
    ffmpeg("-i", str(base), "-metadata:s:v:0", "rotate=90", "-c", "copy", str(rotated))
    with VideoReader(rotated, long_side=128, detail_long_side=400) as reader:
        every = {f.index: (f.rgb, f.detail()) for f in reader if f.detail is not None}
    with VideoReader(rotated, long_side=128, detail_long_side=400) as reader:
        picked = [reader.decoded(*raw) for raw in reader.raw_frames() if raw[0] % 9 == 4]
    assert len(every) == 60 and len(picked) == 7
    for frame in picked:
        assert frame.detail is not None and frame.detail().shape == (400, 225, 3)
        np.testing.assert_array_equal(frame.rgb, every[frame.index][0])
        np.testing.assert_array_equal(frame.detail(), every[frame.index][1])
