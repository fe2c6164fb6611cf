"""Analysis jobs: status and progress."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from tamperscope.api.dependencies import JobsDep, WorkspaceDep
from tamperscope.errors import NotFoundError

router = APIRouter(prefix="/api/jobs", tags=["jobs"])


@router.get("", summary="List jobs of this server process")
def list_jobs(ws: WorkspaceDep, jobs: JobsDep) -> list[dict[str, Any]]:
    return [job.as_dict() for job in jobs.list()]


@router.get("/{job_id}", summary="Status and per-stage progress of one job")
def get_job(job_id: str, ws: WorkspaceDep, jobs: JobsDep) -> dict[str, Any]:
    job = jobs.get(job_id)
    if job is None:
        raise NotFoundError(f"no job {job_id!r}")
    return job.as_dict()
