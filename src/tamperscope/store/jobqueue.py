"""The durable job queue: jobs are rows, claimed by one worker at a time under a lease its heartbeats renew.

A claim is one ``UPDATE ... WHERE job_id = (SELECT ... FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING``: on PostgreSQL
concurrent claimers skip each other's locked rows; on SQLite the write session's ``BEGIN IMMEDIATE`` already makes
the statement exclusive (SQLite renders no ``FOR UPDATE``). Every write by a worker names its ``claimed_by`` id,
so a worker whose job was re-queued after its lease expired cannot overwrite the next worker's state.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, literal, or_, select, update
from sqlalchemy.orm import Session

from tamperscope.redact import mask_secrets
from tamperscope.store.db import Database, as_utc
from tamperscope.store.models import Job

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
STATUSES = (QUEUED, RUNNING, DONE, FAILED)
ANALYZE = "analyze"


def new_id() -> str:
    return uuid.uuid4().hex


def enqueue(db: Database, asset_ids: Sequence[str], *, requested_by: str, force: bool = False,
            batch_id: str | None = None) -> list[Job]:
    """Queue one ``analyze`` job per asset (in one transaction, in order) and return the rows."""
    now = datetime.now(UTC)
    jobs = [Job(job_id=new_id(), kind=ANALYZE, asset_id=asset_id, batch_id=batch_id, requested_by=requested_by,
                force=force, status=QUEUED, fraction=0.0, progress_json={}, message="queued",
                created_at=now + timedelta(microseconds=i), attempts=0) for i, asset_id in enumerate(asset_ids)]
    with db.session() as session:
        session.add_all(jobs)
    return jobs


def _expired(now: datetime) -> ColumnElement[bool]:
    return and_(Job.status == RUNNING, Job.lease_expires_at < now)


def _has_work(db: Database, now: datetime) -> bool:
    """A read-only look (no write lock) for a queued job or an expired running one."""
    with db.read_session() as session:
        return bool(session.execute(select(exists().where(or_(Job.status == QUEUED, _expired(now))))).scalar())


def _recover(session: Session, now: datetime, max_attempts: int) -> None:
    lost = literal("lease of worker ") + Job.claimed_by + literal(" expired")
    session.execute(update(Job).where(_expired(now), Job.attempts >= max_attempts).values(
        status=FAILED, finished_at=now, error_type="WorkerLost", error=lost + literal(
            f"; gave up after {max_attempts} attempts"), claimed_by=None, lease_expires_at=None, message="failed"))
    session.execute(update(Job).where(_expired(now), Job.attempts < max_attempts).values(
        status=QUEUED, message=lost + literal("; re-queued"), claimed_by=None, lease_expires_at=None))


def recover_expired(db: Database, *, max_attempts: int) -> None:
    """Re-queue running jobs whose lease expired (their worker died); fail those claimed ``max_attempts`` times."""
    with db.session() as session:
        _recover(session, datetime.now(UTC), max_attempts)


def claim(db: Database, worker_id: str, *, lease_s: float, max_attempts: int) -> Job | None:
    """Take the oldest queued job for ``worker_id`` (after re-queuing expired ones), or None when there is none."""
    now = datetime.now(UTC)
    if not _has_work(db, now):
        return None
    oldest = (select(Job.job_id).where(Job.status == QUEUED).order_by(Job.created_at, Job.job_id).limit(1)
              .with_for_update(skip_locked=True).scalar_subquery())
    with db.session() as session:
        _recover(session, now, max_attempts)
        return session.execute(
            update(Job).where(Job.job_id == oldest, Job.status == QUEUED)
            .values(status=RUNNING, claimed_by=worker_id, started_at=now, heartbeat_at=now,
                    lease_expires_at=now + timedelta(seconds=lease_s), attempts=Job.attempts + 1,
                    message="claimed", error_type=None, error=None)
            .returning(Job).execution_options(synchronize_session=False)
        ).scalar_one_or_none()


def _mine(job_id: str, worker_id: str) -> ColumnElement[bool]:
    return and_(Job.job_id == job_id, Job.claimed_by == worker_id, Job.status == RUNNING)


def _fenced_update(db: Database, job_id: str, worker_id: str, values: dict[str, Any]) -> bool:
    with db.session() as session:
        done = session.execute(update(Job).where(_mine(job_id, worker_id)).values(**values)
                               .execution_options(synchronize_session=False))
    return bool(getattr(done, "rowcount", 0))


def heartbeat(db: Database, job_id: str, worker_id: str, *, lease_s: float,
              progress: dict[str, Any] | None = None) -> bool:
    """Renew the lease (and write ``progress``: stage, fraction, progress_json, message); False if the job is no
    longer this worker's."""
    now = datetime.now(UTC)
    return _fenced_update(db, job_id, worker_id, {"heartbeat_at": now, "lease_expires_at": now + timedelta(
        seconds=lease_s), **(progress or {})})


