"""Run external tools (ffprobe, ExifTool, MediaInfo) with a timeout and a cap on what they may print."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

from tamperscope.errors import ToolError


@dataclass(frozen=True)
class ToolOutput:
    stdout: bytes
    stderr: bytes
    returncode: int


def run_tool(args: list[str], *, timeout_s: float, max_output_bytes: int) -> ToolOutput:
    """Run ``args`` (no shell), killing it after ``timeout_s``; output beyond the cap is an error."""
    executable = shutil.which(args[0])
    if executable is None:
        raise ToolError(args[0], "not installed")
    try:
        proc = subprocess.run(
            [executable, *args[1:]], capture_output=True, timeout=timeout_s, check=False, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as exc:
        raise ToolError(args[0], f"timed out after {timeout_s:g} s", timed_out=True) from exc
    if len(proc.stdout) > max_output_bytes:
        raise ToolError(args[0], f"printed more than {max_output_bytes} bytes")
    return ToolOutput(proc.stdout, proc.stderr[-65536:], proc.returncode)


def run_json_tool(args: list[str], *, timeout_s: float, max_output_bytes: int) -> Any:
    """Run a tool that prints JSON and parse it; a non-zero exit with no JSON is a :class:`ToolError`."""
    out = run_tool(args, timeout_s=timeout_s, max_output_bytes=max_output_bytes)
    try:
        return json.loads(out.stdout.decode("utf-8", errors="replace") or "null")
    except json.JSONDecodeError as exc:
        detail = out.stderr.decode("utf-8", errors="replace").strip().splitlines()[-1:] or ["invalid JSON"]
        raise ToolError(args[0], detail[0]) from exc


@functools.cache
def tool_version(tool: str) -> str | None:
    """Version string of an external tool, or None when it is not installed."""
    commands = {
        "ffprobe": ["ffprobe", "-version"],
        "ffmpeg": ["ffmpeg", "-version"],
        "exiftool": ["exiftool", "-ver"],
        "mediainfo": ["mediainfo", "--Version"],
    }
    try:
        out = run_tool(commands[tool], timeout_s=20, max_output_bytes=1 << 20)
    except ToolError:
        return None
    text = out.stdout.decode("utf-8", errors="replace").strip()
    lines = [line for line in text.splitlines() if line.strip()]
    if tool in ("ffprobe", "ffmpeg"):
        return lines[0].split(" version ", 1)[-1].split(" ", 1)[0] if lines else None
    return lines[-1].removeprefix("MediaInfo Command line,").strip() if lines else None
