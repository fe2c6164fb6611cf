"""EXIF orientation: read it from an image, turn a stored-grid array upright, move points with the pixels.

:func:`upright` is the one place orientation is applied (still-image frames here, forensic maps and overlays in
the ``forensics`` stage), so every upright picture of one file agrees.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import ExifTags, Image

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


def stored_view(array: np.ndarray, orientation: int) -> np.ndarray:
    """A view of an upright ``array`` indexed in the stored pixel grid (the inverse of :func:`upright`): stored
    pixels written into it land upright in ``array``, so a decoder fills the upright array without a turned copy.
    Orientations 2-5 and 7 undo themselves; 6 and 8 undo each other."""
    turn = _UPRIGHT.get({6: 8, 8: 6}.get(orientation, orientation))
    return array if turn is None else turn(array)

