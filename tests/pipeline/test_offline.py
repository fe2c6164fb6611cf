"""Analysis never touches the network: the whole pipeline runs with sockets blocked."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from tamperscope.custody.intake import ingest_path
from tamperscope.pipeline.runner import analyze_asset
from tamperscope.workspace import Workspace


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every outbound connection or name lookup from this process raises and is recorded."""
    attempts: list[str] = []

    def refuse(what: str) -> Any:
        def blocked(*args: Any, **kwargs: Any) -> Any:
            attempts.append(f"{what}{args[1:] if what.startswith('socket.') else args}")
            raise OSError(f"network blocked in tests: {what}")
        return blocked

    monkeypatch.setattr(socket.socket, "connect", refuse("socket.connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", refuse("socket.connect_ex"))
    monkeypatch.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))
    monkeypatch.setattr(socket, "create_connection", refuse("create_connection"))
    return attempts


@pytest.mark.parametrize("fixture", ["small_jpeg", "small_video"])
def test_whole_pipeline_runs_offline(fixture: str, request: pytest.FixtureRequest, ws: Workspace,
                                     no_network: list[str]) -> None:
    path: Path = request.getfixturevalue(fixture)
    asset_id = ingest_path(ws, path).asset_id
    result = analyze_asset(ws, asset_id)
    assert no_network == []
    assert result.failed == {}
    assert "metadata" in result.ran and "fusion" in result.ran
