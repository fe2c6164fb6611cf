"""The HTTP API end to end: tokens, streaming upload, background analysis, reports, audit, typed errors."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tamperscope.api.routers import assets, reports
from tamperscope.api.routers.assets import display_name
from tamperscope.custody.intake import IntakeResult
from tamperscope.samples import demo as samples


def _wait(client: TestClient, job_id: str, timeout_s: float = 240.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] in {"done", "failed"}:
            return job
        time.sleep(0.2)
    raise AssertionError("job did not finish")


def test_every_api_route_needs_a_valid_token(client: TestClient) -> None:
    anonymous = TestClient(client.app)
    for method, path in [("get", "/api/assets"), ("post", "/api/assets"), ("get", "/api/audit"),
                         ("get", "/api/jobs/x"), ("post", "/api/verify"), ("get", "/api/assets/x/reports/latest.pdf")]:
        assert getattr(anonymous, method)(path).status_code == 401, path
        assert getattr(anonymous, method)(path, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert anonymous.get("/").status_code == 200
    assert anonymous.get("/openapi.json").json()["info"]["title"] == "tamperscope"


def test_unknown_asset_is_404_and_garbage_upload_is_422(client: TestClient) -> None:
    assert client.get("/api/assets/0123456789abcdef").status_code == 404
    rejected = client.post("/api/assets", params={"name": "x.jpg"}, content=b"\xff\xd8 not really a jpeg" * 10)
    assert rejected.status_code == 422
    assert rejected.json()["error"] == "InputRejectedError"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_size_limit_answers_413_stores_nothing_and_is_audited(api_settings, token: str,  # type: ignore[no-untyped-def]
                                                              chunked: bool) -> None:
    from sqlalchemy import select

    from tamperscope.api.main import create_app
    from tamperscope.store.models import Asset, AuditEvent
    from tamperscope.workspace import Workspace

    assert api_settings.limits.api_max_upload_bytes == 4 * 1024**3
    small = api_settings.model_copy(update={"limits": api_settings.limits.model_copy(
        update={"api_max_upload_bytes": 1000})})
    content: Any = (b"\0" * 500 for _ in range(10)) if chunked else b"\0" * 5000
    with TestClient(create_app(small)) as limited:
        response = limited.post("/api/assets", params={"name": "big.bin"}, content=content,
                                headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 413
    assert response.json()["reason"] == "too_large"
    ws = Workspace.open(small)
    try:
        with ws.db.session() as session:
            assert session.execute(select(Asset)).first() is None
            refused = session.execute(select(AuditEvent).where(AuditEvent.action == "intake.refused")).scalars().all()
            assert len(refused) == 1 and refused[0].details_json["original_name"] == "big.bin"
            assert refused[0].details_json["bytes"] > 1000
        stored = [p for p in (small.home / "store").rglob("*") if p.is_file()]
        assert stored == []
    finally:
        ws.close()


def test_file_names_never_become_paths() -> None:
    assert display_name("../../etc/passwd") == "passwd"
    assert display_name("C:\\x\\evil\x00.jpg") == "evil.jpg"
    assert display_name("") == "upload"


@pytest.mark.slow
def test_upload_analyse_report_audit(client: TestClient, tmp_path: Path) -> None:
    photo = samples.camera_like_jpeg(tmp_path / "camera.jpg")
    data = photo.read_bytes()

    def chunks():  # a generator body is streamed (chunked), never one bytes object
        for start in range(0, len(data), 4096):
            yield data[start:start + 4096]

    up = client.post("/api/assets", params={"name": "../../camera.jpg"}, content=chunks())
    assert up.status_code == 201, up.text
    body = up.json()
    assert body["sha256"] == hashlib.sha256(data).hexdigest() and body["size"] == len(data)
    asset_id = body["asset_id"]

    started = client.post(f"/api/assets/{asset_id}/analyze")
    assert started.status_code == 202
    job = _wait(client, started.json()["job_id"])
    assert job["status"] == "done", job
    assert job["progress"] and all(0.0 <= f <= 1.0 for f in job["progress"].values())

    summary = client.get(f"/api/assets/{asset_id}").json()
    assert summary["status"] == "analyzed"
    report = client.get(f"/api/assets/{asset_id}/reports/latest/content").json()
    assert report["asset"]["original_name"] == "camera.jpg"
    meta = client.get(f"/api/assets/{asset_id}/reports/latest").json()
    pdf = client.get(f"/api/assets/{asset_id}/reports/latest.pdf")
    js = client.get(f"/api/assets/{asset_id}/reports/latest.json")
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    assert hashlib.sha256(pdf.content).hexdigest() == meta["sha256_pdf"]
    assert hashlib.sha256(js.content).hexdigest() == meta["sha256_json"]

    assert client.post("/api/reports/verify", content=js.content).json()["ok"] is True
    tampered = client.post("/api/reports/verify", content=js.content.replace(b"camera.jpg", b"camera2.jpg"))
    assert tampered.status_code == 409 and tampered.json()["problems"]

    events = client.get("/api/audit", params={"asset": asset_id}).json()
    actions = {e["action"]: e["who"] for e in events}
    assert actions["intake.accepted"] == "alice"
    assert actions["report.written"] == "alice"
    assert actions["access.report_download"] == "alice"
    assert client.post("/api/verify", params={"asset": asset_id}).json()["problems"] == []
    frames = report["frames"]
    if frames:
        art = client.get(f"/api/assets/{asset_id}/artifact", params={"uri": frames[0]["uri"]})
        assert art.status_code == 200 and art.content
    assert client.get(f"/api/assets/{asset_id}/artifact", params={"uri": "store://raw/../x"}).status_code == 404


def test_upload_is_streamed_not_buffered(server: str, token: str) -> None:
    """A real server (the TestClient transport reads whole bodies) gets 48 MiB in chunks; memory stays flat."""
    import tracemalloc

    import httpx

    size, chunk = 48 * 1024**2, b"\0" * (256 * 1024)

    def body():
        for _ in range(size // len(chunk)):
            yield chunk

    tracemalloc.start()
    response = httpx.post(f"{server}/api/assets", params={"name": "zeros.bin"}, content=body(), timeout=120,
                          headers={"Authorization": f"Bearer {token}"})
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert response.status_code == 422  # not a media file: hashed in full, then stored in quarantine
    assert response.json()["reason"]
    print(f"upload peak traced memory {peak / 2**20:.1f} MiB")
    assert peak < size / 4, f"peak {peak / 2**20:.1f} MiB for a {size / 2**20:.0f} MiB upload"


@pytest.mark.parametrize(("path", "module", "work", "result"), [
    ("/api/reports/verify", reports, "verify_report_bytes", {"ok": True}),
    ("/api/assets", assets, "ingest_stream", IntakeResult("0" * 16, "0" * 64, 1, "accepted", False)),
], ids=["report-verify", "upload"])
def test_slow_work_of_async_routes_leaves_the_event_loop_free(server: str, token: str, monkeypatch: Any,
                                                              path: str, module: Any, work: str, result: Any) -> None:
    """While an async route's blocking work (rebuilding a report, storing an upload) takes 2 s, other requests
    are answered at once: the work runs in a worker thread, not on the event loop."""
    import httpx

    started = threading.Event()

    def slow(*args: Any) -> Any:
        started.set()
        time.sleep(2.0)  # stands in for database, store and hashing work
        return result

    monkeypatch.setattr(module, work, slow)
    headers = {"Authorization": f"Bearer {token}"}
    answers: list[httpx.Response] = []
    worker = threading.Thread(target=lambda: answers.append(
        httpx.post(f"{server}{path}", content=b"{}", headers=headers, timeout=30)))
    worker.start()
    assert started.wait(10)
    begin = time.monotonic()
    other = httpx.get(f"{server}/api/jobs", headers=headers, timeout=30)
    waited = time.monotonic() - begin
    worker.join(30)
    assert other.status_code == 200 and answers and answers[0].status_code in (200, 201)
    assert waited < 1.0, f"a cheap request waited {waited:.2f} s behind the slow one"
