"""Decode a video once, streaming normalised RGB frames with presentation timestamps.

PyAV decodes with frame threading; scaling, rotation and sample-aspect-ratio correction happen in one
libavfilter graph (``transpose``/``hflip``/``vflip`` then ``scale``), which costs about as much as
``ffmpeg -f null`` and far less than converting each frame with ``to_ndarray(width=...)``. Timestamps come
from each frame's PTS times the stream time base, so variable-frame-rate files get correct ``t_ms``.
Still images are read with Pillow honouring the EXIF orientation and yield one frame; :func:`upright` is the
one place that orientation is applied (frames here, forensic maps and overlays in the ``forensics`` stage).
"""

from __future__ import annotations

import functools
import io
import itertools
import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import av
import av.filter
import cv2
import numpy as np
import pillow_heif
from PIL import ExifTags, Image

from tamperscope.errors import InputRejectedError, LimitExceededError, RejectReason
from tamperscope.media.audio import AudioCollector, container_start

# HEIF/HEIC stills open through Pillow like every other image (intake validates them with the same decoder)
pillow_heif.register_heif_opener()


def scrub(message: str, path: Path) -> str:
    """``message`` without the file's location: errors name the media, never a path of the store."""
    return message.replace(str(path), "<media>").replace(str(path.parent), "<store>")


@dataclass(frozen=True)
class DecodeLimits:
    """Budgets a decoder enforces on what it actually decodes (intake checked the declared sizes already).

    Attributes
    ----------
    max_pixels : int or None
        Most pixels (width x height) of one decoded image or frame.
    max_duration_ms : int or None
        Latest presentation time decoded from a video.
    check : callable or None
        Called before each decoded frame (the stage's wall-clock and memory budget); raises to stop.
    reserve : callable or None
        Called with the bytes a still image will take to decode, before decoding it (the stage's memory
        ceiling refuses it up front); raises to stop.
    """

    max_pixels: int | None = None
    max_duration_ms: int | None = None
    check: Callable[[], None] | None = None
    reserve: Callable[[int], None] | None = None

    def frame(self, width: int, height: int, t_ms: int, index: int, fps: float) -> None:
        """Raise :class:`LimitExceededError` when a decoded frame is past a budget; run the stage's check.

        A frame is past the duration budget when both its time and the number of frames decoded before it (at
        the stream's rate) are: one corrupt timestamp jumping hours ahead does not refuse a short file, and a
        stream declaring a low rate does not refuse a long one early.
        """
        if self.max_pixels is not None and width * height > self.max_pixels:
            raise LimitExceededError("pixels", f"a decoded frame is {width}x{height}, more than {self.max_pixels}")
        if self.max_duration_ms is not None and t_ms > self.max_duration_ms and \
                index > self.max_duration_ms * fps / 1000:
            raise LimitExceededError("duration", f"{index} frames and times past {self.max_duration_ms / 1000:g} s")
        if self.check is not None:
            self.check()

    def image(self, width: int, height: int, bytes_per_pixel: int) -> None:
        """Raise :class:`LimitExceededError` when a still image of this size is past the pixel budget, or its
        work (``bytes_per_pixel`` per pixel) past the memory ``reserve`` allows; checked before decoding."""
        if self.max_pixels is not None and width * height > self.max_pixels:
            raise LimitExceededError("pixels", f"the image decodes to {width}x{height}, more than {self.max_pixels}")
        if self.reserve is not None:
            self.reserve(width * height * bytes_per_pixel)


NO_LIMITS = DecodeLimits()


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


@dataclass
class DecodedFrame:
    """One decoded, normalised frame.

    Attributes
    ----------
    index : int
        Position in decode (presentation) order, from 0.
    t_ms : int
        Presentation time in milliseconds from the stream start.
    key : bool
        The bitstream marks this frame as a key frame.
    rgb : numpy.ndarray
        ``H x W x 3`` uint8 RGB, upright, square pixels, long side ``long_side``.
    detail : callable or None
        Renders the same frame upright at the reader's ``detail_long_side`` on demand (face detection on
        small faces); None when the source is not larger than ``rgb``. Holds the decoded frame until dropped.
    second : callable or None
        Renders the frame at the reader's ``second_long_side`` (for another consumer of the same decode pass);
        call it before the next frame is decoded.
    """

    index: int
    t_ms: int
    key: bool
    rgb: np.ndarray
    detail: Callable[[], np.ndarray] | None = None
    second: Callable[[], np.ndarray] | None = None


