"""The job queue on SQLite and PostgreSQL: concurrent claimers take each job once, leases expire into re-queues,
fenced writes, and a queue that outlives the process that filled it."""

from __future__ import annotations

import multiprocessing
import time
import traceback
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

from tamperscope.settings import Settings
from tamperscope.store import jobqueue
from tamperscope.store.db import Database
from tamperscope.store.models import Asset
from tamperscope.workspace import Workspace

CLAIMERS = 4
JOBS = 60


def _assets(ws: Workspace, n: int) -> list[str]:
    """``n`` bare asset rows for jobs to point at (the queue does not look inside them)."""
    ids = [f"{i:016x}" for i in range(n)]
    with ws.db.session() as session:
        session.add_all(Asset(asset_id=a, sha256=a * 4, size_bytes=1, original_name="x.png", upload_time=datetime.now(
            UTC), uploaded_by="tester", storage_key=f"raw/{a}", status="accepted") for a in ids)
    return ids


def _claimer(url: str, name: str, barrier: Any, results: Any) -> None:
    """Claim and finish jobs until the queue is empty; report every job id this process claimed."""
    try:
        db = Database(url)
        barrier.wait(timeout=120)
        claimed = []
        while (job := jobqueue.claim(db, name, lease_s=60, max_attempts=3)) is not None:
            claimed.append(job.job_id)
            assert jobqueue.finish(db, job.job_id, name)
        results.put(("ok", name, claimed))
        db.dispose()
    except BaseException:
        results.put(("error", name, traceback.format_exc()))


@pytest.mark.slow
def test_concurrent_claimers_take_each_job_exactly_once(any_ws: Workspace) -> None:
    jobs = jobqueue.enqueue(any_ws.db, _assets(any_ws, JOBS), requested_by="alice")
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(CLAIMERS), context.Queue()
    processes = [context.Process(target=_claimer, args=(any_ws.settings.resolved_db_url, f"w{i}", barrier, results))
                 for i in range(CLAIMERS)]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=300) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    assert [o[2] for o in outcomes if o[0] == "error"] == []
    claims = Counter(job_id for _, _, claimed in outcomes for job_id in claimed)
    assert set(claims) == {j.job_id for j in jobs} and set(claims.values()) == {1}
    assert sum(1 for _, _, claimed in outcomes if claimed) >= 2, "one claimer took the whole queue"
    rows = jobqueue.recent(any_ws.db, limit=1000)
    assert {r.status for r in rows} == {"done"} and {r.attempts for r in rows} == {1}
    by_job = {job_id: name for _, name, claimed in outcomes for job_id in claimed}
    assert all(r.claimed_by == by_job[r.job_id] for r in rows)


def test_claims_come_oldest_first_and_an_empty_queue_gives_none(any_ws: Workspace) -> None:
    first, second = jobqueue.enqueue(any_ws.db, _assets(any_ws, 2), requested_by="alice", batch_id="b1")
    claimed = jobqueue.claim(any_ws.db, "w1", lease_s=30, max_attempts=3)
    assert claimed is not None and claimed.job_id == first.job_id and claimed.status == "running"
    assert claimed.attempts == 1 and claimed.claimed_by == "w1" and claimed.started_at is not None
    again = jobqueue.claim(any_ws.db, "w2", lease_s=30, max_attempts=3)
    assert again is not None and again.job_id == second.job_id
    assert jobqueue.claim(any_ws.db, "w3", lease_s=30, max_attempts=3) is None
    summary = jobqueue.aggregate(jobqueue.batch(any_ws.db, "b1"))
    assert summary["counts"] == {"queued": 0, "running": 2, "done": 0, "failed": 0} and not summary["finished"]


