"""Benchmark: the ``temporal`` and ``avsync`` stages on a generated 60 s 720p talking head.

Prints wall times and their ratio to the video's duration (goal: below 1, i.e. faster than real time,
including the dense Face Mesh pass), next to a baseline measured in the same process: one plain decode
of the file at the dense pass's size. Run on 2 cores with ``nice -n 10 .venv/bin/python bench/temporal.py``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from sqlalchemy import select

from tamperscope.custody.intake import ingest_path
from tamperscope.media.video_reader import VideoReader
from tamperscope.pipeline.runner import analyze_asset
from tamperscope.samples.talking_head import talking_head
from tamperscope.settings import Settings
from tamperscope.store.models import StageRun
from tamperscope.workspace import Workspace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        tick = time.perf_counter()
        blinks = tuple(float(t) for t in range(1500, int(args.seconds * 1000), 3700))
        clip = talking_head(root / "talking.mp4", duration_s=args.seconds, size=(args.width, args.height),
                            offset_ms=120.0, blink_onsets_ms=blinks)
        print(f"generated {args.seconds:.0f} s {args.width}x{args.height} clip in {time.perf_counter() - tick:.1f} s")
        settings = Settings(home=root / "home", actor="bench")
        ws = Workspace.open(settings)
        try:
            tick = time.perf_counter()
            with VideoReader(clip.path, long_side=settings.temporal.long_side, threads=1) as reader:
                frames = sum(1 for _ in reader)
            decode_s = time.perf_counter() - tick
            asset_id = ingest_path(ws, clip.path).asset_id
            tick = time.perf_counter()
            analyze_asset(ws, asset_id, only=["video"])
            video_s = time.perf_counter() - tick
            tick = time.perf_counter()
            result = analyze_asset(ws, asset_id, only=["temporal", "avsync"])
            both_s = time.perf_counter() - tick
            with ws.db.session() as session:
                runs = {r.stage: r.summary_json for r in session.execute(
                    select(StageRun).where(StageRun.asset_id == asset_id)).scalars()}
        finally:
            ws.close()
    duration = clip.duration_s
    print(f"ran: {result.ran} failed: {result.failed}")
    print(f"baseline decode ({frames} frames at long side {settings.temporal.long_side}): {decode_s:.1f} s "
          f"= {decode_s / duration:.3f} x real time")
    print(f"video stage (shots, 8 fps sampling, faces): {video_s:.1f} s = {video_s / duration:.3f} x real time")
    print(f"temporal + avsync stages: {both_s:.1f} s = {both_s / duration:.3f} x real time "
          f"({both_s / decode_s:.2f} x the baseline decode)")
    summary = runs.get("temporal") or {}
    print(f"  dense pass: {summary.get('dense_frames')} frames, decode {summary.get('decode_s')} s, "
          f"face mesh {summary.get('mesh_s')} s")
    print(f"  avsync: {runs.get('avsync')}")


if __name__ == "__main__":
    main()
