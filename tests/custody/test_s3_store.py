"""The object store on S3 (moto's standalone server on 127.0.0.1, emptied before each test) through the same code
path as the local disk; every store failure is a typed :class:`StoreError` with a ``store.failed`` audit event, in
bounded time.

Each failure case prints its measured time to the typed error (``pytest -s`` shows them)."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from tamperscope.custody.intake import IntakeRecord, ingest_path, ingest_stream
from tamperscope.custody.objectstore import ObjectStore, raw_key
from tamperscope.custody.seal import ObjectDigests, hash_objects
from tamperscope.custody.verify import verify
from tamperscope.errors import IntegrityError, StoreError, StoreFailure, exit_code_for, http_status_for
from tamperscope.pipeline.runner import analyze_asset
from tamperscope.settings import Settings, StoreSettings
from tamperscope.store.models import AuditEvent
from tamperscope.workspace import Workspace
from tests.s3server import MotoServer, free_port, start_moto

BUCKET = "evidence"
#: short timeouts so the bound is small; the bound a failure must beat is computed from them
FAST = StoreSettings(connect_timeout_s=2.0, read_timeout_s=3.0, attempts=3, block_size=5 * 1024**2)


def _bound_s(settings: StoreSettings, calls: int = 2) -> float:
    """Worst case of ``calls`` store calls: every attempt times out, plus botocore's back-off (< 2**n s)."""
    per_call = settings.attempts * (settings.connect_timeout_s + settings.read_timeout_s) + 2 ** settings.attempts
    return calls * per_call


def _workspace(tmp_path: Path, store_url: str = f"s3://{BUCKET}/lab1", store: StoreSettings = FAST) -> Workspace:
    return Workspace.open(Settings(home=tmp_path / "home", store_url=store_url, actor="tester", store=store))


def _store_events(ws: Workspace) -> list[dict[str, object]]:
    with ws.db.read_session() as session:
        return [e.details_json for e in session.execute(
            select(AuditEvent).where(AuditEvent.action == "store.failed").order_by(AuditEvent.event_id)).scalars()]


def _timed(call: Callable[[], object]) -> tuple[BaseException, float]:
    start = time.monotonic()
    with pytest.raises(Exception) as caught:
        call()
    return caught.value, time.monotonic() - start


def _assert_typed(ws: Workspace, error: BaseException, reason: StoreFailure, elapsed: float, bound: float,
                  case: str) -> None:
    print(f"\nmeasured: {case}: {type(error).__name__}({getattr(error, 'reason', '-')}) after {elapsed:.2f} s "
          f"(bound {bound:.0f} s)")
    assert isinstance(error, StoreError), repr(error)
    assert error.reason == reason, str(error)
    assert (exit_code_for(error), http_status_for(error)) == (1, 503)
    assert elapsed < bound
    events = _store_events(ws)
    assert events and events[-1]["reason"] == reason.value, events


class _Source(io.RawIOBase):
    """``total`` random bytes; ``at_offset`` runs once when that many bytes have been read."""

    def __init__(self, total: int, at_offset: int, action: Callable[[], None]) -> None:
        self.total, self.at_offset, self.action, self.sent = total, at_offset, action, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self.sent >= self.at_offset and self.action is not None:
            action, self.action = self.action, None  # type: ignore[assignment]
            action()
        n = min(len(buffer), self.total - self.sent)
        buffer[:n] = os.urandom(n)
        self.sent += n
        return n


def test_ingest_analyse_and_verify_on_s3(moto: MotoServer, tmp_path: Path, small_video: Path) -> None:
    ws = _workspace(tmp_path, store=StoreSettings())  # the endpoint comes from AWS_ENDPOINT_URL alone
    assert not ws.store.is_local and ws.store.bucket == BUCKET
    result = ingest_path(ws, small_video)
    assert ws.store.get_bytes(raw_key(result.sha256)) == small_video.read_bytes()
    assert ws.store.list("tmp") == []
    run = analyze_asset(ws, result.asset_id, only=["metadata"])
    assert run.ran == ["metadata"] and not run.failed
    assert verify(ws).objects_checked == 1
    ws.store.put_bytes(raw_key(result.sha256), b"tampered")
    with pytest.raises(IntegrityError):
        verify(ws)
    assert _store_events(ws) == []
    ws.close()


def test_seals_on_s3_reuse_digests_by_entity_tag(moto: MotoServer, tmp_path: Path, small_video: Path) -> None:
    """A seal does not download an object whose entity tag is the one it was hashed (or written) under."""
    ws = _workspace(tmp_path, store=StoreSettings())
    raw = raw_key(ingest_path(ws, small_video).sha256)
    artifact = "derived/x/stage/a.bin"
    ws.store.put_bytes(artifact, b"a" * 100)
    keys = [raw, artifact]
    assert ws.store.list_identities("derived/x/") == {artifact: ws.store.identity(artifact)}  # one listing
    writer = ObjectDigests(ws.store)  # the upload's verified hash and the written bytes' are known
    assert writer.of(keys) == hash_objects(ws.store, keys) and writer.hashed == 0
    other = ObjectDigests(ObjectStore(ws.store.url, ws.store.settings))  # another process: hashes once
    assert other.of(keys) == hash_objects(ws.store, keys) and other.hashed == 2
    assert other.of(keys) == hash_objects(ws.store, keys) and other.hashed == 2
    ws.store.put_bytes(artifact, b"b" * 100)  # rewritten with other bytes: a new entity tag
    assert other.of(keys)[artifact] == hashlib.sha256(b"b" * 100).hexdigest() and other.hashed == 3
    ws.close()


