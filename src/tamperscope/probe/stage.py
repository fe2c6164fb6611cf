"""The metadata stage: harvest tool output into the asset row and turn inconsistencies into flags."""

from __future__ import annotations

from typing import Any, ClassVar

from tamperscope.pipeline.stage import StageContext, StageOutput
from tamperscope.probe.harvest import harvest
from tamperscope.settings import Settings
from tamperscope.store.models import Asset


class MetadataStage:
    name: ClassVar[str] = "metadata"
    version: ClassVar[str] = "0.1.0"
    requires: ClassVar[tuple[str, ...]] = ()
    owns_tables: ClassVar[tuple[str, ...]] = ()

    def params(self, settings: Settings) -> dict[str, Any]:
        return {"probe_max_packets": settings.limits.probe_max_packets}

    def applies_to(self, asset: Asset) -> bool:
        return True

    def run(self, ctx: StageContext) -> StageOutput:
        with ctx.media_path() as path:
            found = harvest(path, ctx.settings.limits)
        return StageOutput(
            asset_updates={
                "probe_json": found.ffprobe,
                "exif_json": found.exiftool,
                "mediainfo_json": found.mediainfo,
                "tool_versions_json": {**found.versions, "errors": found.errors},
            },
            summary={"tool_errors": found.errors},
        )
