"""Measurement: AV-sync offset, confidence and score of labelled videos, and the AUC of the score per family.

Runs only what the ``avsync`` stage's asset-level offset needs, with the stage's own pure functions
(:mod:`tamperscope.temporal.avsync`): the audio (PyAV, 16 kHz mono) and a dense Face Mesh pass over the whole
file at the stage's default size and rate. Unlike the pipeline, Face Mesh first runs on the whole frame; only
when it finds the face on under 90 % of the frames is the pass repeated on patches guided by BlazeFace boxes
sampled at 5 fps (what the ``video`` stage's face track gives the pipeline). Landmarks are cached per file
under ``--cache``, so re-scoring is fast. Labels come from the folder (``real``/``fake``/``deepfake``), the
family from the file-name prefix. ``--null`` instead pairs each clip's lips with other clips' audio and prints
the chance level of the confidence (the source of :data:`tamperscope.temporal.avsync.CHANCE_MARGIN`).

Usage (2 cores shared, so niced)::

    nice -n 10 .venv/bin/python bench/avsync_eval.py ../shared/testdata/video/real ../shared/testdata/video/fake \\
        ../shared/testdata/video/deepfake --out /tmp/avsync-dev.tsv
    nice -n 10 .venv/bin/python bench/avsync_eval.py ../shared/testdata/train/video/real \\
        ../shared/testdata/train/video/fake --out /tmp/avsync-train.tsv
"""

from __future__ import annotations

import argparse
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from tamperscope.media.audio import AudioTrack, extract_audio
from tamperscope.media.faces import FaceAnalyzer
from tamperscope.media.video_reader import VideoReader
from tamperscope.settings import Settings
from tamperscope.temporal.avsync import OffsetResult, audio_features, estimate_offset, mouth_opening, sync_score
from tamperscope.temporal.dense import DenseTrack, dense_landmarks
from tamperscope.temporal.mesh import OUTER_LIP_PAIRS

VIDEO_SUFFIXES = {".mp4", ".mov", ".mpg", ".webm", ".mkv", ".avi"}


@dataclass(frozen=True)
class Clip:
    """One video's label (1 = fake), family, audio (None without) and lip-height series (NaN without a face)."""

    name: str
    label: int
    family: str
    audio: AudioTrack | None
    lips_t_s: np.ndarray
    lips: np.ndarray


def family_of(name: str) -> str:
    """Family of a file from its name prefix (``svls``, ``vexpress``, ``anitalker``, ``grid`` ...)."""
    stem = name.split("_")[0].lower()
    return {"ffppc23": "ffpp", "abofeumbvv.mp4": "dfdc"}.get(stem, stem)


