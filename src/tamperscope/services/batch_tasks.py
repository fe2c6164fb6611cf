"""The worker side of a batch: the task functions a file's graph runs, the graph's plan, and what they hand on.

A file's graph is ``ingest`` (hash, skip when current, intake, begin the analysis) -> a task per group of stages
(:func:`stage_tasks`: the stages sharing the video stage's single decode in one ``decode`` task, every other stage in
its own, each after the tasks its stages require and the one before it, as they take turns on the asset's lease) ->
``finish`` (the asset's status, the file's outcome). Every stage task calls the runner
(:func:`~tamperscope.pipeline.runner.analyze_asset` with its stages), so the lease, fingerprints, budgets and audit
events stay there; each task caps its worker's native threads, opens the worker's workspace, commits to the shared
database and object store itself, and returns plain data (:class:`AssetState`, :class:`FileResult`) that travels
to the next task or to the client. Kept apart from the client (:mod:`tamperscope.services.batch`), which only plans,
submits, follows and collects.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import functools
import graphlib
import itertools
import os
import resource
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
from sqlalchemy import select
from threadpoolctl import threadpool_limits

from tamperscope.custody.hashing import sha256_file
from tamperscope.custody.intake import IntakeRecord, ingest_path
from tamperscope.errors import InputRejectedError, TamperscopeError, UsageError, exit_code_for
from tamperscope.media.video_reader import set_max_threads
from tamperscope.nativelog import silence_native_stderr_for_process
from tamperscope.pipeline.registry import all_stages, check_known
from tamperscope.pipeline.runner import RunResult, analyze_asset, begin_analysis, finish_analysis, stages_to_run
from tamperscope.records import AssetStatus
from tamperscope.services.analysis import summarize
from tamperscope.settings import Settings
from tamperscope.stages.base import Stage
from tamperscope.store.models import Asset
from tamperscope.store.queries import stage_runs
from tamperscope.workspace import Workspace

#: what became of one file: analysed now, already current (skipped), rejected at intake or by a stage, failed
STATUSES = ("analyzed", "current", "rejected", "failed")


@dataclass
class TaskRun:
    """One task of a file's graph as it ran: which, in which process, its wall time, and that process's CPU time
    (with the tools it ran; its other tasks' included) and peak resident memory."""

    task: str
    worker: str
    seconds: float
    cpu_s: float
    peak_rss_mb: float


@dataclass
class FileResult:
    """The outcome of one file of a batch, as plain data (it travels from a worker to the client): ``seconds`` and
    ``cpu_s`` add up its graph's tasks, and ``worker`` is the process of its longest task."""

    path: str
    status: str
    asset_id: str | None = None
    ran: list[str] = field(default_factory=list)
    verdict: dict[str, Any] | None = None
    error_type: str | None = None  # the typed error (class name, or StageFailed) when rejected or failed
    reason: str | None = None  # the reject reason, or the failed stages with their errors
    exit_code: int = 0  # what `analyze` would exit with for this file alone
    seconds: float = 0.0
    worker: str | None = None  # pid@host of the process that ran its longest task
    peak_rss_mb: float | None = None  # that process's peak resident memory so far
    cpu_s: float = 0.0  # CPU time of the processes running its tasks and their tools (their other tasks' included)
    tasks: list[TaskRun] = field(default_factory=list)  # the tasks of its graph that ran it


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
    environment for libraries loaded from now on (a local cluster's workers start with it,
    :func:`~tamperscope.services.batch.dask_client`).
    Stages and ONNX Runtime sessions take theirs from :func:`worker_settings`.
    """
    os.environ.update(thread_env(threads))
    threadpool_limits(limits=threads)
    cv2.setNumThreads(threads)
    set_max_threads(threads)


#: glibc ``mallopt`` parameters, and a worker's values: arrays up to 32 MiB (a decoded 4K frame is 24 MiB) come from
#: the heap, and free memory goes back to the system once 64 MiB of it lie at the heap's top (the ceiling of glibc's
#: own dynamic thresholds, which a process started without such a variable raises as it frees large arrays; 16 MiB
#: instead of 64 kept 20 % less memory but cost 12 % more CPU per file)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
WORKER_MALLOC = {M_MMAP_THRESHOLD: 32 << 20, M_TRIM_THRESHOLD: 64 << 20}


@functools.cache
def tune_allocator() -> bool:
    """Set this process's glibc malloc thresholds to :data:`WORKER_MALLOC` (once; False where libc has no
    ``mallopt``).

    A Dask nanny starts its workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which also pins glibc's mmap threshold at
    128 KiB: every frame-sized array was then mapped, faulted in page by page and unmapped again, three times the page
    faults and about 15 % more CPU per file (see ``bench/batch.py``). Set at run time so that workers of any cluster,
    local or given, get it.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        return all(libc.mallopt(param, value) == 1 for param, value in WORKER_MALLOC.items())
    except (OSError, AttributeError):
        return False


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


