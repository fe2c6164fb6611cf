"""The media session: one decode pass leaves the dense pass's frames and the audio; one fetch, one decode, one
ffprobe and one ExifTool run per analysis."""

from __future__ import annotations

import contextlib
import io
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image

from tamperscope.custody.intake import ingest_path
from tamperscope.media import session as session_module
from tamperscope.media.audio import AudioCollector, extract_audio
from tamperscope.media.session import FrameCache, MediaSession, StoredImage
from tamperscope.media.video_reader import VideoReader
from tamperscope.pipeline.runner import analyze_asset
from tamperscope.probe import tools
from tamperscope.settings import LimitSettings
from tamperscope.stages.base import FRAMES_MEMO, StageContext
from tamperscope.stages.metadata import thumbnail_size
from tamperscope.store import queries
from tamperscope.store.models import Asset
from tamperscope.workspace import Workspace


def test_second_rendering_and_audio_match_their_own_passes(small_video: Path) -> None:
    cache = FrameCache(max_bytes=1 << 30)
    with VideoReader(small_video, long_side=128, second_long_side=200, audio=AudioCollector) as reader:
        for frame in reader:
            assert frame.second is not None
            cache.append(frame.t_ms, frame.second())
        cache.finish(reader.info.fps)
        assert reader.audio is not None
        collected = reader.audio.finish()
    with VideoReader(small_video, long_side=200) as own:
        alone = [(frame.t_ms, frame.rgb) for frame in own]
    assert cache.complete and cache.times == [t for t, _ in alone]
    assert all(np.array_equal(render(), rgb) for (_, render), (_, rgb) in zip(cache.frames(), alone, strict=True))
    extracted = extract_audio(small_video)
    assert collected is not None and extracted is not None
    assert collected.start_s == extracted.start_s and np.array_equal(collected.samples, extracted.samples)
    cache.close()


def test_frame_cache_over_its_budget_is_not_used() -> None:
    cache = FrameCache(max_bytes=2 * 12)
    for t in range(3):
        cache.append(t, np.full((2, 2, 3), t, np.uint8))
    cache.finish(25.0)
    assert not cache.complete and not cache.accepting and cache.times == []
    cache.close()
    known = FrameCache(max_bytes=100 * 12, expected_frames=101)  # the stream's length says it cannot fit
    known.append(0, np.zeros((2, 2, 3), np.uint8))
    assert not known.accepting and known.times == []
    known.close()


def test_session_fetches_once_and_extracts_audio_when_no_pass_left_it(small_video: Path) -> None:
    opened: list[int] = []

    @contextlib.contextmanager
    def open_local() -> Iterator[Path]:
        opened.append(1)
        yield small_video

    media = MediaSession(open_local)
    with media.local_path() as first, media.local_path() as second:
        assert first == second == small_video
    track = media.audio()
    assert track is not None and track.duration_s > 1.5 and media.audio() is track
    assert len(opened) == 1
    media.close()


