"""Software rules: editing applications named in the tags, and encoder tags of a re-encode chain."""

from __future__ import annotations

import re

from tamperscope.pipeline.stage import DetectionRecord
from tamperscope.probe.rules.base import MetaInput, Rule, flag, tags

EDITORS = re.compile(
    r"photoshop|gimp|lightroom|affinity|snapseed|painttool|paint\.net|paintshop|pixelmator|capture one|"
    r"facetune|picsart|canva|coreldraw|corel photo|acdsee|luminar|darktable|rawtherapee|krita|photopea|"
    r"photoscape|fotor|meitu|airbrush",
    re.IGNORECASE,
)
ENCODERS = re.compile(r"\blavf|\blavc|handbrake|ffmpeg|adobe media encoder|premiere|final cut|davinci|"
                      r"capcut|imovie|x264|x265", re.IGNORECASE)
SOFTWARE_NAMES = ("Software", "CreatorTool", "HistorySoftwareAgent", "ProcessingSoftware", "ExifSoftware",
                  "ActionsSoftwareAgent", "OriginatingProgram")


def editing_software(data: MetaInput) -> list[DetectionRecord]:
    """Flag tags that name an image editor (Software, XMP CreatorTool, XMP history agents)."""
    hits: dict[str, object] = {}
    for key, value in tags(data.exif, names=SOFTWARE_NAMES).items():
        values = value if isinstance(value, list) else [value]
        if any(EDITORS.search(str(v)) for v in values):
            hits[key] = value
    if not hits:
        return []
    return flag("editing_software", 0.6, "exiftool", tags=hits)


def reencode_chain(data: MetaInput) -> list[DetectionRecord]:
    """Flag encoder tags (Lavf, HandBrake, ffmpeg, Adobe Media Encoder...) in container, streams or XMP."""
    hits: dict[str, object] = {}
    probe = data.ffprobe or {}
    for key, value in (probe.get("format", {}).get("tags") or {}).items():
        if ENCODERS.search(str(value)):
            hits[f"format.{key}"] = value
    for stream in probe.get("streams") or []:
        for key, value in (stream.get("tags") or {}).items():
            if key.lower() in ("encoder", "handler_name", "vendor_id") and ENCODERS.search(str(value)):
                hits[f"stream{stream.get('index')}.{key}"] = value
    for key, value in tags(data.exif, names=("Encoder", "CreatorTool", "HistorySoftwareAgent")).items():
        values = value if isinstance(value, list) else [value]
        if any(ENCODERS.search(str(v)) for v in values):
            hits[key] = value
    if not hits:
        return []
    return flag("reencode_chain", 0.3, "ffprobe+exiftool", tags=hits)


RULES: dict[str, Rule] = {"editing_software": editing_software, "reencode_chain": reencode_chain}