def finish(db: Database, job_id: str, worker_id: str, *, error: BaseException | None = None,
           report_id: str | None = None, failed_stages: dict[str, str] | None = None) -> bool:
    """Mark the job done (or failed with ``error``'s type and message); False if it is no longer this worker's."""
    values: dict[str, Any] = {"finished_at": datetime.now(UTC), "lease_expires_at": None,
                              "failed_stages_json": failed_stages or {}, "report_id": report_id}
    if error is None:
        values |= {"status": DONE, "fraction": 1.0, "message": "done"}
    else:
        values |= {"status": FAILED, "error_type": type(error).__name__, "error": mask_secrets(str(error)),
                   "message": "failed"}
    return _fenced_update(db, job_id, worker_id, values)


def release(db: Database, job_id: str, worker_id: str, reason: str) -> bool:
    """Hand a running job back to the queue (its worker is stopping); the next worker resumes it."""
    return _fenced_update(db, job_id, worker_id, {"status": QUEUED, "claimed_by": None, "lease_expires_at": None,
                                                  "message": f"re-queued: {reason}"})


def get(db: Database, job_id: str) -> Job | None:
    with db.read_session() as session:
        return session.get(Job, job_id)


def recent(db: Database, *, status: str | None = None, limit: int = 100) -> list[Job]:
    """The newest jobs first, optionally only those with ``status``."""
    query = select(Job).order_by(Job.created_at.desc()).limit(limit)
    if status is not None:
        query = query.where(Job.status == status)
    with db.read_session() as session:
        return list(session.execute(query).scalars())


def batch(db: Database, batch_id: str) -> list[Job]:
    """A batch's jobs in submission order."""
    with db.read_session() as session:
        return list(session.execute(select(Job).where(Job.batch_id == batch_id).order_by(Job.created_at)).scalars())


def as_dict(job: Job) -> dict[str, Any]:
    """The job as the API shows it (times in UTC ISO-8601)."""
    times = {name: getattr(job, name) for name in ("created_at", "started_at", "finished_at", "lease_expires_at")}
    return {"job_id": job.job_id, "kind": job.kind, "asset_id": job.asset_id, "batch_id": job.batch_id,
            "requested_by": job.requested_by, "force": job.force, "status": job.status, "stage": job.stage,
            "fraction": 1.0 if job.status == DONE else round(job.fraction, 4), "progress": job.progress_json or {},
            "message": job.message or "", "error_type": job.error_type, "error": job.error,
            "failed_stages": job.failed_stages_json or {}, "report_id": job.report_id,
            "claimed_by": job.claimed_by, "attempts": job.attempts,
            **{name: as_utc(value).isoformat() if value else None for name, value in times.items()}}


def aggregate(jobs: Sequence[Job]) -> dict[str, Any]:
    """Counts per status, the mean fraction, and whether every job has finished."""
    counts = dict.fromkeys(STATUSES, 0)
    for job in jobs:
        counts[job.status] = counts.get(job.status, 0) + 1
    fractions = [1.0 if job.status == DONE else job.fraction for job in jobs]
    return {"total": len(jobs), "counts": counts, "fraction": round(sum(fractions) / max(len(jobs), 1), 4),
            "finished": counts[QUEUED] + counts[RUNNING] == 0}
