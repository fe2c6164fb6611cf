"""Quarantine retention: rejected uploads are kept for ``custody.quarantine_retention_days``, then purged.

A purge records before it deletes: per asset, one ``quarantine.purged`` audit event (key, SHA-256, age) and a
new seal of the asset's objects without the quarantined body, in one transaction; only then is the body
deleted. ``verify`` therefore sees the body as purged on the record, not as missing evidence. A crash between
the record and the delete leaves a body the seal no longer lists (``verify`` names it as added); the next purge
finds it again and deletes it. The asset row, its reject reason and the rest of the audit log stay; each run
leaves one ``quarantine.purge`` event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from tamperscope.custody.audit import append_event
from tamperscope.custody.objectstore import raw_key
from tamperscope.custody.seal import asset_object_keys, hash_objects, seal
from tamperscope.store.db import as_utc
from tamperscope.store.models import Asset
from tamperscope.workspace import Workspace

PURGE_ACTION = "quarantine.purged"  # one per purged body
RUN_ACTION = "quarantine.purge"  # one per purge run: the cutoff and what it freed


@dataclass
class PurgeResult:
    """What a purge deleted (or would delete, on a dry run)."""

    cutoff: datetime
    purged: list[str] = field(default_factory=list)  # asset ids
    bytes_freed: int = 0


def purge_quarantine(ws: Workspace, older_than: timedelta | None = None, *, dry_run: bool = False,
                     now: datetime | None = None) -> PurgeResult:
    """Delete quarantined bodies uploaded more than ``older_than`` ago (default: the retention setting).

    Covers rejected assets and the kept quarantine copy of assets re-validated later (their raw copy holds the
    same bytes).
    """
    age = older_than if older_than is not None else timedelta(days=ws.settings.custody.quarantine_retention_days)
    result = PurgeResult(cutoff=(now or datetime.now(UTC)) - age)
    with ws.db.read_session() as session:
        candidates = [(a.asset_id, a.sha256, a.storage_key, a.size_bytes, as_utc(a.upload_time))
                      for a in session.execute(select(Asset).order_by(Asset.upload_time)).scalars()]
    for asset_id, sha256, storage_key, size, uploaded in candidates:
        key = raw_key(sha256, "quarantine")
        if uploaded > result.cutoff or not ws.store.exists(key):
            continue
        result.purged.append(asset_id)
        result.bytes_freed += size
        if dry_run:
            continue
        remaining = hash_objects(ws.store, [k for k in asset_object_keys(ws.store, asset_id, storage_key) if k != key])
        with ws.db.session() as session:
            append_event(session, action=PURGE_ACTION, who=ws.actor, asset_id=asset_id,
                         details={"storage_key": key, "sha256": sha256, "size": size,
                                  "uploaded": uploaded.isoformat(), "retention_s": age.total_seconds()})
            seal(session, who=ws.actor, asset_id=asset_id, groups=[], objects=remaining)
        ws.store.delete(key)
    if not dry_run:
        with ws.db.session() as session:
            append_event(session, action=RUN_ACTION, who=ws.actor, asset_id=None,
                         details={"cutoff": result.cutoff.isoformat(), "retention_s": age.total_seconds(),
                                  "purged": result.purged, "bytes_freed": result.bytes_freed})
    return result


def parse_age(text: str) -> timedelta:
    """``30d``, ``12h``, ``15m``, ``90s`` or ``2w`` as a duration; a bare number is days."""
    units = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
    text = text.strip().lower()
    unit = text[-1] if text and text[-1] in units else "d"
    number = text[:-1] if text and text[-1] in units else text
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"{text!r} is not an age such as 30d, 12h, 15m or 90s") from None
    if value < 0:
        raise ValueError(f"{text!r}: an age cannot be negative")
    return timedelta(seconds=value * units[unit])
