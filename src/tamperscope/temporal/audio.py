"""Audio extraction with PyAV: the first audio stream as 16 kHz mono, on the video stage's clock.

Times are measured like :class:`tamperscope.media.decode.VideoReader` measures frame times (presentation
time minus the container start time), so an audio sample at ``start_s + i / 16000`` and a video frame
at ``t_ms / 1000`` are on the same clock and their difference is the container's audio-video offset.
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
        stream = container.streams.audio[0]
        container_start = Fraction(container.start_time, 1_000_000) if container.start_time is not None else 0
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        chunks: list[np.ndarray] = []
        start_s: float | None = None
        total = 0
        try:
            for frame in container.decode(stream):
                if start_s is None and frame.pts is not None and frame.time_base is not None:
                    start_s = float(Fraction(frame.pts) * Fraction(frame.time_base) - container_start)
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
                    total += out.samples
                if max_seconds is not None and total >= max_seconds * rate:
                    break
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
        except av.FFmpegError:
            if not chunks:
                return None
    if not chunks:
        return None
    samples = np.concatenate(chunks).astype(np.float32)
    return AudioTrack(samples, rate, start_s or 0.0)
