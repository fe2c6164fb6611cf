"""Shared types and helpers of the metadata rules."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tamperscope.records import DetectionRecord

RULES_VERSION = "1.1.0"


@dataclass
class MetaInput:
    """What the rules see: raw tool JSON (any may be missing) and values the stage measured.

    Attributes
    ----------
    exif : ExifTool ``-j -G1 -a -u -n`` record of the file.
    ffprobe : ffprobe JSON (format, streams, bounded packets).
    mediainfo : MediaInfo JSON.
    thumbnail_size : (width, height) of the embedded EXIF thumbnail, decoded by the stage.
    provenance : ``{"status": ..., "codes": [...]}`` from the C2PA reader.
    """

    exif: dict[str, Any] | None = None
    ffprobe: dict[str, Any] | None = None
    mediainfo: dict[str, Any] | None = None
    thumbnail_size: tuple[int, int] | None = None
    provenance: dict[str, Any] = field(default_factory=dict)


Rule = Callable[[MetaInput], list[DetectionRecord]]


def flag(rule: str, score: float, tool: str, **evidence: Any) -> list[DetectionRecord]:
    """One raised flag as a one-element list, ``module_name = meta.<rule>``."""
    return [DetectionRecord(module_name=f"meta.{rule}", module_version=RULES_VERSION, status="flag",
                            score=min(max(score, 0.0), 1.0), evidence={"tool": tool, **evidence})]


def tags(exif: dict[str, Any] | None, groups: Iterable[str] = (), names: Iterable[str] = ()) -> dict[str, Any]:
    """The ExifTool tags whose group is in ``groups`` (any if empty) and whose name is in ``names`` (any if empty)."""
    groups, names = set(groups), set(names)
    out: dict[str, Any] = {}
    for key, value in (exif or {}).items():
        group, _, name = key.partition(":")
        if (not groups or group in groups) and (not names or name in names):
            out[key] = value
    return out


def first(exif: dict[str, Any] | None, *keys: str) -> tuple[str, Any] | None:
    """The first of ``keys`` present in ``exif`` as (key, value)."""
    for key in keys:
        if exif and exif.get(key) not in (None, ""):
            return key, exif[key]
    return None


def parse_time(value: Any) -> datetime | None:
    """Parse an EXIF/XMP/QuickTime/ISO date (``YYYY:MM:DD HH:MM:SS`` first 19 chars); naive, zone dropped."""
    if not isinstance(value, str) or len(value) < 10:
        return None
    text = value.strip().replace("T", " ")
    for fmt, width in (("%Y:%m:%d %H:%M:%S", 19), ("%Y-%m-%d %H:%M:%S", 19), ("%Y:%m:%d", 10), ("%Y-%m-%d", 10)):
        try:
            parsed = datetime.strptime(text[:width], fmt)
        except ValueError:
            continue
        return None if parsed.year < 1900 else parsed
    return None