def test_multipart_upload_is_streamed_and_verified(moto: MotoServer, tmp_path: Path) -> None:
    """A 12 MiB upload goes up in 5 MiB parts; the object read back hashes to the intake hash."""
    ws = _workspace(tmp_path)
    sha256, size, tmp_key = ws.store.ingest_stream(io.BufferedReader(_Source(12 * 1024**2, 1 << 62, lambda: None)),
                                                   max_bytes=1 << 30)
    assert size == 12 * 1024**2
    head = moto.client().head_object(Bucket=BUCKET, Key=f"lab1/{tmp_key}")
    assert head["ContentLength"] == size and head["ETag"].endswith('-3"')  # three parts: 5 + 5 + 2 MiB
    assert ws.store.sha256(tmp_key) == (sha256, size)
    ws.close()


def test_a_write_corrupted_in_transit_is_caught_by_the_read_back(moto: MotoServer, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """One bit of every chunk flips on its way to the server: the read-back hash differs, nothing is kept."""
    ws = _workspace(tmp_path)
    real_open = ws.store._open_for_write

    def corrupting(key: str) -> object:
        handle = real_open(key)
        write = handle.write
        handle.write = lambda chunk: write(bytes([chunk[0] ^ 1]) + chunk[1:])
        return handle

    monkeypatch.setattr(ws.store, "_open_for_write", corrupting)
    source = io.BytesIO(os.urandom(3 * 1024**2))
    error, elapsed = _timed(lambda: ws.store.ingest_stream(source, max_bytes=1 << 30))
    _assert_typed(ws, error, StoreFailure.WRITE_MISMATCH, elapsed, _bound_s(FAST), "write corrupted in transit")
    assert ws.store.list("tmp") == []
    ws.close()


def test_missing_bucket_is_a_typed_error(moto: MotoServer, tmp_path: Path, small_video: Path) -> None:
    """The upload fails when the object is completed (a one-shot PUT on close): typed, audited, no hang."""
    ws = _workspace(tmp_path, store_url="s3://no-such-bucket/lab1")
    error, elapsed = _timed(lambda: ingest_path(ws, small_video))
    _assert_typed(ws, error, StoreFailure.BUCKET_MISSING, elapsed, _bound_s(FAST), "missing bucket (ingest)")
    assert _store_events(ws)[-1]["operation"] == "upload"
    ws.close()


def test_missing_bucket_exits_1_from_the_cli(moto: MotoServer, tmp_path: Path, small_video: Path) -> None:
    env = {**os.environ, "TAMPERSCOPE_HOME": str(tmp_path / "home"), "TAMPERSCOPE_STORE_URL": "s3://no-such-bucket/x",
           "TAMPERSCOPE_STORE__ATTEMPTS": "2", "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-c", "from tamperscope.cli.main import main; main()", "ingest",
                           str(small_video)], env=env,
                          capture_output=True, text=True, timeout=120)
    print(f"\nmeasured: missing bucket (CLI process, incl. start-up): exit {done.returncode} after "
          f"{time.monotonic() - start:.2f} s")
    assert done.returncode == 1, done.stderr
    assert "bucket_missing" in done.stderr


def test_missing_bucket_is_503_from_the_api(moto: MotoServer, tmp_path: Path, small_video: Path) -> None:
    from fastapi.testclient import TestClient

    from tamperscope.api.main import create_app
    from tamperscope.api.tokens import create_token

    ws = _workspace(tmp_path, store_url="s3://no-such-bucket/lab1")
    token = create_token(ws, "alice")
    with TestClient(create_app(ws.settings)) as client:
        start = time.monotonic()
        response = client.post("/api/assets", params={"name": "clip.mp4"}, content=small_video.read_bytes(),
                               headers={"Authorization": f"Bearer {token}"})
        elapsed = time.monotonic() - start
    print(f"\nmeasured: missing bucket (API upload): HTTP {response.status_code} after {elapsed:.2f} s")
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "StoreError" and response.json()["reason"] == "bucket_missing"
    assert elapsed < _bound_s(FAST)
    assert _store_events(ws)[-1]["reason"] == "bucket_missing"
    ws.close()


def test_unknown_credentials_are_access_denied(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                               small_video: Path) -> None:
    """A server that checks credentials (moto with authentication on) refuses the keys: typed, not retried."""
    server = start_moto(INITIAL_NO_AUTH_ACTION_COUNT="0")
    for key, value in server.env.items():
        monkeypatch.setenv(key, value)
    try:
        ws = _workspace(tmp_path)
        error, elapsed = _timed(lambda: ingest_path(ws, small_video))
        _assert_typed(ws, error, StoreFailure.ACCESS_DENIED, elapsed, _bound_s(FAST), "access denied")
        ws.close()
    finally:
        server.stop()


