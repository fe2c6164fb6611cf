"""Property-based tests: the sniffer and the container walkers terminate on any bytes and raise nothing but
:class:`InputRejectedError` (hypothesis generates arbitrary and mutated inputs)."""

from __future__ import annotations

import struct
import zlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tamperscope.errors import InputRejectedError
from tamperscope.probe.sniff import UNKNOWN, Sniffed, sniff_bytes
from tamperscope.probe.structure import Structure, check_bmff, check_gif, check_jpeg, check_png, check_riff

PROPERTY = settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def _png(width: int, height: int) -> bytes:
    raw = (b"\x00" + b"\x07" * width) * height
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + _png_chunk(b"IDAT", zlib.compress(raw)) + _png_chunk(b"IEND", b""))


JPEG = (b"\xff\xd8" + b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
        + b"\xff\xc0\x00\x0b\x08\x00\x10\x00\x10\x01\x01\x11\x00" + b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00"
        + b"\x12\x34\xff\x00\x56" + b"\xff\xd9")
RIFF = b"RIFF" + struct.pack("<I", 4 + 8 + 4 + 8 + 2) + b"WEBP" + b"LIST" + struct.pack("<I", 4 + 8 + 2) + b"INFO" \
    + b"ISFT" + struct.pack("<I", 2) + b"ab"
BMFF = (struct.pack(">I", 16) + b"ftypisom" + b"\x00\x00\x02\x00" + struct.pack(">I", 24) + b"moov"
        + struct.pack(">I", 16) + b"trak" + struct.pack(">I", 8) + b"mdia")
GIF = b"GIF89a" + struct.pack("<HH", 4, 4) + b"\x00\x00\x00" + b"\x2c" + b"\x00" * 9 + b"\x02\x02\x44\x01\x00\x3b"
SEEDS = [_png(3, 2), JPEG, RIFF, BMFF, GIF]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid seed with random byte edits, a truncation, a duplicated slice or an inserted run."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.sampled_from(["flip", "set", "truncate", "duplicate", "insert"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            data[at] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80, 0x01]))
        elif op == "truncate":
            del data[at:]
        elif op == "duplicate":
            end = draw(st.integers(at, len(data)))
            data[at:at] = data[at:end]
        else:
            data[at:at] = draw(st.binary(max_size=32))
    return bytes(data)


inputs = st.one_of(st.binary(max_size=600), mutated())


def _typed_or_structure(check: object, data: bytes) -> None:
    try:
        found = check(data)  # type: ignore[operator]
    except InputRejectedError:
        return
    assert isinstance(found, Structure)
    assert found.trailing_bytes >= 0


@PROPERTY
@given(st.binary(max_size=600))
def test_sniffer_classifies_any_bytes(data: bytes) -> None:
    found = sniff_bytes(data)
    assert isinstance(found, Sniffed)
    assert found is UNKNOWN or found.family in ("image", "video", "audio")


@PROPERTY
@given(inputs)
def test_jpeg_walker(data: bytes) -> None:
    _typed_or_structure(check_jpeg, b"\xff\xd8" + data[2:] if data[:2] != b"\xff\xd8" else data)


@PROPERTY
@given(inputs)
def test_png_walker(data: bytes) -> None:
    body = data if data.startswith(b"\x89PNG") else b"\x89PNG\r\n\x1a\n" + data
    _typed_or_structure(lambda d: check_png(d, max_pixels=4_000_000), body)


@PROPERTY
@given(inputs)
def test_riff_walker(data: bytes) -> None:
    _typed_or_structure(check_riff, data if data[:4] == b"RIFF" and len(data) >= 8 else RIFF[:8] + data)


@PROPERTY
@given(inputs)
def test_bmff_walker(data: bytes) -> None:
    _typed_or_structure(lambda d: check_bmff(d, require_moov=True), data)
    _typed_or_structure(lambda d: check_bmff(d, require_moov=False), data)


@PROPERTY
@given(inputs)
def test_gif_header(data: bytes) -> None:
    _typed_or_structure(lambda d: check_gif(d, max_pixels=1_000_000), data)


def test_seeds_are_valid() -> None:
    """The mutators start from inputs the walkers accept, so the mutations explore past the first check."""
    assert check_png(SEEDS[0], max_pixels=100).width == 3
    assert check_jpeg(JPEG).width == 16
    assert check_riff(RIFF).trailing_bytes == 0
    assert b"moov" in " ".join(check_bmff(BMFF, require_moov=True).notes).encode()
    assert check_gif(GIF, max_pixels=100).width == 4
