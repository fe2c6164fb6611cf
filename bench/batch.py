"""Batch analysis on a local Dask cluster: 40 short face videos with 1 and with 2 worker processes.

Usage: ``nice -n 10 .venv/bin/python bench/batch.py [--count 40] [--seconds 2] [--workers 1,2] [--out FILE]``. The
clips are the shared corpus's face videos (``../shared/testdata/video/{real,fake}``), each trimmed to ``--seconds``
from t=1 s and scaled to ``--width`` into a temporary folder (never the repo). Each worker count analyses them into
its own fresh workspace; the figures are the wall time (with and without the cluster start), files/min, the speed-up
over 1 worker (goal >= 1.7 with 2), the CPU-seconds per file (the workers' processes and tools over each task of the
file's graph: the stable figure on a shared machine) and the cores a running task used on average, the CPU of the
client process (which holds the local scheduler), the task seconds per kind of task (ingest, metadata, decode, deep,
fusion, finish), each worker's peak RSS, the load average, and the check that nothing was lost or duplicated:
``verify`` passes and every table's row count per asset equals the 1-worker (sequential) run's, with each stage
committed once per asset.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from tamperscope.custody.verify import verify
from tamperscope.services.batch import BatchEvent, run_batch
from tamperscope.settings import BatchSettings, Settings
from tamperscope.store.models import Asset, AuditEvent, Detection, Frame, Shot, StageRun, Window
from tamperscope.workspace import Workspace

SHARED_VIDEO = Path(__file__).resolve().parents[1].parent / "shared" / "testdata" / "video"
TABLES: dict[str, Any] = {"assets": Asset, "shots": Shot, "frames": Frame, "windows": Window, "detections": Detection,
          "stage_runs": StageRun}


def duration_s(video: Path) -> float:
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
                            str(video)], capture_output=True, text=True, check=True)
    return float(probe.stdout.strip() or 0)


def make_clips(source: Path, out: Path, count: int, seconds: float, width: int) -> list[Path]:
    """``count`` face videos from ``source``'s real/ and fake/ folders long enough to trim ``seconds`` from t=1 s,
    trimmed and scaled (H.264 + AAC)."""
    videos = sorted(p for sub in ("real", "fake") for p in (source / sub).glob("*.mp4")
                    if duration_s(p) >= 1 + seconds)
    if len(videos) < count:
        raise SystemExit(f"{source} holds {len(videos)} face videos, fewer than --count {count}")
    out.mkdir(parents=True, exist_ok=True)
    clips = []
    for video in videos[:count]:
        clip = out / video.name
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-ss", "1", "-t", str(seconds), "-i", str(video),
                        "-vf", f"scale={width}:-2", "-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac",
                        str(clip)], check=True)
        clips.append(clip)
    return clips


def row_counts(ws: Workspace) -> dict[str, dict[str, int]]:
    """Rows per table per asset (by SHA-256, the same in every workspace), and audit events per action."""
    counts: dict[str, dict[str, int]] = {}
    with ws.db.read_session() as session:
        sha = dict(session.execute(select(Asset.asset_id, Asset.sha256)).all())
        for name, model in TABLES.items():
            rows = session.execute(select(model.asset_id, func.count()).group_by(model.asset_id)).all()
            counts[name] = {sha[asset]: n for asset, n in rows}
        actions = session.execute(select(AuditEvent.action, func.count()).group_by(AuditEvent.action)).all()
        counts["audit"] = dict(actions)
    return counts


def stage_commits(ws: Workspace) -> Counter[tuple[str, str]]:
    with ws.db.read_session() as session:
        rows = session.execute(select(AuditEvent.asset_id, AuditEvent.details_json)
                               .where(AuditEvent.action.in_(["stage.done", "stage.not_applicable"]))).all()
    return Counter((asset, details["stage"]) for asset, details in rows)


def run(clips: list[Path], home: Path, workers: int) -> dict[str, Any]:
    settings = Settings(home=home, actor="bench", batch=BatchSettings(workers=workers))
    marks: dict[str, float] = {}

    def on_event(event: BatchEvent) -> None:
        marks.setdefault(event.kind, time.monotonic())
        if event.kind == "finished":
            marks["last"] = time.monotonic()

    load_before, start, client_cpu = os.getloadavg(), time.monotonic(), time.process_time()
    result = run_batch(settings, clips, on_event=on_event)
    load_after, client_cpu = os.getloadavg(), time.process_time() - client_cpu
    peak: dict[str, float] = {}
    by_task: dict[str, float] = defaultdict(float)
    for task in (t for r in result.results for t in r.tasks):
        peak[task.worker] = max(peak.get(task.worker, 0.0), task.peak_rss_mb)
        by_task[task.task] += task.seconds
    ws = Workspace.open(settings)
    try:
        checked = verify(ws)
        counts, commits = row_counts(ws), stage_commits(ws)
    finally:
        ws.close()
    busy = marks["last"] - marks["started"]
    analysed = [r for r in result.results if r.status == "analyzed"]
    cpu, task_s = sum(r.cpu_s for r in analysed), sum(r.seconds for r in analysed)
    return {
        "workers": workers, "wall_s": round(result.seconds, 1), "tasks_s": round(busy, 1),
        "cluster_start_s": round(marks["cluster"] - start, 1),
        "files_per_min": round(len(clips) / result.seconds * 60, 2),
        "cpu_s": round(cpu, 1), "cpu_s_per_file": round(cpu / max(len(analysed), 1), 2),
        "cores_per_task": round(cpu / task_s, 2) if task_s else None,
        "client_cpu_s": round(client_cpu, 1),
        "task_s_by_kind": {k: round(v, 1) for k, v in by_task.items()},
        "statuses": dict(Counter(r.status for r in result.results)),
        "failed": {r.path: r.reason for r in result.results if r.status in ("failed", "rejected")},
        "peak_rss_mb_per_worker": {k: round(v) for k, v in sorted(peak.items())},
        "load_before": [round(x, 2) for x in load_before], "load_after": [round(x, 2) for x in load_after],
        "verify_rows": checked.rows_checked, "verify_objects": checked.objects_checked,
        "stage_commits_max": max(commits.values()), "stage_commits": sum(commits.values()),
        "counts": counts,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--source", type=Path, default=SHARED_VIDEO)
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tamperscope-batch-bench-") as tmp:
        clips = make_clips(args.source, Path(tmp) / "clips", args.count, args.seconds, args.width)
        runs = []
        for workers in (int(w) for w in args.workers.split(",")):
            figures = run(clips, Path(tmp) / f"home-{workers}", workers)
            runs.append(figures)
            print(json.dumps({k: v for k, v in figures.items() if k != "counts"}), flush=True)
    base = runs[0]
    lost_or_duplicated = {r["workers"]: r["counts"] != base["counts"] or r["stage_commits_max"] != 1 for r in runs}
    for r in runs:
        print(f"{r['workers']} worker(s): {r['wall_s']} s wall ({r['tasks_s']} s first start to last finish), "
              f"{r['files_per_min']} files/min, {r['cpu_s_per_file']} CPU-s/file "
              f"({r['cores_per_task']} cores per running task), speed-up {base['wall_s'] / r['wall_s']:.2f}x wall / "
              f"{base['tasks_s'] / r['tasks_s']:.2f}x tasks; peak RSS per worker (MB) "
              f"{list(r['peak_rss_mb_per_worker'].values())}; load {r['load_before']} -> {r['load_after']}; "
              f"statuses {r['statuses']}; verify {r['verify_rows']} rows / {r['verify_objects']} objects; "
              f"rows equal to the {base['workers']}-worker run and each stage once: "
              f"{not lost_or_duplicated[r['workers']]}")
    if args.out:
        args.out.write_text(json.dumps(runs, indent=1, sort_keys=True, default=str))
    return 1 if any(lost_or_duplicated.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