class _Task:
    """What every task of a batch does around its work: caps the process's native threads (a worker with a process
    of its own, not a thread cluster's caller), opens the worker's workspace, publishes progress events to the
    client and measures itself."""

    def __init__(self, settings: Settings, name: str, path: str, topic: str | None) -> None:
        self.name, self.path = name, path
        self.started, self.cpu_started = time.monotonic(), _cpu_seconds()
        if settings.batch.processes or settings.batch.scheduler:
            limit_threads(settings.batch.threads_per_worker)
            tune_allocator()
        if settings.batch.quiet_native_logs:
            silence_native_stderr_for_process()
        self.ws = _worker_workspace(settings)
        self.publish = _publisher(topic)
        self.worker, _ = _process()
        self.stages_seen: set[str] = set()

    def started_file(self) -> None:
        self.publish({"kind": "started", "path": self.path, "process": self.worker})

    def on_progress(self, phase: str, _fraction: float = 0.0, _message: str = "") -> None:
        """The runner's progress callback: one ``stage`` event when a stage (or the intake) starts."""
        if phase not in self.stages_seen:
            self.stages_seen.add(phase)
            self.publish({"kind": "stage", "path": self.path, "stage": phase, "process": self.worker})

    def measured(self) -> TaskRun:
        worker, peak_rss_mb = _process()
        return TaskRun(task=self.name, worker=worker, seconds=time.monotonic() - self.started,
                       cpu_s=_cpu_seconds() - self.cpu_started, peak_rss_mb=peak_rss_mb)


def _typed_outcome(path: str, exc: TamperscopeError, asset_id: str | None = None) -> FileResult:
    """A file stopped by a typed error: ``rejected`` for a refused input, else ``failed``, with its exit code."""
    if isinstance(exc, InputRejectedError):
        return FileResult(path=path, status="rejected", asset_id=exc.asset_id or asset_id,
                          error_type=type(exc).__name__, reason=exc.reason.value, exit_code=exit_code_for(exc))
    return FileResult(path=path, status="failed", asset_id=asset_id, error_type=type(exc).__name__, reason=str(exc),
                      exit_code=exit_code_for(exc))


def _analysed(path: str, run: RunResult, verdict: dict[str, Any] | None) -> FileResult:
    """A file whose stages ran: ``analyzed``, or ``failed``/``rejected`` (exit 1/3) naming the stages that failed."""
    result = FileResult(path=path, status="analyzed", asset_id=run.asset_id, ran=list(run.ran), verdict=verdict)
    if run.failed:
        result.status = "rejected" if run.rejected else "failed"
        result.error_type = "StageRejected" if run.rejected else "StageFailed"
        result.reason = "; ".join(f"{stage}: {error}" for stage, error in run.failed.items())
        result.exit_code = 3 if run.rejected else 1
    return result


def _timed(result: FileResult, runs: list[TaskRun]) -> FileResult:
    """``result`` with the tasks that ran it: their summed time and CPU, and the process of the longest."""
    result.tasks = runs
    result.seconds, result.cpu_s = sum(r.seconds for r in runs), sum(r.cpu_s for r in runs)
    if runs:
        longest = max(runs, key=lambda r: r.seconds)
        result.worker, result.peak_rss_mb = longest.worker, longest.peak_rss_mb
    return result


#: the stages that read what the video stage's single decode pass leaves in the analysis's media session (the still
#: image, the dense pass's frames, the audio track, see :mod:`tamperscope.media.session`): they run in one task,
#: so a file is decoded once; a stage that reads only stored rows or the raw bytes gets a task of its own
SHARED_DECODE = ("video", "forensics", "temporal", "avsync")
DECODE_TASK = "decode"


@dataclass(frozen=True)
class StageTask:
    """One stage task of a file's graph: its name, the stages it runs (in one media session) and the tasks it
    follows."""

    name: str
    stages: tuple[str, ...]
    after: tuple[str, ...] = ()


