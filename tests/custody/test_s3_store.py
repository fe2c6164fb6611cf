"""The object store on S3 (moto's server on 127.0.0.1) through the same code path as the local disk."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tamperscope.custody.intake import ingest_path
from tamperscope.custody.objectstore import raw_key
from tamperscope.custody.verify import verify
from tamperscope.errors import IntegrityError
from tamperscope.pipeline.runner import analyze_asset
from tamperscope.settings import Settings
from tamperscope.workspace import Workspace


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    for key, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
                       "FSSPEC_S3_ENDPOINT_URL": endpoint}.items():
        monkeypatch.setenv(key, value)
    import fsspec.config

    fsspec.config.set_conf_env(fsspec.config.conf)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "moto server did not start"
            time.sleep(0.1)
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    s3fs.S3FileSystem(endpoint_url=endpoint).mkdir("evidence")
    yield endpoint
    server.terminate()
    server.wait(timeout=10)
    fsspec.config.conf.pop("s3", None)
    s3fs.S3FileSystem.clear_instance_cache()


def test_ingest_analyse_and_verify_on_s3(s3_endpoint: str, tmp_path: Path, small_video: Path) -> None:
    settings = Settings(home=tmp_path / "home", store_url="s3://evidence/lab1", actor="tester")
    ws = Workspace.open(settings)
    assert not ws.store.is_local
    result = ingest_path(ws, small_video)
    assert ws.store.get_bytes(raw_key(result.sha256)) == small_video.read_bytes()
    assert ws.store.list("tmp") == []
    run = analyze_asset(ws, result.asset_id, only=["metadata"])
    assert run.ran == ["metadata"] and not run.failed
    assert verify(ws).objects_checked == 1
    ws.store.put_bytes(raw_key(result.sha256), b"tampered")
    with pytest.raises(IntegrityError):
        verify(ws)
    ws.close()
    assert os.environ["FSSPEC_S3_ENDPOINT_URL"] == s3_endpoint
