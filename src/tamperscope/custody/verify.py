"""``verify``: walk the audit chain, check its signed head, compare all evidence with its seals, and
optionally prove that the chain still extends an anchor a third party kept."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from tamperscope.custody.anchor import KEY_ACTION
from tamperscope.custody.audit import append_event, verify_chain
from tamperscope.custody.keys import verify_head
from tamperscope.custody.seal import compare, current_state, sealed_state
from tamperscope.errors import IntegrityError
from tamperscope.store.models import AuditEvent, AuditHead
from tamperscope.store.queries import find_asset
from tamperscope.workspace import Workspace


@dataclass
class VerifyResult:
    objects_checked: int = 0
    rows_checked: int = 0
    events_checked: int = 0
    head_hash: str = ""
    head_signed: bool = False
    anchored_at: int | None = None
    problems: list[str] = field(default_factory=list)


def _signature_problems(ws: Workspace, head: AuditHead | None, chain_key: str | None) -> list[str]:
    """The head must be signed by the chain's key (the last ``key.created``), which must be the local key."""
    problems: list[str] = []
    local = ws.db.signer.public_key if ws.db.signer is not None else None
    if local is not None and chain_key is not None and local != chain_key:
        problems.append(f"the chain's signing key {chain_key[:16]}... is not this installation's key "
                        f"{local[:16]}... (chain rewritten or key replaced)")
    if chain_key is not None and head is not None and not verify_head(
            chain_key, head.last_event_id, head.last_hash, head.signature):
        problems.append(f"audit head (event {head.last_event_id}) is not signed by the chain's key "
                        "(chain rewritten without the key)")
    return problems


def anchor_problems(session: Any, anchor: dict[str, Any], local_key: str | None) -> list[str]:
    """Why the database does not extend ``anchor`` (empty when it does)."""
    event_id, digest = int(anchor["event_id"]), str(anchor["hash"])
    if not verify_head(anchor["public_key"], event_id, digest, anchor["signature"]):
        return ["anchor signature does not verify: the anchor file was altered"]
    problems = []
    if local_key is not None and local_key != anchor["public_key"]:
        problems.append("anchor was signed by another key than this installation's")
    event = session.get(AuditEvent, event_id)
    if event is None:
        problems.append(f"anchored event {event_id} is gone (chain truncated or rewritten)")
    elif event.hash != digest:
        problems.append(f"anchored event {event_id} now has hash {event.hash}, anchor says {digest} "
                        "(chain rewritten)")
    return problems


def verify(ws: Workspace, ref: str | None = None, anchor: dict[str, Any] | None = None) -> VerifyResult:
    """Check the chain, its signed head, every evidence row and stored object against its seal, and the anchor.

    Raises :class:`IntegrityError` naming each changed, missing or added row or object and each broken event;
    a clean check is recorded in the log.
    """
    result = VerifyResult()
    with ws.db.read_session() as session:
        asset_id = find_asset(session, ref).asset_id if ref else None
        chain = verify_chain(session)
        head = session.get(AuditHead, 1)
        chain_key = session.execute(select(AuditEvent.details_json).where(AuditEvent.action == KEY_ACTION)
                                    .order_by(AuditEvent.event_id.desc()).limit(1)).scalar_one_or_none()
        public_key = (chain_key or {}).get("public_key")
        result.problems.extend(chain.problems)
        result.problems.extend(_signature_problems(ws, head, public_key))
        result.head_signed = public_key is not None and head is not None and head.signature is not None
        if anchor is not None:
            local = ws.db.signer.public_key if ws.db.signer is not None else None
            result.problems.extend(anchor_problems(session, anchor, local))
            result.anchored_at = int(anchor["event_id"])
        sealed = sealed_state(session)
        current = current_state(session, ws.store)
    differences = compare(sealed, current, asset_id)
    result.problems.extend(str(d) for d in differences)
    mine = [g for g in current if asset_id is None or g.split("/")[1] == asset_id]
    result.objects_checked = sum(len(current[g]) for g in mine if g.startswith("objects/"))
    result.rows_checked = sum(len(current[g]) for g in mine if not g.startswith("objects/"))
    result.events_checked = chain.events
    result.head_hash = chain.head_hash
    if not chain.problems:
        with ws.db.session() as session:
            append_event(session, action="verify", who=ws.actor, asset_id=asset_id,
                         details={"objects": result.objects_checked, "rows": result.rows_checked,
                                  "events": result.events_checked, "anchored_at": result.anchored_at,
                                  "ok": not result.problems, "problems": result.problems[:20]})
    if result.problems:
        raise IntegrityError(result.problems)
    return result