def test_an_expired_lease_is_requeued_and_the_old_worker_is_fenced_out(any_ws: Workspace) -> None:
    (job,) = jobqueue.enqueue(any_ws.db, _assets(any_ws, 1), requested_by="alice")
    assert jobqueue.claim(any_ws.db, "dead", lease_s=0.2, max_attempts=3) is not None
    assert jobqueue.claim(any_ws.db, "next", lease_s=30, max_attempts=3) is None  # lease still live
    time.sleep(0.4)
    resumed = jobqueue.claim(any_ws.db, "next", lease_s=30, max_attempts=3)
    assert resumed is not None and resumed.job_id == job.job_id
    assert resumed.attempts == 2 and resumed.claimed_by == "next"
    assert not jobqueue.heartbeat(any_ws.db, job.job_id, "dead", lease_s=30)
    assert not jobqueue.finish(any_ws.db, job.job_id, "dead", error=RuntimeError("late"))
    assert jobqueue.heartbeat(any_ws.db, job.job_id, "next", lease_s=30,
                              progress={"stage": "video", "fraction": 0.5, "message": "video: half"})
    row = jobqueue.get(any_ws.db, job.job_id)
    assert row is not None and (row.status, row.stage, row.fraction, row.error) == ("running", "video", 0.5, None)
    assert jobqueue.finish(any_ws.db, job.job_id, "next", report_id="r1")
    done = jobqueue.as_dict(jobqueue.get(any_ws.db, job.job_id))  # type: ignore[arg-type]
    assert (done["status"], done["fraction"], done["report_id"], done["attempts"]) == ("done", 1.0, "r1", 2)
    assert done["finished_at"] >= done["started_at"] >= done["created_at"]


def test_a_job_whose_workers_keep_dying_fails_after_max_attempts(any_ws: Workspace) -> None:
    (job,) = jobqueue.enqueue(any_ws.db, _assets(any_ws, 1), requested_by="alice")
    for attempt in range(2):
        assert jobqueue.claim(any_ws.db, f"dead{attempt}", lease_s=0.1, max_attempts=2) is not None
        time.sleep(0.25)
    jobqueue.recover_expired(any_ws.db, max_attempts=2)
    row = jobqueue.get(any_ws.db, job.job_id)
    assert row is not None and row.status == "failed" and row.error_type == "WorkerLost"
    assert row.error == "lease of worker dead1 expired; gave up after 2 attempts"
    assert jobqueue.claim(any_ws.db, "next", lease_s=30, max_attempts=2) is None


def test_a_failed_job_keeps_the_error_type_and_a_released_one_is_claimed_again(any_ws: Workspace) -> None:
    bad, handed_back = jobqueue.enqueue(any_ws.db, _assets(any_ws, 2), requested_by="alice")
    assert jobqueue.claim(any_ws.db, "w1", lease_s=30, max_attempts=3) is not None
    assert jobqueue.finish(any_ws.db, bad.job_id, "w1", error=KeyError("boom"))
    assert jobqueue.claim(any_ws.db, "w1", lease_s=30, max_attempts=3) is not None
    assert jobqueue.release(any_ws.db, handed_back.job_id, "w1", "worker w1 stopped")
    row = jobqueue.get(any_ws.db, handed_back.job_id)
    assert row is not None and (row.status, row.claimed_by, row.message) == ("queued", None,
                                                                             "re-queued: worker w1 stopped")
    again = jobqueue.claim(any_ws.db, "w2", lease_s=30, max_attempts=3)
    assert again is not None and again.job_id == handed_back.job_id and again.attempts == 2
    failed = jobqueue.get(any_ws.db, bad.job_id)
    assert failed is not None and (failed.status, failed.error_type, failed.error) == ("failed", "KeyError", "'boom'")


def test_queued_jobs_survive_a_restart(any_ws: Workspace) -> None:
    jobs = jobqueue.enqueue(any_ws.db, _assets(any_ws, 3), requested_by="alice", batch_id="b")
    settings: Settings = any_ws.settings
    any_ws.close()
    reopened = Workspace.open(settings)
    try:
        assert [j.job_id for j in jobqueue.batch(reopened.db, "b")] == [j.job_id for j in jobs]
        claimed = jobqueue.claim(reopened.db, "after-restart", lease_s=30, max_attempts=3)
        assert claimed is not None and claimed.job_id == jobs[0].job_id
    finally:
        reopened.close()


def test_migration_0006_adds_the_jobs_table_and_downgrades(any_ws: Workspace) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import inspect

    from tamperscope.store.db import MIGRATIONS_DIR

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with any_ws.db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0005")
    assert "jobs" not in inspect(any_ws.db.engine).get_table_names()
    any_ws.db.upgrade()
    columns = {c["name"] for c in inspect(any_ws.db.engine).get_columns("jobs")}
    assert {"status", "fraction", "stage", "claimed_by", "lease_expires_at", "attempts", "batch_id"} <= columns
    assert {"ix_jobs_status_created", "ix_jobs_batch_id", "ix_jobs_asset_id"} <= {
        i["name"] for i in inspect(any_ws.db.engine).get_indexes("jobs")}
