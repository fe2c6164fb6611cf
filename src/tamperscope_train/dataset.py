"""Training data for the deep detectors: face tracks cut from a folder of real (and optionally fake) media.

Layouts understood by :func:`scan`:

* generic -- ``DIR/real/...`` and ``DIR/fake/...``; a file directly in ``real/`` is its own identity, a file in
  ``real/<identity>/`` belongs to ``<identity>`` (so several clips of one person stay in one split);
* FaceForensics++ -- ``DIR/original_sequences/<source>/<quality>/videos/NNN.mp4`` (real, identity ``NNN``) and
  ``DIR/manipulated_sequences/<method>/<quality>/videos/AAA_BBB.mp4`` (fake, identities ``AAA`` and ``BBB``).

Each medium is decoded once, sampled at a fixed rate, and its largest face per sampled frame is cut out with the
runtime's aligned crop (:func:`tamperscope.media.faces.aligned_crop`), with the 478 landmarks mapped into crop
pixels. Results are cached as ``.npz`` under the content hash of the file and the extraction parameters, so a
re-run (or a cross-validation fold) does not decode again. No torch here: the trainer imports it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from tamperscope.custody.hashing import sha256_file
from tamperscope.errors import UsageError
from tamperscope.media.faces import FaceAnalyzer, aligned_crop_affine
from tamperscope_train.config import Progress

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
FFPP_FAKE = re.compile(r"^(\d+)_(\d+)$")


@dataclass(frozen=True)
class MediaItem:
    """One training medium: its path, label (1 = manipulated), identities and family (method)."""

    path: Path
    label: int
    identities: tuple[str, ...]
    family: str


@dataclass
class FaceTrack:
    """The faces of one medium: aligned crops, landmarks in crop pixels, sample times and grid positions.

    ``grid`` is the index of each crop on the sampling grid (frame ``k`` of ``fps``), so runs of consecutive
    grid indices are consecutive sampled frames (what a clip window is made of).
    """

    item: MediaItem
    crops: np.ndarray
    landmarks: np.ndarray
    t_ms: np.ndarray
    grid: np.ndarray

    def runs(self, length: int) -> list[np.ndarray]:
        """Index arrays of non-overlapping runs of ``length`` consecutive grid positions."""
        out: list[np.ndarray] = []
        start = 0
        for i in range(1, len(self.grid) + 1):
            if i == len(self.grid) or self.grid[i] != self.grid[i - 1] + 1:
                for s in range(start, i - length + 1, length):
                    out.append(np.arange(s, s + length))
                start = i
        return out


def _media_files(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES | IMAGE_SUFFIXES:
            yield path


def scan(data: Path) -> list[MediaItem]:
    """List the media of a training folder (generic ``real/``/``fake/`` or FaceForensics++ layout).

    Raises
    ------
    UsageError
        When the folder holds neither layout or no real media.
    """
    items: list[MediaItem] = []
    for label, name in ((0, "real"), (1, "fake")):
        root = data / name
        if root.is_dir():
            for path in _media_files(root):
                rel = path.relative_to(root)
                identity = rel.parts[0] if len(rel.parts) > 1 else path.stem
                items.append(MediaItem(path, label, (identity,), name if label == 0 else "fake"))
    for path in _media_files(data / "original_sequences") if (data / "original_sequences").is_dir() else ():
        items.append(MediaItem(path, 0, (path.stem,), "real"))
    manipulated = data / "manipulated_sequences"
    for path in _media_files(manipulated) if manipulated.is_dir() else ():
        method = path.relative_to(manipulated).parts[0]
        match = FFPP_FAKE.match(path.stem)
        items.append(MediaItem(path, 1, match.groups() if match else (path.stem,), method))
    if not any(i.label == 0 for i in items):
        raise UsageError(f"{data} holds no real media (expected real/ or original_sequences/)")
    return items


def _frames(path: Path, fps: float, max_frames: int, long_side: int) -> Iterator[tuple[int, int, np.ndarray]]:
    """``(grid index, t_ms, RGB frame)`` sampled at ``fps`` (an image is one frame at t = 0)."""
    if path.suffix.lower() in IMAGE_SUFFIXES:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is not None:
            yield 0, 0, _fit(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), long_side)
        return
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        next_k, taken = 0, 0
        for frame in container.decode(stream):
            if frame.time is None:
                continue
            k = int(np.floor(frame.time * fps + 1e-6))
            if k < next_k:
                continue
            yield k, round(frame.time * 1000), _fit(frame.to_ndarray(format="rgb24"), long_side)
            next_k, taken = k + 1, taken + 1
            if taken >= max_frames:
                return


def _fit(rgb: np.ndarray, long_side: int) -> np.ndarray:
    scale = long_side / max(rgb.shape[:2])
    if scale >= 1:
        return rgb
    return cv2.resize(rgb, (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale)), interpolation=cv2.INTER_AREA)


def extract(item: MediaItem, analyzer: FaceAnalyzer, *, fps: float, max_frames: int,
            long_side: int = 1280) -> FaceTrack:
    """Largest face per sampled frame, cropped as at run time, with landmarks in crop pixels."""
    crops, marks, times, grid = [], [], [], []
    for k, t_ms, rgb in _frames(item.path, fps, max_frames, long_side):
        faces = [f for f in analyzer.detect(rgb) if f.landmarks is not None]
        if not faces:
            continue
        face = max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
        assert face.landmarks is not None and face.crop is not None
        matrix, _ = aligned_crop_affine(face.landmarks, size=analyzer.crop_size, margin=analyzer.crop_margin)
        points = face.landmarks[:, :2] @ matrix[:, :2].T + matrix[:, 2]
        crops.append(face.crop)
        marks.append(points.astype(np.float32))
        times.append(t_ms)
        grid.append(k)
    size = analyzer.crop_size
    return FaceTrack(item, np.asarray(crops, np.uint8).reshape(-1, size, size, 3),
                     np.asarray(marks, np.float32).reshape(-1, 478, 2), np.asarray(times, np.int64),
                     np.asarray(grid, np.int64))


def load_tracks(items: list[MediaItem], cache: Path, *, fps: float = 8.0, max_frames: int = 240,
                crop_size: int = 224, margin: float = 0.2,
                progress: bool = True) -> list[FaceTrack]:
    """Face tracks of every item, from the cache when the same bytes were extracted with the same parameters."""
    cache.mkdir(parents=True, exist_ok=True)
    params = {"fps": fps, "max_frames": max_frames, "crop_size": crop_size, "margin": margin, "v": 1}
    tag = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    tracks: list[FaceTrack] = []
    analyzer: FaceAnalyzer | None = None
    try:
        for n, item in enumerate(items):
            target = cache / f"{sha256_file(item.path)[0]}-{tag}.npz"
            if target.is_file():
                with np.load(target) as z:
                    tracks.append(FaceTrack(item, z["crops"], z["landmarks"], z["t_ms"], z["grid"]))
                continue
            if analyzer is None:
                analyzer = FaceAnalyzer(crop_size=crop_size, crop_margin=margin, max_faces=2)
            track = extract(item, analyzer, fps=fps, max_frames=max_frames)
            tmp = target.with_suffix(".tmp.npz")
            np.savez(tmp, crops=track.crops, landmarks=track.landmarks, t_ms=track.t_ms, grid=track.grid)
            tmp.replace(target)
            tracks.append(track)
            if progress:
                print(f"[{n + 1}/{len(items)}] {item.path.name}: {len(track.crops)} faces", flush=True)
    finally:
        if analyzer is not None:
            analyzer.close()
    return tracks


def media_tracks(data: Path, exclude: Sequence[str], fps: float, max_frames: int, cache: Path | None,
                 say: Progress) -> tuple[list[MediaItem], list[FaceTrack]]:
    """The training folder's media (less the ``exclude`` identities) and their cached face tracks."""
    items = [i for i in scan(data) if not set(i.identities) & set(exclude)]
    say(f"{len(items)} media ({sum(i.label == 0 for i in items)} real) after excluding {len(exclude)} identities")
    tracks = load_tracks(items, cache or data / ".tamperscope-cache", fps=fps, max_frames=max_frames,
                         progress=False)
    return items, tracks


def link_layout(manifest: Path, root: Path, out: Path, *, fake_families: tuple[str, ...] = ()) -> int:
    """Lay out the media of an evaluation manifest as a training folder of symlinks, by identity group.

    Real rows go to ``out/real/<group>/<file>``; fake rows whose ``family`` is in ``fake_families`` go to
    ``out/fake/<group>/<file>``. The manifest is a CSV with ``path`` (relative to ``root``), ``label``, ``family``
    and ``group`` columns (e.g. ``evaluation/manifests/shared_video.csv``), so the shipped models' training folder
    is rebuilt from the shared data without copying it, and held-out groups exclude a fake with its identities.

    Returns
    -------
    int
        Number of files linked.
    """
    import csv

    with manifest.open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh)
                if int(r["label"]) == 0 or r.get("family", "") in fake_families]
    for row in rows:
        folder = out / ("real" if int(row["label"]) == 0 else "fake")
        target = folder / row["group"] / Path(row["path"]).name
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            target.symlink_to((root / row["path"]).resolve())
    return len(rows)
