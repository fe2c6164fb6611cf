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
from tamperscope.media.orientation import exif_orientation, stored_view

# HEIF/HEIC stills open through Pillow like every other image (intake validates them with the same decoder)
pillow_heif.register_heif_opener()


#: bytes per pixel a still image's decode holds at its peak: Pillow's decoded image (up to 4) beside the RGB array
#: (3) (:func:`decode_rgb`), plus one for the file's bytes and a band's copies; the ``video`` stage's upright copy
#: beside the cached stored grid (3 + 3) and its resized frames stay within it
DECODE_BYTES_PER_PIXEL = 8
#: rows moved from Pillow's decoded image into the array at a time: each band's own copies stay a few MB
BAND_ROWS = 256


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
    rgb, orientation, image_format = _decode(io.BytesIO(data), path, limits, bytes_per_pixel, turn=False)
    rgb.setflags(write=False)  # one decode shared by the stages: none may change it for the others
    return StoredImage(rgb, orientation, data if image_format == "JPEG" else None)


def decode_rgb(image: Image.Image, *, turn: bool) -> tuple[np.ndarray, int]:
    """Decode an open image into ``H x W x 3`` uint8 RGB, turned upright when ``turn``, and its EXIF orientation.

    The pixels of ``upright(np.asarray(image.convert("RGB")), orientation)`` (stored grid when not ``turn``),
    filled band by band through :func:`~tamperscope.media.orientation.stored_view`, so Pillow's decoded image
    and the array are the only full-size copies: no converted copy, no ``tobytes`` buffer, no turned copy.
    """
    image.load()  # before reading the orientation: a PNG's EXIF may follow its pixels
    orientation = exif_orientation(image)
    width, height = image.size
    sideways = turn and orientation >= 5
    rgb = np.empty((width, height, 3) if sideways else (height, width, 3), np.uint8)
    stored = stored_view(rgb, orientation if turn else 1)
    for top in range(0, height, BAND_ROWS):
        band = image.crop((0, top, width, min(top + BAND_ROWS, height)))
        stored[top:top + band.height] = np.asarray(band if band.mode == "RGB" else band.convert("RGB"))
    return rgb, orientation


def _decode(source: Path | BinaryIO, path: Path, limits: DecodeLimits, bytes_per_pixel: int, *,
            turn: bool) -> tuple[np.ndarray, int, str | None]:
    """:func:`decode_rgb` of ``source`` opened under ``limits`` and closed before returning, with Pillow's format
    name; decoder failures become a rejection naming the media, not ``path``."""
    try:
        with open_image(source, limits, bytes_per_pixel) as image:
            return *decode_rgb(image, turn=turn), image.format
    except (OSError, ValueError, EOFError, SyntaxError, Image.DecompressionBombError) as exc:  # EOF/Syntax: HEIF
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
    rgb = _decode(path, path, limits, DECODE_BYTES_PER_PIXEL, turn=True)[0]
    return image_frame(rgb, long_side=long_side, detail_long_side=detail_long_side)


def image_frame(full: np.ndarray, *, long_side: int, detail_long_side: int = 0) -> DecodedFrame:
    """An upright full-size RGB image as one normalised frame (see :func:`read_image`)."""

    def resized(side: int) -> np.ndarray:
        width, height = normalised_size(full.shape[1], full.shape[0], side)
        interpolation = cv2.INTER_AREA if max(full.shape[:2]) > side else cv2.INTER_CUBIC
        return np.ascontiguousarray(cv2.resize(full, (width, height), interpolation=interpolation))

    detail = functools.partial(resized, min(detail_long_side, max(full.shape[:2]))) \
        if detail_long_side > long_side and max(full.shape[:2]) > long_side else None
    return DecodedFrame(index=0, t_ms=0, key=True, rgb=resized(long_side), detail=detail)

