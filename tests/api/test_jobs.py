"""Durable API jobs: two app instances on one database see the same jobs, batches are submitted and followed,
queued jobs outlive the app that took them, and a worker that stops or dies hands its job to the next one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tamperscope.api.main import create_app
from tamperscope.api.tokens import create_token
from tamperscope.custody.verify import verify
from tamperscope.services.jobs import Worker
from tamperscope.settings import Settings
from tamperscope.store import jobqueue, queries
from tamperscope.workspace import Workspace


def _png(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
    path = Path(f"/dev/shm/tamperscope-test-{os.getpid()}-{seed}.png")
    Image.fromarray(pixels).save(path)
    try:
        return path.read_bytes()
    finally:
        path.unlink()


def _with_jobs(settings: Settings, **jobs: Any) -> Settings:
    return settings.model_copy(update={"jobs": settings.jobs.model_copy(update=jobs)})


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def shared(request: pytest.FixtureRequest, api_settings: Settings) -> Iterator[tuple[Settings, str]]:
    """Settings of replicas without their own workers (SQLite or PostgreSQL), and alice's token."""
    settings = _with_jobs(api_settings, api_workers=0, progress_interval_s=0.1)
    if request.param == "postgres":
        settings = settings.model_copy(update={"db_url": request.getfixturevalue("postgres_url")})
    ws = Workspace.open(settings)
    try:
        yield settings, create_token(ws, "alice")
    finally:
        ws.close()


def _client(settings: Settings, token: str) -> TestClient:
    client = TestClient(create_app(settings))
    client.headers["Authorization"] = f"Bearer {token}"
    return client


def _until(check: Callable[[], Any], timeout_s: float = 240.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.2)
    raise AssertionError("timed out")


@pytest.mark.slow
def test_a_job_from_one_replica_is_seen_by_another_and_run_by_a_worker(shared: tuple[Settings, str]) -> None:
    settings, token = shared
    with _client(settings, token) as first, _client(settings, token) as second:
        up = first.post("/api/assets", params={"name": "a.png", "analyze": "true"}, content=_png(1))
        assert up.status_code == 201, up.text
        job = up.json()["job"]
        assert (job["status"], job["asset_id"], job["requested_by"]) == ("queued", up.json()["asset_id"], "alice")
        seen = second.get(f"/api/jobs/{job['job_id']}").json()
        assert (seen["job_id"], seen["status"]) == (job["job_id"], "queued")
        assert [j["job_id"] for j in second.get("/api/jobs", params={"status": "queued"}).json()] == [job["job_id"]]

        ws = Workspace.open(settings)
        try:
            assert Worker(ws, name="test-worker").run_once()
            assert not Worker(ws).run_once()
        finally:
            ws.close()
        done = [client.get(f"/api/jobs/{job['job_id']}").json() for client in (first, second)]
        assert done[0] == done[1]
        assert (done[0]["status"], done[0]["fraction"], done[0]["claimed_by"]) == ("done", 1.0, "test-worker")
        assert done[0]["report_id"] and done[0]["failed_stages"] == {}
        assert done[0]["progress"]["report"] == 1.0 and all(0 <= f <= 1 for f in done[0]["progress"].values())
        events = {e["action"]: e["who"] for e in second.get("/api/audit", params={"asset": job["asset_id"]}).json()}
        assert events["analysis.started"] == "alice" and events["report.written"] == "alice"
        assert second.get("/api/jobs/nope").status_code == 404


