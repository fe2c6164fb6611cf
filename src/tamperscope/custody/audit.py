"""Append-only, hash-chained audit log.

Each event's hash is SHA-256 over a canonical JSON (sorted keys, no spaces, UTF-8) of its fields,
including its sequence number and the previous event's hash. Editing an event breaks its hash;
deleting or reordering events breaks the chain; truncating the tail disagrees with ``audit_head``.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from tamperscope.store.models import AuditEvent, AuditHead

GENESIS_HASH = "0" * 64
#: key of the PostgreSQL transaction-level advisory lock that makes appends to the chain one at a time
CHAIN_LOCK_KEY = 0x7461_6D70_6572  # "tamper"


def canonical_json(value: Any) -> bytes:
    """The one serialisation that is hashed: sorted keys, compact separators, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def default_actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


def event_hash(
    event_id: int, asset_id: str | None, who: str, when: str, action: str, details: dict[str, Any], prev_hash: str
) -> str:
    payload = {
        "event_id": event_id,
        "asset_id": asset_id,
        "who": who,
        "when": when,
        "action": action,
        "details": details,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical_json(payload)).hexdigest()


def append_event(
    session: Session, *, action: str, who: str, asset_id: str | None = None, details: dict[str, Any] | None = None
) -> AuditEvent:
    """Append one event inside the caller's transaction (the chain is locked until it commits).

    PostgreSQL: a transaction-level advisory lock serialises appenders even before the head row exists;
    SQLite: write sessions already hold the database write lock (``BEGIN IMMEDIATE``). When the session
    carries a signer (the installation key), the new head is signed.
    """
    details = json.loads(canonical_json(details or {}))
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK_KEY})
    head = session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update()).scalar_one_or_none()
    if head is None:
        head = AuditHead(id=1, last_event_id=0, last_hash=GENESIS_HASH)
        session.add(head)
    event_id = head.last_event_id + 1
    when = utc_now_iso()
    digest = event_hash(event_id, asset_id, who, when, action, details, head.last_hash)
    event = AuditEvent(
        event_id=event_id,
        asset_id=asset_id,
        who=who,
        when=when,
        action=action,
        details_json=details,
        prev_hash=head.last_hash,
        hash=digest,
    )
    session.add(event)
    head.last_event_id = event_id
    head.last_hash = digest
    signer = session.info.get("signer")
    head.signature = signer.sign_head(event_id, digest) if signer is not None else None
    session.flush()
    return event


@dataclass(frozen=True)
class ChainCheck:
    events: int
    head_hash: str
    problems: list[str]


def verify_chain(session: Session) -> ChainCheck:
    """Walk every event in order; report edited, deleted, reordered or truncated events."""
    problems: list[str] = []
    expected_prev = GENESIS_HASH
    expected_id = 1
    count = 0
    for event in session.execute(select(AuditEvent).order_by(AuditEvent.event_id)).scalars():
        count += 1
        if event.event_id != expected_id:
            problems.append(f"audit event {expected_id} is missing (next found is {event.event_id})")
            expected_id = event.event_id
        if event.prev_hash != expected_prev:
            problems.append(f"audit event {event.event_id}: previous-hash link broken (deleted or reordered event)")
        recomputed = event_hash(
            event.event_id, event.asset_id, event.who, event.when, event.action, event.details_json or {},
            event.prev_hash,
        )
        if recomputed != event.hash:
            problems.append(f"audit event {event.event_id}: content does not match its hash (edited)")
        expected_prev = event.hash
        expected_id += 1
    head = session.get(AuditHead, 1)
    if head is not None and (head.last_event_id != expected_id - 1 or head.last_hash != expected_prev):
        problems.append(
            f"audit head names event {head.last_event_id} but the chain ends at {expected_id - 1} (truncated)"
        )
    return ChainCheck(events=count, head_hash=expected_prev, problems=problems)
