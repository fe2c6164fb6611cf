"""Batch analysis on Dask: every file a task graph of its stages, analysed once by the workers through the runner, a
malformed file or a failing stage listed with its typed reason, the stored rows of a sequential run, a re-run that
skips what is current, a worker killed mid-batch and a stage the watchdog ends."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import pytest
from distributed.diagnostics.plugin import SchedulerPlugin
from sqlalchemy import func, select
from threadpoolctl import threadpool_info, threadpool_limits

from tamperscope.custody.intake import IntakeRecord
from tamperscope.custody.verify import verify
from tamperscope.errors import BusyError, InputRejectedError, UsageError
from tamperscope.media import session as media_session
from tamperscope.media import video_reader
from tamperscope.media.video_reader import VideoReader, set_max_threads
from tamperscope.pipeline import registry
from tamperscope.pipeline.registry import all_stages
from tamperscope.pipeline.runner import RunResult
from tamperscope.samples import demo as samples
from tamperscope.services import batch, batch_tasks
from tamperscope.services.analysis import run_analysis
from tamperscope.services.batch import BatchEvent, BatchResult, collect_files, run_batch
from tamperscope.services.batch_tasks import FileResult
from tamperscope.settings import BatchSettings, LimitSettings, Settings
from tamperscope.store import queries
from tamperscope.store.models import AnalysisLease, Asset, AuditEvent, Detection, Frame, Shot, StageRun, Window
from tamperscope.workspace import Workspace
from tests.conftest import ffmpeg
from tests.services import batch_stages


def _video(path: Path, pattern: str, seconds: float) -> Path:
    ffmpeg("-f", "lavfi", "-i", f"{pattern}=size=320x240:rate=25:duration={seconds}", "-f", "lavfi", "-i",
           f"sine=frequency=440:duration={seconds}", "-shortest", "-c:v", "libx264", "-pix_fmt", "yuv420p",
           "-c:a", "aac", str(path))
    return path


@pytest.fixture
def case_folder(tmp_path: Path, small_video: Path) -> Path:
    """A case folder with a nested subfolder: a lavfi video, a synthetic camera JPEG and a truncated MP4."""
    folder = tmp_path / "case"
    (folder / "photos").mkdir(parents=True)
    (folder / "clip.mp4").write_bytes(small_video.read_bytes())
    samples.camera_like_jpeg(folder / "photos" / "camera.jpg")
    (folder / "photos" / "broken.mp4").write_bytes(small_video.read_bytes()[:3000])
    return folder


def _settings(tmp_path: Path, **batch: object) -> Settings:
    return Settings(home=tmp_path / "home", actor="tester", batch=BatchSettings(workers=2, **batch))


def _stage_commits(ws: Workspace) -> Counter[tuple[str | None, str]]:
    """How many times each (asset, stage) committed a result, from the audit log."""
    with ws.db.read_session() as session:
        return Counter((e.asset_id, e.details_json["stage"]) for e in queries.audit_events(session)
                       if e.action in ("stage.done", "stage.not_applicable"))


def test_collect_files_recurses_folders_in_order_and_names_each_file_once(case_folder: Path) -> None:
    clip = case_folder / "clip.mp4"
    files = collect_files([case_folder, clip, case_folder / "photos" / ".." / "clip.mp4"])
    assert files == [clip, case_folder / "photos" / "broken.mp4", case_folder / "photos" / "camera.jpg"]


def test_batch_exit_code_is_the_files_shared_code_or_1() -> None:
    def batch(*codes: int) -> BatchResult:
        return BatchResult([FileResult(path=str(i), status="x", exit_code=c) for i, c in enumerate(codes)], 1.0, 2)

    assert (batch(0, 0).exit_code, batch(0, 3, 3).exit_code, batch(5).exit_code, batch(3, 5).exit_code) == (0, 3, 5, 1)


def test_thread_cluster_batch_lists_the_bad_file_and_a_rerun_skips(tmp_path: Path, case_folder: Path) -> None:
    settings = _settings(tmp_path, processes=False)
    files = collect_files([case_folder])
    events: list[BatchEvent] = []
    first = run_batch(settings, files, only=["metadata"], on_event=events.append)
    by_name = {Path(r.path).name: r for r in first.results}
    assert [Path(r.path).name for r in first.results] == [p.name for p in files]
    assert (by_name["clip.mp4"].status, by_name["camera.jpg"].status) == ("analyzed", "analyzed")
    assert by_name["clip.mp4"].ran == ["metadata"]
    bad = by_name["broken.mp4"]
    assert (bad.status, bad.error_type, bad.reason, bad.exit_code) == ("rejected", "InputRejectedError", "truncated", 3)
    assert first.exit_code == 3 and first.workers == 2
    kinds = Counter(e.kind for e in events)
    assert kinds["cluster"] == 1 and kinds["started"] == kinds["finished"] == 3
    assert {e.path for e in events if e.kind == "stage" and e.stage == "metadata"} == \
        {str(case_folder / "clip.mp4"), str(case_folder / "photos" / "camera.jpg")}

    again = run_batch(settings, files, only=["metadata"])
    assert [r.status for r in again.results] == ["current" if r.status == "analyzed" else r.status
                                                 for r in first.results]
    assert {r.asset_id for r in again.results} == {r.asset_id for r in first.results}
    ws = Workspace.open(settings)
    try:
        commits = _stage_commits(ws)
        assert sorted(commits.values()) == [1, 1] and {stage for _, stage in commits} == {"metadata"}
        verify(ws)
    finally:
        ws.close()


def test_a_given_scheduler_runs_the_batch_and_stays_up(tmp_path: Path, case_folder: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from distributed import LocalCluster

    monkeypatch.chdir(tmp_path)  # relative paths: workers get them absolute, results name them as given

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp",
                      dashboard_address=":0") as cluster:
        settings = _settings(tmp_path, scheduler=cluster.scheduler_address)
        events: list[BatchEvent] = []
        result = run_batch(settings, collect_files([Path("case/photos")]), only=["metadata"], on_event=events.append)
        assert [(r.path, r.status) for r in result.results] == [("case/photos/broken.mp4", "rejected"),
                                                                 ("case/photos/camera.jpg", "analyzed")]
        assert {e.path for e in events if e.kind == "started"} == {r.path for r in result.results}
        assert result.workers == 2
        cluster_event = next(e for e in events if e.kind == "cluster")
        assert cluster_event.note is None and cluster_event.path == cluster.dashboard_link
        assert len(cluster.scheduler.workers) == 2  # the batch closed its client, not the cluster


def test_a_files_graph_keeps_the_decode_in_one_task_and_follows_the_stages_requirements() -> None:
    stages = all_stages()
    plan = batch_tasks.stage_tasks(stages)
    assert [(t.name, t.stages, t.after) for t in plan] == [
        ("metadata", ("metadata",), ()),
        ("decode", ("video", "forensics", "temporal", "avsync"), ("metadata",)),  # one lease at a time
        ("deep", ("deep",), ("decode",)),
        ("fusion", ("fusion",), ("metadata", "decode", "deep")),
    ]
    task_of = {stage: task.name for task in plan for stage in task.stages}
    assert sorted(task_of) == sorted(s.name for s in stages)  # every stage in exactly one task
    position = {task.name: i for i, task in enumerate(plan)}
    for task in plan:  # after the tasks of every stage its stages require, which come before it
        assert {task_of[r] for s in stages if s.name in task.stages for r in s.requires} - {task.name} <= \
            set(task.after)
        assert all(position[a] < position[task.name] for a in task.after)
    # a stage left out by --stage does not cut the order: fusion still follows video through deep
    assert [(t.name, t.stages, t.after) for t in batch_tasks.stage_tasks(stages, ["fusion", "video"])] == [
        ("decode", ("video",), ()), ("fusion", ("fusion",), ("decode",))]
    with pytest.raises(UsageError, match="unknown stages: nope"):
        batch_tasks.stage_tasks(stages, ["video", "nope"])


class _GraphRecorder(SchedulerPlugin):
    """A scheduler plugin recording every task that runs with the keys of the tasks it depends on."""

    def __init__(self, scheduler: Any) -> None:
        self.scheduler = scheduler
        self.tasks: dict[str, set[str]] = {}

    def transition(self, key: str, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        if finish == "processing":
            self.tasks[key] = {dep.key for dep in self.scheduler.tasks[key].dependencies}


def _graphs(tasks: dict[str, set[str]]) -> dict[str, dict[str, set[str]]]:
    """The recorded tasks per file (keys are ``<task>-<batch>-<file>``): task name -> the names it depends on."""
    graphs: dict[str, dict[str, set[str]]] = defaultdict(dict)
    for key, deps in tasks.items():
        name, file = key.split("-", 1)
        assert {dep.split("-", 1)[1] for dep in deps} <= {file}  # a file's tasks depend on its own only
        graphs[file][name] = {dep.split("-", 1)[0] for dep in deps}
    return dict(graphs)


def _stored(ws: Workspace) -> dict[str, Any]:
    """What an analysis leaves, per asset by SHA-256 (the same in every workspace): status, stage runs, detections."""
    with ws.db.read_session() as session:
        sha = {a.asset_id: a.sha256 for a in session.execute(select(Asset)).scalars()}
        assets = {a.sha256: (a.status, a.error) for a in session.execute(select(Asset)).scalars()}
        runs = sorted((sha[r.asset_id], r.stage, r.status, r.error, r.fingerprint)
                      for r in session.execute(select(StageRun)).scalars())
        detections = sorted((sha[d.asset_id], d.stage, d.module_name, d.window_id, d.status, d.band,
                             round(d.score, 5) if d.score is not None else None)
                            for d in session.execute(select(Detection)).scalars())
        rows = {model.__tablename__: sorted((sha[asset], n) for asset, n in session.execute(
            select(model.asset_id, func.count()).group_by(model.asset_id))) for model in (Shot, Frame, Window)}
    return {"assets": assets, "stage_runs": runs, "detections": detections, **rows}


def _sequential(settings: Settings, files: list[Path], home: Path) -> Workspace:
    """The files analysed one after another in this process, with a batch worker's settings, in the workspace
    ``home``."""
    ws = Workspace.open(batch_tasks.worker_settings(settings).model_copy(update={"home": home}))
    for path in files:
        with contextlib.suppress(InputRejectedError):  # a malformed file: rejected at intake as in the batch
            run_analysis(ws, path, record=IntakeRecord(original_name=path.name, source=str(path.resolve())))
    return ws


@pytest.fixture
def stand_ins(monkeypatch: pytest.MonkeyPatch) -> None:
    """The quick stand-ins for the real stages (deep fails on still images) in this process's registry."""
    monkeypatch.setattr(registry, "STAGES", dict(batch_stages.STAGES))


