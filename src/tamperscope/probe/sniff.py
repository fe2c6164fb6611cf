"""Identify a file's real type from its first bytes; the extension is never trusted."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Sniffed:
    mime: str
    family: str  # image | video | audio | unknown
    container: str


_SIGNATURES: list[tuple[int, bytes, Sniffed]] = [
    (0, b"\xff\xd8\xff", Sniffed("image/jpeg", "image", "jpeg")),
    (0, b"\x89PNG\r\n\x1a\n", Sniffed("image/png", "image", "png")),
    (0, b"GIF87a", Sniffed("image/gif", "image", "gif")),
    (0, b"GIF89a", Sniffed("image/gif", "image", "gif")),
    (0, b"II*\x00", Sniffed("image/tiff", "image", "tiff")),
    (0, b"MM\x00*", Sniffed("image/tiff", "image", "tiff")),
    (0, b"BM", Sniffed("image/bmp", "image", "bmp")),
    (0, b"8BPS", Sniffed("image/vnd.adobe.photoshop", "image", "psd")),
    (0, b"\x00\x00\x00\x0cjP  \r\n\x87\n", Sniffed("image/jp2", "image", "jp2")),
    (0, b"\xff\x4f\xff\x51", Sniffed("image/j2k", "image", "j2k")),
    (0, b"\x1aE\xdf\xa3", Sniffed("video/x-matroska", "video", "matroska")),
    (0, b"OggS", Sniffed("audio/ogg", "audio", "ogg")),
    (0, b"fLaC", Sniffed("audio/flac", "audio", "flac")),
    (0, b"ID3", Sniffed("audio/mpeg", "audio", "mp3")),
    (0, b"\x00\x00\x01\xba", Sniffed("video/mpeg", "video", "mpeg-ps")),
    (0, b"FLV", Sniffed("video/x-flv", "video", "flv")),
]

_RIFF_KINDS = {
    b"WEBP": Sniffed("image/webp", "image", "webp"),
    b"WAVE": Sniffed("audio/wav", "audio", "wav"),
    b"AVI ": Sniffed("video/x-msvideo", "video", "avi"),
}

_FTYP_IMAGE_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"}
_FTYP_QT_BRANDS = {b"qt  "}

UNKNOWN = Sniffed("application/octet-stream", "unknown", "unknown")


def sniff_bytes(head: bytes) -> Sniffed:
    """Classify by magic bytes; ``head`` should hold at least the first 64 bytes."""
    if head[:4] == b"RIFF" and len(head) >= 12:
        return _RIFF_KINDS.get(head[8:12], UNKNOWN)
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _FTYP_IMAGE_BRANDS:
            return Sniffed("image/heif", "image", "heif")
        if brand in _FTYP_QT_BRANDS:
            return Sniffed("video/quicktime", "video", "mov")
        if brand.startswith(b"M4A"):
            return Sniffed("audio/mp4", "audio", "mp4")
        return Sniffed("video/mp4", "video", "mp4")
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip"):
        return Sniffed("video/quicktime", "video", "mov")
    if len(head) > 188 and head[0] == 0x47 and head[188] == 0x47:
        return Sniffed("video/mp2t", "video", "mpegts")
    if head[:2] == b"\xff\xfb" or head[:2] == b"\xff\xf3" or head[:2] == b"\xff\xf2":
        return Sniffed("audio/mpeg", "audio", "mp3")
    for offset, magic, kind in _SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return kind
    return UNKNOWN


def sniff_file(path: Path) -> Sniffed:
    with open(path, "rb") as handle:
        return sniff_bytes(handle.read(512))
