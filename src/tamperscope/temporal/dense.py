"""Dense landmark pass: decode a video once and run MediaPipe Face Mesh on every frame of given time ranges.

The ``video`` stage samples 8-12 frames per second, too sparse for blink durations (100-400 ms) and for a
+-40 ms audio-video offset. The temporal stages therefore take the face-track time ranges at full frame rate
(capped at ``max_fps``), at a reduced size (``long_side``), and track one face with Face Mesh in video mode
(landmark tracking between frames, detection only when the track is lost). The frames come from the media
session's cache, which the ``video`` stage's decode pass fills (:class:`~tamperscope.media.session.FrameCache`),
or, when it has none, from a decode of their own; both render the same pixels. This is the I/O edge of the
temporal package; the detectors themselves are pure functions of its arrays.

The result is cached in the object store (``derived/<asset_id>/temporal/dense-<hash>.npz``) under a
per-asset lock, so the ``temporal`` and ``avsync`` stages, which may run in parallel threads, pay for it
once.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar, cast

import numpy as np

from tamperscope.custody.objectstore import ObjectStore
from tamperscope.media.faces import landmark_array
from tamperscope.media.limits import NO_LIMITS, DecodeLimits
from tamperscope.media.session import FrameCache, FrameRate
from tamperscope.media.video_reader import VideoReader
from tamperscope.temporal.mesh import N_LANDMARKS

T = TypeVar("T")
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


@dataclass(frozen=True)
class DenseTrack:
    """Landmarks of one face on consecutive frames.

    Attributes
    ----------
    t_ms : numpy.ndarray
        ``N`` frame times (ms, same clock as the video stage's ``t_ms``).
    landmarks : numpy.ndarray
        ``N x 478 x 3`` float32 pixels of the decoded frame (NaN rows where no face was found).
    width, height : int
        Size of the decoded frames the landmarks refer to.
    fps : float
        Rate of the landmark frames.
    decode_s, mesh_s : float
        Wall time spent decoding and in Face Mesh.
    """

    t_ms: np.ndarray
    landmarks: np.ndarray
    width: int
    height: int
    fps: float
    decode_s: float = 0.0
    mesh_s: float = 0.0

    def to_bytes(self) -> bytes:
        """Uncompressed ``.npz`` bytes: float landmarks deflate by under 10 % (9.4 of 10.3 MB for a minute at
        30 fps) for 0.35-0.7 CPU-s."""
        buffer = io.BytesIO()
        np.savez(buffer, t_ms=self.t_ms, landmarks=self.landmarks.astype(np.float32),
                 meta=np.array([self.width, self.height, self.fps, self.decode_s, self.mesh_s]))
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> DenseTrack:
        with np.load(io.BytesIO(data)) as npz:
            meta = npz["meta"]
            return cls(npz["t_ms"], npz["landmarks"], int(meta[0]), int(meta[1]), float(meta[2]),
                       float(meta[3]), float(meta[4]))


def merge_ranges(times_ms: list[int], *, pad_ms: int, max_gap_ms: int = 1500) -> list[tuple[int, int]]:
    """Time ranges covering sampled face times, padded and merged when closer than ``max_gap_ms``."""
    ranges: list[list[int]] = []
    for t in sorted(times_ms):
        if ranges and t - ranges[-1][1] <= max_gap_ms:
            ranges[-1][1] = t
        else:
            ranges.append([t, t])
    return [(max(0, a - pad_ms), b + pad_ms) for a, b in ranges]


def limit_ranges(ranges_ms: list[tuple[int, int]], budget_ms: int, *, chunk_ms: int = 10_000) -> list[tuple[int, int]]:
    """At most ``budget_ms`` of the ranges: evenly spaced chunks of ``chunk_ms`` when they are longer.

    Bounds the dense pass (time and the ``N x 478 x 3`` array) on long videos while still sampling the
    whole duration; blink rates and pose statistics are then estimated on the chunks.

    Parameters
    ----------
    ranges_ms : list of tuple of int
        Sorted, non-overlapping ``(start_ms, end_ms)`` ranges.
    budget_ms : int
        Most milliseconds kept.
    chunk_ms : int
        Length of the kept chunks.

    Returns
    -------
    list of tuple of int
        The ranges themselves when within budget, else the chosen chunks in time order.
    """
    total = sum(b - a for a, b in ranges_ms)
    if total <= budget_ms:
        return list(ranges_ms)
    chunks = [(t, min(t + chunk_ms, b)) for a, b in ranges_ms for t in range(a, b, chunk_ms)]
    keep = max(1, budget_ms // chunk_ms)
    picks = np.unique(np.linspace(0, len(chunks) - 1, keep).round().astype(int))
    return [chunks[i] for i in picks]


@dataclass(frozen=True)
class GuidePath:
    """Patch centre and side over time, interpolated between the sampled face boxes of a track.

    Built once per dense pass (the box arrays and the median side), then read per frame with :meth:`at`.

    Attributes
    ----------
    times : numpy.ndarray
        Times of the sampled boxes (ms), in order.
    cx, cy : numpy.ndarray
        Box centres at those times, in decoded-frame pixels.
    side : float
        1.8 x the median box side (constant, so the patch scale is steady).
    """

    times: np.ndarray
    cx: np.ndarray
    cy: np.ndarray
    side: float

    @classmethod
    def of(cls, guides: list[tuple[int, tuple[float, float, float, float]]], factor: float = 1.0) -> GuidePath:
        """The path of ``(t_ms, (x0, y0, x1, y1))`` boxes in time order, scaled by ``factor`` into decoded-frame
        pixels."""
        times = np.array([g[0] for g in guides], dtype=np.float64)
        boxes = np.array([g[1] for g in guides], dtype=np.float64) * factor
        side = 1.8 * float(np.median(np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])))
        return cls(times, (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2, side)

    def at(self, t_ms: int) -> tuple[float, float, float]:
        """``(cx, cy, side)`` at ``t_ms``."""
        return float(np.interp(t_ms, self.times, self.cx)), float(np.interp(t_ms, self.times, self.cy)), self.side


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_DONE = object()


def prefetch(items: Iterator[T], depth: int) -> Generator[T, None, None]:
    """Iterate ``items`` on a background thread, at most ``depth`` items ahead of the consumer.

    Decoding (PyAV) and Face Mesh (MediaPipe) both release the GIL, so the dense pass decodes the next
    frames while the mesh runs on the current one. Closing the returned generator stops the thread.
    """
    buffer: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                buffer.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put(_Failure(exc))

    thread = threading.Thread(target=produce, name="dense-decode", daemon=True)
    thread.start()
    try:
        while True:
            item = buffer.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield cast(T, item)
    finally:
        stop.set()
        thread.join()


@dataclass(frozen=True)
class _Patch:
    """A Face Mesh input cut from one frame, and where it lies in the decoded frame."""

    t_ms: int
    image: np.ndarray
    origin: tuple[float, float]
    span: tuple[float, float]
    size: tuple[int, int]
    decode_s: float


Frames = Iterator[tuple[int, Callable[[], np.ndarray]]]


def _decoded(reader: VideoReader) -> Frames:
    """``(t_ms, render)`` of every frame of ``reader``, rendered only on demand."""
    for _, t_ms, _, frame in reader.raw_frames():
        yield t_ms, functools.partial(reader.render, frame)


def _patches(frames: Frames, ranges_ms: list[tuple[int, int]], *, max_fps: float,
             guides: list[tuple[int, tuple[float, float, float, float]]] | None,
             guide_size: tuple[int, int] | None, patch: int) -> Iterator[_Patch]:
    """Frames within ``ranges_ms`` (at most ``max_fps``), rendered and cut to their Face Mesh input.

    Frames outside the ranges are not rendered.
    """
    import cv2

    rate = FrameRate(max_fps)
    end_all = max((b for _, b in ranges_ms), default=-1)
    path: GuidePath | None = None
    tick = time.perf_counter()
    for t_ms, render in frames:
        if t_ms > end_all:
            break
        if not rate.take(t_ms) or not any(a <= t_ms <= b for a, b in ranges_ms):
            continue
        rgb = render()
        height, width = rgb.shape[:2]
        if guides and path is None:
            path = GuidePath.of(guides, width / (guide_size or (width, height))[0])
        if path is not None:
            cx, cy, side = path.at(t_ms)
            scale = patch / side
            matrix = np.array([[scale, 0.0, patch / 2 - scale * cx], [0.0, scale, patch / 2 - scale * cy]])
            image = cv2.warpAffine(rgb, matrix, (patch, patch), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_CONSTANT)
            origin, span = (cx - side / 2, cy - side / 2), (side, side)
        else:
            image, origin, span = rgb, (0.0, 0.0), (float(width), float(height))
        yield _Patch(t_ms, image, origin, span, (width, height), time.perf_counter() - tick)
        tick = time.perf_counter()


def dense_landmarks(path: Path, ranges_ms: list[tuple[int, int]], *, long_side: int = 640, max_fps: float = 30.0,
                    guides: list[tuple[int, tuple[float, float, float, float]]] | None = None,
                    guide_size: tuple[int, int] | None = None, patch: int = 256,
                    cache: FrameCache | None = None, limits: DecodeLimits = NO_LIMITS) -> DenseTrack:
    """Run Face Mesh (video mode, one face, iris refinement) within ``ranges_ms`` of ``path``.

    Decoding (or reading ``cache``) runs on a second thread, a few frames ahead of Face Mesh (:func:`prefetch`).

    Parameters
    ----------
    path : Path
        The video file.
    ranges_ms : list of tuple of int
        ``(start_ms, end_ms)`` ranges to analyse; frames outside are decoded but skipped.
    long_side : int
        Long side of the decoded frames.
    max_fps : float
        Frames closer than ``1000 / max_fps`` ms to the previous analysed one are skipped.
    guides : list of tuple, optional
        ``(t_ms, box)`` face boxes of the track to follow (the ``video`` stage's sampled detections). Face
        Mesh then runs on a ``patch``-pixel square around the interpolated box, which keeps small faces in
        the mesh's short-range detector and follows the chosen track. Without guides the whole frame is used.
    guide_size : tuple of int, optional
        ``(width, height)`` of the frames the guide boxes refer to (default: the decoded size).
    patch : int
        Side of the Face Mesh input patch.
    cache : FrameCache, optional
        Every frame of ``path`` already rendered at ``long_side`` (the video stage's decode pass): read instead
        of decoding ``path`` again.
    limits : DecodeLimits
        Pixel and duration budgets of the decoder, and the calling stage's budget check per frame.

    Returns
    -------
    DenseTrack
        ``decode_s`` is the decoding thread's busy time, ``mesh_s`` Face Mesh's; they overlap.
    """
    import mediapipe as mp

    times: list[int] = []
    rows: list[np.ndarray] = []
    nan_row = np.full((N_LANDMARKS, 3), np.nan, np.float32)
    decode_s = mesh_s = 0.0
    size = (0, 0)
    with contextlib.ExitStack() as stack:
        mesh = stack.enter_context(mp.solutions.face_mesh.FaceMesh(
            static_image_mode=False, max_num_faces=1, refine_landmarks=True, min_detection_confidence=0.5,
            min_tracking_confidence=0.5))
        if cache is not None:
            fps, frames = min(cache.fps, max_fps), cache.frames(limits.check)
        else:
            reader = stack.enter_context(VideoReader(path, long_side=long_side, threads=2, limits=limits))
            fps, frames = min(reader.info.fps, max_fps), _decoded(reader)
        items = _patches(frames, ranges_ms, max_fps=max_fps, guides=guides, guide_size=guide_size, patch=patch)
        with contextlib.closing(prefetch(items, depth=8)) as patches:
            for item in patches:
                tick = time.perf_counter()
                decode_s += item.decode_s
                size = item.size
                result = mesh.process(item.image)
                if result.multi_face_landmarks:
                    pts = landmark_array(result.multi_face_landmarks[0])
                    row = np.empty((N_LANDMARKS, 3), np.float32)
                    row[:, 0] = item.origin[0] + pts[:, 0] * item.span[0]
                    row[:, 1] = item.origin[1] + pts[:, 1] * item.span[1]
                    row[:, 2] = pts[:, 2] * item.span[0]
                    rows.append(row)
                else:
                    rows.append(nan_row)
                times.append(item.t_ms)
                mesh_s += time.perf_counter() - tick
    landmarks = np.stack(rows) if rows else np.zeros((0, N_LANDMARKS, 3), np.float32)
    return DenseTrack(np.array(times, np.int64), landmarks, size[0], size[1], fps, decode_s, mesh_s)


def _asset_lock(asset_id: str) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(asset_id, threading.Lock())


def cache_key(asset_id: str, *parts: object) -> str:
    """Deterministic store key of a dense pass (changes with its ranges, guides and parameters)."""
    digest = hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]
    return f"derived/{asset_id}/temporal/dense-{digest}.npz"


def cached_dense_landmarks(store: ObjectStore, asset_id: str, path_factory: Callable[[], AbstractContextManager[Path]],
                           ranges_ms: list[tuple[int, int]],
                           *, long_side: int, max_fps: float,
                           guides: list[tuple[int, tuple[float, float, float, float]]] | None = None,
                           guide_size: tuple[int, int] | None = None,
                           cache: FrameCache | None = None, limits: DecodeLimits = NO_LIMITS) -> tuple[DenseTrack, str]:
    """Dense landmarks from the store, or computed once (per-asset lock) and stored.

    Parameters
    ----------
    store : ObjectStore
        The workspace object store.
    asset_id : str
    path_factory : callable
        Zero-argument context-manager factory giving the local media path (``ctx.media_path``).
    ranges_ms : list of tuple of int
    long_side, max_fps, guides, guide_size, cache, limits
        As for :func:`dense_landmarks`.

    Returns
    -------
    tuple
        ``(DenseTrack, store URI)``.
    """
    key = cache_key(asset_id, ranges_ms, long_side, max_fps, guides, guide_size)
    with _asset_lock(asset_id):
        if store.exists(key):
            return DenseTrack.from_bytes(store.get_bytes(key)), store.uri(key)
        with path_factory() as path:
            track = dense_landmarks(path, ranges_ms, long_side=long_side, max_fps=max_fps, guides=guides,
                                    guide_size=guide_size, cache=cache, limits=limits)
        return track, store.put_bytes(key, track.to_bytes())
