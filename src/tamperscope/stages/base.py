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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel
from sqlalchemy.orm import Session

from tamperscope.custody.hashing import sha256_file
from tamperscope.media.session import MediaSession
from tamperscope.records import StageOutput
from tamperscope.settings import Settings
from tamperscope.store.models import Asset
from tamperscope.workspace import Workspace

ProgressCallback = Callable[[str, float, str], None]


def open_session(ws: Workspace, asset: Asset) -> MediaSession:
    """A media session over the asset's raw bytes in the workspace store."""
    return MediaSession(lambda: ws.store.local_path(asset.storage_key))


@dataclass
class StageContext:
    """What a running stage may use: the workspace, a snapshot of the asset, a progress hook and the analysis's
    media session (the runner shares one among the stages; a context made without one opens its own)."""

    ws: Workspace
    asset: Asset
    progress: ProgressCallback | None = None
    stage_name: str = ""
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

    def media_path(self) -> contextlib.AbstractContextManager[Path]:
        """A local path to the asset's raw bytes (one temp copy per analysis when the store is remote)."""
        return self.media.local_path()

    def derived_key(self, name: str) -> str:
        """Deterministic store key for an artifact of this stage."""
        return f"derived/{self.asset.asset_id}/{self.stage_name}/{name}"

    def report(self, fraction: float, message: str = "") -> None:
        if self.progress is not None:
            self.progress(self.stage_name, min(max(fraction, 0.0), 1.0), message)


class Stage:
    """Base class of a pipeline stage: set ``name`` and ``version``, implement :meth:`run`; the rest has defaults.

    A stage declares the stages whose rows it reads (``requires``), the tables it rewrites beyond its own
    detections (``owns_tables``, a subset of ``("shots", "frames")``), the media types it applies to
    (``media_types``, None for all) and the settings its results depend on (``settings_section``, narrowed to
    ``settings_fields``). Whether a stored result is current is decided by :func:`fingerprint` alone.
    """

    name: ClassVar[str] = ""
    version: ClassVar[str] = ""
    requires: ClassVar[tuple[str, ...]] = ()
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
