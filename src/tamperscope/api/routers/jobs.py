"""Analysis jobs: status and progress, from the database every replica shares."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter

from tamperscope.api.dependencies import WorkspaceDep
from tamperscope.errors import NotFoundError
from tamperscope.store import jobqueue

router = APIRouter(prefix="/api/jobs", tags=["jobs"])


@router.get("", summary="List jobs, newest first")
def list_jobs(ws: WorkspaceDep, status: Literal["queued", "running", "done", "failed"] | None = None,
              limit: int = 100) -> list[dict[str, Any]]:
    return [jobqueue.as_dict(job) for job in jobqueue.recent(ws.db, status=status, limit=max(1, min(limit, 1000)))]


@router.get("/{job_id}", summary="Status, stage and progress of one job")
def get_job(job_id: str, ws: WorkspaceDep) -> dict[str, Any]:
    job = jobqueue.get(ws.db, job_id)
    if job is None:
        raise NotFoundError(f"no job {job_id!r}")
    return jobqueue.as_dict(job)
