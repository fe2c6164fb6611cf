"""Fuzz harness: seeded mutants of every accepted format through ``tamperscope analyze FILE`` (ingest + analyze).

Seeds are generated on the fly (ffmpeg lavfi and Pillow: JPEG, PNG, WebP, GIF, TIFF, BMP, HEIF, MP4, MOV, MKV,
WebM, AVI, MPEG-PS, MPEG-TS, WAV); mutators (bit flips, truncation, duplicated chunks/segments, header-field
edits, inserted runs) are driven by one ``random.Random(seed)``, so a run is reproducible. Each mutant runs as a
subprocess under a wall-clock budget; the harness prints counts per outcome (exit 0, exit 3 with its typed
reason, exit 1, other exits, hangs), the share of typed rejections and the peak RSS of each analysis, then runs
the resource bombs (files declaring huge sizes from a few bytes) and prints each one's outcome and peak RSS.
Exit-1 outcomes and hangs are stored with their stderr under ``OUT/crashers``.

Usage: ``nice -n 10 .venv/bin/python bench/fuzz.py --n 300 --out /tmp/fuzz [--seed 0] [--timeout 180]
[--max-minutes 40]`` (a run past its time budget stops starting mutants and reports those it ran).
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tamperscope.errors import RejectReason

EXE = Path(sys.executable).with_name("tamperscope")
REASONS = {r.value for r in RejectReason}
LAVFI_VIDEO = "testsrc2=size=96x64:rate=10:duration=1"
LAVFI_AUDIO = "sine=frequency=440:duration=1"


def _ffmpeg(out: Path, *args: str) -> Path:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args, str(out)], check=True)
    return out


def make_seeds(folder: Path) -> dict[str, Path]:
    """One small valid file of each accepted format (HEIF only when pillow-heif can write it)."""
    folder.mkdir(parents=True, exist_ok=True)
    still = ["-f", "lavfi", "-i", "testsrc2=size=96x64", "-frames:v", "1"]
    video = ["-f", "lavfi", "-i", LAVFI_VIDEO]
    with_audio = [*video, "-f", "lavfi", "-i", LAVFI_AUDIO, "-shortest"]
    seeds = {
        "jpeg": _ffmpeg(folder / "seed.jpg", *still, "-q:v", "3"),
        "png": _ffmpeg(folder / "seed.png", *still),
        "webp": _ffmpeg(folder / "seed.webp", *still),
        "gif": _ffmpeg(folder / "seed.gif", *still),
        "tiff": _ffmpeg(folder / "seed.tif", *still),
        "bmp": _ffmpeg(folder / "seed.bmp", *still),
        "mp4": _ffmpeg(folder / "seed.mp4", *with_audio, "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac"),
        "mov": _ffmpeg(folder / "seed.mov", *video, "-c:v", "mjpeg"),
        "mkv": _ffmpeg(folder / "seed.mkv", *with_audio, "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac"),
        "webm": _ffmpeg(folder / "seed.webm", *video, "-c:v", "libvpx", "-b:v", "200k"),
        "avi": _ffmpeg(folder / "seed.avi", *video, "-c:v", "mjpeg"),
        "mpeg-ps": _ffmpeg(folder / "seed.mpg", *video, "-c:v", "mpeg2video", "-f", "vob"),
        "mpegts": _ffmpeg(folder / "seed.ts", *video, "-c:v", "mpeg2video"),
        "wav": _ffmpeg(folder / "seed.wav", "-f", "lavfi", "-i", LAVFI_AUDIO),
    }
    try:
        import pillow_heif
        from PIL import Image

        pillow_heif.register_heif_opener()
        buffer = io.BytesIO()
        Image.open(seeds["png"]).convert("RGB").save(buffer, "HEIF")
        (folder / "seed.heic").write_bytes(buffer.getvalue())
        seeds["heif"] = folder / "seed.heic"
    except Exception as exc:  # an encoder-less libheif build: no HEIF seed, and the run says so
        print(f"no HEIF seed: {exc}", file=sys.stderr)
    return seeds


# -- mutators: each takes the bytes and the run's random source --------------------------------------------------

INTERESTING = [b"\x00", b"\xff", b"\x7f", b"\x80", b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff",
               b"\x00\x00\x01\x00", b"\xff\xff"]


def bit_flips(data: bytearray, rng: random.Random) -> bytearray:
    for _ in range(rng.randint(1, 16)):
        at = rng.randrange(len(data))
        data[at] ^= 1 << rng.randrange(8)
    return data


def truncate(data: bytearray, rng: random.Random) -> bytearray:
    return data[: rng.randint(1, max(1, len(data) - 1))]


def _boundaries(data: bytes) -> list[int]:
    """Offsets where a chunk, box, marker or packet starts (PNG/RIFF/BMFF lengths, JPEG/MPEG start codes)."""
    marks = {m.start() for m in re.finditer(rb"\xff[\xc0-\xfe]|\x00\x00\x01[\xb3\xba\xbb\xe0]", data)}
    for kind in (rb"IDAT", rb"IHDR", rb"tEXt", rb"moov", rb"mdat", rb"trak", rb"LIST", rb"VP8", rb"\x1fC\xb6u"):
        marks |= {max(0, m.start() - 4) for m in re.finditer(kind, data)}
    return sorted(marks) or [0]


def duplicate_segment(data: bytearray, rng: random.Random) -> bytearray:
    """Copy the bytes between two structural boundaries (a chunk, box or segment) to another boundary."""
    marks = [*_boundaries(bytes(data)), len(data)]
    start = rng.choice(marks[:-1])
    end = min(m for m in marks if m > start) if any(m > start for m in marks) else len(data)
    end = min(end, start + (1 << 20))
    at = rng.choice(marks)
    return data[:at] + data[start:end] * rng.randint(1, 3) + data[at:]


def header_edit(data: bytearray, rng: random.Random) -> bytearray:
    """Overwrite a field near a structural boundary (sizes, dimensions, counts) with an interesting value."""
    marks = [m for m in _boundaries(bytes(data)) if m < len(data)] + [0]
    base = rng.choice(marks)
    value = rng.choice(INTERESTING)
    at = min(len(data) - 1, base + rng.randrange(0, 24))
    data[at : at + len(value)] = value
    return data


def insert_run(data: bytearray, rng: random.Random) -> bytearray:
    at = rng.randrange(len(data))
    return data[:at] + rng.choice(INTERESTING) * rng.randint(1, 4096) + data[at:]


MUTATORS: dict[str, Callable[[bytearray, random.Random], bytearray]] = {
    "bit_flips": bit_flips, "truncate": truncate, "duplicate_segment": duplicate_segment,
    "header_edit": header_edit, "insert_run": insert_run}


def mutate(seed: bytes, rng: random.Random) -> tuple[bytes, list[str]]:
    """One to three mutators in a row; the bytes and their names."""
    data, names = bytearray(seed), []
    for _ in range(rng.randint(1, 3)):
        name = rng.choice(sorted(MUTATORS))
        data = MUTATORS[name](data, rng) or bytearray(b"\x00")
        names.append(name)
    return bytes(data), names


# -- bombs: tiny files declaring huge sizes -----------------------------------------------------------------------

def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_bomb(width: int, height: int, rows: int) -> bytes:
    raw = b"\x00" * ((width + 1) * rows)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + _png_chunk(b"IDAT", zlib.compress(raw, 9)) + _png_chunk(b"IEND", b""))


def make_bombs(folder: Path) -> dict[str, tuple[Path, dict[str, str]]]:
    """Files declaring huge sizes from a few bytes, each with the settings (environment) it runs under: past the
    budgets (a PNG declaring 20000x20000 with a tiny IDAT, a 100 MP PNG zlib bomb, a GIF with a 65535x65535 screen,
    a JPEG whose frame header says 65000x65000, 3 h of 16x16 video), and a 49 MP PNG zlib bomb just under the
    pixel budget, analysed under a 1 GiB memory ceiling and under a 60 s stage budget."""
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    (folder / "png20000.png").write_bytes(png_bomb(20000, 20000, 4))
    paths["png 20000x20000, tiny IDAT"] = folder / "png20000.png"
    (folder / "png100mp.png").write_bytes(png_bomb(10000, 10000, 10000))
    paths["png 10000x10000 zlib bomb"] = folder / "png100mp.png"
    gif = (b"GIF89a" + struct.pack("<HH", 65535, 65535) + bytes([0x80, 0, 0]) + b"\x00\x00\x00\xff\xff\xff"
           + b"\x2c" + struct.pack("<HHHH", 0, 0, 1, 1) + b"\x00\x02\x02\x44\x01\x00\x3b")
    (folder / "gif65535.gif").write_bytes(gif)
    paths["gif 65535x65535 screen"] = folder / "gif65535.gif"
    jpeg = bytearray(_ffmpeg(folder / "small.jpg", "-f", "lavfi", "-i", "testsrc2=size=64x64", "-frames:v", "1")
                     .read_bytes())
    sof = jpeg.find(b"\xff\xc0")
    jpeg[sof + 5 : sof + 9] = struct.pack(">HH", 65000, 65000)
    (folder / "jpeg65000.jpg").write_bytes(bytes(jpeg))
    paths["jpeg SOF 65000x65000"] = folder / "jpeg65000.jpg"
    paths["video 3 h of 16x16"] = _ffmpeg(folder / "long.mp4", "-f", "lavfi", "-i",
                                          "color=c=gray:size=16x16:rate=1:duration=10800", "-c:v", "libx264",
                                          "-preset", "ultrafast")
    (folder / "png49mp.png").write_bytes(png_bomb(7000, 7000, 7000))
    runs: dict[str, tuple[Path, dict[str, str]]] = {name: (path, {}) for name, path in paths.items()}
    runs["png 7000x7000 zlib bomb, 1 GiB ceiling"] = (folder / "png49mp.png",
                                                      {"TAMPERSCOPE_LIMITS__STAGE_MEMORY_BYTES": str(2**30)})
    runs["png 7000x7000 zlib bomb, 60 s stages"] = (folder / "png49mp.png",
                                                    {"TAMPERSCOPE_LIMITS__STAGE_TIMEOUT_S": "60"})
    return runs


# -- running ------------------------------------------------------------------------------------------------------

@dataclass
class Outcome:
    kind: str  # ok | rejected | exit1 | other | hang
    code: int | None
    reason: str | None
    seconds: float
    peak_rss_mb: float
    stderr: str


def run_one(path: Path, home: Path, timeout_s: float, settings: dict[str, str] | None = None, *,
            force: bool = False) -> Outcome:
    """``tamperscope analyze PATH`` in its own process group, killed when past ``timeout_s``; peak RSS from
    ``wait4`` (the process and the tools it waited for). ``settings``: extra ``TAMPERSCOPE_*`` variables."""
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "TAMPERSCOPE_HOME": str(home), "TAMPERSCOPE_ACTOR": "fuzz", "TAMPERSCOPE_WORKERS": "1",
           **(settings or {})}
    start = time.monotonic()
    err_path = home / "last.stderr"
    with open(err_path, "wb") as err:
        proc = subprocess.Popen([str(EXE), "analyze", *(["--force"] if force else []), str(path)],
                                stdout=subprocess.DEVNULL, stderr=err,
                                env=env, start_new_session=True)
        hung = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - start > timeout_s:
                hung = True
                os.killpg(proc.pid, signal.SIGKILL)
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = err_path.read_text(errors="replace")
    seconds = time.monotonic() - start
    rss = usage.ru_maxrss / 1024
    if hung:
        return Outcome("hang", None, None, seconds, rss, stderr)
    code = proc.returncode
    reason = None
    if code == 3:
        # intake: "error: <reason>: ..."; a stage: "stage video failed: InputRejectedError: <reason>: ..."
        named = [word for word in re.findall(r"\b([a-z_]+): ", stderr) if word in REASONS]
        reason = named[0] if named else "untyped"
    kind = {0: "ok", 3: "rejected", 1: "exit1"}.get(code, "other")
    return Outcome(kind, code, reason, seconds, rss, stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=300, help="mutants in all (spread over the formats)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=180.0, help="wall-clock budget per mutant, seconds")
    parser.add_argument("--out", type=Path, default=Path("fuzz-out"))
    parser.add_argument("--no-bombs", action="store_true", help="skip the resource bombs")
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="start no mutant after this many minutes; the counts then cover the mutants run")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    crashers = args.out / "crashers"
    crashers.mkdir(exist_ok=True)
    home = args.out / "home"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir()
    seeds = make_seeds(args.out / "seeds")
    rng = random.Random(args.seed)
    formats = sorted(seeds)
    counts: collections.Counter[str] = collections.Counter()
    reasons: collections.Counter[str] = collections.Counter()
    per_format: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    rss: list[float] = []
    mutants = args.out / "mutants"
    mutants.mkdir(exist_ok=True)
    log = open(args.out / "results.jsonl", "w")  # noqa: SIM115 - kept open for the whole run
    started = time.monotonic()
    for i in range(args.n):
        if args.max_minutes is not None and time.monotonic() - started > 60 * args.max_minutes:
            print(f"time budget of {args.max_minutes:g} min reached: {i} of {args.n} mutants run")
            break
        fmt = formats[i % len(formats)]
        data, names = mutate(seeds[fmt].read_bytes(), rng)
        path = mutants / f"{i:05d}-{fmt}{seeds[fmt].suffix}"
        path.write_bytes(data)
        outcome = run_one(path, home, args.timeout)
        counts[outcome.kind] += 1
        per_format[fmt][outcome.kind] += 1
        rss.append(outcome.peak_rss_mb)
        if outcome.reason:
            reasons[outcome.reason] += 1
        if outcome.kind in ("exit1", "hang", "other"):
            shutil.copy(path, crashers / path.name)
            (crashers / f"{path.name}.stderr").write_text(outcome.stderr)
        log.write(json.dumps({"i": i, "format": fmt, "mutators": names, "kind": outcome.kind, "code": outcome.code,
                              "reason": outcome.reason, "seconds": round(outcome.seconds, 2),
                              "peak_rss_mb": round(outcome.peak_rss_mb, 1)}) + "\n")
        log.flush()
        print(f"{i + 1}/{args.n} {fmt:8} {'+'.join(names):40} {outcome.kind:8} {outcome.reason or '':20} "
              f"{outcome.seconds:6.1f} s {outcome.peak_rss_mb:7.0f} MB", flush=True)
    log.close()
    rejected = counts["rejected"]
    typed = rejected - reasons["untyped"]
    print(f"\nmutants run: {sum(counts.values())}; outcomes:", dict(counts))
    print("typed rejection reasons:", dict(reasons))
    print(f"typed rejections: {typed}/{rejected} ({100.0 * typed / max(rejected, 1):.1f} %); exit 1: "
          f"{counts['exit1']}; hangs: {counts['hang']}; other exits: {counts['other']}")
    if rss:
        print(f"peak RSS per analysis: max {max(rss):.0f} MB, median {sorted(rss)[len(rss) // 2]:.0f} MB")
    print("per format:", {k: dict(v) for k, v in sorted(per_format.items())})
    if not args.no_bombs:
        print("\nbombs:")
        for name, (path, env) in make_bombs(args.out / "bombs").items():
            outcome = run_one(path, home / "bombs", args.timeout, env, force=True)
            print(f"  {name:32} {path.stat().st_size:>9} bytes  {outcome.kind:8} {outcome.reason or '':18} "
                  f"{outcome.seconds:6.1f} s  peak RSS {outcome.peak_rss_mb:6.0f} MB")
            if outcome.kind in ("exit1", "hang", "other"):
                shutil.copy(path, crashers / path.name)
                (crashers / f"{path.name}.stderr").write_text(outcome.stderr)
    return 1 if counts["exit1"] or counts["hang"] else 0


if __name__ == "__main__":
    sys.exit(main())
