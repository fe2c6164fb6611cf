"""Training data for the deep detectors: face tracks cut from a folder of real (and optionally fake) media.

Layouts understood by :func:`scan`:

* generic -- ``DIR/real/...`` and ``DIR/fake/...``; a file directly in ``real/`` is its own identity, a file in
  ``real/<identity>/`` belongs to ``<identity>`` (so several clips of one person stay in one split);
* FaceForensics++ -- ``DIR/original_sequences/<source>/<quality>/videos/NNN.mp4`` (real, identity ``NNN``) and
  ``DIR/manipulated_sequences/<method>/<quality>/videos/AAA_BBB.mp4`` (fake, identities ``AAA`` and ``BBB``).

Each medium is decoded once by the runtime's own readers (:func:`face_frames`: the frames the ``video`` stage
detects faces on), sampled at a fixed rate, and its largest face per sampled frame is cut out with the runtime's
aligned crop (:func:`tamperscope.media.faces.aligned_crop`), with the 478 landmarks mapped into crop pixels: a
training crop has the pixels of the run-time crop of the same source frame. Results are cached as ``.npz`` under
the content hash of the file and the extraction parameters, so a re-run (or a cross-validation fold) does not
decode again. No torch here: the trainer imports it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tamperscope.custody.hashing import sha256_file
from tamperscope.errors import InputRejectedError, UsageError
from tamperscope.media.faces import FaceAnalyzer, aligned_crop_affine
from tamperscope.media.image import read_image
from tamperscope.media.video_reader import VideoReader
from tamperscope.settings import VideoSettings
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

    def shows_any(self, identities: Iterable[str]) -> bool:
        """Whether one of ``identities`` appears in this medium (splits keep such media out of a fold's training)."""
        return not set(self.identities).isdisjoint(identities)


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


def face_frames(path: Path, fps: float, max_frames: int, video: VideoSettings | None = None) -> Iterator[
        tuple[int, int, np.ndarray]]:
    """``(grid index, t_ms, RGB frame)`` sampled at ``fps``: the frames the ``video`` stage detects faces on.

    Decoded by the runtime's readers with ``video``'s sizes (the defaults: what the shipped pipeline runs), so a
    training crop has the pixels of the run-time crop of the same source frame: a video through
    :class:`~tamperscope.media.video_reader.VideoReader` (rotation, square pixels, area scaling in one filter
    graph; only the frames on the grid are rendered), an image through
    :func:`~tamperscope.media.image.read_image` (EXIF orientation applied; one frame at t = 0, none when the
    runtime would refuse it). Either way it is the frame's
    :meth:`~tamperscope.media.frames.DecodedFrame.face_view`, as in the stage.
    """
    video = video if video is not None else VideoSettings()
    detect_long_side = video.face_detect_long_side
    if path.suffix.lower() in IMAGE_SUFFIXES:
        try:
            image = read_image(path, long_side=video.long_side, detail_long_side=detect_long_side)
        except InputRejectedError:
            return
        yield 0, 0, image.face_view()
        return
    with VideoReader(path, long_side=video.long_side, detail_long_side=detect_long_side) as reader:
        next_k, taken = 0, 0
        for index, t_ms, key, raw in reader.raw_frames():
            k = int(np.floor(t_ms * fps / 1000 + 1e-6))
            if k < next_k:
                continue
            frame = reader.decoded(index, t_ms, key, raw)
            yield k, t_ms, frame.face_view()
            next_k, taken = k + 1, taken + 1
            if taken >= max_frames:
                return


def extract(item: MediaItem, analyzer: FaceAnalyzer, *, fps: float, max_frames: int,
            video: VideoSettings | None = None) -> FaceTrack:
    """Largest face per sampled frame, cropped as at run time, with landmarks in crop pixels."""
    crops, marks, times, grid = [], [], [], []
    for k, t_ms, rgb in face_frames(item.path, fps, max_frames, video):
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
    video = VideoSettings()
    # v2: frames from the runtime's readers (v1: a PyAV loop of its own, other pixels)
    params = {"fps": fps, "max_frames": max_frames, "crop_size": crop_size, "margin": margin, "v": 2,
              "long_side": video.long_side, "detect_long_side": video.face_detect_long_side}
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
            track = extract(item, analyzer, fps=fps, max_frames=max_frames, video=video)
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
    items = [i for i in scan(data) if not i.shows_any(exclude)]
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
