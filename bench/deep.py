"""Benchmark: deep-model inference, and the full ``analyze`` of a 60 s 1280x720 face video.

1. ONNX Runtime milliseconds per face crop (batch 1 and batch 32) and per clip window for the frame and clip
   models (``--frame`` / ``--clip``, default: ``TAMPERSCOPE_MODELS__FRAME_PATH`` / ``CLIP_PATH``, else the shipped
   ``src/tamperscope/models/weights/{frame,clip}.onnx``), 2 intra-op threads. A missing model is reported and
   skipped.
2. ``analyze`` (the analysis service's ``run_analysis`` of the ingested asset: every stage, then the summary;
   intake runs first, counted apart) on a 60 s 1280x720 H.264 video looped (``ffmpeg -stream_loop``) from
   ``../shared/testdata/video/real/ffpp_original_youtube_183.mp4`` into a temporary directory: wall time per
   stage (from the runner's progress reports), the stage summaries that time their parts, and the ratios
   analyze / real time and analyze / ``ffmpeg -i FILE -f null -`` of the same file, measured in the same run.
   Goal: analyze <= 30 s on 2 cores. The source has no audio, so ``avsync`` reports ``not_applicable`` unless
   ``--audio-from`` names a file whose (looped) audio track is muxed in.
3. What the analysis opens, counted by a hook around ``subprocess.run`` and ``av.open`` in this process only
   (:func:`counting`): runs of each external tool (``-version`` queries apart), PyAV container opens, decode
   passes per stream kind with their frame counts (a pass over every frame is a full decode) and fetches of the
   raw file from the store. ``--serial`` runs one stage at a time (``workers=1``), so the process CPU-seconds
   between a stage's first and last progress report are that stage's own, and a ``(between)`` row gives the rest
   (each stage's commit and seal, the summary); the machine is shared, so CPU-seconds are the stable figure.

Usage: ``.venv/bin/python bench/deep.py [--frame F.onnx] [--clip C.onnx] [--seconds 60] [--audio-from FILE]
[--serial] [--skip-models] [--skip-analyze] [--verbose]``. Skips the analyze part with a message when
``../shared`` is absent.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import av
import numpy as np
from sqlalchemy import select

from tamperscope.custody.intake import ingest_path
from tamperscope.models.runtime import ClipModel, FrameModel, load_model
from tamperscope.nativelog import native_stderr_silenced
from tamperscope.services.analysis import run_analysis
from tamperscope.settings import Settings
from tamperscope.store.models import StageRun
from tamperscope.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "src" / "tamperscope" / "models" / "weights"
SOURCE = ROOT.parent / "shared" / "testdata" / "video" / "real" / "ffpp_original_youtube_183.mp4"


def ms_per_call(run: Callable[[], object], repeats: int) -> float:
    """Best-of-``repeats`` wall milliseconds of ``run()`` after one warm-up call."""
    run()
    best = float("inf")
    for _ in range(repeats):
        tick = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - tick)
    return best * 1000.0


def bench_models(frame: Path | None, clip: Path | None, threads: int) -> None:
    """Print ms per crop (batch 1, 32) and per window for whichever models exist."""
    rng = np.random.default_rng(0)
    print(f"{'model':34s} {'input':24s} {'ms/call':>8s} {'ms/item':>8s}")
    for kind, path in (("frame", frame), ("clip", clip)):
        if path is None or not path.is_file():
            print(f"{kind + ' model':34s} not found ({path or 'none configured'}): skipped")
            continue
        model = load_model(path, threads=threads)
        size = model.spec.input_size
        if isinstance(model, FrameModel):
            for batch in (1, 32):
                crops = rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8)
                ms = ms_per_call(functools.partial(model.predict, crops), 5 if batch > 1 else 20)
                print(f"{path.name:34s} {f'{batch} x {size}x{size} crop':24s} {ms:8.1f} {ms / batch:8.2f}")
        elif isinstance(model, ClipModel):
            length = model.spec.clip_length
            windows = rng.integers(0, 256, (1, length, size, size, 3), dtype=np.uint8)
            if model.spec.input == "embeddings":
                windows = rng.standard_normal((1, length, model.spec.embedding_dim or 512)).astype(np.float32)
            ms = ms_per_call(functools.partial(model.predict, windows), 5)
            print(f"{path.name:34s} {f'1 window of {length}':24s} {ms:8.1f} {ms:8.1f}")


def make_video(path: Path, seconds: float, audio_from: Path | None) -> None:
    """``seconds`` of SOURCE looped, 1280x720 H.264 (and ``audio_from``'s looped audio as AAC)."""
    args = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-stream_loop", "-1", "-i", str(SOURCE)]
    if audio_from is not None:
        args += ["-stream_loop", "-1", "-i", str(audio_from), "-map", "0:v:0", "-map", "1:a:0", "-c:a", "aac"]
    args += ["-t", f"{seconds:g}", "-vf", "scale=1280:720", "-c:v", "libx264", "-preset", "veryfast", "-crf", "20",
             "-pix_fmt", "yuv420p", str(path)]
    subprocess.run(args, check=True)


def time_ffmpeg_decode(path: Path) -> float:
    tick = time.perf_counter()
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "null", "-"], check=True)
    return time.perf_counter() - tick


