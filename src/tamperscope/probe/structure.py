"""Structural checks of container layouts, without decoding pixels.

Each walker reads the file through ``mmap`` (nothing is copied into memory), follows the format's own
length fields and raises :class:`InputRejectedError` on the first inconsistency: a segment, chunk or box
that runs past the end of the file is ``truncated``; a bad checksum, impossible length or nesting deeper
than a sane limit (the "bomb" files of parser fuzzers) is ``corrupt_stream``. Bytes after a complete image
(e.g. a vendor trailer after JPEG EOI) are reported, not rejected.
"""

from __future__ import annotations

import mmap
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tamperscope.errors import InputRejectedError, RejectReason

MAX_BOX_DEPTH = 24
MAX_RIFF_DEPTH = 16
_BMFF_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"udta", b"edts", b"dinf", b"mvex", b"moof",
                    b"traf", b"iprp", b"ipco", b"meco"}


@dataclass
class Structure:
    """What the walk learned: dimensions where the header gives them, trailing bytes, notes."""

    width: int | None = None
    height: int | None = None
    trailing_bytes: int = 0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"width": self.width, "height": self.height, "trailing_bytes": self.trailing_bytes,
                "notes": self.notes}


def _truncated(message: str) -> InputRejectedError:
    return InputRejectedError(RejectReason.TRUNCATED, message)


def _corrupt(message: str) -> InputRejectedError:
    return InputRejectedError(RejectReason.CORRUPT_STREAM, message)


@contextmanager
def _mapped(path: Path) -> Iterator[mmap.mmap]:
    """Images: scanned whole (entropy-coded data), so mapped."""
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        yield data


class _HeaderReader:
    """Slice access by ``pread`` for box/chunk walks over large videos: only the headers are read, and
    nothing is mapped (a mapped multi-GB file would count its touched folios in the process's memory)."""

    def __init__(self, fd: int, size: int) -> None:
        self._fd = fd
        self._size = size

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, key: slice) -> bytes:
        start, stop, _ = key.indices(self._size)
        return os.pread(self._fd, max(stop - start, 0), start)


@contextmanager
def _headers(path: Path) -> Iterator[_HeaderReader]:
    fd = os.open(path, os.O_RDONLY)
    try:
        yield _HeaderReader(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)


_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def check_jpeg(data: mmap.mmap | bytes, *, max_pixels: int | None = None) -> Structure:
    """Walk JPEG markers from SOI through every scan to EOI (ITU-T T.81, Annex B); a frame header (SOF) past
    ``max_pixels`` is refused as ``too_many_pixels`` before anything decodes it."""
    size = len(data)
    if data[:2] != b"\xff\xd8":
        raise _corrupt("JPEG without SOI marker")
    found = Structure()
    pos = 2
    while True:
        if pos >= size:
            raise _truncated("JPEG ends before its EOI marker")
        if data[pos] != 0xFF:
            raise _corrupt(f"JPEG: expected a marker at byte {pos}")
        while pos + 1 < size and data[pos + 1] == 0xFF:
            pos += 1
        if pos + 1 >= size:
            raise _truncated("JPEG ends inside a marker")
        marker = data[pos + 1]
        if marker == 0xD9:
            found.trailing_bytes = size - pos - 2
            if found.width is None:
                raise _corrupt("JPEG without a frame header (SOF)")
            return found
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            pos += 2
            continue
        if pos + 4 > size:
            raise _truncated("JPEG ends inside a segment header")
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        if length < 2:
            raise _corrupt(f"JPEG segment 0x{marker:02X} with impossible length {length}")
        end = pos + 2 + length
        if end > size:
            raise _truncated(f"JPEG segment 0x{marker:02X} runs past the end of the file")
        if marker in _JPEG_SOF:
            if length < 8:
                raise _corrupt("JPEG frame header too short")
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            if width == 0:
                raise _corrupt("JPEG frame header with zero width")
            if max_pixels is not None and width * height > max_pixels:
                raise InputRejectedError(RejectReason.TOO_MANY_PIXELS, f"JPEG frame {width}x{height} exceeds "
                                                                       f"{max_pixels}")
            found.width, found.height = width, height
        pos = _skip_entropy_coded(data, end) if marker == 0xDA else end