@contextlib.contextmanager
def _counting(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    counts: dict[str, Any] = {"tools": [], "opens": 0, "fetches": 0}
    real_run, real_open, real_local = subprocess.run, av.open, ws.store.local_path

    def run(args: list[str], *a: Any, **kw: Any) -> Any:
        counts["tools"].append([Path(args[0]).name, *args[1:2]])
        return real_run(args, *a, **kw)

    def open_(*a: Any, **kw: Any) -> Any:
        counts["opens"] += 1
        return real_open(*a, **kw)

    def local_path(key: str) -> Any:
        counts["fetches"] += 1
        return real_local(key)

    monkeypatch.setattr(subprocess, "run", run)
    monkeypatch.setattr(av, "open", open_)
    monkeypatch.setattr(ws.store, "local_path", local_path)
    yield counts


def test_a_video_analysis_fetches_decodes_and_probes_once(ws: Workspace, small_video: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    asset_id = ingest_path(ws, small_video).asset_id
    tools.tool_version("ffprobe"), tools.tool_version("exiftool"), tools.tool_version("mediainfo")
    with _counting(ws, monkeypatch) as counts:
        result = analyze_asset(ws, asset_id, only=["metadata", "video", "temporal", "avsync"])
    assert not result.failed and set(result.ran) | set(result.not_applicable) == {"metadata", "video", "temporal",
                                                                                  "avsync"}
    runs = [tool for tool, *_ in counts["tools"]]
    assert runs.count("ffprobe") == 0  # intake's probe is reused
    assert runs.count("exiftool") == 1
    assert counts["fetches"] == 1
    assert counts["opens"] == 1  # pictures and audio from one demux
    with ws.db.read_session() as session:
        asset = session.get(Asset, asset_id)
        assert asset is not None and asset.probe_json is not None
        assert asset.probe_json["packets"] and asset.probe_json["streams"]
        assert asset.probe_json["format"]["filename"] == ws.store.path(asset.storage_key)  # not intake's temp copy


def test_jpeg_thumbnail_read_from_exiftool_offsets_without_a_second_run(shared_dir: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    path = shared_dir / "exif" / "ianare_jpg_Canon_40D.jpg"
    exif = tools.run_json_tool(["exiftool", "-j", "-G1", "-a", "-u", "-n", str(path)], timeout_s=30,
                               max_output_bytes=1 << 24)[0]
    extracted = tools.run_tool(["exiftool", "-b", "-ThumbnailImage", str(path)], timeout_s=30,
                               max_output_bytes=1 << 24).stdout
    with Image.open(io.BytesIO(extracted)) as image:
        expected = image.size
    calls: list[list[str]] = []
    monkeypatch.setattr(subprocess, "run", lambda args, *a, **kw: calls.append(args))
    assert thumbnail_size(path, exif, LimitSettings()) == expected
    assert calls == []
    assert thumbnail_size(path, {"File:FileType": "JPEG"}, LimitSettings()) is None


def test_an_image_analysis_decodes_the_image_once(ws: Workspace, small_jpeg: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    decoded: list[Path] = []
    real = session_module.read_stored_image

    def counting(path: Path, *args: Any) -> StoredImage:
        decoded.append(path)
        return real(path, *args)

    monkeypatch.setattr(session_module, "read_stored_image", counting)
    asset_id = ingest_path(ws, small_jpeg).asset_id
    result = analyze_asset(ws, asset_id, only=["video", "forensics"])
    assert sorted(result.ran) == ["forensics", "video"] and not result.failed
    assert len(decoded) == 1


def test_memo_makes_once_across_threads_until_forgotten() -> None:
    media = MediaSession(contextlib.nullcontext)  # type: ignore[arg-type]
    made: list[int] = []

    def make() -> list[int]:
        made.append(1)
        return [len(made)]

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: media.memo("k", make), range(8)))
    assert made == [1] and all(r is results[0] for r in results)
    media.forget("k")
    assert media.memo("k", make) == [2]
    media.close()


def test_stages_share_one_load_of_the_frames(ws: Workspace, small_video: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    asset_id = ingest_path(ws, small_video).asset_id
    assert not analyze_asset(ws, asset_id, only=["video"]).failed
    loads: list[str] = []
    real = queries.frames

    def counting(session: Any, aid: str) -> Any:
        loads.append(aid)
        return real(session, aid)

    monkeypatch.setattr(queries, "frames", counting)
    with ws.db.read_session() as session:
        asset = session.get(Asset, asset_id)
        assert asset is not None
        session.expunge(asset)
    first = StageContext(ws=ws, asset=asset, stage_name="temporal")
    second = StageContext(ws=ws, asset=asset, stage_name="deep", media=first.media)
    frames = first.frames()
    assert frames and second.frames() is frames and loads == [asset_id]
    with ws.db.read_session() as session:
        assert [f.frame_id for f in frames] == [f.frame_id for f in real(session, asset_id)]
    first.media.forget(FRAMES_MEMO)  # the video stage does this before rewriting them
    assert second.frames() == frames and len(loads) == 2
    first.media.close()
