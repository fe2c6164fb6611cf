"""Benchmark of the ``video`` stage against ``ffmpeg -f null`` decoding, in the same run.

1. A 60 s 1280x720 30 fps H.264 video with a cut every 5 s (lavfi): time ``ffmpeg -i FILE -f null -`` and
   our ``video`` stage without faces (decode + shots + sampling + quality + storing frames); print the ratio
   (goal <= 1.5x) and the cut F1.
2. A 1280x720 face video (scikit-image's astronaut panned and zoomed with ``zoompan``): the stage with faces,
   printed as x real time (goal > 1).
3. Peak RSS of the stage on a 10-minute and a 1-minute video, each in its own child process.

Usage: ``nice -n 10 .venv/bin/python bench/video.py [--skip-rss] [--rss-size 640x360]``
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tamperscope.custody.intake import ingest_path
from tamperscope.media.shots import cut_f1
from tamperscope.pipeline.runner import analyze_asset
from tamperscope.samples.shots import face_video, video_with_known_cuts
from tamperscope.settings import Settings
from tamperscope.store.models import Shot, StageRun
from tamperscope.workspace import Workspace


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


def time_ffmpeg_decode(path: Path) -> float:
    start = time.perf_counter()
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "null", "-"], check=True)
    return time.perf_counter() - start


def run_stage(path: Path, home: Path, *, faces: bool) -> tuple[float, dict[str, object], list[int]]:
    """Ingest ``path`` into a fresh workspace and time the ``video`` stage alone."""
    settings = Settings(home=home, actor="bench")
    settings = settings.model_copy(update={"video": settings.video.model_copy(update={"faces": faces})})
    ws = Workspace.open(settings)
    try:
        asset_id = ingest_path(ws, path).asset_id
        start = time.perf_counter()
        result = analyze_asset(ws, asset_id, only=["video"])
        elapsed = time.perf_counter() - start
        if result.failed:
            raise RuntimeError(result.failed)
        with ws.db.session() as session:
            run = session.get(StageRun, (asset_id, "video"))
            summary = dict(run.summary_json or {}) if run else {}
            starts = sorted(s.frame_start or 0 for s in session.query(Shot).filter(Shot.asset_id == asset_id))
    finally:
        ws.close()
    return elapsed, summary, [s for s in starts if s > 0]


def child_rss(path: Path, home: Path) -> dict[str, object]:
    """Run the stage (no faces) in a child process; its own peak RSS (VmHWM, reset at exec, unlike
    ``ru_maxrss`` which a child inherits from its parent) in MiB, and the stage time."""
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "sys.path.insert(0, str(Path(sys.argv[3])))\n"
        "from video import run_stage\n"
        "elapsed, summary, _ = run_stage(Path(sys.argv[1]), Path(sys.argv[2]), faces=False)\n"
        "hwm = [line for line in open('/proc/self/status') if line.startswith('VmHWM')][0].split()[1]\n"
        "print(json.dumps({'rss_mib': int(hwm) / 1024, 'seconds': elapsed, 'frames': summary.get('frames_decoded')}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path), str(home), str(Path(__file__).parent)],
                         check=True, capture_output=True, text=True).stdout
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-rss", action="store_true", help="skip the 10-minute peak-RSS comparison")
    parser.add_argument("--rss-size", default="640x360", help="frame size of the RSS videos")
    parser.add_argument("--face-seconds", type=int, default=20, help="length of the face video")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved timing runs (best is reported)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tamperscope-bench-") as tmp_name:
        tmp = Path(tmp_name)
        print("generating 60 s 1280x720 30 fps H.264 with 11 cuts ...", flush=True)
        known = video_with_known_cuts(tmp / "cuts.mp4", [150] * 12, rate=30, size="1280x720")
        ffmpeg_runs: list[float] = []
        stage_runs: list[float] = []
        for repeat in range(args.repeats):  # interleaved, best of N: the machine is shared
            ffmpeg_runs.append(time_ffmpeg_decode(known.path))
            elapsed, summary, cuts = run_stage(known.path, tmp / f"home-cuts{repeat}", faces=False)
            stage_runs.append(elapsed)
        baseline, stage_s = min(ffmpeg_runs), min(stage_runs)
        precision, recall, f1 = cut_f1(cuts, known.cuts)
        print(f"ffmpeg -f null: {' / '.join(f'{t:.2f}' for t in ffmpeg_runs)} s (best {baseline:.2f} s)")
        print(f"video stage, no faces: {' / '.join(f'{t:.2f}' for t in stage_runs)} s (best {stage_s:.2f} s) for "
              f"{summary.get('frames_decoded')} frames, {summary.get('frames_sampled')} sampled, "
              f"{summary.get('shots')} shots")
        print(f"RATIO stage / ffmpeg decode = {stage_s / baseline:.2f}x best-of-{args.repeats} "
              f"(median {sorted(stage_runs)[len(stage_runs) // 2] / sorted(ffmpeg_runs)[len(ffmpeg_runs) // 2]:.2f}x;"
              f" goal <= 1.5x)")
        print(f"cut P={precision:.3f} R={recall:.3f} F1={f1:.3f} (+-1 frame)")

        face = face_video(tmp / "face.mp4", seconds=args.face_seconds, size="1280x720")
        face_s, face_summary, _ = run_stage(face, tmp / "home-face", faces=True)
        print(f"video stage with faces: {face_s:.2f} s for {args.face_seconds} s of 1280x720 video, "
              f"{face_summary.get('faces')} faces in {face_summary.get('frames_sampled')} frames, "
              f"{face_summary.get('tracks')} tracks")
        print(f"FACES x real time = {args.face_seconds / face_s:.2f} (goal > 1)")

        if not args.skip_rss:
            for minutes in (1, 10):
                video = tmp / f"rss{minutes}.mp4"
                video_with_known_cuts(video, [300] * (6 * minutes), rate=30, size=args.rss_size,
                                      preset="ultrafast")
                peak = child_rss(video, tmp / f"home-rss{minutes}")
                print(f"peak RSS {minutes:>2}-minute {args.rss_size}: {peak['rss_mib']:.0f} MiB "
                      f"({peak['frames']} frames in {peak['seconds']:.1f} s)", flush=True)
                video.unlink()
        print(f"bench process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
