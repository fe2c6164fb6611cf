"""Decode a video once, streaming normalised RGB frames with presentation timestamps.

PyAV decodes with frame threading; scaling, rotation and sample-aspect-ratio correction happen in one
libavfilter graph (``transpose``/``hflip``/``vflip`` then ``scale``), which costs about as much as
``ffmpeg -f null`` and far less than converting each frame with ``to_ndarray(width=...)``. Timestamps come
from each frame's PTS times the stream time base, so variable-frame-rate files get correct ``t_ms``.
"""

from __future__ import annotations

import functools
import itertools
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import av.filter
import numpy as np

from tamperscope.errors import InputRejectedError, LimitExceededError, RejectReason
from tamperscope.media.audio import AudioCollector, container_start
from tamperscope.media.frames import DecodedFrame, normalised_size, scrub
from tamperscope.media.limits import NO_LIMITS, DecodeLimits

#: most threads a reader's decoder uses (0: no cap, FFmpeg's choice of about one per core)
_max_threads = 0


def set_max_threads(threads: int) -> None:
    """Cap the decoder threads of readers opened from now on (0: no cap); a batch worker sets its share."""
    global _max_threads
    _max_threads = threads


def decoder_threads(requested: int) -> int:
    """The decoder threads a reader asking for ``requested`` (0: FFmpeg's choice) gets under the cap."""
    if not _max_threads:
        return requested
    return min(requested, _max_threads) if requested else _max_threads


@dataclass(frozen=True)
class VideoInfo:
    """What the decoder knows before the first frame.

    Attributes
    ----------
    fps : float
        Average frame rate (1.0 for a still image).
    duration_ms : int or None
        Container or stream duration, when declared.
    frame_count : int or None
        Declared number of frames, when known.
    """

    fps: float
    duration_ms: int | None
    frame_count: int | None


def _rotation_filters(rotation_ccw: float) -> list[tuple[str, str]]:
    """Filters turning a frame upright, from the display-matrix angle (degrees counter-clockwise)."""
    clockwise = round(-rotation_ccw / 90.0) % 4
    return {0: [], 1: [("transpose", "clock")], 2: [("hflip", ""), ("vflip", "")],
            3: [("transpose", "cclock")]}[clockwise]