def cpu_seconds() -> float:
    """User + system CPU of this process and its finished children (the metadata tools)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@dataclass
class MediaCounts:
    """What one analysis opened: tool runs by name, container opens, decode passes and raw-file fetches."""

    tools: Counter[str] = field(default_factory=Counter)
    opens: int = 0
    decodes: list[tuple[str, int]] = field(default_factory=list)  # (stream kinds, frames yielded)
    fetches: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class _CountingContainer:
    """An input container that records each ``decode`` pass (stream kinds, frames yielded) in ``counts``."""

    def __init__(self, inner: Any, counts: MediaCounts) -> None:
        self._inner = inner
        self._counts = counts

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __enter__(self) -> _CountingContainer:
        return self

    def __exit__(self, *exc: object) -> None:
        self._inner.close()

    def demux(self, *streams: Any, **kwargs: Any) -> Iterator[Any]:
        """Packets of one demux pass; decoding its video packets counts as a decode pass over those frames."""
        yield from self._tally(_kinds(streams) + " (demux)", self._inner.demux(*streams, **kwargs),
                               lambda packet: packet.stream.type == "video" and packet.size > 0)

    def decode(self, *streams: Any, **kwargs: Any) -> Iterator[Any]:
        yield from self._tally(_kinds(streams) or "+".join(sorted(kwargs)) or "all",
                               self._inner.decode(*streams, **kwargs), lambda _: True)

    def _tally(self, kinds: str, items: Iterator[Any], counted: Callable[[Any], bool]) -> Iterator[Any]:
        """``items`` passed through; once they end (or the consumer stops), ``(kinds, items counted)`` is recorded."""
        frames = 0
        try:
            for item in items:
                frames += counted(item)
                yield item
        finally:
            with self._counts.lock:
                self._counts.decodes.append((kinds, frames))


def _kinds(streams: tuple[Any, ...]) -> str:
    """The stream types of a ``demux`` / ``decode`` call's arguments (streams, or lists of them), ``+``-joined."""
    flat = [s for item in streams for s in (item if isinstance(item, list | tuple) else [item])]
    return "+".join(sorted({str(s.type) for s in flat}))


@contextlib.contextmanager
def counting(ws: Workspace) -> Iterator[MediaCounts]:
    """Count tool runs, PyAV opens/decodes and raw-file fetches while the block runs (bench-only hooks)."""
    counts = MediaCounts()
    real_run, real_open, real_local = subprocess.run, av.open, ws.store.local_path

    def run(args: Any, *a: Any, **kw: Any) -> Any:
        argv = [str(x) for x in args]
        version = len(argv) > 1 and argv[1] in ("-version", "-ver", "--Version")
        with counts.lock:
            counts.tools[Path(argv[0]).name + (" -version" if version else "")] += 1
        return real_run(args, *a, **kw)

    def open_(*a: Any, **kw: Any) -> Any:
        container = real_open(*a, **kw)
        with counts.lock:
            counts.opens += 1
        mode = kw.get("mode", a[1] if len(a) > 1 else "r")
        return _CountingContainer(container, counts) if mode == "r" else container

    def local_path(key: str) -> Any:
        with counts.lock:
            counts.fetches += 1
        return real_local(key)

    subprocess.run, av.open = run, open_  # type: ignore[assignment]
    ws.store.local_path = local_path  # type: ignore[method-assign]
    try:
        yield counts
    finally:
        subprocess.run, av.open = real_run, real_open  # type: ignore[assignment]
        ws.store.local_path = real_local  # type: ignore[method-assign]