def test_each_file_is_a_graph_of_its_stage_tasks_a_failing_stage_fails_only_its_file_and_rows_equal_a_sequential_run(
        tmp_path: Path, case_folder: Path, stand_ins: None, restore_threads: None) -> None:
    from distributed import LocalCluster

    files = collect_files([case_folder])
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        recorder = _GraphRecorder(cluster.scheduler)
        cluster.scheduler.add_plugin(recorder)
        settings = _settings(tmp_path, scheduler=cluster.scheduler_address)
        events: list[BatchEvent] = []
        result = run_batch(settings, files, on_event=events.append)
        graphs = _graphs(recorder.tasks)
        recorder.tasks.clear()
        again = run_batch(settings, files)

    # per file: ingest -> metadata -> decode (video, forensics, temporal, avsync) -> deep -> fusion -> finish
    full = {"ingest": set(), "metadata": {"ingest"}, "decode": {"ingest", "metadata"}, "deep": {"ingest", "decode"},
            "fusion": {"ingest", "metadata", "decode", "deep"},
            "finish": {"ingest", "metadata", "decode", "deep", "fusion"}}
    assert len(graphs) == 3 and all(graph == full for graph in graphs.values())
    by_name = {Path(r.path).name: r for r in result.results}
    clip, camera, broken = by_name["clip.mp4"], by_name["camera.jpg"], by_name["broken.mp4"]
    assert (clip.status, sorted(clip.ran), clip.exit_code) == ("analyzed", sorted(batch_stages.STAGES), 0)
    assert [t.task for t in clip.tasks] == ["ingest", "metadata", "decode", "deep", "fusion", "finish"]
    assert clip.cpu_s == pytest.approx(sum(t.cpu_s for t in clip.tasks)) and clip.cpu_s > 0
    assert clip.worker == max(clip.tasks, key=lambda t: t.seconds).worker
    assert (camera.status, camera.error_type, camera.exit_code) == ("failed", "StageFailed", 1)
    assert camera.reason == "deep: RuntimeError: no model for stills; fusion: skipped: deep failed"
    assert sorted(camera.ran) == ["avsync", "forensics", "metadata", "temporal", "video"]
    assert (broken.status, broken.error_type, broken.reason) == ("rejected", "InputRejectedError", "truncated")
    assert [t.task for t in broken.tasks] == ["ingest"]  # the tasks after a rejected intake run nothing
    assert result.exit_code == 1
    kinds = Counter(e.kind for e in events)
    assert kinds["started"] == kinds["finished"] == 3
    assert {e.stage for e in events if e.kind == "stage" and e.path == str(case_folder / "clip.mp4")} == \
        {"ingest", *batch_stages.STAGES}

    # the re-run: the analysed file is current (only its ingest task works), the failed one runs again
    assert [r.status for r in again.results] == ["current", "rejected", "failed"]
    assert [t.task for t in again.results[0].tasks] == ["ingest"]

    ws, sequential = Workspace.open(settings), _sequential(settings, files, tmp_path / "sequential")
    try:
        with ws.db.read_session() as session:  # one begin, one finish per analysis; no lease taken for a dead run
            actions = [Counter(e.action for e in queries.audit_events(session, r.asset_id)) for r in (clip, camera)]
        assert [(a["analysis.started"], a["analysis.finished"], a["analysis.recovered"]) for a in actions] == \
            [(1, 1, 0), (2, 2, 0)]
        commits = _stage_commits(ws)
        assert set(commits.values()) == {1} and len(commits) == 7 + 5  # camera.jpg: deep failed, fusion skipped
        assert not verify(ws).problems
        assert _stored(ws) == _stored(sequential)
    finally:
        ws.close()
        sequential.close()


