from __future__ import annotations

import json
import random
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import tamperscope.stages
from tamperscope.errors import StageRegistryError, UsageError, exit_code_for
from tamperscope.pipeline import registry
from tamperscope.pipeline.registry import STAGES, StageTable, all_stages, discover, load_stage, pipeline_order
from tamperscope.settings import Settings
from tamperscope.stages.base import Stage

# the order the hand-written registry listed before discovery; the batch task graph and job steps follow it
PIPELINE = ["metadata", "video", "forensics", "temporal", "avsync", "deep", "fusion"]
HEAVY = ("mediapipe", "onnxruntime", "torch", "scipy.signal", "scipy.stats")  # imported when a stage runs


def test_every_registered_stage_loads_and_fits_the_protocol() -> None:
    stages = all_stages()
    assert [s.name for s in stages] == list(STAGES)
    settings = Settings()
    for stage in stages:
        assert isinstance(stage.version, str) and stage.version
        assert set(stage.owns_tables) <= {"shots", "frames"}
        assert all(dep in STAGES for dep in stage.requires), stage.name
        assert isinstance(stage.params(settings), dict)
        assert callable(stage.run) and callable(stage.applies_to)


def test_discovered_order_is_the_pipeline_order() -> None:
    found = discover()
    assert list(found) == PIPELINE
    for name, target in found.items():
        module, _, cls = target.partition(":")
        assert module == f"tamperscope.stages.{name}" and cls.endswith("Stage"), target


def test_dependencies_come_before_their_dependents() -> None:
    order = list(STAGES)
    for stage in all_stages():
        assert all(order.index(dep) < order.index(stage.name) for dep in stage.requires)


def test_unknown_stage_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        load_stage("no-such-stage")


def _stage(name: str, requires: tuple[str, ...] = (), order: int = 100) -> type[Stage]:
    return type(f"S_{name}", (Stage,), {"name": name, "version": "1", "requires": requires, "order": order})


def test_ties_break_on_order_then_name_whatever_the_input_order() -> None:
    stages = [_stage("root", order=50), _stage("b", ("root",), 2), _stage("a", ("root",), 2),
              _stage("first", ("root",), 1), _stage("late"), _stage("end", ("a", "b", "first"), 0)]
    expected = ["root", "first", "a", "b", "end", "late"]
    for seed in range(5):
        random.Random(seed).shuffle(stages)
        assert [cls.name for cls in pipeline_order(stages)] == expected


def _module(directory: Path, name: str, body: str) -> None:
    (directory / f"{name}.py").write_text("from typing import ClassVar\n\nfrom tamperscope.stages.base import Stage"
                                          "\n\n" + textwrap.dedent(body))


@pytest.fixture
def extra_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, str]]:
    """A directory added to the path of ``tamperscope.stages`` (as if it held more of its files) and a fresh module
    name; the modules imported from it leave ``sys.modules`` afterwards."""
    monkeypatch.setattr(tamperscope.stages, "__path__", [*tamperscope.stages.__path__, str(tmp_path)])
    before = set(sys.modules)
    yield tmp_path, f"extra_{uuid.uuid4().hex[:8]}"
    for name in set(sys.modules) - before:
        if name.startswith("tamperscope.stages.extra_"):
            del sys.modules[name]


def test_a_new_stage_is_one_file_in_the_stages_package(extra_dir: tuple[Path, str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    directory, module = extra_dir
    _module(directory, module, """
        from tamperscope.stages.video import VideoStage


        class _Helper(Stage):
            '''No name: a base for other stages, not a stage.'''


        class BlurStage(_Helper):
            name: ClassVar[str] = "blur"
            version: ClassVar[str] = "1"
            requires: ClassVar[tuple[str, ...]] = ("video",)
        """)
    monkeypatch.setattr(registry, "STAGES", StageTable())  # a fresh registry; nothing in it is edited
    assert list(registry.STAGES) == [*PIPELINE[:-1], "blur", "fusion"]  # default order: after its peers
    assert registry.STAGES["blur"] == f"tamperscope.stages.{module}:BlurStage"  # not the imported VideoStage
    stage = load_stage("blur")
    assert (stage.requires, stage.media_types) == (("video",), None)
    assert [s.name for s in registry.all_stages()] == list(registry.STAGES)


def test_two_stages_with_one_name_are_a_registry_error(extra_dir: tuple[Path, str]) -> None:
    directory, module = extra_dir
    _module(directory, module, """
        class Shadow(Stage):
            name: ClassVar[str] = "forensics"
        """)
    with pytest.raises(StageRegistryError, match=f"forensics.*ForensicsStage.*{module}:Shadow") as caught:
        discover()
    assert caught.value.stages == ("forensics",)


def test_a_stage_module_that_fails_to_import_is_a_registry_error_naming_it(extra_dir: tuple[Path, str]) -> None:
    directory, module = extra_dir
    _module(directory, module, """
        import tamperscope.no_such_module
        """)
    with pytest.raises(StageRegistryError, match=f"stage module tamperscope.stages.{module} does not import: "
                                                 "ModuleNotFoundError.*no_such_module") as caught:
        discover()
    assert caught.value.stages == ()


def test_requiring_an_unknown_stage_is_a_registry_error() -> None:
    with pytest.raises(StageRegistryError, match="late requires nope, gone") as caught:
        pipeline_order([_stage("first"), _stage("late", ("first", "nope", "gone"))])
    assert caught.value.stages == ("late",)
    assert exit_code_for(caught.value) == 1  # a defect of the installed stages, not of the caller's request


def test_a_requirement_cycle_is_a_registry_error() -> None:
    with pytest.raises(StageRegistryError, match="cycle") as caught:
        pipeline_order([_stage("root"), _stage("a", ("root", "c")), _stage("b", ("a",)), _stage("c", ("b",))])
    assert set(caught.value.stages) == {"a", "b", "c"}


def test_listing_the_stages_imports_no_heavy_runtime() -> None:
    script = ("import json, sys\nimport tamperscope.pipeline.registry as r\n"
              "stage_modules = sorted(m for m in sys.modules if m.startswith('tamperscope.stages.'))\n"
              "names = list(r.STAGES)\n"
              f"print(json.dumps([stage_modules, names, sorted(m for m in {HEAVY!r} if m in sys.modules)]))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    on_import, names, heavy = json.loads(done.stdout)
    assert on_import == ["tamperscope.stages.base"]  # importing the registry discovers nothing yet
    assert names == PIPELINE
    assert heavy == []
