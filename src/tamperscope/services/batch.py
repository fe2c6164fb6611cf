"""Batch analysis on Dask: many files, one task each, on a local cluster or a given scheduler.

Every task calls the one analysis service (:func:`~tamperscope.services.analysis.run_analysis`) in a worker, which
commits to the shared database and object store itself; the client only submits, follows and collects. A file
whose asset is already current is skipped before intake (so re-running a batch resumes it), a file that fails is
returned with its typed reason and never stops the others, and a worker that dies has its task re-run by Dask
(the analysis lease of the dead run is stale, so the re-run recovers it).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import resource
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
from sqlalchemy import select
from threadpoolctl import threadpool_limits

from tamperscope.custody.hashing import sha256_file
from tamperscope.custody.intake import IntakeRecord
from tamperscope.errors import InputRejectedError, PathNotFoundError, TamperscopeError, exit_code_for
from tamperscope.media.video_reader import set_max_threads
from tamperscope.nativelog import silence_native_stderr_for_process
from tamperscope.pipeline.registry import all_stages
from tamperscope.pipeline.runner import stages_to_run
from tamperscope.records import AssetStatus
from tamperscope.services.analysis import run_analysis
from tamperscope.settings import BatchSettings, Settings
from tamperscope.store.models import Asset
from tamperscope.store.queries import stage_runs
from tamperscope.workspace import Workspace

#: what became of one file: analysed now, already current (skipped), rejected at intake or by a stage, failed
STATUSES = ("analyzed", "current", "rejected", "failed")


@dataclass
class FileResult:
    """The outcome of one file of a batch, as plain data (it travels from a worker to the client)."""

    path: str
    status: str
    asset_id: str | None = None
    ran: list[str] = field(default_factory=list)
    verdict: dict[str, Any] | None = None
    error_type: str | None = None  # the typed error (class name, or StageFailed) when rejected or failed
    reason: str | None = None  # the reject reason, or the failed stages with their errors
    exit_code: int = 0  # what `analyze` would exit with for this file alone
    seconds: float = 0.0
    worker: str | None = None  # pid@host of the process that ran it
    peak_rss_mb: float | None = None  # that process's peak resident memory so far
    cpu_s: float = 0.0  # CPU time of that process and the tools it ran, over the task (its other tasks' included)


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


def worker_settings(settings: Settings) -> Settings:
    """The settings a batch worker runs with: its stage and ONNX Runtime threads are the worker's Dask threads (so a
    worker uses about that many cores), and it waits for a live run of the same asset (a duplicate file) to end."""
    batch = settings.batch
    return settings.model_copy(update={
        "workers": batch.threads_per_worker,
        "models": settings.models.model_copy(update={"threads": batch.threads_per_worker}),
        "custody": settings.custody.model_copy(
            update={"lease_wait_s": max(settings.custody.lease_wait_s, batch.lease_wait_s)}),
    })


#: variables sizing the BLAS/OpenMP pools, read when such a library loads (NumPy's loads with Dask, before any task)
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def thread_env(threads: int) -> dict[str, str]:
    """The environment that sizes BLAS/OpenMP pools at ``threads`` in a process started with it."""
    return dict.fromkeys(THREAD_ENV, str(threads))


def limit_threads(threads: int) -> None:
    """Cap this process's native thread pools at ``threads``, so a worker uses about its share of the cores.

    OpenCV's pool and the video decoder's and filter graphs' threads at once; BLAS/OpenMP pools already loaded
    through threadpoolctl (a worker of a given scheduler loaded NumPy's before any task), and through the
    environment for libraries loaded from now on (a local cluster's workers start with it, :func:`dask_client`).
    Stages and ONNX Runtime sessions take theirs from :func:`worker_settings`.
    """
    os.environ.update(thread_env(threads))
    threadpool_limits(limits=threads)
    cv2.setNumThreads(threads)
    set_max_threads(threads)


_workspaces: dict[str, Workspace] = {}
_workspaces_lock = threading.Lock()


def _worker_workspace(settings: Settings) -> Workspace:
    """One open workspace per worker process and settings (the client migrated the database already)."""
    key = settings.model_dump_json()
    with _workspaces_lock:
        if key not in _workspaces:
            _workspaces[key] = Workspace.open(settings, upgrade=False)
        return _workspaces[key]


def current_asset(ws: Workspace, sha256: str, only: list[str] | None = None) -> str | None:
    """The id of the asset holding these bytes when its analysis is current (nothing would run), else None."""
    with ws.db.read_session() as session:
        asset = session.execute(select(Asset).where(Asset.sha256 == sha256)).scalar_one_or_none()
        if asset is None or asset.status != AssetStatus.ANALYZED:
            return None
        previous = {run.stage: run for run in stage_runs(session, asset.asset_id)}
        return None if stages_to_run(previous, all_stages(), ws.settings, only=only) else asset.asset_id


def _cpu_seconds() -> float:
    """CPU time of this process (all threads) and of its finished child processes (ffprobe, ExifTool)."""
    user, system, children_user, children_system, _ = os.times()
    return user + system + children_user + children_system


def _process() -> tuple[str, float]:
    """This process as pid@host, and its peak resident memory in MiB (Linux reports KiB)."""
    return f"{os.getpid()}@{socket.gethostname()}", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _publisher(topic: str | None) -> Callable[[dict[str, Any]], None]:
    """Send progress events to the client through the scheduler's event log (a no-op outside a Dask worker)."""
    if topic is None:
        return lambda _msg: None
    from distributed import get_worker

    try:
        worker = get_worker()
    except ValueError:
        return lambda _msg: None
    return lambda msg: worker.log_event(topic, msg)


def analyze_file(settings: Settings, path: str, *, only: list[str] | None = None, force: bool = False,
                 topic: str | None = None) -> FileResult:
    """The task of one file: skip it when its asset is current, else ingest and analyse it with the analysis service.

    Typed errors (rejected input, a failing stage, a busy asset) become the result; anything else is raised so Dask
    retries the task. A worker with a process of its own caps its native threads (not a thread cluster's caller).
    """
    started, cpu_started = time.monotonic(), _cpu_seconds()
    if settings.batch.processes or settings.batch.scheduler:
        limit_threads(settings.batch.threads_per_worker)
    if settings.batch.quiet_native_logs:
        silence_native_stderr_for_process()
    ws = _worker_workspace(settings)
    publish = _publisher(topic)
    worker, _ = _process()
    publish({"kind": "started", "path": path, "process": worker})
    stage_seen: set[str] = set()

    def on_progress(phase: str, _fraction: float, _message: str) -> None:
        if phase not in stage_seen:
            stage_seen.add(phase)
            publish({"kind": "stage", "path": path, "stage": phase, "process": worker})

    def done(result: FileResult) -> FileResult:
        result.seconds, result.cpu_s = time.monotonic() - started, _cpu_seconds() - cpu_started
        result.worker, result.peak_rss_mb = _process()
        return result

    try:
        sha256, _ = sha256_file(path)
        asset_id = None if force else current_asset(ws, sha256, only)
        if asset_id is not None:
            return done(FileResult(path=path, status="current", asset_id=asset_id))
        source = Path(path)
        outcome = run_analysis(ws, source, record=IntakeRecord(original_name=source.name,
                                                               source=str(source.resolve())),
                               only=only, force=force, progress=on_progress)
    except InputRejectedError as exc:
        return done(FileResult(path=path, status="rejected", asset_id=exc.asset_id, error_type=type(exc).__name__,
                               reason=exc.reason.value, exit_code=exit_code_for(exc)))
    except TamperscopeError as exc:
        return done(FileResult(path=path, status="failed", error_type=type(exc).__name__, reason=str(exc),
                               exit_code=exit_code_for(exc)))
    run, summary = outcome.run, outcome.summary
    result = FileResult(path=path, status="analyzed", asset_id=run.asset_id, ran=list(run.ran),
                        verdict=summary.verdict)
    if run.failed:
        result.status = "rejected" if run.rejected else "failed"
        result.error_type = "StageRejected" if run.rejected else "StageFailed"
        result.reason = "; ".join(f"{stage}: {error}" for stage, error in run.failed.items())
        result.exit_code = 3 if run.rejected else 1
    return done(result)


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
    with dask.config.set({"distributed.nanny.pre-spawn-environ": spawn_env}):
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
    """Analyse ``files`` in parallel on Dask (``settings.batch``), one task per file; return every outcome.

    ``on_event`` hears ``cluster`` (once: ``path`` is the dashboard address, ``worker`` the worker count),
    ``started`` and ``stage`` (from the workers, on a client thread) and ``finished`` (on this thread) events.
    """
    from distributed import as_completed

    def tell(event: BatchEvent) -> None:
        if on_event is not None:
            on_event(event)

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
        futures = {client.submit(analyze_file, task_settings, absolute, only=only, force=force, topic=topic,
                                 key=f"analyze-{topic[-8:]}-{index}", retries=settings.batch.retries): path
                   for index, (absolute, path) in enumerate(given.items())}
        for future in as_completed(futures):
            path = futures[future]
            try:
                result = future.result()
                result.path = path
            except Exception as exc:  # retries spent, or the task's workers kept dying (KilledWorker)
                result = FileResult(path=path, status="failed", error_type=type(exc).__name__, reason=str(exc),
                                    exit_code=1)
            results[path] = result
            tell(BatchEvent(kind="finished", path=path, worker=result.worker, result=result))
        client.unsubscribe_topic(topic)
    return BatchResult(results=[results[path] for path in given.values()], seconds=time.monotonic() - started,
                       workers=workers, dashboard=dashboard)