def bench_analyze(video: Path, home: Path, seconds: float, serial: bool) -> None:
    """Ingest ``video``, time its analysis through the service per stage and print the table, the counts and the
    ratios."""
    settings = Settings(home=home, actor="bench")
    if serial:
        settings.workers = 1
    if settings.models.frame_path is None and (SHIPPED / "frame.onnx").is_file():
        settings.models.frame_path = SHIPPED / "frame.onnx"
    if settings.models.clip_path is None and (SHIPPED / "clip.onnx").is_file():
        settings.models.clip_path = SHIPPED / "clip.onnx"
    ws = Workspace.open(settings)
    spans: dict[str, list[float]] = {}
    cpu_spans: dict[str, list[float]] = {}
    lock = threading.Lock()

    def progress(stage: str, fraction: float, message: str) -> None:
        now, cpu_now = time.perf_counter(), cpu_seconds()
        with lock:
            span = spans.setdefault(stage, [now, now])
            span[1] = now
            cpu_span = cpu_spans.setdefault(stage, [cpu_now, cpu_now])
            cpu_span[1] = cpu_now

    try:
        with counting(ws) as intake_counts:
            asset_id = ingest_path(ws, video).asset_id
        decode_s = time_ffmpeg_decode(video)
        load = os.getloadavg()[0]
        cpu0 = cpu_seconds()
        start = time.perf_counter()
        with counting(ws) as counts:
            result = run_analysis(ws, asset_id, progress=progress).run
        total = time.perf_counter() - start
        cpu = cpu_seconds() - cpu0
        with ws.db.session() as session:
            runs = {r.stage: (r.status, r.summary_json or {}) for r in session.execute(
                select(StageRun).where(StageRun.asset_id == asset_id)).scalars()}
    finally:
        ws.close()
    print(f"\nanalyze of {video.name}: {seconds:g} s 1280x720; frame model: {settings.models.frame_path or 'none'}, "
          f"clip model: {settings.models.clip_path or 'none'}; 1-min load average before: {load:.1f}")
    print(f"workers: {settings.workers}" + (" (serial: CPU s per stage is that stage's own)" if serial else
                                              " (stages overlap: CPU s per stage includes the others')"))
    print(f"{'stage':10s} {'start s':>8s} {'wall s':>7s} {'CPU s':>7s} {'status':15s} summary")
    for stage, (first, last) in sorted(spans.items(), key=lambda kv: kv[1][0]):
        status, summary = runs.get(stage, ("?", {}))
        brief = {k: v for k, v in summary.items() if not isinstance(v, dict | list) and k != "traceback"}
        used = cpu_spans[stage][1] - cpu_spans[stage][0]
        print(f"{stage:10s} {first - start:8.1f} {last - first:7.1f} {used:7.1f} {status:15s} {brief}")
    if serial:  # commits (rows, the seal's hashes of every stored object) and the summary run between stages
        staged = sum(last - first for first, last in cpu_spans.values())
        print(f"{'(between)':10s} {'':8s} {'':7s} {cpu - staged:7.1f} commits, seals and summary: total minus stages")
    print(f"ran: {', '.join(result.ran)}; not applicable: {', '.join(result.not_applicable) or '-'}; "
          f"failed: {result.failed or '-'}")
    frames = max((n for kinds, n in counts.decodes if "video" in kinds), default=0)
    full = sum(1 for kinds, n in counts.decodes if "video" in kinds and n >= 0.9 * frames)
    print(f"COUNTS full video decodes: {full}; ffprobe: {counts.tools['ffprobe']}; "
          f"exiftool: {counts.tools['exiftool']}; raw-file fetches: {counts.fetches}; av.open: {counts.opens}")
    print(f"  intake: ffprobe {intake_counts.tools['ffprobe']}, exiftool {intake_counts.tools['exiftool']}, "
          f"decode passes {sorted(intake_counts.decodes)}")
    print(f"  decode passes (streams, frames): {sorted(counts.decodes)}; "
          f"tool runs: {dict(sorted(counts.tools.items()))}")
    print(f"ffmpeg -f null decode: {decode_s:.2f} s")
    print(f"analyze total: {total:.1f} s wall, {cpu:.1f} s CPU (goal <= 30 s wall on 2 cores)")
    print(f"RATIO analyze / real time = {total / seconds:.2f}; analyze / ffmpeg decode = {total / decode_s:.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    configured = Settings().models
    parser.add_argument("--frame", type=Path, default=configured.frame_path or SHIPPED / "frame.onnx")
    parser.add_argument("--clip", type=Path, default=configured.clip_path or SHIPPED / "clip.onnx")
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the analyzed video")
    parser.add_argument("--audio-from", type=Path, help="mux this file's audio (looped) into the video")
    parser.add_argument("--serial", action="store_true", help="one stage at a time: CPU-seconds per stage")
    parser.add_argument("--skip-models", action="store_true")
    parser.add_argument("--skip-analyze", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="keep native libraries' log lines (MediaPipe, TFLite)")
    args = parser.parse_args()
    if not args.skip_models:
        bench_models(args.frame, args.clip, args.threads)
    if args.skip_analyze:
        return 0
    if not SOURCE.is_file():
        print(f"skipping analyze: {SOURCE} is absent (needs ../shared/testdata)")
        return 0
    with tempfile.TemporaryDirectory(prefix="tamperscope-bench-") as tmp:
        video = Path(tmp) / "face60.mp4"
        make_video(video, args.seconds, args.audio_from)
        with native_stderr_silenced(not args.verbose):  # as the CLI does
            bench_analyze(video, Path(tmp) / "home", args.seconds, args.serial)
    return 0


if __name__ == "__main__":
    sys.exit(main())
