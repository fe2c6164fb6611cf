"""Budgets: decompression and duration bombs are refused at intake on their declared sizes and during analysis
on their decoded sizes; a stage past its wall-clock or memory budget ends ``limit_exceeded``, never stuck."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import select

from tamperscope.custody.intake import ingest_path
from tamperscope.custody.verify import verify
from tamperscope.errors import InputRejectedError, LimitExceededError, RejectReason
from tamperscope.media.image import open_image, read_image
from tamperscope.media.limits import DecodeLimits
from tamperscope.media.video_reader import VideoReader
from tamperscope.pipeline import registry
from tamperscope.pipeline.runner import analyze_asset
from tamperscope.probe.structure import check_png
from tamperscope.probe.validate import validate_file
from tamperscope.records import StageOutput
from tamperscope.settings import LimitSettings, Settings
from tamperscope.stages.base import Stage, StageBudget, StageContext, resident_bytes
from tamperscope.store.models import Asset, AuditEvent, StageRun
from tamperscope.workspace import Workspace


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_bomb(width: int, height: int, rows: int | None = None) -> bytes:
    """A gray PNG declaring ``width`` x ``height`` whose IDAT is one zlib stream of zero rows (all of them by
    default: a zlib bomb of about 1000:1; ``rows`` fewer: a tiny, incomplete stream)."""
    raw = b"\x00" * ((width + 1) * (rows if rows is not None else height))
    data = zlib.compress(raw, 9)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + _chunk(b"IDAT", data) + _chunk(b"IEND", b""))


def gif_bomb(screen: int) -> bytes:
    """A GIF89a with a ``screen`` x ``screen`` logical screen holding one 1x1 image."""
    header = b"GIF89a" + struct.pack("<HH", screen, screen) + bytes([0x80, 0, 0]) + b"\x00\x00\x00\xff\xff\xff"
    image = b"\x2c" + struct.pack("<HHHH", 0, 0, 1, 1) + b"\x00" + b"\x02\x02\x44\x01\x00"
    return header + image + b"\x3b"


def test_png_declaring_20000_squared_with_a_tiny_idat_is_refused_at_intake(ws: Workspace, tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_bomb(20000, 20000, rows=4))
    assert bomb.stat().st_size < 1000
    with pytest.raises(InputRejectedError) as caught:
        ingest_path(ws, bomb)
    assert caught.value.reason is RejectReason.TOO_MANY_PIXELS
    with ws.db.session() as session:
        asset = session.get(Asset, caught.value.asset_id)
        assert asset is not None and asset.status == "rejected" and asset.storage_key.startswith("quarantine/")
        actions = session.execute(select(AuditEvent.action)).scalars().all()
    assert "intake.rejected" in actions


def test_png_zlib_bomb_under_the_pixel_budget_is_counted_in_bounded_steps() -> None:
    """A 9000x9000 gray PNG inflating to 81 MB from 80 KB: the walk counts it without holding it."""
    import tracemalloc

    data = png_bomb(9000, 9000)
    assert len(data) < 200_000
    tracemalloc.start()
    found = check_png(data, max_pixels=100_000_000)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert (found.width, found.height) == (9000, 9000)
    assert peak < 8 * 2**20


def test_gif_with_a_huge_logical_screen_is_refused_at_intake(tmp_path: Path) -> None:
    bomb = tmp_path / "screen.gif"
    bomb.write_bytes(gif_bomb(60000))
    with pytest.raises(InputRejectedError) as caught:
        validate_file(bomb, LimitSettings())
    assert caught.value.reason is RejectReason.TOO_MANY_PIXELS


def test_long_video_against_a_small_duration_budget(tmp_path: Path) -> None:
    long = tmp_path / "long.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=c=gray:size=64x64:rate=5:duration=600",
                    "-c:v", "libx264", "-preset", "ultrafast", str(long)], check=True)
    with pytest.raises(InputRejectedError) as caught:  # declared duration, at intake
        validate_file(long, LimitSettings(max_duration_s=60))
    assert caught.value.reason is RejectReason.TOO_LONG
    with pytest.raises(LimitExceededError) as decoding, \
            VideoReader(long, long_side=64, limits=DecodeLimits(max_duration_ms=2000)) as reader:
        for _ in reader:  # decoded timestamps, while decoding
            pass
    assert decoding.value.limit == "duration"


def test_one_corrupt_timestamp_does_not_trip_the_duration_budget(tmp_path: Path) -> None:
    """Found by bench/fuzz.py: a damaged MPEG-PS whose one timestamp jumps past the budget was refused as too
    long; the budget counts frames as well as their times."""
    jump = tmp_path / "jump.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=64x64:rate=10:duration=1",
                    "-vf", "setpts='if(gte(N,5),PTS+100/TB,PTS)'", "-c:v", "mpeg4", str(jump)], check=True)
    with VideoReader(jump, long_side=64, limits=DecodeLimits(max_duration_ms=60_000)) as reader:
        times = [frame.t_ms for frame in reader]
    assert len(times) == 10 and max(times) > 60_000  # decoded whole, the jump kept in the times


def test_decoders_check_actual_sizes(small_jpeg: Path, small_video: Path) -> None:
    with pytest.raises(LimitExceededError) as image:
        read_image(small_jpeg, long_side=64, limits=DecodeLimits(max_pixels=640 * 480 - 1))
    assert image.value.limit == "pixels" and image.value.reason is RejectReason.LIMIT_EXCEEDED
    assert read_image(small_jpeg, long_side=64, limits=DecodeLimits(max_pixels=640 * 480)).rgb.shape[1] == 64
    with pytest.raises(LimitExceededError), VideoReader(small_video, long_side=64,
                                                        limits=DecodeLimits(max_pixels=320 * 240 - 1)):
        pass


def _only(monkeypatch: pytest.MonkeyPatch, **stages: str) -> None:
    monkeypatch.setattr(registry, "STAGES", dict(stages))


def _stage_runs(ws: Workspace, asset_id: str) -> dict[str, tuple[str, str | None]]:
    with ws.db.session() as session:
        return {r.stage: (r.status, r.error) for r in session.execute(
            select(StageRun).where(StageRun.asset_id == asset_id)).scalars()}


def test_image_over_a_lowered_pixel_budget_ends_limit_exceeded(settings: Settings, small_jpeg: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Accepted under today's budget, analysed under a smaller one: the decoder's size is checked again."""
    ws = Workspace.open(settings)
    asset_id = ingest_path(ws, small_jpeg).asset_id
    ws.close()
    small = Workspace.open(settings.model_copy(update={"limits": LimitSettings(max_pixels=100_000)}))
    _only(monkeypatch, video="tamperscope.stages.video:VideoStage")
    result = analyze_asset(small, asset_id)
    assert result.limited == {"video": "pixels"} and result.rejected == {"video": "limit_exceeded"}
    status, error = _stage_runs(small, asset_id)["video"]
    assert status == "limit_exceeded" and "640x480" in (error or "")
    with small.db.session() as session:
        asset = session.get(Asset, asset_id)
        assert asset is not None and asset.status == "limit_exceeded"
    assert not verify(small).problems
    small.close()


