"""Request dependencies: the shared workspace, token authentication, and the per-token workspace view."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import Depends, Header, Request

from tamperscope.api.tokens import token_owner
from tamperscope.workspace import Workspace


def base_workspace(request: Request) -> Workspace:
    return request.app.state.workspace


def caller(
    ws: Annotated[Workspace, Depends(base_workspace)],
    authorization: Annotated[str | None, Header()] = None,
    x_api_token: Annotated[str | None, Header()] = None,
) -> str:
    """The token's name; ``Authorization: Bearer <token>`` or ``X-API-Token``; raises ``AuthError`` (401)."""
    token = x_api_token
    if authorization and authorization.lower().startswith("bearer "):
        token = authorization[7:].strip()
    return token_owner(ws, token)


def workspace(ws: Annotated[Workspace, Depends(base_workspace)],
              who: Annotated[str, Depends(caller)]) -> Workspace:
    """The workspace with ``actor`` set to the token's name, so audit events name who caused them."""
    return replace(ws, settings=ws.settings.model_copy(update={"actor": who}))


WorkspaceDep = Annotated[Workspace, Depends(workspace)]
