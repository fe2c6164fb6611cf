"""Stages used only by the resume and watchdog tests: one quick, one that blocks until killed and one that hangs
in native code (when told to)."""

from __future__ import annotations

import ctypes
import os
import time
from pathlib import Path
from typing import ClassVar

from tamperscope.records import DetectionRecord, StageOutput
from tamperscope.stages.base import Stage, StageContext


class _Base(Stage):
    version: ClassVar[str] = "1"

    def _rows(self) -> list[DetectionRecord]:
        return [DetectionRecord(module_name=f"test.{self.name}", module_version="1", window_id=f"w{i}", score=i / 10)
                for i in range(5)]


class QuickStage(_Base):
    name: ClassVar[str] = "quick"

    def run(self, ctx: StageContext) -> StageOutput:
        return StageOutput(detections=self._rows())


class BlockingStage(_Base):
    name: ClassVar[str] = "blocking"
    requires: ClassVar[tuple[str, ...]] = ("quick",)

    def run(self, ctx: StageContext) -> StageOutput:
        marker = os.environ.get("BLOCK_MARKER")
        if marker:
            Path(marker).write_text("running")
            time.sleep(120)
        return StageOutput(detections=self._rows())


class NativeHangStage(_Base):
    """Blocks inside one native call (libc ``sleep``, ``HANG_S`` seconds; none when unset): no budget check can
    run there, only the watchdog ends it."""

    name: ClassVar[str] = "hanging"
    requires: ClassVar[tuple[str, ...]] = ("quick",)

    def run(self, ctx: StageContext) -> StageOutput:
        seconds = int(os.environ.get("HANG_S", "0"))
        if seconds:
            ctypes.CDLL(None).sleep(seconds)
        return StageOutput(detections=self._rows())


class AfterHangStage(QuickStage):
    name: ClassVar[str] = "after_hang"
    requires: ClassVar[tuple[str, ...]] = ("hanging",)
