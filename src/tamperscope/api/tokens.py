"""API tokens: random secrets printed once; only their SHA-256 is stored (``api_tokens``)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime

from sqlalchemy import select

from tamperscope.custody.audit import append_event
from tamperscope.errors import AuthError, UsageError
from tamperscope.store.models import ApiToken
from tamperscope.workspace import Workspace


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(ws: Workspace, name: str) -> str:
    """Create a token for ``name`` and return it (the only time it is visible)."""
    if not name or len(name) > 128:
        raise UsageError("token name must be 1-128 characters")
    token = "tsk_" + secrets.token_urlsafe(32)
    with ws.db.session() as session:
        if session.get(ApiToken, name) is not None:
            raise UsageError(f"a token named {name!r} exists")
        session.add(ApiToken(name=name, token_sha256=token_digest(token), created_at=datetime.now(UTC),
                             revoked=False))
        append_event(session, action="api.token_created", who=ws.actor, details={"name": name})
    return token


def token_owner(ws: Workspace, token: str | None) -> str:
    """The name of a valid, unrevoked token; :class:`AuthError` otherwise."""
    if not token:
        raise AuthError("missing API token")
    with ws.db.session() as session:
        row = session.execute(select(ApiToken).where(ApiToken.token_sha256 == token_digest(token))).scalar_one_or_none()
        if row is None or row.revoked:
            raise AuthError("invalid API token")
        return row.name
