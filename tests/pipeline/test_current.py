"""Which stages are not current: the one fingerprint rule the runner and the batch's skip use."""

from __future__ import annotations

from typing import ClassVar

from tamperscope.pipeline.runner import stages_to_run
from tamperscope.settings import Settings
from tamperscope.stages.base import Stage, fingerprint
from tamperscope.store.models import StageRun
from tests.pipeline.killable_stages import BlockingStage, QuickStage


class Later(QuickStage):
    name: ClassVar[str] = "later"
    requires: ClassVar[tuple[str, ...]] = ("blocking",)


STAGES: list[Stage] = [QuickStage(), BlockingStage(), Later()]  # quick <- blocking <- later


def _runs(settings: Settings, status: str = "done", **versions: str) -> dict[str, StageRun]:
    """Stored runs as the runner records them, with ``versions`` overriding a stage's version at that run."""
    prints: dict[str, str | None] = {}
    runs = {}
    for stage in STAGES:
        recorded = type(stage.name, (type(stage),), {"version": versions.get(stage.name, stage.version)})()
        prints[stage.name] = fingerprint(recorded, settings, prints)
        runs[stage.name] = StageRun(asset_id="a", stage=stage.name, version=recorded.version, params_json={},
                                    status=status, fingerprint=prints[stage.name])
    return runs


def test_nothing_runs_when_every_stage_is_done_with_its_current_fingerprint() -> None:
    settings = Settings()
    assert stages_to_run(_runs(settings), STAGES, settings) == set()
    assert stages_to_run(_runs(settings, "not_applicable"), STAGES, settings) == set()


def test_missing_failed_or_changed_stages_run_with_every_stage_after_them() -> None:
    settings = Settings()
    assert stages_to_run({}, STAGES, settings) == {"quick", "blocking", "later"}
    assert stages_to_run(_runs(settings, "failed"), STAGES, settings) == {"quick", "blocking", "later"}
    assert stages_to_run(_runs(settings, blocking="0"), STAGES, settings) == {"blocking", "later"}
    runs = _runs(settings)
    runs["later"].fingerprint = "recorded under other settings"
    assert stages_to_run(runs, STAGES, settings) == {"later"}


def test_only_limits_and_force_reruns() -> None:
    settings = Settings()
    assert stages_to_run({}, STAGES, settings, only=["blocking"]) == {"blocking"}
    assert stages_to_run(_runs(settings, quick="0"), STAGES, settings, only=["later"]) == set()
    assert stages_to_run(_runs(settings), STAGES, settings, force=True) == {"quick", "blocking", "later"}


def test_a_limit_exceeded_result_stands_until_its_budget_changes_or_force() -> None:
    """A stage that exceeded a budget (or hung until the watchdog ended the process) is not re-run on its own with
    the same fingerprint and budgets: it would only do it again. A raised budget or ``force`` re-runs it."""
    settings = Settings()
    runs = _runs(settings)
    runs["blocking"].status = "limit_exceeded"
    runs["blocking"].summary_json = {"limit": "time", "limits": settings.limits.model_dump(mode="json")}
    assert stages_to_run(runs, STAGES, settings) == set()
    del runs["later"]  # as after a real run: the stage after a limited one never ran (the runner skips it)
    assert stages_to_run(runs, STAGES, settings) == {"later"}
    assert stages_to_run(runs, STAGES, settings, force=True) == {"quick", "blocking", "later"}
    raised = settings.model_copy(update={"limits": settings.limits.model_copy(update={"stage_timeout_s": 7200.0})})
    assert stages_to_run(runs, STAGES, raised) == {"blocking", "later"}
    runs["blocking"].summary_json = {"traceback": "recorded before budgets were kept"}
    assert stages_to_run(runs, STAGES, settings) == {"blocking", "later"}
