"""An app on a temporary workspace, a token, and a client (FastAPI's TestClient runs the lifespan)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient

from tamperscope.api.main import create_app
from tamperscope.api.tokens import create_token
from tamperscope.settings import Settings
from tamperscope.workspace import Workspace


@pytest.fixture
def api_settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", actor="server-operator")


@pytest.fixture
def token(api_settings: Settings) -> str:
    ws = Workspace.open(api_settings)
    try:
        return create_token(ws, "alice")
    finally:
        ws.close()


@pytest.fixture
def client(api_settings: Settings, token: str) -> Iterator[TestClient]:
    with TestClient(create_app(api_settings)) as test_client:
        test_client.headers["Authorization"] = f"Bearer {token}"
        yield test_client


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server(api_settings: Settings, token: str) -> Iterator[str]:
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(api_settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
