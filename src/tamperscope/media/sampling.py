"""Shot-aware frame sampling over a stream whose shot boundaries are only known a little late.

Frames wait in a bounded look-back buffer long enough for the cut detectors to report any cut among them
(their latency is bounded) and for a short shot to be seen whole. A frame is decided on when it leaves the
buffer:

- the first frame of every shot is taken (marked as a keyframe), and so is every bitstream key frame unless
  key frames come denser than the sampling period (intra-only streams);
- inside a shot, frames are taken on a grid of ``sample_fps`` anchored at the shot start;
- a shot short enough to lie wholly in the buffer gets at least ``min_per_shot`` evenly spaced frames
  (all of its frames if it has fewer), so a 0.3 s inserted shot is still sampled.

Memory is bounded by the buffer length, whatever the duration. Cuts reported after their frame left the
buffer (long fades) still become shot boundaries; the caller re-assigns samples to shots at the end.

References
----------
.. [1] K. Sze, K. Lam, G. Qiu, "A new key frame representation for video segment retrieval", IEEE TCSVT
   15(9), 2005, doi:10.1109/TCSVT.2005.852623 (shot-based key-frame selection).
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar


class _Timed(Protocol):
    index: int
    t_ms: int
    key: bool


T = TypeVar("T", bound=_Timed)


@dataclass
class Sample(Generic[T]):
    """A frame chosen for analysis.

    Attributes
    ----------
    frame : object
        The buffered frame (anything with ``index``, ``t_ms`` and ``key``).
    shot_start : bool
        The frame opens a shot.
    reason : str
        ``shot_start``, ``grid``, ``minimum`` or ``key``.
    """

    frame: T
    shot_start: bool
    reason: str

    @property
    def keyframe(self) -> bool:
        return self.shot_start or self.frame.key


def buffer_length(fps: float, sample_fps: float, min_per_shot: int, detector_latency: int) -> int:
    """Look-back length in frames that lets every hard cut arrive and every short shot be seen whole.

    Parameters
    ----------
    fps : float
        Video frame rate.
    sample_fps : float
        Sampling rate within a shot.
    min_per_shot : int
        Frames guaranteed per shot.
    detector_latency : int
        Most frames a cut can be reported late.

    Returns
    -------
    int
        Buffer length in frames.
    """
    short_shot = math.ceil(fps * min_per_shot / sample_fps) + 1
    return detector_latency + short_shot + 1


class ShotAwareSampler(Generic[T]):
    """Streaming sampler; push frames and cuts, collect :class:`Sample` objects.

    Parameters
    ----------
    sample_fps : float
        Frames per second taken within a shot.
    min_per_shot : int
        Minimum frames taken from a shot (when it has that many).
    buffer_frames : int
        Look-back length, see :func:`buffer_length`.
    """

    def __init__(self, sample_fps: float, min_per_shot: int, buffer_frames: int) -> None:
        if sample_fps <= 0:
            raise ValueError("sample_fps must be positive")
        if min_per_shot < 1:
            raise ValueError("min_per_shot must be at least 1")
        self.period_ms = 1000.0 / sample_fps
        self.min_per_shot = min_per_shot
        self.buffer_frames = max(1, buffer_frames)
        self._buffer: deque[T] = deque()
        self._cuts: list[int] = []
        self._shot_start_t: int | None = None
        self._next_slot = 0
        self._plan: set[int] | None = None
        self._half_frame_ms = 0.0
        self._last_t: int | None = None
        self._last_key_t: int | None = None

    @property
    def cuts(self) -> list[int]:
        return list(self._cuts)

    def add_cut(self, index: int) -> None:
        """Record a shot boundary at frame ``index`` (first frame of the new shot)."""
        if index > 0 and index not in self._cuts:
            bisect.insort(self._cuts, index)

    def push(self, frame: T) -> list[Sample[T]]:
        """Buffer a frame; returns samples decided for frames leaving the buffer."""
        if self._last_t is not None:
            self._half_frame_ms = 0.5 * max(0, frame.t_ms - self._last_t)
        self._last_t = frame.t_ms
        self._buffer.append(frame)
        out: list[Sample[T]] = []
        while len(self._buffer) > self.buffer_frames:
            sample = self._decide(self._buffer.popleft())
            if sample is not None:
                out.append(sample)
        return out

    def flush(self) -> list[Sample[T]]:
        """Decide on every buffered frame (end of stream)."""
        out: list[Sample[T]] = []
        while self._buffer:
            sample = self._decide(self._buffer.popleft(), end_of_stream=True)
            if sample is not None:
                out.append(sample)
        return out

    def _plan_short_shot(self, start: T, end_of_stream: bool) -> set[int] | None:
        """Indices to take from a shot that lies wholly in the buffer and is too short for the grid."""
        nxt = bisect.bisect_right(self._cuts, start.index)
        end = self._cuts[nxt] if nxt < len(self._cuts) else None
        members = [start, *self._buffer]
        if end is None:
            if not end_of_stream:
                return None
        else:
            if not self._buffer or self._buffer[-1].index < end - 1:
                return None
            members = [f for f in members if f.index < end]
        grid = self._grid_indices(members)
        if len(grid) >= self.min_per_shot or len(grid) == len(members):
            return grid
        count = min(self.min_per_shot, len(members))
        positions = {round(i * (len(members) - 1) / max(1, count - 1)) for i in range(count)}
        return {members[p].index for p in positions} | grid

    def _grid_indices(self, members: list[T]) -> set[int]:
        taken: set[int] = set()
        slot = 0
        start_t = members[0].t_ms
        for frame in members:
            if frame.t_ms - start_t >= slot * self.period_ms - self._half_frame_ms:
                taken.add(frame.index)
                slot = math.floor((frame.t_ms - start_t + self._half_frame_ms) / self.period_ms) + 1
        return taken

    def _decide(self, frame: T, end_of_stream: bool = False) -> Sample[T] | None:
        dense_keys = False
        if frame.key:
            dense_keys = self._last_key_t is not None and frame.t_ms - self._last_key_t < self.period_ms
            self._last_key_t = frame.t_ms
        shot_start = self._shot_start_t is None or frame.index in self._cuts
        if shot_start:
            self._shot_start_t = frame.t_ms
            self._next_slot = 1
            self._plan = self._plan_short_shot(frame, end_of_stream)
            return Sample(frame=frame, shot_start=True, reason="shot_start")
        assert self._shot_start_t is not None
        elapsed = frame.t_ms - self._shot_start_t
        if self._plan is not None:
            if frame.index in self._plan:
                return Sample(frame=frame, shot_start=False, reason="minimum")
        elif elapsed >= self._next_slot * self.period_ms - self._half_frame_ms:
            self._next_slot = math.floor((elapsed + self._half_frame_ms) / self.period_ms) + 1
            return Sample(frame=frame, shot_start=False, reason="grid")
        if frame.key and not dense_keys:
            return Sample(frame=frame, shot_start=False, reason="key")
        return None
