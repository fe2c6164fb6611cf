"""Background analysis jobs: a small thread pool, with status and per-stage progress from the runner."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from tamperscope.redact import mask_secrets
from tamperscope.workspace import Workspace


@dataclass
class Job:
    job_id: str
    asset_id: str
    requested_by: str
    status: str = "queued"
    progress: dict[str, float] = field(default_factory=dict)
    message: str = ""
    error: str | None = None
    failed_stages: dict[str, str] = field(default_factory=dict)
    report_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        overall = sum(self.progress.values()) / max(len(self.progress), 1) if self.progress else 0.0
        return {"job_id": self.job_id, "asset_id": self.asset_id, "requested_by": self.requested_by,
                "status": self.status, "progress": dict(self.progress), "fraction": 1.0 if self.status == "done"
                else round(overall, 4), "message": self.message, "error": self.error,
                "failed_stages": dict(self.failed_stages), "report_id": self.report_id}


class JobManager:
    """Runs the analysis service (stages, then the report) in worker threads; jobs are kept in memory."""

    def __init__(self, workers: int = 1) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tamperscope-job")
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def submit(self, ws: Workspace, asset_id: str, *, force: bool = False) -> Job:
        job = Job(job_id=uuid.uuid4().hex, asset_id=asset_id, requested_by=ws.actor)
        with self._lock:
            self._jobs[job.job_id] = job
        self._pool.submit(self._run, ws, job, force)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def list(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def _run(self, ws: Workspace, job: Job, force: bool) -> None:
        from tamperscope.services.analysis import run_analysis

        def on_progress(stage: str, fraction: float, message: str) -> None:
            job.progress[stage] = float(fraction)
            job.message = f"{stage}: {message}"

        job.status = "running"
        try:
            outcome = run_analysis(ws, job.asset_id, force=force, progress=on_progress, report=True)
            job.failed_stages = dict(outcome.run.failed)
            job.report_id = outcome.report.report_id if outcome.report else None
            job.status = "done"
            job.message = "done"
        except Exception as exc:
            job.status = "failed"
            job.error = mask_secrets(f"{type(exc).__name__}: {exc}")

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
