"""The hard bound: a stage stuck in a native call past its budget plus grace ends the process with exit 3, after
the watchdog recorded it ``limit_exceeded``; the next run does not hang on it again."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from tamperscope.custody.intake import ingest_path
from tamperscope.custody.verify import verify
from tamperscope.pipeline import registry
from tamperscope.services import jobs
from tamperscope.services.batch import run_batch
from tamperscope.settings import BatchSettings, LimitSettings, Settings
from tamperscope.store import jobqueue
from tamperscope.store.models import AnalysisLease, Asset, AuditEvent, StageRun
from tamperscope.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]
STAGES = {"quick": "tests.pipeline.killable_stages:QuickStage",
          "hanging": "tests.pipeline.killable_stages:NativeHangStage",
          "after_hang": "tests.pipeline.killable_stages:AfterHangStage"}
# the real CLI entry point, with the test's stages registered in its process only
CLI = ("import sys\nfrom tamperscope.pipeline import registry\nregistry.STAGES.clear()\n"
       f"registry.STAGES.update({STAGES!r})\nfrom tamperscope.cli.main import main\nmain()\n")
LIMITS = LimitSettings(stage_timeout_s=1.0, stage_grace_s=0.5)


def _cli(home: Path, *args: str, timeout: float = 60) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {**os.environ, "TAMPERSCOPE_HOME": str(home), "TAMPERSCOPE_ACTOR": "tester", "HANG_S": "120",
           "TAMPERSCOPE_LIMITS__STAGE_TIMEOUT_S": "1", "TAMPERSCOPE_LIMITS__STAGE_GRACE_S": "0.5"}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", CLI, *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    return done, time.monotonic() - started


def _state(ws: Workspace, asset_id: str) -> tuple[dict[str, str], str, list[AuditEvent], int]:
    """Stage statuses, the asset's status, its audit events and the leases left on it."""
    with ws.db.read_session() as session:
        runs = {r.stage: r.status for r in session.execute(select(StageRun).where(StageRun.asset_id == asset_id))
                .scalars()}
        asset = session.get(Asset, asset_id)
        assert asset is not None
        events = list(session.execute(select(AuditEvent).where(AuditEvent.asset_id == asset_id)
                                      .order_by(AuditEvent.event_id)).scalars())
        leases = len(session.execute(select(AnalysisLease)).scalars().all())
        return runs, asset.status, events, leases


@pytest.fixture
def hung(tmp_path: Path, small_jpeg: Path) -> tuple[Workspace, str]:
    ws = Workspace.open(Settings(home=tmp_path / "home", actor="tester", limits=LIMITS))
    return ws, ingest_path(ws, small_jpeg).asset_id


@pytest.mark.slow
def test_a_stage_hung_in_native_code_ends_analyze_with_exit_3_and_the_next_run_does_not_hang(
        hung: tuple[Workspace, str], small_jpeg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws, asset_id = hung
    first, seconds = _cli(ws.settings.home, "analyze", asset_id)
    assert first.returncode == 3, first.stderr
    assert seconds < 15  # 1 s budget + 0.5 s grace, plus start-up
    assert "stage hanging did not return within its 1 s budget plus 0.5 s grace" in first.stderr
    runs, status, events, leases = _state(ws, asset_id)
    assert runs == {"quick": "done", "hanging": "limit_exceeded"} and status == "limit_exceeded" and leases == 0
    limited = [e.details_json for e in events if e.action == "stage.limit_exceeded"]
    assert len(limited) == 1 and limited[0]["stage"] == "hanging" and limited[0]["limit"] == "time"
    assert limited[0]["watchdog"] is True and limited[0]["elapsed_s"] >= 1.5
    finished = [e.details_json for e in events if e.action == "analysis.finished"]
    assert finished == [{**finished[0], "ended_by": "watchdog", "limit_exceeded": {"hanging": "time"}}]
    assert not verify(ws).problems

    again, seconds = _cli(ws.settings.home, "analyze", asset_id)  # the stored limit stands: no second hang
    assert again.returncode == 3, again.stderr
    assert "hanging exceeded a budget (limit_exceeded)" in again.stderr and "--force" in again.stderr
    runs, status, events_after, leases = _state(ws, asset_id)
    assert [e.action for e in events_after if e.action.startswith("stage.")] == ["stage.done",
                                                                                "stage.limit_exceeded"]
    assert runs["hanging"] == "limit_exceeded" and "after_hang" not in runs and status == "limit_exceeded"
    assert leases == 0 and not verify(ws).problems

    # a batch's tasks (Dask re-runs the task of a worker that died) get the typed result at once: on a thread
    # cluster, so its tasks run this process's stages
    monkeypatch.setattr(registry, "STAGES", dict(STAGES))
    monkeypatch.setenv("HANG_S", "120")
    threads = ws.settings.model_copy(update={"batch": BatchSettings(workers=1, processes=False)})
    (result,) = run_batch(threads, [small_jpeg]).results
    assert (result.status, result.exit_code, result.asset_id) == ("rejected", 3, asset_id)
    assert result.error_type == "StageRejected" and "hanging: LimitExceededError" in (result.reason or "")
    ws.close()


@pytest.mark.slow
def test_a_worker_whose_job_hangs_fails_the_job_with_the_typed_limit_and_exits_3(
        hung: tuple[Workspace, str]) -> None:
    ws, asset_id = hung
    job = jobs.submit(ws, [asset_id])[0]
    done, seconds = _cli(ws.settings.home, "worker", "--drain")
    assert done.returncode == 3, done.stderr
    assert seconds < 15
    row = jobqueue.get(ws.db, job.job_id)
    assert row is not None and row.status == "failed" and row.error_type == "LimitExceededError"
    assert "time budget" in (row.error or "") and "hanging" in (row.failed_stages_json or {})
    runs, status, _, leases = _state(ws, asset_id)
    assert runs["hanging"] == "limit_exceeded" and status == "limit_exceeded" and leases == 0
    assert not verify(ws).problems
    ws.close()
