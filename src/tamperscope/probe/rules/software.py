"""Software rules: editors and processors named in the tags (``editors.yaml``), and encoder tags of a re-encode
chain."""

from __future__ import annotations

import re

from tamperscope.probe.rules.base import MetaInput, Rule, flag, tags
from tamperscope.probe.rules.signatures import flagged, load_signatures, match_signatures
from tamperscope.records import DetectionRecord

ENCODERS = re.compile(r"\blavf|\blavc|handbrake|ffmpeg|adobe media encoder|premiere|final cut|davinci|"
                      r"capcut|imovie|x264|x265", re.IGNORECASE)


def editing_software(data: MetaInput) -> list[DetectionRecord]:
    """Flag tag values that name an editor or processor of ``editors.yaml`` (Software, CreatorTool, XMP history,
    Photoshop IRB, ...); the score is the weight of the strongest category found, the evidence lists every match."""
    signatures = load_signatures()
    matches = match_signatures(data.exif, signatures)
    hits = flagged(matches, signatures)
    if not hits or data.exif is None:
        return []
    top = max(hits, key=lambda m: signatures.categories[m.category].score)
    return flag("editing_software", signatures.categories[top.category].score, "exiftool",
                tags={m.tag: data.exif[m.tag] for m in hits}, category=top.category,
                software=sorted({m.signature for m in hits}), matches=[m.as_dict() for m in matches],
                signatures_version=signatures.version)


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
