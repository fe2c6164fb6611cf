"""Jobs: analyses queued in the database, and the workers that claim and run them.

:func:`submit` queues; a :class:`Worker` claims a job, runs it through :func:`run_analysis` as the actor who
asked, heartbeats and records progress, and finishes it. A worker runs in a ``tamperscope worker`` process or as
a thread of an API server; any number share one database. Stage threads report progress to memory and one
heartbeat thread writes it (at most every ``jobs.progress_interval_s``) with the lease renewal, so stages never
wait on the database.

A stage stuck in a native call past its budget and grace ends the worker's process, an API server's too (see
:mod:`tamperscope.pipeline.watchdog`): its job is failed first with the typed ``LimitExceededError``, and any other
job of the process is handed back to the queue.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from tamperscope.errors import BusyError, InputRejectedError, RejectReason
from tamperscope.pipeline import watchdog
from tamperscope.pipeline.registry import all_stages
from tamperscope.services.analysis import run_analysis
from tamperscope.store import jobqueue, queries
from tamperscope.store.models import Job
from tamperscope.workspace import Workspace

log = logging.getLogger(__name__)


def submit(ws: Workspace, refs: Sequence[str], *, force: bool = False, batch_id: str | None = None) -> list[Job]:
    """Queue an analysis of each asset (id or SHA-256 prefix) as ``ws.actor``; all or none.

    Raises :class:`NotFoundError` for an unknown asset and :class:`InputRejectedError` for one rejected at intake,
    before anything is queued.
    """
    asset_ids = []
    with ws.db.read_session() as session:
        for ref in refs:
            asset = queries.find_asset(session, ref)
            if asset.status == "rejected":
                raise InputRejectedError(RejectReason(asset.reject_reason or "corrupt_stream"),
                                         asset.error or "input was rejected at intake", asset_id=asset.asset_id)
            asset_ids.append(asset.asset_id)
    return jobqueue.enqueue(ws.db, asset_ids, requested_by=ws.actor, force=force, batch_id=batch_id)


def worker_id() -> str:
    """A worker id unique across hosts and processes: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class ProgressTracker:
    """Per-phase fractions reported by the stages; the overall fraction averages the phases the job will run."""

    phases: list[str]
    fractions: dict[str, float] = field(default_factory=dict)
    stage: str | None = None
    message: str = ""
    version: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, phase: str, fraction: float, message: str) -> None:
        with self._lock:
            self.fractions[phase] = max(0.0, min(1.0, float(fraction)))
            self.stage, self.message = phase, f"{phase}: {message}"
            self.version += 1

    def snapshot(self) -> dict[str, Any]:
        """The job row's progress columns."""
        with self._lock:
            done = sum(self.fractions.get(phase, 0.0) for phase in self.phases)
            return {"stage": self.stage, "message": self.message, "progress_json": dict(self.fractions),
                    "fraction": round(done / max(len(self.phases), 1), 4)}


def expected_phases(ws: Workspace, asset_id: str) -> list[str]:
    """The stages that apply to the asset, then the report: what the overall fraction is counted over."""
    with ws.db.read_session() as session:
        asset = queries.find_asset(session, asset_id)
        return [stage.name for stage in all_stages() if stage.applies_to(asset)] + ["report"]


