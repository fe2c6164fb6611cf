"""Keypoint copy-move on video frames: up-scaled to the detector's ``min_side`` (its default, tuned on small photos)
or at the frame's own size (what the ``forensics`` stage uses for video frames, ``VIDEO_FRAME_PARAMS``).

Video frames are stored at 512 px on the long side, so the default up-scales a 512x288 frame to 1365x768 before
SIFT. For one frame (t >= 1 s) of every ``--step``-th real video of the pooled manifest, a synthetic clone is made
inside the frame's central square (``samples.forgeries.make_samples``' copy-move: a textured region rotated and
scaled onto another place), and both the forged and the pristine frame are JPEG-compressed at the sample's quality.
Printed per setting: the share of clones found (score > 0.5), the share of pristine frames that fire, the AUC of
forged against pristine, and the CPU milliseconds per frame measured in this process.

Usage: ``nice -n 10 .venv/bin/python bench/copymove_video.py [--step 2]``; skips with a message when
``../shared`` is absent.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from tamperscope.forensics import load_detector
from tamperscope.media.video_reader import VideoReader
from tamperscope.samples.forgeries import decode, jpeg_bytes, make_samples

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "testdata"
MANIFEST = ROOT / "src" / "tamperscope" / "evaluation" / "manifests" / "pool_video.csv"
SETTINGS: dict[str, dict[str, Any] | None] = {"up-scaled to 768 px (default)": None,
                                              "frame's own size (video frames)": {"min_side": 0}}


def frame_at(path: Path, t_ms: int = 1000, long_side: int = 512) -> np.ndarray | None:
    """The first frame at or after ``t_ms``, rendered as the ``video`` stage stores it."""
    with VideoReader(path, long_side=long_side) as reader:
        return next((f.rgb for f in reader if f.t_ms >= t_ms), None)


def pair(rng: np.random.Generator, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(forged, pristine) JPEG-decoded frames: a copy-move inside the central square, or None when none fits."""
    side = min(frame.shape[:2])
    x0, y0 = (frame.shape[1] - side) // 2, (frame.shape[0] - side) // 2
    square = frame[y0:y0 + side, x0:x0 + side]
    try:
        clone = next(s for s in make_samples(rng, square, square[::-1]) if s.kind == "copymove")
    except ValueError:
        return None
    forged = frame.copy()
    forged[y0:y0 + side, x0:x0 + side] = clone.image
    return decode(jpeg_bytes(forged, clone.quality)), decode(jpeg_bytes(frame, clone.quality))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--step", type=int, default=2, help="every STEP-th real video of the manifest")
    args = parser.parse_args()
    if not SHARED.is_dir():
        print(f"skipped: {SHARED} is absent")
        return
    with MANIFEST.open(newline="") as fh:
        reals = [r for r in csv.DictReader(fh) if r["label"] == "0"][::args.step]
    rng = np.random.default_rng(0)
    pairs = []
    for row in reals:
        frame = frame_at(SHARED / row["path"])
        if frame is not None and min(frame.shape[:2]) >= 200 and (made := pair(rng, frame)) is not None:
            pairs.append(made)
    detector = load_detector("copymove_keypoint")
    for name, params in SETTINGS.items():
        started = time.process_time()
        forged = np.array([detector.analyze(f, params=params).score for f, _ in pairs])
        pristine = np.array([detector.analyze(p, params=params).score for _, p in pairs])
        ms = (time.process_time() - started) * 1000 / (2 * len(pairs))
        auc = roc_auc_score([1] * len(forged) + [0] * len(pristine), np.r_[forged, pristine])
        print(f"{name}: {len(pairs)} frames; clones found {np.mean(forged > 0.5):.2f}, pristine firing "
              f"{np.mean(pristine > 0.5):.2f}, AUC {auc:.3f}, {ms:.0f} CPU-ms per frame")


if __name__ == "__main__":
    main()