def normalised_size(width: int, height: int, long_side: int) -> tuple[int, int]:
    """Width and height scaled so the longer side equals ``long_side`` (aspect ratio kept).

    Parameters
    ----------
    width, height : int
        Display size in square pixels.
    long_side : int
        Target length of the longer side.

    Returns
    -------
    tuple of int
        ``(width, height)``, each at least 1.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"invalid size {width}x{height}")
    scale = long_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


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
        self._stream.codec_context.thread_count = threads
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

    def __iter__(self) -> Iterator[DecodedFrame]:
        index = 0
        try:
            for index, t_ms, key, frame in self.raw_frames():
                rgb = self.render(frame)
                detail = functools.partial(self._render_detail, frame) if self._offer_detail else None
                second = functools.partial(self.render_at, frame, self.second_long_side) \
                    if self.second_long_side else None
                yield DecodedFrame(index=index, t_ms=t_ms, key=key, rgb=rgb, detail=detail, second=second)
        except av.FFmpegError as exc:  # a rendering error; decoding errors are handled in raw_frames
            if index == 0:
                raise InputRejectedError(RejectReason.CORRUPT_STREAM,
                                         f"cannot render the video: {scrub(str(exc), self.path)}") from exc
            self.decode_error = f"decoding stopped after {index} frames: {exc}"


#: EXIF orientation (TIFF tag 274) -> the operation turning the stored pixel grid upright (as Pillow's
#: ``ImageOps.exif_transpose``): 2-4 mirror or turn half way, 5 and 7 transpose, 6 and 8 turn a quarter.
_UPRIGHT: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.rot90(a, 2).swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}


def upright_points(xy: np.ndarray, orientation: int, width: int, height: int) -> np.ndarray:
    """Pixel coordinates ``(N, 2)`` as ``x, y`` in the stored grid (``width x height``) moved to where
    :func:`upright` puts those pixels, so points drawn on an upright map land on the same content."""
    x, y = xy[:, 0], xy[:, 1]
    w, h = width - 1, height - 1
    moved = {2: (w - x, y), 3: (w - x, h - y), 4: (x, h - y), 5: (y, x), 6: (h - y, x), 7: (h - y, w - x),
             8: (y, w - x)}.get(orientation, (x, y))
    return np.stack(moved, axis=1)


def exif_orientation(image: Image.Image) -> int:
    """The EXIF orientation of an open image, 1 (as stored) when absent or not one of the eight values."""
    value = image.getexif().get(ExifTags.Base.Orientation, 1)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def upright(array: np.ndarray, orientation: int) -> np.ndarray:
    """``array`` (``H x W`` or ``H x W x C``, in the stored pixel grid) turned upright for EXIF ``orientation``."""
    turn = _UPRIGHT.get(orientation)
    return array if turn is None else np.ascontiguousarray(turn(array))


#: bytes per pixel :func:`read_image` holds at its peak: Pillow's image (up to 4), its RGB conversion and the
#: array copy (3 + 3), resized copies
DECODE_BYTES_PER_PIXEL = 12


def open_image(path: Path | BinaryIO, limits: DecodeLimits = NO_LIMITS,
               bytes_per_pixel: int = DECODE_BYTES_PER_PIXEL) -> Image.Image:
    """Open an image with Pillow (header only) and, before decoding, refuse it when its decoded size is past the
    pixel budget or its cost (``bytes_per_pixel`` per pixel) past the memory the caller may still use
    (:class:`LimitExceededError`); the caller closes it."""
    image = Image.open(path)
    try:
        limits.image(*image.size, bytes_per_pixel)
    except BaseException:
        image.close()
        raise
    return image


@dataclass(frozen=True)
class StoredImage:
    """A still image as decoded once: RGB in the stored pixel grid, its EXIF orientation and the JPEG bytes.

    Detectors read the stored grid (where JPEG blocks live); frames, maps and overlays are turned upright with
    ``orientation`` (:func:`upright`), decided here once.
    """

    rgb: np.ndarray
    orientation: int
    jpeg: bytes | None


def read_stored_image(path: Path, limits: DecodeLimits = NO_LIMITS,
                      bytes_per_pixel: int = DECODE_BYTES_PER_PIXEL) -> StoredImage:
    """Decode an image file once (Pillow; HEIF through pillow-heif), refused before decoding when past the pixel
    budget or the memory ``limits`` may reserve (:func:`open_image`)."""
    data = path.read_bytes()
    try:
        with open_image(io.BytesIO(data), limits, bytes_per_pixel) as image:
            return StoredImage(np.asarray(image.convert("RGB")), exif_orientation(image),
                               data if image.format == "JPEG" else None)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise InputRejectedError(RejectReason.CORRUPT_STREAM,
                                 f"cannot read image: {type(exc).__name__}: {scrub(str(exc), path)}") from exc


def read_image(path: Path, *, long_side: int, detail_long_side: int = 0,
               limits: DecodeLimits = NO_LIMITS) -> DecodedFrame:
    """Read a still image upright (EXIF orientation applied) as one normalised RGB frame.

    Parameters
    ----------
    path : Path
        The image file.
    long_side : int
        Long side of the normalised frame.
    detail_long_side : int
        Long side of the on-demand detail rendering (0: none; only when the image is larger than ``long_side``).
    limits : DecodeLimits
        Pixel budget and memory reservation, checked on the decoder's size before decoding (:func:`open_image`).

    Returns
    -------
    DecodedFrame
        Index 0 at ``t_ms`` 0, marked key.
    """
    stored = read_stored_image(path, limits)
    return image_frame(upright(stored.rgb, stored.orientation), long_side=long_side,
                       detail_long_side=detail_long_side)


def image_frame(full: np.ndarray, *, long_side: int, detail_long_side: int = 0) -> DecodedFrame:
    """An upright full-size RGB image as one normalised frame (see :func:`read_image`)."""

    def resized(side: int) -> np.ndarray:
        width, height = normalised_size(full.shape[1], full.shape[0], side)
        interpolation = cv2.INTER_AREA if max(full.shape[:2]) > side else cv2.INTER_CUBIC
        return np.ascontiguousarray(cv2.resize(full, (width, height), interpolation=interpolation))

    detail = functools.partial(resized, min(detail_long_side, max(full.shape[:2]))) \
        if detail_long_side > long_side and max(full.shape[:2]) > long_side else None
    return DecodedFrame(index=0, t_ms=0, key=True, rgb=resized(long_side), detail=detail)


def detection_frame(rgb: np.ndarray, width: int = 256) -> np.ndarray:
    """BGR frame downscaled to ``width`` for shot detection (PySceneDetect's default working size).

    Parameters
    ----------
    rgb : numpy.ndarray
        Normalised RGB frame.
    width : int
        Target width; frames narrower than this are only converted.

    Returns
    -------
    numpy.ndarray
        ``h x width x 3`` uint8 BGR.
    """
    if rgb.shape[1] > width:
        height = max(1, math.floor(rgb.shape[0] * width / rgb.shape[1]))
        rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