def test_a_typed_error_in_a_stage_task_fails_its_file_and_the_tasks_after_it_run_nothing(
        tmp_path: Path, case_folder: Path, stand_ins: None, monkeypatch: pytest.MonkeyPatch) -> None:
    runner_part = batch_tasks.analyze_asset

    def busy_on_stills(ws: Workspace, ref: str, *, only: list[str] | None = None, **kwargs: Any) -> RunResult:
        with ws.db.read_session() as session:
            still = queries.find_asset(session, ref).media_type == "image"
        if still and "video" in (only or []):
            raise BusyError(f"asset {ref} is being analysed by another run")
        return runner_part(ws, ref, only=only, **kwargs)

    monkeypatch.setattr(batch_tasks, "analyze_asset", busy_on_stills)
    settings = _settings(tmp_path, processes=False)
    result = run_batch(settings, [case_folder / "clip.mp4", case_folder / "photos" / "camera.jpg"])
    clip, camera = result.results
    assert clip.status == "analyzed"
    assert (camera.status, camera.error_type, camera.exit_code) == ("failed", "BusyError", 5)
    assert camera.reason == f"asset {camera.asset_id} is being analysed by another run"
    assert [t.task for t in camera.tasks] == ["ingest", "metadata", "decode"]  # not deep, fusion nor finish
    assert result.exit_code == 5
    ws = Workspace.open(settings)
    try:
        assert {stage for asset, stage in _stage_commits(ws) if asset == camera.asset_id} == {"metadata"}
        with ws.db.read_session() as session:
            asset = session.get(Asset, camera.asset_id)
            actions = Counter(e.action for e in queries.audit_events(session, camera.asset_id))
        assert asset is not None and asset.status == "accepted"  # unfinished, as a run that stopped: resumable
        assert (actions["analysis.started"], actions["analysis.finished"]) == (1, 0)
    finally:
        ws.close()


