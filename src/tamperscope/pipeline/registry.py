"""The stage registry: name -> lazily imported class, in pipeline order.

Only stages whose module exists are listed; ``tests/pipeline/test_registry.py`` loads every one.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from tamperscope.errors import UsageError
from tamperscope.stages.base import Stage

STAGES: dict[str, str] = {
    "metadata": "tamperscope.stages.metadata:MetadataStage",
    "video": "tamperscope.stages.video:VideoStage",
    "forensics": "tamperscope.stages.forensics:ForensicsStage",
    "temporal": "tamperscope.stages.temporal:TemporalStage",
    "avsync": "tamperscope.stages.avsync:AVSyncStage",
    "deep": "tamperscope.stages.deep:DeepStage",
    "fusion": "tamperscope.stages.fusion:FusionStage",
}


def load_stage(name: str) -> Stage:
    try:
        target = STAGES[name]
    except KeyError as exc:
        raise UsageError(f"unknown stage {name!r}; known: {', '.join(STAGES)}") from exc
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    stage: Stage = cls()
    return stage


def all_stages() -> list[Stage]:
    return [load_stage(name) for name in STAGES]


def check_known(names: Iterable[str] | None, known: Iterable[str]) -> None:
    """Raise :class:`UsageError` naming every one of ``names`` (e.g. an ``only`` list) that is not in ``known``."""
    known = list(known)
    unknown = sorted(set(names or ()) - set(known))
    if unknown:
        raise UsageError(f"unknown stages: {', '.join(unknown)}; known: {', '.join(known)}")
