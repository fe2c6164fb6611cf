"""The stage contract: a stage reads an asset (and earlier stages' rows) and returns rows to write.

The runner, not the stage, writes the rows, in one transaction together with the stage's ``stage_runs``
row and audit event, so a stage either lands whole or not at all. Artifacts a stage puts in the store use
deterministic keys, so a re-run overwrites rather than duplicates them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from sqlalchemy.orm import Session

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


class Stage(Protocol):
    """A pipeline stage. ``requires`` names stages whose rows it reads."""

    name: ClassVar[str]
    version: ClassVar[str]
    requires: ClassVar[tuple[str, ...]]
    owns_tables: ClassVar[tuple[str, ...]]  # subset of ("shots", "frames") that the stage rewrites

    def params(self, settings: Settings) -> dict[str, Any]:
        """The parameters that, with ``version``, decide whether stored results are still current."""
        ...

    def applies_to(self, asset: Asset) -> bool: ...

    def run(self, ctx: StageContext) -> StageOutput: ...
