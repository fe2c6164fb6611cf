"""Quick stand-ins for the real stages, with their names and requirements, so a batch's task graph runs at test
speed: ``STAGES`` (deep fails on still images) and ``HANGING`` (video hangs in native code on still images for
``HANG_S`` seconds), which :func:`dask_setup` installs in a worker process started with this module as preload."""

from __future__ import annotations

import ctypes
import os
from typing import Any, ClassVar

from tamperscope.pipeline import registry
from tamperscope.records import MediaType, StageOutput
from tamperscope.stages.base import StageContext
from tests.pipeline.killable_stages import QuickStage


class Metadata(QuickStage):
    name: ClassVar[str] = "metadata"


class Video(QuickStage):
    name: ClassVar[str] = "video"


class HangingVideo(Video):
    def run(self, ctx: StageContext) -> StageOutput:
        if ctx.asset.media_type == MediaType.IMAGE:
            ctypes.CDLL(None).sleep(int(os.environ.get("HANG_S", "0")))
        return super().run(ctx)


class _AfterVideo(QuickStage):
    requires: ClassVar[tuple[str, ...]] = ("video",)


class Forensics(_AfterVideo):
    name: ClassVar[str] = "forensics"


class Temporal(_AfterVideo):
    name: ClassVar[str] = "temporal"


class AVSync(_AfterVideo):
    name: ClassVar[str] = "avsync"


class Deep(_AfterVideo):
    name: ClassVar[str] = "deep"


class FailingDeep(Deep):
    def run(self, ctx: StageContext) -> StageOutput:
        if ctx.asset.media_type == MediaType.IMAGE:
            raise RuntimeError("no model for stills")
        return super().run(ctx)


class Fusion(QuickStage):
    name: ClassVar[str] = "fusion"
    requires: ClassVar[tuple[str, ...]] = ("metadata", "forensics", "temporal", "avsync", "deep")


def _registry(**replaced: str) -> dict[str, str]:
    classes = {"metadata": "Metadata", "video": "Video", "forensics": "Forensics", "temporal": "Temporal",
               "avsync": "AVSync", "deep": "Deep", "fusion": "Fusion", **replaced}
    return {name: f"{__name__}:{cls}" for name, cls in classes.items()}


STAGES = _registry(deep="FailingDeep")
HANGING = _registry(video="HangingVideo")


def dask_setup(_worker: Any) -> None:
    """A worker process's preload: the hanging stand-ins are its stages."""
    registry.STAGES.clear()
    registry.STAGES.update(HANGING)
