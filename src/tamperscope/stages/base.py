"""The stage contract: a stage reads an asset (and earlier stages' rows) and returns rows to write.

The runner, not the stage, writes the rows, in one transaction together with the stage's ``stage_runs``
row and audit event, so a stage either lands whole or not at all. Artifacts a stage puts in the store use
deterministic keys, so a re-run overwrites rather than duplicates them.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import resource
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel
from sqlalchemy.orm import Session

from tamperscope.custody.hashing import sha256_file
from tamperscope.errors import LimitExceededError
from tamperscope.media.limits import DecodeLimits
from tamperscope.media.session import MediaSession
from tamperscope.records import FrameRecord, MediaType, StageOutput
from tamperscope.settings import LimitSettings, Settings
from tamperscope.store import queries
from tamperscope.store.models import Asset
from tamperscope.workspace import Workspace

ProgressCallback = Callable[[str, float, str], None]
#: the media-session memo key of :meth:`StageContext.frames`
FRAMES_MEMO = "frames"


def open_session(ws: Workspace, asset: Asset) -> MediaSession:
    """A media session over the asset's raw bytes in the workspace store."""
    return MediaSession(lambda: ws.store.local_path(asset.storage_key))


def resident_bytes() -> int:
    """The resident set of this process now (``/proc/self/statm``; the peak where that is not available)."""
    try:
        with open("/proc/self/statm", "rb") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass
class StageBudget:
    """The wall-clock budget and memory ceiling of one stage run, checked at loop boundaries by :meth:`check`.

    Why checks at boundaries and not a hard limit: ``RLIMIT_AS`` on the process makes an allocation inside native
    code (FFmpeg, ONNX Runtime, OpenCV, MediaPipe) fail at an arbitrary point, often as an abort that takes the
    run and its bookkeeping down, and it counts reserved address space (thread stacks, malloc arenas), not memory
    in use; a child process per stage would reopen the database, re-import the native libraries and reload the
    models for every stage and share nothing with the runner. Here every unit of work between two checks (one
    decoded frame, one forensic detector, one progress step) is itself bounded by the decoded-pixel budgets, so
    the overrun past a budget is at most one unit, and exceeding a budget is a typed ``limit_exceeded`` result;
    work whose memory cost is known before it starts (decoding a still image, forensics at full resolution) is
    reserved first (:meth:`reserve`), so it is refused instead of overshooting the ceiling.
    A stage stuck inside native code, where no check runs, is ended by the runner's watchdog
    (:mod:`tamperscope.pipeline.watchdog`) once past its timeout plus a grace period. A run killed from outside (a
    supervisor's timeout, the OOM killer) leaves a lease whose process is gone; the next run recovers the asset
    (:mod:`tamperscope.custody.lease`). The resident set is the whole process's, so
    stages running side by side share the ceiling.
    """

    stage: str
    timeout_s: float
    memory_bytes: int
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def from_limits(cls, stage: str, limits: LimitSettings) -> StageBudget:
        return cls(stage=stage, timeout_s=limits.stage_timeout_s, memory_bytes=limits.stage_memory_bytes)

    def check(self) -> None:
        """Raise :class:`LimitExceededError` (``time`` or ``memory``) once the stage is past a budget."""
        elapsed = time.monotonic() - self.started
        if elapsed > self.timeout_s:
            raise LimitExceededError("time", f"stage {self.stage} ran {elapsed:.1f} s, more than {self.timeout_s:g} s")
        rss = resident_bytes()
        if rss > self.memory_bytes:
            raise LimitExceededError("memory", f"stage {self.stage} holds {rss / 2**20:.0f} MiB, more than "
                                               f"{self.memory_bytes / 2**20:.0f} MiB")

    def reserve(self, nbytes: int, what: str) -> None:
        """Refuse work whose memory cost is known before it starts: :class:`LimitExceededError` (``memory``) when
        the resident set plus ``nbytes`` would pass the ceiling, so a large image is refused, not decoded."""
        rss = resident_bytes()
        if rss + nbytes > self.memory_bytes:
            raise LimitExceededError("memory", f"stage {self.stage}: {what} needs about {nbytes / 2**20:.0f} MiB "
                                               f"beside the {rss / 2**20:.0f} MiB held, more than "
                                               f"{self.memory_bytes / 2**20:.0f} MiB")


