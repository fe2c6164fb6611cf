from __future__ import annotations

import pytest

from tamperscope.errors import UsageError
from tamperscope.pipeline.registry import STAGES, all_stages, load_stage
from tamperscope.settings import Settings


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


def test_dependencies_come_before_their_dependents() -> None:
    order = list(STAGES)
    for stage in all_stages():
        assert all(order.index(dep) < order.index(stage.name) for dep in stage.requires)


def test_unknown_stage_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        load_stage("no-such-stage")
