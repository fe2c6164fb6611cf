"""One media session per analysis: the raw file fetched once, the image decoded once, and what the video stage's
single decode pass leaves for the stages after it (the dense landmark pass's frames, the audio track).

The runner opens a session per analysis and closes it at the end; stages reach it through their context. Every
cache falls back to reading the file when it is empty (a stage re-run on its own, a cache over its budget), so
results never depend on what ran before in the same process.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from functools import partial
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np

from tamperscope.media.audio import AudioTrack, extract_audio
from tamperscope.media.image import DECODE_BYTES_PER_PIXEL, StoredImage, read_stored_image
from tamperscope.media.limits import NO_LIMITS, DecodeLimits

T = TypeVar("T")


class FrameRate:
    """Which frames a pass at most ``max_fps`` takes: a frame at least ``1000 / max_fps - 1`` ms after the last
    one taken. The rule sees every frame (not only those a pass wants), so the decode pass that fills a
    :class:`FrameCache` and the dense pass that reads it, or decodes itself, take the same frames."""

    def __init__(self, max_fps: float) -> None:
        self.min_step = 1000.0 / max_fps - 1.0
        self.last_t = -1e9

    def take(self, t_ms: int) -> bool:
        if t_ms - self.last_t < self.min_step:
            return False
        self.last_t = t_ms
        return True


class FrameCache:
    """Equal-shaped RGB frames in decode order, parked raw in a temporary file and read back by index.

    Holds at most ``max_bytes``; a frame beyond that (or of another shape), or a first frame when
    ``expected_frames`` of its size would not fit, marks the cache incomplete, and a reader then decodes the
    file itself. Raw bytes, because compressing costs more CPU than the decode it saves.
    """

    def __init__(self, max_bytes: int, expected_frames: int = 0) -> None:
        self.max_bytes = max_bytes
        self.expected_frames = expected_frames
        self.times: list[int] = []
        self.shape: tuple[int, ...] | None = None
        self.fps = 0.0
        self.complete = False
        self._overflow = False
        self._file = tempfile.TemporaryFile(prefix="tamperscope-frames-")  # noqa: SIM115 - closed by close()

    @property
    def accepting(self) -> bool:
        """False once the cache overflowed: producers may stop rendering frames for it."""
        return not self._overflow

    def append(self, t_ms: int, rgb: np.ndarray) -> None:
        if self._overflow:
            return
        if self.shape is None:
            self.shape = rgb.shape
        frames = max(len(self.times) + 1, self.expected_frames)  # a stream known to overflow: stop at once
        if rgb.shape != self.shape or frames * rgb.nbytes > self.max_bytes:
            self._overflow = True
            self._file.truncate(0)
            self.times.clear()
            return
        self._file.write(np.ascontiguousarray(rgb, dtype=np.uint8).data)  # the array's own buffer, not a bytes copy
        self.times.append(t_ms)

    def finish(self, fps: float) -> None:
        """The decode pass reached the end of the stream: the cache is usable unless it overflowed."""
        self._file.flush()
        self.fps = fps
        self.complete = not self._overflow

    def read(self, index: int) -> np.ndarray:
        assert self.shape is not None
        size = int(np.prod(self.shape))
        data = os.pread(self._file.fileno(), size, index * size)
        return np.frombuffer(data, np.uint8).reshape(self.shape)

    def frames(self, check: Callable[[], None] | None = None) -> Iterator[tuple[int, Callable[[], np.ndarray]]]:
        """``(t_ms, render)`` per frame; ``render()`` reads the pixels only when a consumer wants them. ``check``
        (the reading stage's budget) runs before each frame, as a :class:`~tamperscope.media.video_reader.VideoReader`
        runs it before each decoded one."""
        for index, t_ms in enumerate(self.times):
            if check is not None:
                check()
            yield t_ms, partial(self.read, index)

    def close(self) -> None:
        self._file.close()


class MediaSession:
    """The media of one asset for one analysis: fetched once, decoded once, shared by the stages.

    Parameters
    ----------
    open_local : callable
        Zero-argument factory of a context manager giving a local path to the raw bytes (a temp copy for a
        remote store); entered at most once per session.
    """

    def __init__(self, open_local: Callable[[], AbstractContextManager[Path]]) -> None:
        self._open_local = open_local
        self._stack = contextlib.ExitStack()
        self._lock = threading.Lock()
        self._path: Path | None = None
        self._image: StoredImage | None = None
        self._audio: AudioTrack | None = None
        self._audio_known = False  # the track (or its absence) is known: set by the decode pass or extracted
        self.dense_frames: FrameCache | None = None
        self.dense_long_side = 0
        self.wants: set[str] = set()
        self.counts: dict[str, int] = {"fetches": 0}
        self._memo: dict[str, Any] = {}
        self._memo_lock = threading.Lock()

    def path(self) -> Path:
        """The local path of the raw bytes, fetched on first use and kept until :meth:`close`."""
        with self._lock:
            if self._path is None:
                self._path = self._stack.enter_context(self._open_local())
                self.counts["fetches"] += 1
            return self._path

    @contextlib.contextmanager
    def local_path(self) -> Iterator[Path]:
        """:meth:`path` as a context manager (the stage-facing form; the copy lives as long as the session)."""
        yield self.path()

    def image(self, limits: DecodeLimits = NO_LIMITS, bytes_per_pixel: int = DECODE_BYTES_PER_PIXEL) -> StoredImage:
        """The still image decoded once (stored grid, orientation, JPEG bytes). ``limits`` is checked on every call
        (:meth:`DecodeLimits.image`): the first decodes under it, later callers are refused alike for their own
        work of ``bytes_per_pixel`` per pixel."""
        path = self.path()
        with self._lock:
            if self._image is None:
                self._image = read_stored_image(path, limits, bytes_per_pixel)
            else:
                height, width = self._image.rgb.shape[:2]
                limits.image(width, height, bytes_per_pixel)
            return self._image

    def memo(self, key: str, make: Callable[[], T]) -> T:
        """``make()`` once per session under ``key`` (later callers, also on other threads, get the same object):
        for read-only views of earlier stages' rows that several stages load, such as the sampled frames."""
        with self._memo_lock:
            if key not in self._memo:
                self._memo[key] = make()
            return cast(T, self._memo[key])

    def forget(self, key: str) -> None:
        """Drop what :meth:`memo` keeps under ``key`` (its rows are about to be rewritten)."""
        with self._memo_lock:
            self._memo.pop(key, None)

    def set_audio(self, track: AudioTrack | None) -> None:
        """Keep the audio track the video stage's demux pass collected (None: the file has no audio)."""
        self._audio, self._audio_known = track, True

    def audio(self, max_seconds: float | None = None) -> AudioTrack | None:
        """The audio track: from the decode pass when it collected one, else extracted now (at most
        ``max_seconds``: the duration budget)."""
        if not self._audio_known:
            self.set_audio(extract_audio(self.path(), max_seconds=max_seconds))
        return self._audio

    def dense_cache(self, long_side: int, max_bytes: int, expected_frames: int = 0) -> FrameCache | None:
        """A fresh cache for the dense pass's frames at ``long_side``, when a stage that needs them will run."""
        if not self.wants & {"temporal", "avsync"} or max_bytes <= 0:
            return None
        if self.dense_frames is not None:
            self.dense_frames.close()
        self.dense_frames, self.dense_long_side = FrameCache(max_bytes, expected_frames), long_side
        return self.dense_frames

    def cached_frames(self, long_side: int) -> FrameCache | None:
        """The dense pass's frames when the decode pass left all of them at ``long_side``."""
        cache = self.dense_frames
        return cache if cache is not None and cache.complete and self.dense_long_side == long_side else None

    def close(self) -> None:
        if self.dense_frames is not None:
            self.dense_frames.close()
            self.dense_frames = None
        self._stack.close()
