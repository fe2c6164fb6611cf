"""An app on a temporary workspace, a token, and a client (FastAPI's TestClient runs the lifespan)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
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