class Worker:
    """Claims and runs jobs one at a time; ``run`` loops until ``stop`` is set."""

    def __init__(self, ws: Workspace, *, name: str | None = None) -> None:
        self.ws = ws
        self.worker_id = name or worker_id()
        self.settings = ws.settings.jobs

    def run_once(self) -> bool:
        """Claim one job and run it to the end; False when the queue had nothing to claim."""
        job = self.claim()
        if job is None:
            return False
        self.execute(job)
        return True

    def claim(self) -> Job | None:
        return jobqueue.claim(self.ws.db, self.worker_id, lease_s=self.settings.lease_s,
                              max_attempts=self.settings.max_attempts)

    def run(self, stop: threading.Event, hurry: threading.Event | None = None, *, until_empty: bool = False) -> bool:
        """Poll and run jobs until ``stop`` (or, with ``until_empty``, until the queue is empty); on ``stop`` the
        running job gets ``jobs.stop_grace_s`` (cut short by ``hurry``) before it is handed back to the queue.

        True when a job was handed back: its run still goes on in a daemon thread, and the caller should end the
        process rather than let it finish."""
        hurry = hurry or threading.Event()
        while not stop.is_set():
            try:
                job = self.claim()
            except Exception:  # a database hiccup must not kill the loop: log it and poll again
                log.exception("worker %s could not claim a job", self.worker_id)
                job = None
            if job is None:
                if until_empty:
                    break
                stop.wait(self.settings.poll_interval_s)
                continue
            runner = threading.Thread(target=self.execute, args=(job,), name=f"job-{job.job_id[:8]}", daemon=True)
            runner.start()
            while runner.is_alive() and not stop.is_set():
                runner.join(0.2)
            deadline = time.monotonic() + self.settings.stop_grace_s
            while runner.is_alive() and not hurry.is_set() and time.monotonic() < deadline:
                runner.join(0.2)
            if runner.is_alive():
                jobqueue.release(self.ws.db, job.job_id, self.worker_id, f"worker {self.worker_id} stopped")
                log.warning("job %s handed back to the queue: worker %s stopped", job.job_id, self.worker_id)
                return True
        return False

    def execute(self, job: Job) -> None:
        """Run the claimed job as the actor who requested it; record done or failed (with the error's type)."""
        custody = self.ws.settings.custody
        # a run of the same asset by a worker that died holds the analysis lease until it expires: wait for that
        settings = self.ws.settings.model_copy(update={"actor": job.requested_by, "custody": custody.model_copy(
            update={"lease_wait_s": max(custody.lease_wait_s, custody.lease_ttl_s)})})
        ws = replace(self.ws, settings=settings)
        log.info("job %s (asset %s, attempt %d) claimed by %s", job.job_id, job.asset_id, job.attempts,
                 self.worker_id)
        try:
            tracker = ProgressTracker(expected_phases(ws, job.asset_id))
            with self._heartbeat(job, tracker), watchdog.before_exit(functools.partial(self._on_process_end, job)):
                outcome = run_analysis(ws, job.asset_id, force=job.force, progress=tracker, report=True)
        except BusyError as exc:  # another live run holds the asset: try again later, a bounded number of times
            if job.attempts < self.settings.max_attempts:
                log.info("job %s re-queued: %s", job.job_id, exc)
                jobqueue.release(self.ws.db, job.job_id, self.worker_id, str(exc))
                return
            jobqueue.finish(self.ws.db, job.job_id, self.worker_id, error=exc)
            return
        except Exception as exc:
            log.warning("job %s failed: %s: %s", job.job_id, type(exc).__name__, exc)
            jobqueue.finish(self.ws.db, job.job_id, self.worker_id, error=exc)
            return
        jobqueue.finish(self.ws.db, job.job_id, self.worker_id, failed_stages=dict(outcome.run.failed),
                        report_id=outcome.report.report_id if outcome.report else None)
        log.info("job %s done", job.job_id)

    def _on_process_end(self, job: Job, overrun: watchdog.Overrun) -> None:
        """The watchdog ends this process: the job whose stage hung fails for good with the typed limit (its
        re-run would find the stage's ``limit_exceeded`` result standing); any other job goes back to the queue."""
        if overrun.asset_id == job.asset_id:
            error = overrun.error()
            jobqueue.finish(self.ws.db, job.job_id, self.worker_id, error=error,
                            failed_stages={overrun.stage: f"{type(error).__name__}: {error}"})
        else:
            jobqueue.release(self.ws.db, job.job_id, self.worker_id,
                             f"worker {self.worker_id} ended by the watchdog (stage {overrun.stage} hung)")

    @contextlib.contextmanager
    def _heartbeat(self, job: Job, tracker: ProgressTracker) -> Iterator[None]:
        """Renew the job's lease every third of it and write new progress at most every progress interval."""
        stop = threading.Event()
        tick = min(self.settings.lease_s / 3, max(self.settings.progress_interval_s, 0.05))
        beats_per_renewal = max(1, round(self.settings.lease_s / 3 / tick))

        def beat() -> None:
            written, count = -1, 0
            while not stop.wait(tick):
                count += 1
                if tracker.version == written and count % beats_per_renewal:
                    continue
                written = tracker.version
                try:
                    if not jobqueue.heartbeat(self.ws.db, job.job_id, self.worker_id, lease_s=self.settings.lease_s,
                                              progress=tracker.snapshot()):
                        log.warning("job %s is no longer held by worker %s", job.job_id, self.worker_id)
                        return
                except Exception:  # a missed beat only shortens the lease
                    log.exception("heartbeat of job %s failed", job.job_id)

        thread = threading.Thread(target=beat, name=f"heartbeat-{job.job_id[:8]}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            jobqueue.heartbeat(self.ws.db, job.job_id, self.worker_id, lease_s=self.settings.lease_s,
                               progress=tracker.snapshot())
