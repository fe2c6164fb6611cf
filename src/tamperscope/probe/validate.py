"""Validation at intake: real type, probe with a timeout, allow-list, limits, then a decode proof.

A file that fails raises :class:`InputRejectedError` with a typed reason. Limits are checked on the declared
sizes first; only then is the first image or frame decoded with the decoders analysis uses (Pillow and OpenCV
for images, HEIF through pillow-heif, PyAV for video), so anything analysis could not read is refused here.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from tamperscope.errors import InputRejectedError, LimitExceededError, RejectReason, ToolError
from tamperscope.media.frames import scrub
from tamperscope.media.image import read_image
from tamperscope.media.limits import DecodeLimits
from tamperscope.media.video_reader import VideoReader
from tamperscope.probe.harvest import ffprobe_command
from tamperscope.probe.sniff import sniff_file
from tamperscope.probe.structure import Structure, check_structure
from tamperscope.probe.tools import run_json_tool
from tamperscope.settings import LimitSettings

ALLOWED_CONTAINERS = {
    "image": {"jpeg", "png", "tiff", "webp", "heif", "gif", "bmp", "psd"},
    "video": {"mp4", "mov", "matroska", "avi", "mpegts", "mpeg-ps"},
    "audio": {"wav", "mp3", "flac", "ogg", "mp4"},
}
ALLOWED_VIDEO_CODECS = {"h264", "hevc", "mpeg4", "vp8", "vp9", "av1", "mjpeg", "mpeg1video", "mpeg2video", "prores",
                        "png", "rawvideo", "ffv1", "theora"}
ALLOWED_IMAGE_CODECS = {"mjpeg", "png", "tiff", "webp", "hevc", "gif", "bmp", "av1", "psd"}
# Stored objects have no extension, and FFmpeg's probe score for a still image with a large metadata block
# can fall below its threshold; the container sniffed from the magic bytes names the demuxer instead.
IMAGE_DEMUXERS = {"jpeg": "jpeg_pipe", "png": "png_pipe", "tiff": "tiff_pipe", "webp": "webp_pipe", "gif": "gif",
                  "bmp": "bmp_pipe", "psd": "psd_pipe"}


@dataclass(frozen=True)
class Validation:
    media_type: str
    mime: str
    container: str
    duration_ms: int | None
    width: int | None
    height: int | None
    fps: float | None
    probe_json: dict[str, Any]


def _rate(value: str | None) -> float | None:
    if not value or value in ("0/0", "0"):
        return None
    try:
        rate = float(Fraction(value))
    except (ValueError, ZeroDivisionError):
        return None
    return rate if rate > 0 else None


def ffprobe_streams(path: Path, limits: LimitSettings, demuxer: str | None = None) -> dict[str, Any]:
    """ffprobe's format, streams and first packets as JSON (:func:`~.harvest.ffprobe_command`, kept for the
    metadata stage), bounded in time and output; ``demuxer`` forces the input format."""
    args = ffprobe_command(path, limits.probe_max_packets, demuxer)
    try:
        data = run_json_tool(args, timeout_s=limits.tool_timeout_s, max_output_bytes=limits.tool_max_output_bytes)
    except ToolError as exc:
        if exc.timed_out:
            raise InputRejectedError(RejectReason.PROBE_TIMEOUT, str(exc)) from exc
        raise InputRejectedError(RejectReason.CORRUPT_STREAM, str(exc)) from exc
    return data if isinstance(data, dict) else {}


#: the long side intake decodes at: enough to run every decoder and filter, small enough to stay cheap
PROOF_LONG_SIDE = 64


def prove_decodes(path: Path, media_type: str, limits: LimitSettings) -> None:
    """Decode the image, or the first video frame, as analysis will; any decoder failure is a typed rejection.

    Third-party errors (Pillow, libheif, OpenCV, PyAV, even a ``UnicodeDecodeError`` from a tag) become
    :class:`InputRejectedError` ``corrupt_stream``, with the store path taken out of the message.
    """
    try:
        if media_type == "image":
            read_image(path, long_side=PROOF_LONG_SIDE, limits=DecodeLimits(max_pixels=limits.max_pixels))
            return
        with VideoReader(path, long_side=PROOF_LONG_SIDE, threads=1,
                         limits=DecodeLimits(max_pixels=limits.max_frame_pixels)) as reader:
            if next(iter(reader), None) is None:
                raise InputRejectedError(RejectReason.NO_DECODABLE_STREAM, "the video stream holds no frame")
    except LimitExceededError as exc:  # the decoder's own size is past the budget the header kept within
        raise InputRejectedError(RejectReason.TOO_MANY_PIXELS, exc.message) from exc
    except InputRejectedError:
        raise
    except Exception as exc:  # every decoder failure (MemoryError included) must become a typed rejection
        raise InputRejectedError(RejectReason.CORRUPT_STREAM,
                                 f"cannot decode: {type(exc).__name__}: {scrub(str(exc), path)}"[:500]) from exc


def validate_file(path: Path, limits: LimitSettings) -> Validation:
    """Decide whether ``path`` may be decoded; raise :class:`InputRejectedError` otherwise."""
    size = path.stat().st_size
    if size == 0:
        raise InputRejectedError(RejectReason.EMPTY, "the file is empty")
    if size > limits.max_bytes:
        raise InputRejectedError(RejectReason.TOO_LARGE, f"{size} bytes is more than {limits.max_bytes}")
    sniffed = sniff_file(path)
    if sniffed.family == "unknown" or sniffed.container not in ALLOWED_CONTAINERS.get(sniffed.family, set()):
        raise InputRejectedError(RejectReason.UNSUPPORTED_FORMAT, f"{sniffed.mime} is not an accepted format")
    structure = check_structure(path, sniffed.container, max_pixels=limits.max_pixels)
    if sniffed.container == "heif":
        return _validate_heif(path, sniffed.mime, structure, limits)
    probe = ffprobe_streams(path, limits, IMAGE_DEMUXERS.get(sniffed.container) if sniffed.family == "image" else None)
    if "error" in probe:
        raise InputRejectedError(RejectReason.CORRUPT_STREAM, str(probe["error"].get("string", "ffprobe error")))
    streams = probe.get("streams") or []
    if len(streams) > limits.max_streams:
        raise InputRejectedError(RejectReason.TOO_MANY_STREAMS, f"{len(streams)} streams")
    visual = [s for s in streams if s.get("codec_type") == "video"]
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    allowed_codecs = ALLOWED_IMAGE_CODECS if sniffed.family == "image" else ALLOWED_VIDEO_CODECS
    visual = [s for s in visual if s.get("codec_name") in allowed_codecs]
    if not visual and not (sniffed.family == "audio" and audio):
        raise InputRejectedError(RejectReason.NO_DECODABLE_STREAM, "no accepted video or image stream")
    width = height = None
    fps = None
    if visual:
        main = max(visual, key=lambda s: int(s.get("width") or 0) * int(s.get("height") or 0))
        width, height = int(main.get("width") or 0), int(main.get("height") or 0)
        if width <= 0 or height <= 0:
            raise InputRejectedError(RejectReason.CORRUPT_STREAM, "stream without dimensions")
        budget = limits.max_pixels if sniffed.family == "image" else limits.max_frame_pixels
        if width * height > budget:
            raise InputRejectedError(RejectReason.TOO_MANY_PIXELS, f"{width}x{height} exceeds {budget}")
        fps = _rate(main.get("avg_frame_rate")) or _rate(main.get("r_frame_rate"))
    duration_s = None
    try:
        raw_duration = (probe.get("format") or {}).get("duration")
        duration_s = None if raw_duration is None else float(raw_duration)
    except (TypeError, ValueError):
        duration_s = None
    if duration_s is not None and duration_s > limits.max_duration_s:
        raise InputRejectedError(RejectReason.TOO_LONG, f"{duration_s:.0f} s exceeds {limits.max_duration_s:.0f} s")
    media_type = sniffed.family
    if visual:
        prove_decodes(path, media_type, limits)
    return Validation(
        media_type=media_type,
        mime=sniffed.mime,
        container=sniffed.container,
        duration_ms=None if media_type == "image" or duration_s is None else round(duration_s * 1000),
        width=width,
        height=height,
        fps=None if media_type == "image" else fps,
        probe_json={**probe, "structure": structure.as_dict()} if structure else probe,
    )


def _validate_heif(path: Path, mime: str, structure: Structure | None, limits: LimitSettings) -> Validation:
    """HEIF/HEIC: FFmpeg cannot demux still-image HEIF, so read its header with libheif (pillow-heif)."""
    import pillow_heif

    try:
        heif = pillow_heif.open_heif(str(path), convert_hdr_to_8bit=True)
        width, height = heif.size
    except SyntaxError as exc:  # pillow-heif's way of saying libheif does not implement a feature the file uses
        raise InputRejectedError(RejectReason.UNSUPPORTED_FORMAT, f"HEIF feature not supported: {exc}") from exc
    except (ValueError, EOFError, RuntimeError, OSError) as exc:  # the other errors pillow-heif documents
        raise InputRejectedError(RejectReason.CORRUPT_STREAM, f"HEIF header unreadable: {exc}") from exc
    if width * height > limits.max_pixels:
        raise InputRejectedError(RejectReason.TOO_MANY_PIXELS, f"{width}x{height} exceeds {limits.max_pixels}")
    prove_decodes(path, "image", limits)
    return Validation(media_type="image", mime=mime, container="heif", duration_ms=None, width=width,
                      height=height, fps=None,
                      probe_json={"libheif": {"width": width, "height": height, "images": len(heif)},
                                  "structure": structure.as_dict() if structure else None})
