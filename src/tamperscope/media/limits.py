"""Budgets a decoder enforces on what it actually decodes: pixels, duration, the stage's time and memory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tamperscope.errors import LimitExceededError


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
