"""Metadata harvest: ffprobe (format, streams, bounded packets), ExifTool and MediaInfo, kept verbatim."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tamperscope.errors import ToolError
from tamperscope.probe.tools import run_json_tool, tool_version
from tamperscope.settings import LimitSettings


@dataclass
class Harvest:
    ffprobe: dict[str, Any] | None
    exiftool: dict[str, Any] | None
    mediainfo: dict[str, Any] | None
    versions: dict[str, str | None]
    errors: dict[str, str]


# Keys later code reads from each tool's JSON; a tool whose output lacks them is recorded as failed.
REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "ffprobe": ("format", "streams"),
    "exiftool": ("File:FileType",),
    "mediainfo": ("media",),
}


def missing_keys(tool: str, data: dict[str, Any] | None) -> list[str]:
    """The keys of :data:`REQUIRED_KEYS` that ``data`` lacks (all of them when there is no output)."""
    return [key for key in REQUIRED_KEYS[tool] if not data or key not in data]


def ffprobe_command(path: Path, max_packets: int, demuxer: str | None = None) -> list[str]:
    """The one ffprobe run per asset (intake's, whose output analysis reuses): format, streams, errors and the
    first ``max_packets`` packets' timing. ``demuxer`` forces the input format (stored objects have no
    extension; see ``validate.IMAGE_DEMUXERS``)."""
    return ["ffprobe", "-v", "error", "-hide_banner", "-print_format", "json", "-show_format", "-show_streams",
            "-show_error", "-show_packets", "-read_intervals", f"%+#{max_packets}",
            "-show_entries", "packet=stream_index,pts,dts,pts_time,dts_time,duration,flags,size:format:stream",
            *(["-f", demuxer] if demuxer else []), str(path)]


def harvest(path: Path, limits: LimitSettings, demuxer: str | None = None,
            ffprobe: dict[str, Any] | None = None) -> Harvest:
    """Run the three tools; a tool's failure is recorded, never fatal.

    ``ffprobe``: intake's output of :func:`ffprobe_command`, reused instead of running ffprobe again.
    """
    errors: dict[str, str] = {}
    results: dict[str, Any] = {}
    commands = {
        "ffprobe": ffprobe_command(path, limits.probe_max_packets, demuxer),
        "exiftool": ["exiftool", "-j", "-G1", "-a", "-u", "-n", "-api", "LargeFileSupport=1", str(path)],
        "mediainfo": ["mediainfo", "--Output=JSON", str(path)],
    }
    for tool, args in commands.items():
        if tool == "ffprobe" and ffprobe is not None:
            results[tool] = ffprobe
            continue
        try:
            data = run_json_tool(args, timeout_s=limits.tool_timeout_s,
                                 max_output_bytes=limits.tool_max_output_bytes)
        except ToolError as exc:
            errors[tool] = str(exc)
            data = None
        if tool == "exiftool" and isinstance(data, list):
            data = data[0] if data else None
        results[tool] = data if isinstance(data, dict) else None
        missing = missing_keys(tool, results[tool])
        if missing and tool not in errors:
            errors[tool] = f"output lacks {', '.join(missing)}"
    return Harvest(
        ffprobe=results["ffprobe"], exiftool=results["exiftool"], mediainfo=results["mediainfo"],
        versions={tool: tool_version(tool) for tool in commands}, errors=errors,
    )
