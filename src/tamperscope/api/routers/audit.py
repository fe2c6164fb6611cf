"""The audit trail and whole-store verification."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter

from tamperscope.api.dependencies import WorkspaceDep
from tamperscope.custody.verify import verify
from tamperscope.store import queries

router = APIRouter(prefix="/api", tags=["custody"])


@router.get("/audit", summary="Audit events, optionally of one asset")
def audit(ws: WorkspaceDep, asset: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
    with ws.db.session() as session:
        asset_id = queries.find_asset(session, asset).asset_id if asset else None
        rows = queries.audit_events(session, asset_id, limit=min(limit, 5000))
        return [{"event_id": e.event_id, "asset_id": e.asset_id, "who": e.who, "when": e.when, "action": e.action,
                 "details": e.details_json, "prev_hash": e.prev_hash, "hash": e.hash} for e in rows]


@router.post("/verify", summary="Re-hash stored bytes (all or one asset) and the audit chain; 409 on failure")
def verify_store(ws: WorkspaceDep, asset: str | None = None) -> dict[str, Any]:
    return asdict(verify(ws, asset))
