"""The metadata stage: harvest tool output into the asset row and turn inconsistencies into flags."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, ClassVar

from PIL import Image

from tamperscope.errors import ToolError
from tamperscope.probe.c2pa import read_provenance
from tamperscope.probe.harvest import harvest
from tamperscope.probe.rules import RULES, RULES_VERSION, MetaInput, evaluate
from tamperscope.probe.tools import run_tool
from tamperscope.probe.validate import IMAGE_DEMUXERS
from tamperscope.records import StageOutput
from tamperscope.settings import LimitSettings, Settings
from tamperscope.stages.base import Stage, StageContext

#: what intake wrote into ``assets.probe_json`` beside ffprobe's output (the container walk, e.g. bytes after the
#: JPEG end marker, and HEIF's header); the stage replaces ffprobe's part and keeps these
INTAKE_PROBE_KEYS = ("structure", "libheif")


def intake_ffprobe(probe_json: dict[str, Any] | None, path: Path) -> dict[str, Any] | None:
    """Intake's ffprobe output (with packets, see :func:`~tamperscope.probe.harvest.ffprobe_command`) without
    intake's own keys, naming ``path`` (the stored file, not intake's temporary one) as ffprobe would now; None
    for assets probed before intake kept packets, whose ffprobe runs again."""
    if not probe_json or "packets" not in probe_json:
        return None
    probe = {k: v for k, v in probe_json.items() if k not in INTAKE_PROBE_KEYS}
    if isinstance(probe.get("format"), dict):
        probe["format"] = {**probe["format"], "filename": str(path)}
    return probe


def _image_size(data: bytes) -> tuple[int, int] | None:
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except (OSError, ValueError):
        return None


def thumbnail_size(path: Path, exif: dict[str, Any] | None, limits: LimitSettings) -> tuple[int, int] | None:
    """(width, height) of the EXIF thumbnail.

    ExifTool's JSON gives an IFD1 thumbnail's file offset and length, so a JPEG's thumbnail is read straight from
    the file (no second ExifTool run); other thumbnails (JFXX, PNG eXIf, raw formats) are extracted with
    ``exiftool -b -ThumbnailImage``, and only when the JSON lists one.
    """
    exif = exif or {}
    if not any(key.endswith(":ThumbnailImage") for key in exif):
        return None
    offset, length = exif.get("IFD1:ThumbnailOffset"), exif.get("IFD1:ThumbnailLength")
    if exif.get("File:FileType") == "JPEG" and isinstance(offset, int) and isinstance(length, int) and length >= 4:
        with path.open("rb") as handle:
            handle.seek(offset)
            data = handle.read(length)
        if data.startswith(b"\xff\xd8"):
            return _image_size(data)
    try:
        out = run_tool(["exiftool", "-b", "-ThumbnailImage", str(path)], timeout_s=limits.tool_timeout_s,
                       max_output_bytes=limits.tool_max_output_bytes)
    except ToolError:
        return None
    if out.returncode != 0 or len(out.stdout) < 4:
        return None
    return _image_size(out.stdout)


class MetadataStage(Stage):
    """Tool output into the asset row; inconsistencies as ``meta.*`` flags (every media type)."""

    name: ClassVar[str] = "metadata"
    version: ClassVar[str] = "0.2.0"
    order: ClassVar[int] = 10

    def params(self, settings: Settings) -> dict[str, Any]:
        return {"probe_max_packets": settings.limits.probe_max_packets, "rules_version": RULES_VERSION,
                "rules": sorted(RULES)}

    def run(self, ctx: StageContext) -> StageOutput:
        with ctx.media_path() as path:
            demuxer = IMAGE_DEMUXERS.get(ctx.asset.container or "") if ctx.asset.media_type == "image" else None
            found = harvest(path, ctx.settings.limits, demuxer, ffprobe=intake_ffprobe(ctx.asset.probe_json, path))
            ctx.report(0.5, "harvested")
            mime = (found.exiftool or {}).get("File:MIMEType")
            provenance = read_provenance(path, mime if isinstance(mime, str) else None)
            thumb = thumbnail_size(path, found.exiftool, ctx.settings.limits)
        errors = dict(found.errors)
        if provenance.error:
            errors["c2pa"] = provenance.error
        status = provenance.status
        intake = {k: v for k, v in (ctx.asset.probe_json or {}).items() if k in INTAKE_PROBE_KEYS}
        detections = evaluate(MetaInput(exif=found.exiftool, ffprobe=found.ffprobe, mediainfo=found.mediainfo,
                                        thumbnail_size=thumb, provenance=provenance.summary()))
        return StageOutput(
            asset_updates={
                "probe_json": {**(found.ffprobe or {}), **intake} or None,
                "exif_json": found.exiftool,
                "mediainfo_json": found.mediainfo,
                "tool_versions_json": {**found.versions, "errors": errors},
                "provenance_status": status,
                "provenance_json": {"store": provenance.manifest, **provenance.summary()}
                if provenance.manifest is not None or provenance.error else None,
            },
            detections=detections,
            summary={"tool_errors": errors, "flags": sorted(d.module_name for d in detections),
                     "provenance_status": status, "thumbnail_size": list(thumb) if thumb else None},
        )
