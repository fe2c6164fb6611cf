"""Which stages are not current: the one rule the runner and the batch's skip use."""

from __future__ import annotations

from typing import ClassVar

from tamperscope.pipeline.runner import stages_to_run
from tamperscope.settings import Settings
from tamperscope.stages.base import Stage
from tamperscope.store.models import StageRun
from tests.pipeline.killable_stages import BlockingStage, QuickStage


class Later(QuickStage):
    name: ClassVar[str] = "later"
    requires: ClassVar[tuple[str, ...]] = ("blocking",)


STAGES: list[Stage] = [QuickStage(), BlockingStage(), Later()]  # quick <- blocking <- later


def _runs(status: str = "done", **versions: str) -> dict[str, StageRun]:
    return {s.name: StageRun(asset_id="a", stage=s.name, version=versions.get(s.name, s.version), params_json={},
                             status=status) for s in STAGES}


def test_nothing_runs_when_every_stage_is_done_with_the_same_version_and_params() -> None:
    assert stages_to_run(_runs(), STAGES, Settings()) == set()
    assert stages_to_run(_runs("not_applicable"), STAGES, Settings()) == set()


def test_missing_failed_or_changed_stages_run_with_every_stage_after_them() -> None:
    settings = Settings()
    assert stages_to_run({}, STAGES, settings) == {"quick", "blocking", "later"}
    assert stages_to_run(_runs("failed"), STAGES, settings) == {"quick", "blocking", "later"}
    assert stages_to_run(_runs(blocking="0"), STAGES, settings) == {"blocking", "later"}
    runs = _runs()
    runs["later"].params_json = {"old": 1}
    assert stages_to_run(runs, STAGES, settings) == {"later"}


def test_only_limits_and_force_reruns() -> None:
    settings = Settings()
    assert stages_to_run({}, STAGES, settings, only=["blocking"]) == {"blocking"}
    assert stages_to_run(_runs(quick="0"), STAGES, settings, only=["later"]) == set()
    assert stages_to_run(_runs(), STAGES, settings, force=True) == {"quick", "blocking", "later"}
