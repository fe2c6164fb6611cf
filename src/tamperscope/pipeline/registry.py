"""The stage registry: every :class:`~tamperscope.stages.base.Stage` subclass with a ``name`` defined in a module of
:mod:`tamperscope.stages`, found on first use and put in pipeline order, so a new stage is one new file there.

Pipeline order is topological by ``requires``; among stages whose requirements are met together the lower
``Stage.order`` comes first, then the name. Finding the stages imports their modules (not the registry's import,
which stays cheap), so a stage imports heavy runtimes (ONNX Runtime, MediaPipe) where it runs, not at module level.
``tests/pipeline/test_registry.py`` loads every stage.
"""

from __future__ import annotations

import graphlib
import heapq
import importlib
import pkgutil
from collections.abc import Iterable, Iterator, MutableMapping

from tamperscope.errors import StageRegistryError, UsageError
from tamperscope.stages.base import Stage

PACKAGE = "tamperscope.stages"


def find_stages(package: str = PACKAGE) -> list[type[Stage]]:
    """The stage classes (a ``name`` set) that the modules of ``package`` define, in module order; a module that
    fails to import is a :class:`StageRegistryError` naming it and the error, not a bare traceback."""
    found: list[type[Stage]] = []
    for info in pkgutil.iter_modules(importlib.import_module(package).__path__, f"{package}."):
        try:
            module = importlib.import_module(info.name)
        except Exception as exc:  # any error of the module's own code: a defect of the installed stages
            raise StageRegistryError(f"stage module {info.name} does not import: {type(exc).__name__}: {exc}",
                                     ()) from exc
        found += [cls for cls in vars(module).values()
                  if isinstance(cls, type) and issubclass(cls, Stage) and cls.name and cls.__module__ == info.name]
    return found


def pipeline_order(stages: Iterable[type[Stage]]) -> list[type[Stage]]:
    """``stages`` topologically ordered by ``requires`` (ties: ``order``, then name); a
    :class:`StageRegistryError` for a duplicate name, a requirement on an unknown stage, or a cycle."""
    by_name: dict[str, type[Stage]] = {}
    for cls in stages:
        if cls.name in by_name:
            raise StageRegistryError(f"stage name {cls.name!r} is taken by both {_target(by_name[cls.name])} and "
                                     f"{_target(cls)}", (cls.name,))
        by_name[cls.name] = cls
    unknown = {name: [dep for dep in cls.requires if dep not in by_name] for name, cls in by_name.items()}
    unknown = {name: deps for name, deps in unknown.items() if deps}
    if unknown:
        named = "; ".join(f"{name} requires {', '.join(deps)}" for name, deps in unknown.items())
        raise StageRegistryError(f"unknown required stages ({named}); known: {', '.join(by_name)}", tuple(unknown))
    sorter = graphlib.TopologicalSorter({name: cls.requires for name, cls in by_name.items()})
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        cycle: list[str] = exc.args[1]  # [a, b, ..., a]
        raise StageRegistryError(f"stages require each other in a cycle: {' -> '.join(cycle)}",
                                 tuple(cycle[:-1])) from exc
    ready: list[tuple[int, str]] = []
    ordered: list[type[Stage]] = []
    while sorter.is_active():
        for name in sorter.get_ready():
            heapq.heappush(ready, (by_name[name].order, name))
        _, name = heapq.heappop(ready)
        ordered.append(by_name[name])
        sorter.done(name)
    return ordered


def discover(package: str = PACKAGE) -> dict[str, str]:
    """Stage name -> ``"module:Class"`` of every stage in ``package``, in pipeline order."""
    return {cls.name: _target(cls) for cls in pipeline_order(find_stages(package))}


def _target(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


class StageTable(MutableMapping[str, str]):
    """Stage name -> ``"module:Class"`` in pipeline order, discovered on first use; its entries may be replaced
    (tests run stand-in stages in a process by putting their targets here)."""

    def __init__(self, package: str = PACKAGE) -> None:
        self.package = package
        self._entries: dict[str, str] | None = None

    @property
    def entries(self) -> dict[str, str]:
        if self._entries is None:
            self._entries = discover(self.package)
        return self._entries

    def __getitem__(self, name: str) -> str:
        return self.entries[name]

    def __setitem__(self, name: str, target: str) -> None:
        self.entries[name] = target

    def __delitem__(self, name: str) -> None:
        del self.entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def clear(self) -> None:
        """Empty the table without discovering the stages first."""
        self._entries = {}


STAGES = StageTable()


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
