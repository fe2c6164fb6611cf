"""What a decoder hands on: the normalised frame, the size rule that normalises it, and error text safe to show.

Shared by the video reader (:mod:`tamperscope.media.video_reader`) and the still-image reader
(:mod:`tamperscope.media.image`), so a still image is one frame like any video frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np


def scrub(message: str, path: Path) -> str:
    """``message`` without the file's location: errors name the media, never a path of the store."""
    return message.replace(str(path), "<media>").replace(str(path.parent), "<store>")


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

    def face_view(self) -> np.ndarray:
        """The pixels faces are detected on: the detail rendering when there is one, else ``rgb`` (the video stage
        and training both look here, so a training crop is the run-time crop of the same frame)."""
        return self.detail() if self.detail is not None else self.rgb


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