def face_guides(path: Path, long_side: int, every_ms: int = 200) -> list[tuple[int, tuple[float, float, float, float]]]:
    """Largest BlazeFace box every ``every_ms`` in frames decoded at ``long_side`` (the video stage's role)."""
    guides: list[tuple[int, tuple[float, float, float, float]]] = []
    last = -every_ms
    with VideoReader(path, long_side=long_side) as reader, FaceAnalyzer(max_faces=1) as faces:
        for frame in reader:
            if frame.t_ms - last < every_ms:
                continue
            last = frame.t_ms
            found = [f.box for f in faces.detect(frame.rgb)]
            if found:
                box = max(found, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
                guides.append((frame.t_ms, (float(box[0]), float(box[1]), float(box[2]), float(box[3]))))
    return guides


def dense_cached(path: Path, cache: Path, settings: Settings) -> DenseTrack:
    """Dense landmarks of the whole file at the stage's size and rate (guided when unguided misses the face)."""
    cfg = settings.temporal
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    key = cache / f"{digest}-{cfg.long_side}-{cfg.max_fps:g}.npz"
    if key.exists():
        track = DenseTrack.from_bytes(key.read_bytes())
    else:
        track = dense_landmarks(path, [(0, 10**9)], long_side=cfg.long_side, max_fps=cfg.max_fps)
        cache.mkdir(parents=True, exist_ok=True)
        key.write_bytes(track.to_bytes())
    if len(track.t_ms) and np.isfinite(track.landmarks[:, 0, 0]).mean() >= 0.9:
        return track
    guided_key = key.with_name(key.stem + "-guided.npz")
    if guided_key.exists():
        return DenseTrack.from_bytes(guided_key.read_bytes())
    guides = face_guides(path, cfg.long_side)
    if guides:
        guided = dense_landmarks(path, [(0, 10**9)], long_side=cfg.long_side, max_fps=cfg.max_fps, guides=guides)
        if np.isfinite(guided.landmarks[:, 0, 0]).mean() > np.isfinite(track.landmarks[:, 0, 0]).mean():
            track = guided
    guided_key.write_bytes(track.to_bytes())
    return track


def load_clip(path: Path, cache: Path, settings: Settings) -> Clip:
    """Audio and lips of one labelled file (landmarks only when it has audio)."""
    label = int(path.parent.name in ("fake", "deepfake"))
    audio = extract_audio(path)
    if audio is None:
        return Clip(path.name, label, family_of(path.name), None, np.zeros(0), np.zeros(0))
    track = dense_cached(path, cache, settings)
    lips = mouth_opening(track.landmarks, OUTER_LIP_PAIRS) if len(track.t_ms) else np.zeros(0)
    return Clip(path.name, label, family_of(path.name), audio, track.t_ms / 1000.0, lips)


def clip_offset(clip: Clip, audio: AudioTrack, settings: Settings) -> tuple[float, OffsetResult | None]:
    """``(seconds of speech, offset)`` of the clip's lips against ``audio``, as the stage computes it."""
    features = audio_features(audio.samples, audio.rate, audio.start_s)
    if not features.segments or np.isfinite(clip.lips).sum() < 2:
        return features.speech_s, None
    return features.speech_s, estimate_offset(clip.lips_t_s, clip.lips, features.t_s, features.sync_envelope,
                                              max_lag_s=settings.temporal.max_offset_s, min_overlap_s=2.0,
                                              chance_margin=settings.temporal.sync_chance_margin)


def null_levels(clips: list[Clip], settings: Settings, *, partners: int = 3, seed: int = 0) -> None:
    """Print the confidence reached by each clip's lips against other clips' audio, by overlap length."""
    rng = np.random.default_rng(seed)
    with_audio = [c for c in clips if c.audio is not None and np.isfinite(c.lips).mean() > 0.5]
    scaled: list[tuple[float, float]] = []
    for i, clip in enumerate(with_audio):
        for j in rng.choice(len(with_audio), partners, replace=False):
            other = with_audio[j].audio
            if j == i or other is None:
                continue
            _, result = clip_offset(clip, AudioTrack(other.samples, other.rate, 0.0), settings)
            if result is not None and result.confidence > 0:
                overlap = (settings.temporal.sync_chance_margin / result.chance) ** 2
                scaled.append((overlap, result.confidence))
    values = np.array(scaled)
    for lo, hi in [(0, 4), (4, 8), (8, 12), (12, 20), (20, 600)]:
        part = values[(values[:, 0] >= lo) & (values[:, 0] < hi)]
        if len(part):
            print(f"overlap {lo}-{hi} s: {len(part)} pairs, confidence p50 {np.median(part[:, 1]):.2f} "
                  f"p95 {np.percentile(part[:, 1], 95):.2f}")
    margin = values[:, 1] * np.sqrt(values[:, 0])
    print(f"confidence x sqrt(overlap s), {len(values)} pairs: p50 {np.median(margin):.2f} "
          f"p95 {np.percentile(margin, 95):.2f} p99 {np.percentile(margin, 99):.2f}")


def auc_table(rows: list[tuple[str, int, dict[str, float]]], keys: tuple[str, ...]) -> None:
    """AUC (fake = positive) of each value in ``keys``: every family's fakes against all reals that have it.

    Cells read ``AUC (fakes/reals)``; ``-`` when one class is missing.
    """
    families = sorted({family for family, label, _ in rows if label == 1})
    print(f"{'family':12s} " + " ".join(f"{k:>20s}" for k in keys))
    for family in ["all", *families]:
        cells = []
        for key in keys:
            pool = [(label, v[key]) for fam, label, v in rows if key in v and (label == 0 or family in ("all", fam))]
            labels = [y for y, _ in pool]
            n_fake = sum(labels)
            auc = f"{roc_auc_score(labels, [x for _, x in pool]):.3f}" if 0 < n_fake < len(labels) else "-"
            cells.append(f"{auc} ({n_fake}/{len(labels) - n_fake})")
        print(f"{family:12s} " + " ".join(f"{c:>20s}" for c in cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/avsync-landmarks"))
    parser.add_argument("--out", type=Path, help="write the per-video table as TSV too")
    parser.add_argument("--null", action="store_true", help="print the chance level of the confidence instead")
    args = parser.parse_args()
    settings = Settings()
    files = sorted(p for folder in args.folders for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    clips = [load_clip(path, args.cache, settings) for path in files]
    if args.null:
        null_levels(clips, settings)
        return
    header = ["video", "label", "family", "speech_s", "face", "offset_ms", "peak_r", "confidence", "chance",
              "score", "ms"]
    table: list[list[str]] = []
    scored: list[tuple[str, int, dict[str, float]]] = []
    print("\t".join(header))
    for clip in clips:
        row = [clip.name, str(clip.label), clip.family]
        if clip.audio is None:
            row += ["no audio"] + [""] * 7
        else:
            tick = time.perf_counter()
            speech_s, result = clip_offset(clip, clip.audio, settings)
            ms = 1000 * (time.perf_counter() - tick)
            face = float(np.isfinite(clip.lips).mean()) if len(clip.lips) else 0.0
            score = sync_score(result)
            row += [f"{speech_s:.1f}", f"{face:.2f}"]
            if result is None:
                row += ["", "", "0", "", "", f"{ms:.0f}"]
            else:
                row += [f"{result.offset_ms:.0f}", f"{result.peak_corr:.2f}", f"{result.confidence:.3f}",
                        f"{result.chance:.3f}", f"{score:.3f}" if score is not None else "insufficient", f"{ms:.0f}"]
                values = {"confidence": result.confidence, "peak_r": result.peak_corr,
                          "-offset_ms": -result.offset_ms}
                if score is not None:
                    values["score"] = score
                scored.append((clip.family, clip.label, values))
        table.append(row)
        print("\t".join(row), flush=True)
    if args.out:
        args.out.write_text("\n".join("\t".join(r) for r in [header, *table]) + "\n")
    with_offset = [c for c in table if c[5] not in ("", "no audio")]
    print(f"\n{sum(c.audio is not None for c in clips)} of {len(clips)} videos have audio; "
          f"{len(with_offset)} got an offset, {sum(float(c[7]) > 0 for c in with_offset)} with confidence > 0, "
          f"{sum(c[9] not in ('', 'insufficient') for c in with_offset)} scored (confidence above chance)")
    print("\nAUC (fake = positive) of each family's fakes against all reals:")
    auc_table(scored, ("score", "confidence", "peak_r", "-offset_ms"))


if __name__ == "__main__":
    main()
