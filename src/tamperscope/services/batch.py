"""Batch analysis on Dask, the client side: many files, each a small task graph of its stages, on a local cluster or
a given scheduler.

The client plans each file's graph (:func:`~tamperscope.services.batch_tasks.stage_tasks`), submits it, follows the
workers' progress events and collects the outcomes; the tasks themselves, which run the stages through the runner and
commit to the shared database and object store, are in :mod:`tamperscope.services.batch_tasks`. A file whose asset is
already current is skipped before intake (so re-running a batch resumes it), a file that fails is returned with its
typed reason and never stops the others, and a worker that dies has its running task re-run by Dask (the analysis
lease of the dead run is stale, so the re-run recovers it; stages committed before are current and not run again).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tamperscope.errors import PathNotFoundError
from tamperscope.pipeline.registry import all_stages
from tamperscope.services.batch_tasks import (
    FileResult,
    StageTask,
    finish_task,
    ingest_task,
    stage_task,
    stage_tasks,
    thread_env,
    worker_settings,
)
from tamperscope.settings import BatchSettings, Settings
from tamperscope.workspace import Workspace


@dataclass
class BatchEvent:
    """Progress of a batch: a file ``started`` or entered a ``stage`` on a worker, or ``finished``."""

    kind: str
    path: str
    stage: str | None = None
    worker: str | None = None
    result: FileResult | None = None
    note: str | None = None


EventCallback = Callable[[BatchEvent], None]


@dataclass
class BatchResult:
    """All files' outcomes in input order, the wall time, and the cluster that ran them."""

    results: list[FileResult]
    seconds: float
    workers: int
    dashboard: str | None = None

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def exit_code(self) -> int:
        """0 when every file is analysed or current; the files' shared exit code when they agree (3: rejected
        inputs, 5: busy), else 1."""
        codes = {r.exit_code for r in self.results if r.exit_code}
        return codes.pop() if len(codes) == 1 else (1 if codes else 0)


def collect_files(paths: list[Path]) -> list[Path]:
    """The files named by ``paths``: files as given, folders recursed (sorted), each file once (by its real path)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            raise PathNotFoundError(str(path))
    unique: dict[Path, Path] = {}
    for path in files:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


def _submit_file(client: Any, settings: Settings, plan: list[StageTask], path: str, label: str, *,
                 only: list[str] | None, force: bool, topic: str) -> Any:
    """Submit one file's graph (keys ``<task>-<label>``); return the future of its ``finish`` task (the client
    holds no other, so Dask releases each task's result once the tasks after it have it)."""
    retries = settings.batch.retries
    ingest = client.submit(ingest_task, settings, path, only=only, force=force, topic=topic, key=f"ingest-{label}",
                           retries=retries)
    parts: dict[str, Any] = {}
    for task in plan:
        parts[task.name] = client.submit(stage_task, settings, task.name, task.stages, ingest,
                                         *(parts[a] for a in task.after), force=force, topic=topic,
                                         key=f"{task.name}-{label}", retries=retries)
    return client.submit(finish_task, settings, ingest, *parts.values(), topic=topic, key=f"finish-{label}",
                         retries=retries)


def dashboard_served() -> bool:
    """Whether a local cluster started here can serve the Dask dashboard (it needs bokeh)."""
    return importlib.util.find_spec("bokeh") is not None


@contextlib.contextmanager
def dask_client(batch: BatchSettings) -> Iterator[Any]:
    """A client of the scheduler ``batch.scheduler`` names, or of a local cluster started (and stopped) here."""
    import dask
    from distributed import Client, LocalCluster

    # worker processes get the BLAS/OpenMP sizes before they start (Dask's default is 1; this sets our share)
    spawn_env = {**dask.config.get("distributed.nanny.pre-spawn-environ"), **thread_env(batch.threads_per_worker)}
    # the nannies hand this configuration to the workers they start
    with dask.config.set({"distributed.nanny.pre-spawn-environ": spawn_env,
                          "distributed.worker.profile.enabled": batch.worker_profiler}):
        cluster = None if batch.scheduler else LocalCluster(
            n_workers=batch.workers or os.cpu_count() or 1, threads_per_worker=batch.threads_per_worker,
            processes=batch.processes, memory_limit=batch.memory_limit, dashboard_address=batch.dashboard_address,
            silence_logs=logging.ERROR)
    client = Client(batch.scheduler or cluster)
    try:
        yield client
    finally:
        # On a loaded machine a worker may take longer than Dask's 5 s to stop (it is then killed) and the close
        # times out: the results are in hand by then, so that must not turn a finished batch into an error.
        with contextlib.suppress(TimeoutError):
            client.close()
        if cluster is not None:
            with contextlib.suppress(TimeoutError):
                cluster.close()


def run_batch(settings: Settings, files: list[Path], *, only: list[str] | None = None, force: bool = False,
              on_event: EventCallback | None = None) -> BatchResult:
    """Analyse ``files`` in parallel on Dask (``settings.batch``), each a task graph of its stages; return every
    outcome.

    ``on_event`` hears ``cluster`` (once: ``path`` is the dashboard address, ``worker`` the worker count),
    ``started`` and ``stage`` (from the workers, on a client thread) and ``finished`` (on this thread) events.
    An unknown stage in ``only`` raises :class:`UsageError` before anything starts.
    """
    from distributed import as_completed

    def tell(event: BatchEvent) -> None:
        if on_event is not None:
            on_event(event)

    plan = stage_tasks(all_stages(), only)
    Workspace.open(settings).close()  # migrate once here, before the workers open the database
    started = time.monotonic()
    topic = f"tamperscope-batch-{uuid.uuid4().hex}"
    task_settings = worker_settings(settings)
    results: dict[str, FileResult] = {}
    with dask_client(settings.batch) as client:
        workers, dashboard = len(client.scheduler_info().get("workers", {})), client.dashboard_link
        unserved = settings.batch.scheduler is None and not dashboard_served()
        tell(BatchEvent(kind="cluster", path=dashboard, worker=f"{workers} workers",
                        note="not served: install bokeh to see it" if unserved else None))

        # workers get absolute paths (their working directory may differ); events and results name files as given
        given = {str(path.resolve()): str(path) for path in files}

        def on_worker_event(event: tuple[float, dict[str, Any]]) -> None:
            msg = event[1]
            tell(BatchEvent(kind=msg["kind"], path=given.get(msg["path"], msg["path"]), stage=msg.get("stage"),
                            worker=msg.get("process")))

        client.subscribe_topic(topic, on_worker_event)
        futures = {_submit_file(client, task_settings, plan, absolute, f"{topic[-8:]}-{index}", only=only,
                                force=force, topic=topic): path
                   for index, (absolute, path) in enumerate(given.items())}
        for future in as_completed(futures):
            path = futures[future]
            try:
                result = future.result()
                result.path = path
            except Exception as exc:  # retries spent, or a task's workers kept dying (KilledWorker)
                result = FileResult(path=path, status="failed", error_type=type(exc).__name__, reason=str(exc),
                                    exit_code=1)
            results[path] = result
            tell(BatchEvent(kind="finished", path=path, worker=result.worker, result=result))
        client.unsubscribe_topic(topic)
    return BatchResult(results=[results[path] for path in given.values()], seconds=time.monotonic() - started,
                       workers=workers, dashboard=dashboard)