@pytest.fixture
def restore_threads(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Start without the BLAS variables (an earlier cluster in this process leaves Dask's; an exported one would win
    over the batch's share) and undo a thread cap on this (the test) process afterwards."""
    for name in batch_tasks.THREAD_ENV:
        monkeypatch.setenv(name, "recorded")  # so monkeypatch puts back (or removes) it afterwards
        monkeypatch.delenv(name)
    before = cv2.getNumThreads()
    with threadpool_limits():  # restores the BLAS/OpenMP pools' sizes on exit
        yield
    cv2.setNumThreads(before)
    set_max_threads(0)


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def _decoding_threads(video: Path) -> int:
    """How many threads this process gained while a reader decodes its first frames."""
    before = _threads()
    with VideoReader(video, long_side=64) as reader:
        frames = iter(reader)
        next(frames), next(frames)
        gained = _threads() - before
        frames.close()
    return gained


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: nothing to cap")
def test_limit_threads_caps_opencv_the_decoder_and_blas_of_this_process(small_video: Path,
                                                                        restore_threads: None) -> None:
    batch_tasks.limit_threads(1)
    assert cv2.getNumThreads() == 1
    assert {name: os.environ[name] for name in batch_tasks.THREAD_ENV} == dict.fromkeys(batch_tasks.THREAD_ENV, "1")
    assert all(pool["num_threads"] == 1 for pool in threadpool_info())  # pools loaded before the cap too
    assert _decoding_threads(small_video) <= 0  # no decoder or filter threads
    set_max_threads(0)
    assert _decoding_threads(small_video) > 0  # uncapped, FFmpeg starts about one per core


_PAGE_FAULTS = """
import resource
from tamperscope.services.batch_tasks import tune_allocator

def faults() -> int:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        b"\\x01" * (8 << 20)  # a frame-sized buffer (malloc, as OpenCV's and the decoder's), written, then freed
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

untuned = faults()
assert tune_allocator()
print(untuned, faults())
"""


def test_a_tuned_worker_reuses_freed_frame_memory_instead_of_faulting_it_in_again() -> None:
    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "65536"}  # as a Dask nanny starts its workers
    done = subprocess.run([sys.executable, "-c", _PAGE_FAULTS], env=env, capture_output=True, text=True, check=True)
    untuned, tuned = map(int, done.stdout.split())
    pages = (8 << 20) // resource.getpagesize()
    assert untuned >= 20 * pages * 0.9  # each array mapped and faulted in page by page again
    assert tuned <= 2 * pages  # the heap grows once and the memory is reused


def test_a_thread_cluster_task_leaves_the_callers_threads_alone(tmp_path: Path, case_folder: Path,
                                                               restore_threads: None) -> None:
    cv2.setNumThreads(2)
    (result,) = run_batch(_settings(tmp_path, processes=False), [case_folder / "clip.mp4"], only=["metadata"]).results
    assert result.status == "analyzed" and result.cpu_s > 0
    assert {t.worker for t in result.tasks} == {f"{os.getpid()}@{socket.gethostname()}"}  # all in this process
    assert (cv2.getNumThreads(), video_reader._max_threads) == (2, 0)


def _worker_threads(dask_worker: Any) -> dict[str, object]:
    """What a worker process's thread caps are, and whether Dask's profiler samples it (run on the worker)."""
    return {"process": f"{os.getpid()}@{socket.gethostname()}", "opencv": cv2.getNumThreads(),
            "profiler": "profile" in dask_worker.periodic_callbacks,
            "decoder": video_reader._max_threads,
            "allocator_tuned": batch_tasks.tune_allocator.cache_info().currsize == 1,
            "env": {name: os.environ.get(name) for name in batch_tasks.THREAD_ENV}}


@pytest.mark.slow
def test_worker_processes_start_with_their_blas_share_and_a_task_caps_the_rest(tmp_path: Path, case_folder: Path,
                                                                               restore_threads: None) -> None:
    settings = Settings(home=tmp_path / "home", actor="tester", batch=BatchSettings(workers=1, threads_per_worker=3))
    Workspace.open(settings).close()
    with batch.dask_client(settings.batch) as client:
        (before,) = client.run(_worker_threads).values()
        assert before["env"] == dict.fromkeys(batch_tasks.THREAD_ENV, "3")  # before the process started (NumPy loaded)
        assert not before["allocator_tuned"]
        assert not before["profiler"]  # off by default: it costs CPU on every worker thread
        on_cluster = settings.model_copy(update={"batch": settings.batch.model_copy(
            update={"scheduler": client.scheduler.address})})
        (result,) = run_batch(on_cluster, [case_folder / "clip.mp4"], only=["metadata"]).results
        (after,) = client.run(_worker_threads).values()
    assert result.status == "analyzed"
    assert {t.worker for t in result.tasks} == {after["process"]}  # its tasks ran in the worker process
    assert (after["opencv"], after["decoder"], after["allocator_tuned"]) == (3, 3, True)


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TAMPERSCOPE_HOME": str(home), "TAMPERSCOPE_ACTOR": "cli-tester", "COLUMNS": "240"}
    return subprocess.run([sys.executable, "-c", "from tamperscope.cli.main import main; main()", *args],
                          capture_output=True, text=True, env=env, timeout=1200, check=False)


@pytest.mark.slow
def test_cli_batch_on_two_worker_processes_analyses_each_file_once_and_resumes(tmp_path: Path,
                                                                              case_folder: Path) -> None:
    home = tmp_path / "home"
    first = _cli(home, "analyze", str(case_folder), "--cluster-workers", "2")
    assert first.returncode == 3, first.stderr[-3000:]  # the malformed file: an input problem
    assert "Dask cluster: 2 workers; dashboard http://" in first.stderr
    assert "[3/3]" in first.stderr and "rejected" in first.stderr  # plain progress lines: stderr is not a terminal
    assert "InputRejectedError: truncated" in first.stdout and "2 analyzed, 0 current, 1 rejected" in first.stdout

    ws = Workspace.open(Settings(home=home))
    try:
        commits = _stage_commits(ws)
        assert set(commits.values()) == {1}  # every stage of every asset committed exactly once
        assert {asset for asset, _ in commits} and len({asset for asset, _ in commits}) == 2
        assert {stage for _, stage in commits} >= {"metadata", "video", "forensics", "deep", "fusion"}
        verify(ws)  # two worker processes appended to one chain on SQLite: the chain and every seal hold
        again = _cli(home, "analyze", "--json", str(case_folder), "--cluster-workers", "2",
                     "--case", "C-17", "--examiner", "E. Xam")
        rows = {Path(r["path"]).name: r for r in map(json.loads, again.stdout.splitlines())}
        assert {name: r["status"] for name, r in rows.items()} == {"clip.mp4": "current", "camera.jpg": "current",
                                                                   "broken.mp4": "rejected"}
        assert again.returncode == 3 and _stage_commits(ws) == commits
        with ws.db.session() as session:  # the case fields reach every analysed asset of the batch, none else
            assigned = session.execute(select(AuditEvent.asset_id, AuditEvent.details_json)
                                       .where(AuditEvent.action == "case.assigned")).all()
        assert {asset for asset, _ in assigned} == {asset for asset, _ in commits}
        assert all(details["case_id"] == "C-17" and details["examiner"] == "E. Xam" for _, details in assigned)
    finally:
        ws.close()


@pytest.mark.slow
def test_a_worker_killed_mid_batch_is_replaced_and_every_file_is_analysed_once(tmp_path: Path) -> None:
    folder = tmp_path / "videos"
    folder.mkdir()
    for i, pattern in enumerate(("testsrc2", "smptebars", "rgbtestsrc", "testsrc")):
        _video(folder / f"v{i}.mp4", pattern, 2)
    settings = _settings(tmp_path)
    killed: list[tuple[str, str]] = []  # (path, worker process as pid@host)

    def kill_first_video_stage(event: BatchEvent) -> None:
        if event.kind == "stage" and event.stage == "video" and not killed and event.worker:
            killed.append((event.path, event.worker))
            os.kill(int(event.worker.split("@")[0]), signal.SIGKILL)

    result = run_batch(settings, collect_files([folder]), only=["metadata", "video"], on_event=kill_first_video_stage)
    assert killed, "no video stage started"
    assert [r.status for r in result.results] == ["analyzed"] * 4
    path, process = killed[0]
    victim = next(r for r in result.results if r.path == path)
    assert victim.worker != process  # the task was re-run by another (or the restarted) worker process
    ws = Workspace.open(settings)
    try:
        commits = _stage_commits(ws)
        assert len(commits) == 8 and set(commits.values()) == {1}
        with ws.db.read_session() as session:
            recovered = [e.details_json for e in queries.audit_events(session, victim.asset_id)
                         if e.action == "analysis.recovered"]
        assert [r["reason"] for r in recovered] == ["holder process is gone"]
        assert recovered[0]["pid"] == int(process.split("@")[0])
        verify(ws)
    finally:
        ws.close()


def _counted(counts: Counter[str], name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def counted(*args: Any, **kwargs: Any) -> Any:
        counts[name] += 1
        return function(*args, **kwargs)

    return counted


@pytest.mark.slow
def test_the_real_stages_in_a_graph_decode_as_often_and_store_the_same_rows_as_a_sequential_run(
        tmp_path: Path, small_video: Path, small_jpeg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    decodes: Counter[str] = Counter()  # video decode passes (intake's proof, the video stage, a temporal fallback),
    monkeypatch.setattr(VideoReader, "__init__", _counted(decodes, "video", VideoReader.__init__))  # still images
    for name in ("read_stored_image", "extract_audio"):  # decoded, audio tracks extracted apart from the decode pass
        monkeypatch.setattr(media_session, name, _counted(decodes, name, getattr(media_session, name)))
    files = [small_video, small_jpeg]
    settings = _settings(tmp_path, processes=False)
    result = run_batch(settings, files)
    assert [r.status for r in result.results] == ["analyzed", "analyzed"]
    assert {"temporal", "avsync", "deep", "fusion"} <= set(result.results[0].ran)
    in_graph = dict(decodes)
    decodes.clear()
    ws, sequential = Workspace.open(settings), _sequential(settings, files, tmp_path / "sequential")
    try:
        assert in_graph == dict(decodes) and in_graph["video"] > 0 and "extract_audio" not in in_graph
        assert _stored(ws) == _stored(sequential)
        assert not verify(ws).problems
    finally:
        ws.close()
        sequential.close()


@pytest.mark.slow
def test_a_stage_the_watchdog_ends_in_a_worker_process_fails_its_file_with_exit_3_and_the_batch_goes_on(
        tmp_path: Path, case_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from distributed import LocalCluster

    monkeypatch.setattr(registry, "STAGES", dict(batch_stages.HANGING))  # the client plans the workers' stages
    monkeypatch.setenv("HANG_S", "120")  # the stand-in video stage hangs in native code on still images
    files = [case_folder / "clip.mp4", case_folder / "photos" / "camera.jpg"]
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                      preload=[batch_stages.__name__]) as cluster:
        settings = _settings(tmp_path, scheduler=cluster.scheduler_address).model_copy(
            update={"limits": LimitSettings(stage_timeout_s=1.0, stage_grace_s=0.5)})
        started = time.monotonic()
        result = run_batch(settings, files)
        seconds = time.monotonic() - started
    clip, camera = result.results
    assert clip.status == "analyzed" and seconds < 120
    assert (camera.status, camera.error_type, camera.exit_code) == ("rejected", "StageRejected", 3)
    assert (camera.reason or "").startswith("video: LimitExceededError") and "fusion: skipped" in (camera.reason or "")
    assert result.exit_code == 3
    ws = Workspace.open(settings)
    try:
        with ws.db.read_session() as session:
            video = session.get(StageRun, (camera.asset_id, "video"))
            asset = session.get(Asset, camera.asset_id)
            limited = [e.details_json for e in queries.audit_events(session, camera.asset_id)
                       if e.action == "stage.limit_exceeded"]
            leases = session.execute(select(AnalysisLease)).scalars().all()
        assert video is not None and video.status == "limit_exceeded"
        assert asset is not None and asset.status == "limit_exceeded" and not leases
        assert len(limited) == 1 and limited[0]["watchdog"] is True  # ended once; its re-run found the result
        assert not verify(ws).problems
    finally:
        ws.close()