class _Slow(Stage):
    name: ClassVar[str] = "slow"
    version: ClassVar[str] = "1"

    def run(self, ctx: StageContext) -> StageOutput:
        for _ in range(6000):  # 60 s of work, checked at every step
            ctx.check_budget()
            time.sleep(0.01)
        return StageOutput()


class _After(_Slow):
    name: ClassVar[str] = "after"
    requires: ClassVar[tuple[str, ...]] = ("slow",)


@pytest.mark.parametrize(("limits", "kind"), [({"stage_timeout_s": 0.3}, "time"),
                                              ({"stage_memory_bytes": 1}, "memory")])
def test_stage_past_its_time_or_memory_budget_ends_limit_exceeded(settings: Settings, small_jpeg: Path,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  limits: dict[str, Any], kind: str) -> None:
    ws = Workspace.open(settings.model_copy(update={"limits": LimitSettings(**limits)}))
    asset_id = ingest_path(ws, small_jpeg).asset_id
    monkeypatch.setattr(registry, "load_stage", {"slow": _Slow(), "after": _After()}.__getitem__)
    _only(monkeypatch, slow="-", after="-")
    started = time.monotonic()
    result = analyze_asset(ws, asset_id)
    assert time.monotonic() - started < 30
    assert result.limited == {"slow": kind} and "after" in result.failed  # its input never came
    assert _stage_runs(ws, asset_id)["slow"][0] == "limit_exceeded"
    with ws.db.session() as session:
        asset = session.get(Asset, asset_id)
        assert asset is not None and asset.status == "limit_exceeded"
        events = session.execute(select(AuditEvent).where(AuditEvent.action == "stage.limit_exceeded")).scalars()
        assert [e.details_json["limit"] for e in events] == [kind]
    ws.close()


