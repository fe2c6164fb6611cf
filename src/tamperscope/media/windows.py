"""Clip windows for temporal models: runs of consecutive sampled frames per face track (or per shot).

A window is ``clip_length`` consecutive sampled frames of one face track, as an ``N x S x S x 3`` uint8 array
of aligned face crops; shots without faces get windows of letterboxed, downscaled frames instead. Windows do
not overlap, except that a track's tail is covered by one last window ending at its final frame. A track
shorter than ``clip_length`` gives one window of all its frames (``N < clip_length``). Window ids are
``<asset_id>:c<track>:<n>``; shot-level windows use track ``s<shot index>``.
"""

from __future__ import annotations

import io
import tempfile
import threading

import cv2
import numpy as np
from isal import isal_zlib
from sqlalchemy import select

from tamperscope.errors import NotFoundError
from tamperscope.workspace import Workspace


def window_spans(length: int, clip_length: int) -> list[tuple[int, int]]:
    """Start/stop positions of windows covering ``length`` consecutive frames.

    Parameters
    ----------
    length : int
        Frames in the track or shot.
    clip_length : int
        Frames per window.

    Returns
    -------
    list of tuple of int
        ``(start, stop)`` half-open spans; empty when ``length`` is 0.

    Examples
    --------
    >>> window_spans(40, 16)
    [(0, 16), (16, 32), (24, 40)]
    """
    if clip_length < 1:
        raise ValueError("clip_length must be positive")
    if length <= 0:
        return []
    if length <= clip_length:
        return [(0, length)]
    spans = [(start, start + clip_length) for start in range(0, length - clip_length + 1, clip_length)]
    if spans[-1][1] < length:
        spans.append((length - clip_length, length))
    return spans


def letterbox(rgb: np.ndarray, size: int) -> np.ndarray:
    """Fit an RGB frame into a black ``size x size`` square, aspect ratio kept.

    Parameters
    ----------
    rgb : numpy.ndarray
        ``H x W x 3`` uint8.
    size : int
        Output side.

    Returns
    -------
    numpy.ndarray
        ``size x size x 3`` uint8.
    """
    height, width = rgb.shape[:2]
    while max(height, width) >= 2 * size:  # exact 2x area steps are fast; the last step is small and linear
        rgb = cv2.resize(rgb, (width // 2, height // 2), interpolation=cv2.INTER_AREA)
        height, width = rgb.shape[:2]
    scale = size / max(height, width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    resized = cv2.resize(rgb, (new_w, new_h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    out = np.zeros((size, size, 3), dtype=np.uint8)
    top, left = (size - new_h) // 2, (size - new_w) // 2
    out[top:top + new_h, left:left + new_w] = resized
    return out


def window_id(asset_id: str, track: str | int, n: int) -> str:
    """The id ``<asset_id>:c<track>:<n>`` of a clip window."""
    return f"{asset_id}:c{track}:{n}"


def to_npy_bytes(array: np.ndarray) -> bytes:
    """Serialise an array in ``.npy`` format (no pickling)."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def load_window(ws: Workspace, window_id: str) -> np.ndarray:
    """The ``N x S x S x 3`` uint8 array of a clip window.

    Parameters
    ----------
    ws : Workspace
        The open workspace.
    window_id : str
        ``<asset_id>:c<track>:<n>``.

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    NotFoundError
        No such window.
    """
    from tamperscope.store.models import Window

    with ws.db.session() as session:
        uri = session.execute(select(Window.uri).where(Window.window_id == window_id)).scalar_one_or_none()
    if uri is None:
        raise NotFoundError(f"no window {window_id!r}")
    data = ws.store.get_bytes(ws.store.key_of(uri))
    array: np.ndarray = np.load(io.BytesIO(data), allow_pickle=False)
    return array


class Spool:
    """Fixed-shape uint8 arrays parked in a temporary file (deflated), so clip windows can be assembled at the
    end without keeping every thumbnail in memory or decoding stored PNGs again. Thread-safe appends."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape
        self._file = tempfile.TemporaryFile(prefix="tamperscope-spool-")  # noqa: SIM115 - closed by close()
        self._slots: list[tuple[int, int]] = []
        self._lock = threading.Lock()

    def append(self, array: np.ndarray) -> int:
        if array.shape != self.shape or array.dtype != np.uint8:
            raise ValueError(f"spool holds uint8 arrays of shape {self.shape}, got {array.shape} {array.dtype}")
        data = isal_zlib.compress(np.ascontiguousarray(array).tobytes(), 0)
        with self._lock:
            offset = self._file.seek(0, io.SEEK_END)
            self._file.write(data)
            self._slots.append((offset, len(data)))
            return len(self._slots) - 1

    def read(self, slot: int) -> np.ndarray:
        offset, length = self._slots[slot]
        with self._lock:
            self._file.seek(offset)
            data = self._file.read(length)
        return np.frombuffer(isal_zlib.decompress(data), dtype=np.uint8).reshape(self.shape)

    def close(self) -> None:
        self._file.close()