def _skip_entropy_coded(data: mmap.mmap | bytes, pos: int) -> int:
    """Position of the first real marker after entropy-coded data (stuffed 0xFF00 and RSTn are data)."""
    size = len(data)
    while True:
        hit = data.find(b"\xff", pos)
        if hit < 0 or hit + 1 >= size:
            raise _truncated("JPEG scan data ends before its EOI marker")
        following = data[hit + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
            pos = hit + 1
            continue
        return hit


_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def check_png(data: mmap.mmap | bytes, *, max_pixels: int) -> Structure:
    """Walk PNG chunks checking each CRC, and inflate IDAT with an output cap (no filtering/decoding)."""
    size = len(data)
    pos = 8
    found = Structure()
    inflater = zlib.decompressobj()
    produced = 0
    expected: int | None = None
    first = True
    while True:
        if pos + 8 > size:
            raise _truncated("PNG ends before its IEND chunk")
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if length > 0x7FFFFFFF:
            raise _corrupt("PNG chunk with impossible length")
        end = pos + 12 + length
        if end > size:
            raise _truncated(f"PNG chunk {kind!r} runs past the end of the file")
        body = data[pos + 8 : pos + 8 + length]
        crc = struct.unpack(">I", data[pos + 8 + length : end])[0]
        if zlib.crc32(body, zlib.crc32(kind)) & 0xFFFFFFFF != crc:
            raise _corrupt(f"PNG chunk {kind!r} fails its CRC")
        if first:
            if kind != b"IHDR" or length != 13:
                raise _corrupt("PNG does not start with IHDR")
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if width == 0 or height == 0 or colour not in _PNG_CHANNELS:
                raise _corrupt("PNG header with impossible values")
            if width * height > max_pixels:
                raise InputRejectedError(RejectReason.TOO_MANY_PIXELS, f"{width}x{height} exceeds {max_pixels}")
            found.width, found.height = width, height
            row_bytes = (width * _PNG_CHANNELS[colour] * depth + 7) // 8
            expected = None if interlace else height * (row_bytes + 1)
            cap = height * (row_bytes + 1) * 2 + 1024
            first = False
        elif kind == b"IDAT":
            produced = _inflate_counting(inflater, body, produced, cap)
        elif kind == b"IEND":
            found.trailing_bytes = size - end
            if not inflater.eof:
                raise _truncated("PNG image data stream is incomplete")
            if expected is not None and produced != expected:
                raise _corrupt(f"PNG image data holds {produced} bytes, the header implies {expected}")
            return found
        pos = end


#: bytes inflated at a time while counting PNG image data: memory stays at this, whatever the image declares
INFLATE_STEP = 1 << 20


def _inflate_counting(inflater: Any, body: bytes | memoryview, produced: int, cap: int) -> int:
    """Feed one IDAT body to ``inflater`` in steps of :data:`INFLATE_STEP` output bytes, discarding the output;
    return the running count, refusing a stream that inflates past ``cap`` (a zlib bomb)."""
    pending = bytes(body)
    while pending:
        try:
            produced += len(inflater.decompress(pending, INFLATE_STEP))
        except zlib.error as exc:
            raise _corrupt(f"PNG image data is not a valid zlib stream: {exc}") from exc
        if produced >= cap:
            raise _corrupt("PNG image data inflates past what its header allows")
        pending = inflater.unconsumed_tail
        if inflater.eof:
            break
    return produced


def check_riff(data: _HeaderReader | bytes) -> Structure:
    """Walk RIFF chunks (WAV, AVI, WebP), with a limit on LIST nesting."""
    size = len(data)
    declared = struct.unpack("<I", data[4:8])[0] + 8
    if declared > size:
        raise _truncated(f"RIFF declares {declared} bytes, the file has {size}")
    found = Structure(trailing_bytes=size - declared)

    def walk(start: int, stop: int, depth: int) -> None:
        if depth > MAX_RIFF_DEPTH:
            raise _corrupt(f"RIFF LIST chunks nested deeper than {MAX_RIFF_DEPTH}")
        pos = start
        while pos + 8 <= stop:
            kind, length = struct.unpack("<4sI", data[pos : pos + 8])
            end = pos + 8 + length + (length & 1)
            if pos + 8 + length > stop:
                raise _truncated(f"RIFF chunk {kind!r} runs past its container")
            if kind == b"LIST":
                walk(pos + 12, pos + 8 + length, depth + 1)
            pos = end

    walk(12, declared, 0)
    return found


def check_bmff(data: _HeaderReader | bytes, *, require_moov: bool) -> Structure:
    """Walk ISO base-media boxes (MP4, MOV, HEIF): sizes must nest; container depth is limited."""
    found = Structure()
    top_level: list[bytes] = []

    def walk(start: int, stop: int, depth: int) -> None:
        if depth > MAX_BOX_DEPTH:
            raise _corrupt(f"boxes nested deeper than {MAX_BOX_DEPTH}")
        pos = start
        while pos + 8 <= stop:
            box_size, kind = struct.unpack(">I4s", data[pos : pos + 8])
            header = 8
            if box_size == 1:
                if pos + 16 > stop:
                    raise _truncated(f"box {kind!r} ends inside its header")
                box_size = struct.unpack(">Q", data[pos + 8 : pos + 16])[0]
                header = 16
            elif box_size == 0:
                box_size = stop - pos
            if box_size < header:
                raise _corrupt(f"box {kind!r} with impossible size {box_size}")
            if pos + box_size > stop:
                raise _truncated(f"box {kind!r} runs past {'the end of the file' if depth == 0 else 'its parent'}")
            if depth == 0:
                top_level.append(kind)
            if kind in _BMFF_CONTAINERS:
                walk(pos + header, pos + box_size, depth + 1)
            pos += box_size
        if depth == 0 and pos < stop:
            found.trailing_bytes = stop - pos

    walk(0, len(data), 0)
    if require_moov and b"moov" not in top_level and b"moof" not in top_level:
        raise _truncated("no movie header (moov) box: the file is incomplete")
    found.notes.append("top-level boxes: " + ",".join(k.decode("latin-1") for k in top_level[:32]))
    return found


def check_gif(data: _HeaderReader | bytes, *, max_pixels: int) -> Structure:
    """Read the GIF logical screen (GIF89a section 18): decoders allocate a canvas of that size for every frame,
    so a screen past ``max_pixels`` is refused whatever the images inside declare."""
    if len(data) < 13:
        raise _truncated("GIF ends inside its header")
    width, height = struct.unpack("<HH", data[6:10])
    if width == 0 or height == 0:
        raise _corrupt("GIF logical screen with zero width or height")
    if width * height > max_pixels:
        raise InputRejectedError(RejectReason.TOO_MANY_PIXELS,
                                 f"GIF logical screen {width}x{height} exceeds {max_pixels}")
    return Structure(width=width, height=height)


def check_structure(path: Path, container: str, *, max_pixels: int) -> Structure | None:
    """Run the walker for ``container``; None when there is no walker for it (ffprobe still checks it)."""
    scanned: dict[str, Callable[[mmap.mmap], Structure]] = {
        "jpeg": lambda d: check_jpeg(d, max_pixels=max_pixels),
        "png": lambda d: check_png(d, max_pixels=max_pixels),
    }
    walked: dict[str, Callable[[_HeaderReader], Structure]] = {
        "wav": check_riff,
        "avi": check_riff,
        "webp": check_riff,
        "mp4": lambda d: check_bmff(d, require_moov=True),
        "mov": lambda d: check_bmff(d, require_moov=True),
        "heif": lambda d: check_bmff(d, require_moov=False),
        "gif": lambda d: check_gif(d, max_pixels=max_pixels),
    }
    if container in scanned:
        with _mapped(path) as data:
            return scanned[container](data)
    if container in walked:
        with _headers(path) as reader:
            return walked[container](reader)
    return None