@dataclass
class StageContext:
    """What a running stage may use: the workspace, a snapshot of the asset, a progress hook and the analysis's
    media session (the runner shares one among the stages; a context made without one opens its own)."""

    ws: Workspace
    asset: Asset
    progress: ProgressCallback | None = None
    stage_name: str = ""
    budget: StageBudget | None = None
    media: MediaSession = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.media is None:
            self.media = open_session(self.ws, self.asset)

    @property
    def settings(self) -> Settings:
        return self.ws.settings

    @contextlib.contextmanager
    def read_session(self) -> Iterator[Session]:
        """A read-only view of earlier stages' rows."""
        with self.ws.db.read_session() as session:
            yield session

    def frames(self) -> list[FrameRecord]:
        """The ``video`` stage's sampled frames with their faces, loaded once per analysis: decoding their faces
        (landmarks included) takes about 0.6 s for a minute of video, and ``temporal``, ``avsync`` and ``deep``
        all read them. Every reader requires ``video``, so it runs after the frames were written; the ``video``
        stage drops the copy before it rewrites them (:data:`FRAMES_MEMO`)."""
        def load() -> list[FrameRecord]:
            with self.read_session() as session:
                return queries.frames(session, self.asset.asset_id)

        return self.media.memo(FRAMES_MEMO, load)

    def media_path(self) -> contextlib.AbstractContextManager[Path]:
        """A local path to the asset's raw bytes (one temp copy per analysis when the store is remote)."""
        return self.media.local_path()

    def derived_key(self, name: str) -> str:
        """Deterministic store key for an artifact of this stage."""
        return f"derived/{self.asset.asset_id}/{self.stage_name}/{name}"

    def check_budget(self) -> None:
        """Stop the stage with :class:`LimitExceededError` once it is past its time or memory budget."""
        if self.budget is not None:
            self.budget.check()

    def reserve_memory(self, nbytes: int, what: str) -> None:
        """Refuse work that would take the stage past its memory ceiling, before it starts."""
        if self.budget is not None:
            self.budget.reserve(nbytes, what)

    def decode_limits(self) -> DecodeLimits:
        """Pixel and duration budgets for decoding this asset, with the stage's budget checked on every frame."""
        limits = self.settings.limits
        image = self.asset.media_type == MediaType.IMAGE
        return DecodeLimits(max_pixels=limits.max_pixels if image else limits.max_frame_pixels,
                            max_duration_ms=None if image else round(limits.max_duration_s * 1000),
                            check=self.check_budget, reserve=lambda n: self.reserve_memory(n, "decoding"))

    def report(self, fraction: float, message: str = "") -> None:
        """Progress, and a budget check (every progress point before the end is a loop boundary; finished work
        is kept)."""
        if fraction < 1.0:
            self.check_budget()
        if self.progress is not None:
            self.progress(self.stage_name, min(max(fraction, 0.0), 1.0), message)


class Stage:
    """Base class of a pipeline stage: set ``name`` and ``version``, implement :meth:`run`; the rest has defaults.

    A subclass with a ``name`` in a module of :mod:`tamperscope.stages` is a registered stage
    (:mod:`tamperscope.pipeline.registry` finds it). A stage declares the stages whose rows it reads
    (``requires``), the tables it rewrites beyond its own detections (``owns_tables``, a subset of
    ``("shots", "frames")``), the media types it applies to (``media_types``, None for all) and the settings its
    results depend on (``settings_section``, narrowed to ``settings_fields``). Whether a stored result is current
    is decided by :func:`fingerprint` alone.
    """

    name: ClassVar[str] = ""
    version: ClassVar[str] = ""
    requires: ClassVar[tuple[str, ...]] = ()
    #: pipeline-order tie-break among stages whose ``requires`` are met together: lower first, then by name
    order: ClassVar[int] = 100
    owns_tables: ClassVar[tuple[str, ...]] = ()
    media_types: ClassVar[frozenset[str] | None] = None
    settings_section: ClassVar[str | None] = None
    settings_fields: ClassVar[tuple[str, ...] | None] = None

    def params(self, settings: Settings) -> dict[str, Any]:
        """The settings the results depend on: ``settings_section`` (only ``settings_fields`` when given)."""
        if self.settings_section is None:
            return {}
        section: BaseModel = getattr(settings, self.settings_section)
        fields = set(self.settings_fields) if self.settings_fields is not None else None
        return section.model_dump(mode="json", include=fields)

    def model_files(self, settings: Settings) -> list[Path]:
        """Files whose bytes the results depend on (models and their sidecars); their digests enter the
        fingerprint."""
        return []

    def applies_to(self, asset: Asset) -> bool:
        return self.media_types is None or asset.media_type in self.media_types

    def run(self, ctx: StageContext) -> StageOutput:
        raise NotImplementedError


@functools.lru_cache(maxsize=64)
def _file_digest(path: str, mtime_ns: int, size: int) -> str:
    return sha256_file(path)[0]


def file_digest(path: Path) -> str | None:
    """SHA-256 of a file (cached per path, modification time and size); None when it does not exist."""
    if not path.is_file():
        return None
    stat = path.stat()
    return _file_digest(str(path), stat.st_mtime_ns, stat.st_size)


def fingerprint(stage: Stage, settings: Settings, inputs: dict[str, str | None]) -> str:
    """The one rule of currency: a stored result is current when its recorded fingerprint equals this hash of
    the stage's version, its settings (:meth:`Stage.params`), the digests of its model files and sidecars and
    the fingerprints of the stages it requires (``inputs``: stage name -> that stage's current fingerprint)."""
    payload = {"stage": stage.name, "version": stage.version, "params": stage.params(settings),
               "files": {str(p): file_digest(p) for p in stage.model_files(settings)},
               "inputs": {dep: inputs.get(dep) for dep in sorted(stage.requires)}}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
