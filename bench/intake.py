"""Intake throughput against ``sha256sum`` on the same ~1 GiB video, and the ingest's peak memory.

Usage: ``.venv/bin/python bench/intake.py [--size-mib 1024]``. The file is an uncompressed AVI video
generated with ffmpeg (so it passes validation like a real upload); it is read once first so that both runs
read from the page cache. The ingest hashes, copies into the store, fsyncs, validates and writes the audit
event. Goals: throughput ratio >= 0.9 and peak RSS < 150 MB (measured in a child process).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import resource, sys, time
from pathlib import Path
from tamperscope.custody.intake import IntakeRecord, ingest_path
from tamperscope.settings import Settings
from tamperscope.workspace import Workspace
ws = Workspace.open(Settings(home=sys.argv[2], actor="bench"))
start = time.perf_counter()
result = ingest_path(ws, Path(sys.argv[1]), IntakeRecord("bench.avi"))
elapsed = time.perf_counter() - start
print(elapsed, result.sha256, result.status, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def make_video(path: Path, size_mib: int) -> None:
    """Raw RGB 1280x720 frames (2.6 MiB each) in AVI (OpenDML), as many as make ``size_mib``."""
    frames = size_mib * 1024 * 1024 // (1280 * 720 * 3)
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
                    "-frames:v", str(frames), "-c:v", "rawvideo", "-pix_fmt", "bgr24", str(path)], check=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tamperscope-bench-") as tmp:
        video = Path(tmp) / "big.avi"
        make_video(video, args.size_mib)
        size_mb = video.stat().st_size / 1e6
        subprocess.run(["cat", str(video)], stdout=subprocess.DEVNULL, check=True)
        start = time.perf_counter()
        expected = subprocess.run(["sha256sum", str(video)], capture_output=True, text=True, check=True)
        sha_seconds = time.perf_counter() - start
        child = subprocess.run([sys.executable, "-c", CHILD, str(video), str(Path(tmp) / "home")],
                               capture_output=True, text=True, check=True)
        elapsed, digest, status, peak_kib = child.stdout.split()
        if digest != expected.stdout.split()[0] or status != "accepted":
            print(f"unexpected ingest result: {child.stdout}", file=sys.stderr)
            return 1
        ours, theirs = size_mb / float(elapsed), size_mb / sha_seconds
        print(f"file: {size_mb:.0f} MB uncompressed video")
        print(f"sha256sum: {sha_seconds:.2f} s ({theirs:.0f} MB/s)")
        print(f"ingest (hash + store + fsync + validate + audit): {float(elapsed):.2f} s ({ours:.0f} MB/s)")
        print(f"throughput ratio ingest/sha256sum: {ours / theirs:.2f}  (goal >= 0.9)")
        print(f"ingest peak RSS: {int(peak_kib) / 1024:.0f} MiB  (goal < 150 MB)")
    return 0


if __name__ == "__main__":
    os.nice(5)
    sys.exit(main())