class VideoReader:
    """Streaming decoder of one video file; use as a context manager, then iterate.

    Parameters
    ----------
    path : Path
        The media file.
    long_side : int
        Long side of the normalised output frames.
    threads : int
        Decoder threads (0 lets FFmpeg choose).
    detail_long_side : int
        Long side of on-demand detail renderings (0: none); only offered when the source is larger than
        ``long_side``.
    second_long_side : int
        Also render every frame at this long side (0: no), as a reader of that ``long_side`` would.
    audio : callable, optional
        Makes an :class:`~tamperscope.media.audio.AudioCollector` from the container start time; it
        receives the first audio stream's decoded frames from the same demux pass (one read of the file for
        pictures and sound). ``audio`` stays None when the file has no audio stream.
    limits : DecodeLimits
        Pixel and duration budgets checked on every decoded frame (FFmpeg's own ``max_pixels`` refuses larger
        frames before allocating them), and the stage's budget check.

    Examples
    --------
    >>> with VideoReader(path, long_side=512) as reader:  # doctest: +SKIP
    ...     for frame in reader:
    ...         print(frame.t_ms, frame.rgb.shape)
    """

    def __init__(self, path: Path, *, long_side: int, threads: int = 0, detail_long_side: int = 0,
                 second_long_side: int = 0, audio: Callable[[Fraction], AudioCollector] | None = None,
                 limits: DecodeLimits = NO_LIMITS) -> None:
        self.path = path
        self.limits = limits
        self.long_side = long_side
        self.detail_long_side = detail_long_side
        self.second_long_side = second_long_side
        self._detail: tuple[tuple[int, int, str], av.filter.Graph] | None = None
        self._main: tuple[tuple[int, int, str], av.filter.Graph] | None = None
        self._size: tuple[int, int] | None = None
        self._offer_detail = False
        self._detail_lock = threading.Lock()
        self._sized: dict[int, tuple[tuple[int, int, str], av.filter.Graph, tuple[int, int]]] = {}
        try:
            self._container = av.open(str(path))
        except (av.FFmpegError, OSError, ValueError) as exc:  # ValueError covers UnicodeDecodeError
            raise InputRejectedError(RejectReason.CORRUPT_STREAM,
                                     f"cannot open the video: {scrub(str(exc), path)}") from exc
        if not self._container.streams.video:
            self._container.close()
            raise InputRejectedError(RejectReason.NO_DECODABLE_STREAM, f"{path.name} has no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        self._stream.codec_context.thread_count = decoder_threads(threads)
        if limits.max_pixels is not None:  # declared size first; then the decoder refuses larger frames itself
            width, height = self._stream.codec_context.width, self._stream.codec_context.height
            if width * height > limits.max_pixels:
                self._container.close()
                raise LimitExceededError("pixels", f"the video declares {width}x{height}, more than "
                                                   f"{limits.max_pixels}")
            self._stream.codec_context.options = {"max_pixels": str(limits.max_pixels)}
        rate = self._stream.average_rate or self._stream.guessed_rate
        duration = None
        if self._stream.duration is not None and self._stream.time_base is not None:
            duration = int(self._stream.duration * self._stream.time_base * 1000)
        elif self._container.duration is not None:
            duration = int(self._container.duration / 1000)
        self.info = VideoInfo(fps=float(rate) if rate else 25.0, duration_ms=duration,
                              frame_count=self._stream.frames or None)
        self.decode_error: str | None = None
        self._start_s = container_start(self._container)
        self.audio = audio(self._start_s) if audio is not None and self._container.streams.audio else None

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._container.close()

    def _display_size(self, frame: av.VideoFrame) -> tuple[int, int]:
        sar = self._stream.codec_context.sample_aspect_ratio or self._stream.sample_aspect_ratio
        width, height = round(frame.width * (float(sar) if sar else 1.0)), frame.height
        turned = _rotation_filters(float(frame.rotation or 0))
        return (height, width) if turned and turned[0][0] == "transpose" else (width, height)

    def _graph(self, frame: av.VideoFrame, size: tuple[int, int] | None,
               long_side: int | None = None) -> tuple[av.filter.Graph, tuple[int, int]]:
        """Filter graph for frames shaped like ``frame``; output ``size`` (from ``long_side`` when None)."""
        sar = self._stream.codec_context.sample_aspect_ratio or self._stream.sample_aspect_ratio
        sar_f = float(sar) if sar else 1.0
        rotation = float(frame.rotation or 0)
        display_w, display_h = frame.width * sar_f, float(frame.height)
        filters = _rotation_filters(rotation)
        if filters and filters[0][0] == "transpose":
            display_w, display_h = display_h, display_w
        out_w, out_h = size or normalised_size(round(display_w), round(display_h), long_side or self.long_side)
        graph = av.filter.Graph()
        graph.threads = 1  # slice threads cost more CPU than they save at these sizes (same pixels either way)
        nodes = [graph.add_buffer(width=frame.width, height=frame.height, format=frame.format,
                                  time_base=self._stream.time_base)]
        # Scale in the source pixel format (SIMD area averaging), convert to RGB at the small size: 2x faster
        # than scaling straight into rgb24.
        for name, args in [*filters, ("scale", f"{out_w}:{out_h}:flags=area"), ("format", frame.format.name),
                           ("setsar", "1"), ("format", "rgb24")]:
            nodes.append(graph.add(name, args) if args else graph.add(name))
        nodes.append(graph.add("buffersink"))
        for upstream, downstream in itertools.pairwise(nodes):
            upstream.link_to(downstream)
        graph.configure()
        return graph, (out_w, out_h)

    def _render_detail(self, frame: av.VideoFrame) -> np.ndarray:
        """The frame upright at ``detail_long_side`` (a separate graph, built once per frame shape)."""
        shape = (frame.width, frame.height, frame.format.name)
        with self._detail_lock:
            if self._detail is None or self._detail[0] != shape:
                long_side = min(self.detail_long_side, max(self._display_size(frame)))
                self._detail = (shape, self._graph(frame, None, long_side)[0])
            graph = self._detail[1]
            graph.push(frame)
            return graph.vpull().to_ndarray()

    def _t_ms(self, frame: av.VideoFrame, fallback_index: int) -> int:
        if frame.pts is None or frame.time_base is None:
            return round(fallback_index * 1000 / self.info.fps)
        seconds = Fraction(frame.pts) * Fraction(frame.time_base) - self._start_s
        return max(0, round(seconds * 1000))

    def raw_frames(self) -> Iterator[tuple[int, int, bool, av.VideoFrame]]:
        """Decoded source frames as ``(index, t_ms, key, frame)``, not yet rendered.

        For passes that need only some frames (render those with :meth:`render`). A decoding error after the
        first frame ends the stream and is kept in ``decode_error``.
        """
        index = 0
        try:
            for frame in self._decode():
                t_ms = self._t_ms(frame, index)
                self.limits.frame(frame.width, frame.height, t_ms, index, self.info.fps)
                yield index, t_ms, bool(frame.key_frame), frame
                index += 1
        except av.FFmpegError as exc:
            if index == 0:
                raise InputRejectedError(RejectReason.CORRUPT_STREAM,
                                         f"cannot decode the video: {scrub(str(exc), self.path)}") from exc
            self.decode_error = f"decoding stopped after {index} frames: {exc}"

    def _decode(self) -> Iterator[av.VideoFrame]:
        """The video stream's frames; with an audio collector, one demux of both streams feeds it on the way."""
        if self.audio is None:
            yield from self._container.decode(self._stream)
            return
        audio = self._container.streams.audio[0]
        for packet in self._container.demux(self._stream, audio):
            if packet.stream.index == self._stream.index:
                yield from (frame for frame in packet.decode() if isinstance(frame, av.VideoFrame))
                continue
            try:
                for sound in packet.decode():
                    if isinstance(sound, av.AudioFrame):
                        self.audio.push(sound)
            except av.FFmpegError:
                self.audio.fail()

    def render_at(self, frame: av.VideoFrame, long_side: int) -> np.ndarray:
        """``frame`` upright at ``long_side`` (a graph per size, its output size fixed by the first frame): the
        same pixels a reader of that ``long_side`` renders. For a second consumer of one decode pass."""
        shape = (frame.width, frame.height, frame.format.name)
        built = self._sized.get(long_side)
        if built is None or built[0] != shape:
            graph, size = self._graph(frame, built[2] if built else None, long_side)
            built = self._sized[long_side] = (shape, graph, size)
        built[1].push(frame)
        return built[1].vpull().to_ndarray()

    def render(self, frame: av.VideoFrame) -> np.ndarray:
        """``frame`` upright, with square pixels, at the normalised size (that of the stream's first frame)."""
        shape = (frame.width, frame.height, frame.format.name)
        if self._main is None or self._main[0] != shape:  # first frame, or a mid-stream change
            graph, self._size = self._graph(frame, self._size)
            self._main = (shape, graph)
            self._offer_detail = self.detail_long_side > self.long_side and max(self._display_size(frame)) > max(
                self._size)
        graph = self._main[1]
        graph.push(frame)
        return graph.vpull().to_ndarray()

    def decoded(self, index: int, t_ms: int, key: bool, frame: av.VideoFrame) -> DecodedFrame:
        """A frame of :meth:`raw_frames` as iteration yields it (normalised ``rgb``, ``detail`` and ``second`` on
        demand): for passes that keep only some frames but need the very pixels the ``video`` stage sees."""
        rgb = self.render(frame)
        detail = functools.partial(self._render_detail, frame) if self._offer_detail else None
        second = functools.partial(self.render_at, frame, self.second_long_side) if self.second_long_side else None
        return DecodedFrame(index=index, t_ms=t_ms, key=key, rgb=rgb, detail=detail, second=second)

    def __iter__(self) -> Iterator[DecodedFrame]:
        index = 0
        try:
            for index, t_ms, key, frame in self.raw_frames():
                yield self.decoded(index, t_ms, key, frame)
        except av.FFmpegError as exc:  # a rendering error; decoding errors are handled in raw_frames
            if index == 0:
                raise InputRejectedError(RejectReason.CORRUPT_STREAM,
                                         f"cannot render the video: {scrub(str(exc), self.path)}") from exc
            self.decode_error = f"decoding stopped after {index} frames: {exc}"