def test_bucket_deleted_mid_run(moto: MotoServer, tmp_path: Path, small_video: Path, small_jpeg: Path) -> None:
    """The bucket disappears after an ingest: the analysis, the next ingest and verify each fail typed and fast
    (never re-sealing the asset as if its objects had been deleted one by one)."""
    ws = _workspace(tmp_path)
    first = ingest_path(ws, small_video)
    client = moto.client()
    for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)
    for case, call in [("analyze", lambda: analyze_asset(ws, first.asset_id, only=["metadata"])),
                       ("ingest", lambda: ingest_path(ws, small_jpeg)),
                       ("verify", lambda: verify(ws))]:
        error, elapsed = _timed(call)
        _assert_typed(ws, error, StoreFailure.BUCKET_MISSING, elapsed, _bound_s(FAST), f"bucket deleted ({case})")
    with ws.db.read_session() as session:
        failed = session.execute(select(AuditEvent.details_json).where(AuditEvent.action == "stage.failed")
                                 ).scalars().one()
    assert "StoreError" in str(failed["error"])
    ws.close()


def test_bucket_deleted_mid_upload(moto: MotoServer, tmp_path: Path) -> None:
    """The bucket is deleted while a multipart upload is under way (two parts up): the next part fails typed."""
    ws = _workspace(tmp_path)
    source = io.BufferedReader(_Source(20 * 1024**2, 11 * 1024**2, lambda: moto.client().delete_bucket(Bucket=BUCKET)))
    error, elapsed = _timed(lambda: ingest_stream(ws, source, IntakeRecord("big.bin")))
    _assert_typed(ws, error, StoreFailure.BUCKET_MISSING, elapsed, _bound_s(FAST), "bucket deleted mid-upload")
    ws.close()


@pytest.mark.slow
def test_server_stopped_mid_upload(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server (its own: it is stopped) dies after two 5 MiB parts went up: the next part fails typed in bound."""
    server = start_moto()
    try:
        for key, value in server.env.items():
            monkeypatch.setenv(key, value)
        server.client().create_bucket(Bucket=BUCKET)
        ws = _workspace(tmp_path)
        source = io.BufferedReader(_Source(20 * 1024**2, 11 * 1024**2, server.stop))
        error, elapsed = _timed(lambda: ingest_stream(ws, source, IntakeRecord("big.bin")))
        _assert_typed(ws, error, StoreFailure.UNREACHABLE, elapsed, _bound_s(FAST, calls=3),
                      "server stopped mid-upload")
        ws.close()
    finally:
        server.stop()


def test_source_failing_mid_upload_leaves_nothing(moto: MotoServer, tmp_path: Path) -> None:
    """The uploader's stream breaks after two parts: its error propagates at once (it is not a store failure), the
    multipart upload is aborted and no temporary object is completed."""
    ws = _workspace(tmp_path)

    def broken() -> None:
        raise ConnectionResetError("client went away")

    source = io.BufferedReader(_Source(20 * 1024**2, 11 * 1024**2, broken))
    error, elapsed = _timed(lambda: ingest_stream(ws, source, IntakeRecord("big.bin")))
    print(f"\nmeasured: source stream raising mid-upload: {type(error).__name__} after {elapsed:.2f} s")
    assert isinstance(error, ConnectionResetError)
    assert elapsed < _bound_s(FAST)
    assert moto.client().list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    assert ws.store.list("tmp") == []
    assert _store_events(ws) == []
    ws.close()


def test_unreachable_endpoint(tmp_path: Path, small_video: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing listens on the port: connection refused, retried, then typed."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    settings = FAST.model_copy(update={"endpoint_url": f"http://127.0.0.1:{free_port()}", "region": "us-east-1"})
    ws = _workspace(tmp_path, store=settings)
    error, elapsed = _timed(lambda: ingest_path(ws, small_video))
    _assert_typed(ws, error, StoreFailure.UNREACHABLE, elapsed, _bound_s(settings), "unreachable endpoint")
    ws.close()


def test_silent_endpoint_times_out(tmp_path: Path, small_video: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that accepts connections and never answers: each attempt ends at the read timeout."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    settings = FAST.model_copy(update={"endpoint_url": f"http://127.0.0.1:{listener.getsockname()[1]}",
                                       "region": "us-east-1", "read_timeout_s": 1.0, "attempts": 2})
    ws = _workspace(tmp_path, store=settings)
    try:
        error, elapsed = _timed(lambda: ingest_path(ws, small_video))
        _assert_typed(ws, error, StoreFailure.TIMEOUT, elapsed, _bound_s(settings), "silent endpoint (read timeout)")
        assert elapsed >= settings.read_timeout_s * settings.attempts  # it did wait for the timeouts, no more
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()
        ws.close()