def stage_tasks(stages: list[Stage], only: list[str] | None = None) -> list[StageTask]:
    """The stage tasks of a file's graph, in the order they run: the stages of :data:`SHARED_DECODE` in one task
    named ``decode``, every other stage (of ``only``, when given) in its own.

    A task follows every task that runs a stage its stages require, directly or through others (so one left out by
    ``only`` does not cut the order), and the task before it: each task holds the asset's analysis lease while it
    runs, so two tasks of one file never run at once, and a task that had to wait for the lease would hold a
    worker idle meanwhile; ordering them in the graph leaves the worker to another file's tasks instead."""
    names = {s.name for s in stages}
    check_known(only, names)
    task_of = {s.name: DECODE_TASK if s.name in SHARED_DECODE else s.name for s in stages}
    requires = {s.name: set(s.requires) & names for s in stages}
    members: dict[str, list[str]] = {}
    for stage in stages:
        if not only or stage.name in only:
            members.setdefault(task_of[stage.name], []).append(stage.name)

    def upstream(name: str) -> set[str]:
        direct = requires[name]
        return direct.union(*(upstream(d) for d in direct))

    position = {task: i for i, task in enumerate(members)}  # the registry's (pipeline) order
    after = {task: {task_of[d] for m in group for d in upstream(m)} & set(members) - {task}
             for task, group in members.items()}
    sorter = graphlib.TopologicalSorter(after)
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        raise UsageError(f"the stages sharing the decode cannot run in one task: {exc.args[1]}") from exc
    order: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=position.__getitem__)
        order += ready
        sorter.done(*ready)
    for previous, task in itertools.pairwise(order):
        after[task].add(previous)
    return [StageTask(task, tuple(members[task]), tuple(sorted(after[task], key=order.index))) for task in order]


@dataclass
class AssetState:
    """What a task of a file's graph hands on: the asset, the outcomes of the stages it ran, the file's outcome
    once it is decided early (current, rejected, a typed error: the tasks after it then run nothing), and how the
    task ran."""

    path: str
    asset_id: str | None = None
    run: RunResult | None = None
    outcome: FileResult | None = None
    task: TaskRun | None = None


def _decided(states: tuple[AssetState, ...]) -> FileResult | None:
    return next((s.outcome for s in states if s.outcome is not None), None)


def ingest_task(settings: Settings, path: str, *, only: list[str] | None = None, force: bool = False,
                topic: str | None = None) -> AssetState:
    """The first task of a file's graph: skip the file when its asset is current, else ingest it and begin its
    analysis (:func:`~tamperscope.pipeline.runner.begin_analysis`)."""
    task = _Task(settings, "ingest", path, topic)
    task.started_file()
    state = AssetState(path=path)
    try:
        sha256, _ = sha256_file(path)
        state.asset_id = None if force else current_asset(task.ws, sha256, only)
        if state.asset_id is not None:
            state.outcome = FileResult(path=path, status="current", asset_id=state.asset_id)
        else:
            task.on_progress("ingest")
            source = Path(path)
            intake = ingest_path(task.ws, source, IntakeRecord(original_name=source.name, source=str(source.resolve())))
            state.asset_id = begin_analysis(task.ws, intake.asset_id, only=only, force=force)
    except TamperscopeError as exc:
        state.outcome = _typed_outcome(path, exc, state.asset_id)
    state.task = task.measured()
    return state


def stage_task(settings: Settings, name: str, stages: tuple[str, ...], ingest: AssetState, *after: AssetState,
               force: bool = False, topic: str | None = None) -> AssetState:
    """A stage task of a file's graph: run its stages that are not current through the runner, as a part of the
    analysis the ingest began, after the tasks ``after`` (a stage whose requirement failed there is skipped as
    failed). Nothing runs when an earlier task decided the file's outcome."""
    decided = _decided((ingest, *after))
    if decided is not None:
        return AssetState(path=ingest.path, asset_id=ingest.asset_id, outcome=decided)
    assert ingest.asset_id is not None
    task = _Task(settings, name, ingest.path, topic)
    state = AssetState(path=ingest.path, asset_id=ingest.asset_id)
    prior = RunResult.merged(ingest.asset_id, [s.run for s in after if s.run is not None])
    try:
        state.run = analyze_asset(task.ws, ingest.asset_id, only=list(stages), force=force,
                                  progress=task.on_progress, part_of=prior)
    except TamperscopeError as exc:
        state.outcome = _typed_outcome(ingest.path, exc, ingest.asset_id)
    state.task = task.measured()
    return state


def finish_task(settings: Settings, ingest: AssetState, *parts: AssetState, topic: str | None = None) -> FileResult:
    """The last task of a file's graph: finish the analysis (the asset's status from every part's outcomes and
    ``analysis.finished``, :func:`~tamperscope.pipeline.runner.finish_analysis`) and return the file's outcome with
    the tasks that ran it."""
    runs = [s.task for s in (ingest, *parts) if s.task is not None]
    decided = _decided((ingest, *parts))
    if decided is not None:
        return _timed(dataclasses.replace(decided), runs)
    assert ingest.asset_id is not None
    task = _Task(settings, "finish", ingest.path, topic)
    merged = RunResult.merged(ingest.asset_id, [p.run for p in parts if p.run is not None])
    try:
        finish_analysis(task.ws, merged)
        result = _analysed(ingest.path, merged, summarize(task.ws, merged.asset_id).verdict)
    except TamperscopeError as exc:
        result = _typed_outcome(ingest.path, exc, ingest.asset_id)
    return _timed(result, [*runs, task.measured()])
