"""Read a still image once with Pillow (HEIF through pillow-heif): the stored pixel grid with its EXIF
orientation for the detectors, or one upright normalised frame, refused before decoding when past the budgets."""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
import pillow_heif
from PIL import Image

from tamperscope.errors import InputRejectedError, RejectReason
from tamperscope.media.frames import DecodedFrame, normalised_size, scrub
from tamperscope.media.limits import NO_LIMITS, DecodeLimits
from tamperscope.media.orientation import exif_orientation, upright

# HEIF/HEIC stills open through Pillow like every other image (intake validates them with the same decoder)
pillow_heif.register_heif_opener()


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