@pytest.mark.slow
def test_batches_are_submitted_followed_and_survive_a_restart(shared: tuple[Settings, str]) -> None:
    settings, token = shared
    with _client(settings, token) as app:
        files = [("files", (f"f{i}.png", _png(10 + i), "image/png")) for i in range(2)]
        files.append(("files", ("bad.jpg", b"\xff\xd8 not a jpeg" * 20, "image/jpeg")))
        batch = app.post("/api/batches/uploads", files=files)
        assert batch.status_code == 202, batch.text
        body = batch.json()
        assert body["total"] == 2 and body["counts"]["queued"] == 2 and not body["finished"]
        assert [(r["name"], r["error"]) for r in body["rejected"]] == [("bad.jpg", "InputRejectedError")]
        asset_ids = [j["asset_id"] for j in body["jobs"]]

        unknown = app.post("/api/batches", json={"asset_ids": [asset_ids[0], "0123456789abcdef"]})
        assert unknown.status_code == 404 and unknown.json()["error"] == "UnknownAssetError"
        rejected = app.post("/api/batches", json={"asset_ids": [body["rejected"][0]["asset_id"]]})
        assert rejected.status_code == 422
        assert app.post("/api/batches", json={"asset_ids": []}).status_code == 422
        by_ids = app.post("/api/batches", json={"asset_ids": asset_ids[:1]}).json()
        assert by_ids["total"] == 1 and by_ids["jobs"][0]["asset_id"] == asset_ids[0]
        assert len(app.get("/api/jobs").json()) == 3  # nothing was queued by the refused batches
        assert app.get("/api/batches/nope").status_code == 404
        anonymous = TestClient(app.app)
        assert anonymous.get(f"/api/batches/{body['batch_id']}").status_code == 401

    # the app that took the batch is gone; a new one with its own worker finishes it
    with _client(_with_jobs(settings, api_workers=1, poll_interval_s=0.2), token) as restarted:
        state = _until(lambda: (b := restarted.get(f"/api/batches/{body['batch_id']}").json())["finished"] and b)
        assert state["counts"] == {"queued": 0, "running": 0, "done": 2, "failed": 0} and state["fraction"] == 1.0
        assert sorted(j["asset_id"] for j in state["jobs"]) == sorted(asset_ids)
        _until(lambda: restarted.get(f"/api/batches/{by_ids['batch_id']}").json()["finished"])
        for asset_id in asset_ids:
            assert restarted.get(f"/api/assets/{asset_id}").json()["status"] == "analyzed"


def _worker_process(settings: Settings, log: Path, **jobs: Any) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TAMPERSCOPE_HOME": str(settings.home), "TAMPERSCOPE_DB_URL": settings.resolved_db_url,
           **{f"TAMPERSCOPE_JOBS__{k.upper()}": str(v) for k, v in jobs.items()}}
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-c", "from tamperscope.cli.main import main; main()", "worker",
                                 "--poll-interval", "0.2"],
                                env=env, stdout=out, stderr=subprocess.STDOUT)


@pytest.mark.slow
def test_a_stopped_worker_hands_its_job_back_and_a_killed_ones_job_is_resumed(api_settings: Settings,
                                                                               small_video: Path,
                                                                               tmp_path: Path) -> None:
    """SIGTERM (no grace): the job is queued again at once; SIGKILL: its lease expires and the next worker resumes
    it from the last committed stage; the audit chain verifies afterwards."""
    from tamperscope.custody.intake import ingest_path

    settings = _with_jobs(api_settings, api_workers=0)
    ws = Workspace.open(settings)
    try:
        asset_id = ingest_path(ws, small_video).asset_id
        (job,) = jobqueue.enqueue(ws.db, [asset_id], requested_by="alice")

        def running_with(stage_done: str | None) -> bool:
            row = jobqueue.get(ws.db, job.job_id)
            if row is None or row.status != "running":
                return False
            with ws.db.read_session() as session:
                return stage_done is None or any(r.stage == stage_done and r.status == "done"
                                                 for r in queries.stage_runs(session, asset_id))

        stopped = _worker_process(settings, tmp_path / "stopped.log", stop_grace_s=0, progress_interval_s=0.1)
        _until(lambda: running_with(None), 120)
        stopped.send_signal(signal.SIGTERM)
        assert stopped.wait(60) == 0, (tmp_path / "stopped.log").read_text()
        row = jobqueue.get(ws.db, job.job_id)
        assert row is not None and (row.status, row.claimed_by, row.attempts) == ("queued", None, 1)
        assert row.message is not None and row.message.startswith("re-queued: worker ")

        killed = _worker_process(settings, tmp_path / "killed.log", lease_s=3, progress_interval_s=0.1)
        _until(lambda: running_with("video"), 180)
        killed.kill()
        killed.wait(30)
        row = jobqueue.get(ws.db, job.job_id)
        assert row is not None and row.status == "running" and row.attempts == 2  # until its lease runs out

        _until(Worker(ws, name="survivor").run_once, 30)  # claimable once the dead worker's lease runs out
        row = jobqueue.get(ws.db, job.job_id)
        assert row is not None and (row.status, row.claimed_by, row.attempts) == ("done", "survivor", 3)
        with ws.db.read_session() as session:
            events = queries.audit_events(session, asset_id)
            video_runs = [e for e in events if e.action == "stage.done" and e.details_json["stage"] == "video"]
            assert len(video_runs) == 1, "the resumed run repeated a stage that was already committed"
            assert any(e.action == "analysis.recovered" for e in events)
            assert queries.find_asset(session, asset_id).status == "analyzed"
        verify(ws)
    finally:
        ws.close()