def test_budget_check_reads_the_resident_set() -> None:
    budget = StageBudget(stage="x", timeout_s=60, memory_bytes=2**40)
    budget.check()
    with pytest.raises(LimitExceededError) as caught:
        StageBudget(stage="x", timeout_s=60, memory_bytes=2**20).check()  # no Python process fits in 1 MiB
    assert caught.value.limit == "memory"


def test_memory_is_reserved_before_decoding(small_jpeg: Path) -> None:
    """A known cost is refused up front: the reservation sees the pixels times the bytes per pixel."""
    held = resident_bytes()
    budget = StageBudget(stage="x", timeout_s=60, memory_bytes=held + 64 * 2**20)
    budget.reserve(2**20, "a little")
    with pytest.raises(LimitExceededError) as caught:
        budget.reserve(256 * 2**20, "a lot")
    assert caught.value.limit == "memory" and "a lot" in caught.value.message
    asked: list[int] = []
    with open_image(small_jpeg, DecodeLimits(reserve=asked.append), bytes_per_pixel=10):
        pass
    assert asked == [640 * 480 * 10]

    def refuse(nbytes: int) -> None:
        raise LimitExceededError("memory", f"{nbytes}")

    with pytest.raises(LimitExceededError):
        read_image(small_jpeg, long_side=64, limits=DecodeLimits(reserve=refuse))


RUNNER = """
import sys
from tamperscope.pipeline import registry
registry.STAGES.clear()
registry.STAGES.update({"quick": "tests.pipeline.killable_stages:QuickStage",
                        "blocking": "tests.pipeline.killable_stages:BlockingStage"})
from tamperscope.pipeline.runner import analyze_asset
from tamperscope.settings import Settings
from tamperscope.workspace import Workspace
ws = Workspace.open(Settings(home=sys.argv[1], actor="tester", workers=1))
print(sorted(analyze_asset(ws, sys.argv[2]).ran))
"""


def test_a_run_killed_by_a_timeout_does_not_leave_the_asset_stuck(settings: Settings, small_jpeg: Path,
                                                                  tmp_path: Path) -> None:
    """``timeout`` sends SIGTERM mid-stage; the asset is left ``analyzing`` and the next run recovers it."""
    ws = Workspace.open(settings)
    asset_id = ingest_path(ws, small_jpeg).asset_id
    marker = tmp_path / "started"
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "BLOCK_MARKER": str(marker)}
    proc = subprocess.Popen([sys.executable, "-c", RUNNER, str(settings.home), asset_id], cwd=repo, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    with ws.db.session() as session:
        asset = session.get(Asset, asset_id)
        assert asset is not None and asset.status == "analyzing"
    env.pop("BLOCK_MARKER")
    again = subprocess.run([sys.executable, "-c", RUNNER, str(settings.home), asset_id], cwd=repo, env=env,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "blocking" in again.stdout
    with ws.db.session() as session:
        asset = session.get(Asset, asset_id)
        assert asset is not None and asset.status == "analyzed"
        actions = session.execute(select(AuditEvent.action)).scalars().all()
    assert "analysis.recovered" in actions
    ws.close()


def test_jpeg_frame_header_past_the_budget_is_refused_by_the_walker(small_jpeg: Path, tmp_path: Path) -> None:
    data = bytearray(small_jpeg.read_bytes())
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 65000, 65000)
    bomb = tmp_path / "sof.jpg"
    bomb.write_bytes(bytes(data))
    with pytest.raises(InputRejectedError) as caught:
        validate_file(bomb, LimitSettings())
    assert caught.value.reason is RejectReason.TOO_MANY_PIXELS and "65000x65000" in caught.value.message
