"""API tokens: printed once, stored only as SHA-256, names unique, revoked tokens refused."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from tamperscope.api.tokens import create_token, token_owner
from tamperscope.errors import AuthError, UsageError
from tamperscope.settings import Settings
from tamperscope.store.models import ApiToken, AuditEvent
from tamperscope.workspace import Workspace


def test_token_is_stored_hashed_and_resolves_to_its_name(ws: Workspace) -> None:
    token = create_token(ws, "bob")
    with ws.db.session() as session:
        row = session.execute(select(ApiToken)).scalar_one()
        assert row.token_sha256 == hashlib.sha256(token.encode()).hexdigest()
        assert token not in repr(row.__dict__)
        assert session.execute(select(AuditEvent.action)).scalars().all() == ["api.token_created"]
    assert token_owner(ws, token) == "bob"
    with pytest.raises(UsageError):
        create_token(ws, "bob")
    with pytest.raises(AuthError):
        token_owner(ws, token + "x")
    with ws.db.session() as session:
        session.execute(select(ApiToken)).scalar_one().revoked = True
    with pytest.raises(AuthError):
        token_owner(ws, token)


def test_cli_prints_a_token_once(tmp_path: Path) -> None:
    exe = str(Path(sys.executable).with_name("tamperscope"))
    out = subprocess.run([exe, "--home", str(tmp_path / "home"), "token", "create", "carol"], capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out.startswith("tsk_") and len(out) > 40
    ws = Workspace.open(Settings(home=tmp_path / "home"))
    try:
        assert token_owner(ws, out) == "carol"
    finally:
        ws.close()
