"""Audio extraction with PyAV: the first audio stream as 16 kHz mono, on the video stage's clock.

Times are measured like :class:`tamperscope.media.video_reader.VideoReader` measures frame times (presentation
time minus the container start time), so an audio sample at ``start_s + i / 16000`` and a video frame
at ``t_ms / 1000`` are on the same clock and their difference is the container's audio-video offset.
:class:`AudioCollector` takes decoded frames from any demux loop, so the video stage's decode pass can collect
the audio while it decodes the pictures (one demux per analysis); :func:`extract_audio` is the stand-alone pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from tamperscope.errors import InputRejectedError, RejectReason

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class AudioTrack:
    """Mono float32 samples in [-1, 1] at ``rate`` Hz, the first one at ``start_s`` on the video clock."""

    samples: np.ndarray
    rate: int
    start_s: float

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.rate


class AudioCollector:
    """Resamples decoded audio frames, in decode order, into one :class:`AudioTrack`.

    ``container_start`` is the container's start time in seconds (the video clock's zero). After a decoding
    error call :meth:`fail`: what was collected so far is kept, as :func:`extract_audio` always did.
    """

    def __init__(self, container_start: Fraction, rate: int = SAMPLE_RATE) -> None:
        self.rate = rate
        self._start = container_start
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        self._chunks: list[np.ndarray] = []
        self._start_s: float | None = None
        self.total = 0
        self.stopped = False

    def push(self, frame: av.AudioFrame) -> None:
        if self.stopped:
            return
        if self._start_s is None and frame.pts is not None and frame.time_base is not None:
            self._start_s = float(Fraction(frame.pts) * Fraction(frame.time_base) - self._start)
        for out in self._resampler.resample(frame):
            self._chunks.append(out.to_ndarray().reshape(-1))
            self.total += out.samples

    def fail(self) -> None:
        """Stop collecting (a decoding error); the track ends with what was collected."""
        self.stopped = True

    def finish(self) -> AudioTrack | None:
        """The track, or None when nothing decoded."""
        if not self.stopped:
            for out in self._resampler.resample(None):
                self._chunks.append(out.to_ndarray().reshape(-1))
        if not self._chunks:
            return None
        return AudioTrack(np.concatenate(self._chunks).astype(np.float32), self.rate, self._start_s or 0.0)


def container_start(container: av.container.InputContainer) -> Fraction:
    """The container's start time in seconds (0 when undeclared): the zero of frame and sample times."""
    start = container.start_time
    return Fraction(start, 1_000_000) if start is not None else Fraction(0)


def extract_audio(path: Path, *, rate: int = SAMPLE_RATE, max_seconds: float | None = None) -> AudioTrack | None:
    """Decode and resample the first audio stream.

    Parameters
    ----------
    path : Path
        A media file.
    rate : int
        Output sample rate.
    max_seconds : float, optional
        Stop after this much audio.

    Returns
    -------
    AudioTrack or None
        None when the file has no audio stream (or it decodes to nothing).
    """
    try:
        container = av.open(str(path))
    except av.FFmpegError as exc:
        raise InputRejectedError(RejectReason.CORRUPT_STREAM, f"cannot open {path.name}: {exc}") from exc
    with container:
        if not container.streams.audio:
            return None
        collector = AudioCollector(container_start(container), rate)
        try:
            for frame in container.decode(container.streams.audio[0]):
                collector.push(frame)
                if max_seconds is not None and collector.total >= max_seconds * rate:
                    break
        except av.FFmpegError:
            collector.fail()
    return collector.finish()
