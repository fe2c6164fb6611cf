"""Batch analysis on Dask: every file analysed once by a worker through the analysis service, a malformed file listed
with its typed reason, a re-run that skips what is current, and a worker killed mid-batch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import cv2
import pytest
from sqlalchemy import select
from threadpoolctl import threadpool_info, threadpool_limits

from tamperscope.custody.verify import verify
from tamperscope.media import video_reader
from tamperscope.media.video_reader import VideoReader, set_max_threads
from tamperscope.samples import demo as samples
from tamperscope.services import batch
from tamperscope.services.batch import BatchEvent, BatchResult, FileResult, collect_files, run_batch
from tamperscope.settings import BatchSettings, Settings
from tamperscope.store import queries
from tamperscope.store.models import AuditEvent
from tamperscope.workspace import Workspace
from tests.conftest import ffmpeg


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


@pytest.fixture
def restore_threads(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Start without the BLAS variables (an earlier cluster in this process leaves Dask's; an exported one would win
    over the batch's share) and undo a thread cap on this (the test) process afterwards."""
    for name in batch.THREAD_ENV:
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
    batch.limit_threads(1)
    assert cv2.getNumThreads() == 1
    assert {name: os.environ[name] for name in batch.THREAD_ENV} == dict.fromkeys(batch.THREAD_ENV, "1")
    assert all(pool["num_threads"] == 1 for pool in threadpool_info())  # pools loaded before the cap too
    assert _decoding_threads(small_video) <= 0  # no decoder or filter threads
    set_max_threads(0)
    assert _decoding_threads(small_video) > 0  # uncapped, FFmpeg starts about one per core


def test_a_thread_cluster_task_leaves_the_callers_threads_alone(tmp_path: Path, case_folder: Path,
                                                               restore_threads: None) -> None:
    cv2.setNumThreads(2)
    settings = _settings(tmp_path, processes=False)
    Workspace.open(settings).close()
    result = batch.analyze_file(batch.worker_settings(settings), str(case_folder / "clip.mp4"), only=["metadata"])
    assert result.status == "analyzed" and result.cpu_s > 0
    assert (cv2.getNumThreads(), video_reader._max_threads) == (2, 0)


def _worker_threads() -> dict[str, object]:
    """What a worker process's thread caps are (run on the worker)."""
    return {"opencv": cv2.getNumThreads(), "decoder": video_reader._max_threads,
            "env": {name: os.environ.get(name) for name in batch.THREAD_ENV}}


@pytest.mark.slow
def test_worker_processes_start_with_their_blas_share_and_a_task_caps_the_rest(tmp_path: Path, case_folder: Path,
                                                                               restore_threads: None) -> None:
    settings = Settings(home=tmp_path / "home", actor="tester", batch=BatchSettings(workers=1, threads_per_worker=3))
    Workspace.open(settings).close()
    with batch.dask_client(settings.batch) as client:
        (before,) = client.run(_worker_threads).values()
        assert before["env"] == dict.fromkeys(batch.THREAD_ENV, "3")  # set before the process started (NumPy loaded)
        result = client.submit(batch.analyze_file, batch.worker_settings(settings), str(case_folder / "clip.mp4"),
                               only=["metadata"]).result()
        (after,) = client.run(_worker_threads).values()
    assert result.status == "analyzed"
    assert (after["opencv"], after["decoder"]) == (3, 3)


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
