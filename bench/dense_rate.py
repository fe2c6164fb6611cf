"""The frame rate each temporal cue needs: blinks, head pose and landmark stability from the dense landmark pass at
its rate (30 fps) and from every other of its frames (15 fps), on the dense caches of an evaluation workspace.

The ``temporal`` and ``avsync`` stages share one Face Mesh pass at ``temporal.max_fps``; Face Mesh is most of the
``temporal`` stage's CPU (7.1 of 9.6 CPU-s for a 60 s 720p video), so halving the rate would halve it. This reads
the cached passes (``derived/<asset>/temporal/dense-*.npz``) of a workspace that ``tamperscope eval-video`` filled,
runs the cue detectors on every frame and on every other frame (a gap wider than three frame intervals ends a
range, and the stage's ``with_gaps`` separates the ranges), and prints per cue: the AUC at each rate, how well
the two scores agree, and the blink events found. Dropping frames of a tracked pass approximates a pass run at
the lower rate (the tracker then also sees larger motions between frames).

Usage: ``.venv/bin/python bench/dense_rate.py --workspace /work/eval/ws5
[--manifest src/tamperscope/evaluation/manifests/pool_video.csv]``.
"""

from __future__ import annotations

import argparse
import csv
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from tamperscope.temporal.blinks import analyze_blinks
from tamperscope.temporal.dense import DenseTrack
from tamperscope.temporal.head_pose import analyze_head_pose
from tamperscope.temporal.landmarks import analyze_landmarks
from tamperscope.temporal.tracks import with_gaps

ROOT = Path(__file__).resolve().parents[1]
CUES = ("blink", "pose", "landmarks")


def ranges_of(t_ms: np.ndarray, gap_ms: float) -> list[tuple[int, int]]:
    """The time ranges of a pass, split where consecutive frames lie further apart than ``gap_ms`` (the cache keeps
    the frames, not the face plan's ranges)."""
    starts = np.r_[0, np.flatnonzero(np.diff(t_ms) > gap_ms) + 1]
    ends = np.r_[starts[1:] - 1, len(t_ms) - 1]
    return [(int(t_ms[a]), int(t_ms[b])) for a, b in zip(starts, ends, strict=True)]


def cues(track: DenseTrack, step: int, gap_ms: float) -> dict[str, Any]:
    """The cue scores of every ``step``-th frame of ``track``, with the stage's gap rows (``with_gaps``)."""
    every = replace(track, t_ms=track.t_ms[::step], landmarks=track.landmarks[::step])
    t, lm = with_gaps(every, ranges_of(every.t_ms, gap_ms))
    blink = analyze_blinks(lm, t, drop=0.3, min_face_s=10.0)
    return {"blink": blink.score, "blinks": len(blink.events),
            "pose": analyze_head_pose(lm, t, (track.width, track.height)).score,
            "landmarks": analyze_landmarks(lm, t).score}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--manifest", type=Path,
                        default=ROOT / "src" / "tamperscope" / "evaluation" / "manifests" / "pool_video.csv")
    args = parser.parse_args()
    with args.manifest.open(newline="") as fh:
        labels = {Path(r["path"]).name: int(r["label"]) for r in csv.DictReader(fh)}
    with sqlite3.connect(args.workspace / "tamperscope.db") as db:
        names = {asset_id[:16]: name for asset_id, name in db.execute("select asset_id, original_name from assets")}
    rows = []
    for path in sorted((args.workspace / "store" / "derived").glob("*/temporal/dense-*.npz")):
        name = names.get(path.parts[-3])
        if name not in labels:
            continue
        track = DenseTrack.from_bytes(path.read_bytes())
        if len(track.t_ms) < 10 or track.fps < 24:
            continue
        interval = 1000.0 / track.fps
        rows.append({"label": labels[name], "full": cues(track, 1, 3 * interval),
                     "half": cues(track, 2, 6 * interval)})
    print(f"{len(rows)} videos with a dense pass at >= 24 fps")
    y = np.array([r["label"] for r in rows])
    for cue in CUES:
        line = [cue]
        for rate in ("full", "half"):
            scored = [i for i, r in enumerate(rows) if r[rate][cue] is not None]
            auc = roc_auc_score(y[scored], [rows[i][rate][cue] for i in scored])
            line.append(f"{'30' if rate == 'full' else '15'} fps: AUC {auc:.3f} ({len(scored)} scored)")
        both = [r for r in rows if r["full"][cue] is not None and r["half"][cue] is not None]
        a, b = np.array([r["full"][cue] for r in both]), np.array([r["half"][cue] for r in both])
        line.append(f"scored at both {len(both)}, mean |difference| {np.abs(a - b).mean():.3f}")
        print("; ".join(line))
    full, half = np.array([r["full"]["blinks"] for r in rows]), np.array([r["half"]["blinks"] for r in rows])
    print(f"blink events: {full.sum()} at 30 fps, {half.sum()} at 15 fps ({half.sum() / max(full.sum(), 1) - 1:+.1%}); "
          f"the same count on {int((full == half).sum())} of {len(rows)} videos")


if __name__ == "__main__":
    main()
