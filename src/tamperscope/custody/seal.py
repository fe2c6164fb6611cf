"""Evidence seals: every write of evidence records, in the audit chain, the hashes of what it left behind.

Evidence is grouped per asset: ``assets/<a>``, ``shots/<a>``, ``frames/<a>``, ``windows/<a>``, ``reports/<a>``,
``detections/<a>/<stage>`` (row key -> SHA-256 of the row's canonical JSON) and ``objects/<a>`` (store key ->
SHA-256 of the bytes: the raw upload and everything under ``derived/<a>/``). An ``evidence.sealed`` event holds
the whole current content of each group it names, so the last seal of a group is what the group must be.
:func:`compare` names every row and object that changed, is missing, or was added since its seal.

The seals of one analysis (one after each stage) hash each unchanged object once (:class:`ObjectDigests`);
``verify`` (:func:`current_state`) always hashes every object from its bytes.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from tamperscope.custody.audit import append_event, canonical_json
from tamperscope.custody.digests import LocalIdentity, ObjectIdentity
from tamperscope.custody.objectstore import ObjectStore
from tamperscope.errors import NotFoundError
from tamperscope.store.models import Asset, AuditEvent, Detection, Frame, Report, Shot, Window

SEAL_ACTION = "evidence.sealed"
REPORT_SEAL_ACTION = "report.sealed"  # a report write's seal (reports leave their own events out, see report/)
SEAL_ACTIONS = (SEAL_ACTION, REPORT_SEAL_ACTION)
TABLES: dict[str, type[Any]] = {"assets": Asset, "shots": Shot, "frames": Frame, "windows": Window,
                                "detections": Detection, "reports": Report}
#: columns that are bookkeeping, not evidence: ``split`` is reassigned by ``tamperscope split`` at any time
EXCLUDED_COLUMNS: dict[str, frozenset[str]] = {"assets": frozenset({"split"})}
UNOWNED = "objects/-"  # stored objects no asset accounts for
Groups = dict[str, dict[str, str]]


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):  # SQLite returns naive UTC, PostgreSQL aware: hash the same instant alike
        return (value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value).isoformat()
    return value


def row_digest(table: str, row: Mapping[str, Any]) -> str:
    """SHA-256 of one row's evidence columns as canonical JSON."""
    skip = EXCLUDED_COLUMNS.get(table, frozenset())
    return hashlib.sha256(canonical_json({k: _plain(v) for k, v in row.items() if k not in skip})).hexdigest()


def _table(name: str) -> Table:
    return TABLES[name].__table__  # type: ignore[no-any-return]


def group_of(table: str, row: Mapping[str, Any]) -> str:
    if table == "detections":
        return f"detections/{row['asset_id']}/{row['stage']}"
    return f"{table}/{row['asset_id']}"


def _key_of(table: str, row: Mapping[str, Any]) -> str:
    return ",".join(str(row[c.name]) for c in _table(table).primary_key.columns)


def row_groups(session: Session, tables: Iterable[str], asset_ids: Iterable[str] | None = None) -> Groups:
    """Hashes of every row of ``tables`` (of ``asset_ids``, or of all assets), grouped."""
    groups: Groups = {}
    ids = None if asset_ids is None else sorted(set(asset_ids))
    for name in tables:
        table = _table(name)
        query = select(table)
        if ids is not None:
            query = query.where(table.c.asset_id.in_(ids))
        for row in session.execute(query).mappings():
            groups.setdefault(group_of(name, row), {})[_key_of(name, row)] = row_digest(name, row)
    return groups


def hash_objects(store: ObjectStore, keys: Iterable[str]) -> dict[str, str]:
    """SHA-256 of each stored object (streamed)."""
    return {key: store.sha256(key)[0] for key in keys}


def upload_keys(storage_key: str) -> list[str]:
    """Both places an upload's bytes can live: raw and quarantine (a file rejected once and accepted later, when
    today's rules validate it, keeps its quarantined copy as the evidence of the rejection)."""
    area, rest = storage_key.split("/", 1)
    return [f"{a}/{rest}" for a in ("raw", "quarantine")] if area in ("raw", "quarantine") else [storage_key]


def asset_object_keys(store: ObjectStore, asset_id: str, storage_key: str) -> list[str]:
    """The upload (raw and/or quarantined copy) and every derived artifact of one asset."""
    return list(asset_object_identities(store, asset_id, storage_key))


def asset_object_identities(store: ObjectStore, asset_id: str,
                            storage_key: str) -> dict[str, ObjectIdentity | None]:
    """:func:`asset_object_keys` with each object's identity, in as few store calls as it takes (one listing of the
    derived artifacts, one look at each place the upload can be)."""
    found: dict[str, ObjectIdentity | None] = {}
    for key in upload_keys(storage_key):
        try:
            found[key] = store.identity(key)
        except NotFoundError:
            continue
    found.update(store.list_identities(f"derived/{asset_id}/"))
    return found


class ObjectDigests:
    """SHA-256 of stored objects for the seals of an analysis, so that each seal hashes only the objects written
    (or changed in any way) since they were last hashed, instead of all of them again.

    Digests live in the store's :class:`~tamperscope.custody.digests.DigestMemo`, so every seal one process
    makes with that store shares them (the parts of a batch analysis run as separate tasks), with the digests of
    the bytes the store itself wrote. A digest is reused only while the object's identity is unchanged (a local
    file's device, inode, size and times; a remote object's size and entity tag). A local file changed less than
    ``settle_s`` before it was hashed is not remembered, as its next change could fall on the same coarse
    timestamp; an entity tag is computed from the bytes, so it needs no such wait. A remote store without entity
    tags is hashed every time. A reused digest can only be the one a seal already recorded, or that of the bytes
    the store wrote: ``verify`` still re-hashes every object and names any change.
    """

    def __init__(self, store: ObjectStore, *, settle_s: float = 1.0) -> None:
        self.store = store
        self.settle_ns = int(settle_s * 1e9)
        self.hashed = 0  # objects hashed from their bytes, for tests and measurements

    def of(self, keys: Iterable[str]) -> dict[str, str]:
        """SHA-256 of each object, hashed from its bytes unless it is unchanged since it was last hashed."""
        return self.of_identified({key: self.store.identity(key) for key in keys})

    def of_identified(self, identities: Mapping[str, ObjectIdentity | None]) -> dict[str, str]:
        """:meth:`of` for objects whose identities were already read (:func:`asset_object_identities`)."""
        memo = self.store.digests
        digests: dict[str, str] = {}
        for key, before in identities.items():
            known = None if before is None else memo.get(key, before)
            if known is not None:
                digests[key] = known
                continue
            started = time.time_ns()
            digests[key] = self.store.sha256(key)[0]
            self.hashed += 1
            if before is not None and self._settled(before, started) and self.store.identity(key) == before:
                memo.put(key, before, digests[key])
            else:
                memo.forget(key)
        return digests

    def _settled(self, identity: ObjectIdentity, hashing_started_ns: int) -> bool:
        """Whether a digest taken under ``identity`` may be remembered: a local file must have last changed
        ``settle_s`` before the hashing began; a remote object's entity tag needs no wait."""
        if not isinstance(identity, LocalIdentity):
            return True
        return identity.ctime_ns < hashing_started_ns - self.settle_ns


def asset_objects(store: ObjectStore, asset_id: str, storage_key: str,
                  digests: ObjectDigests | None = None) -> dict[str, str]:
    """Hashes of one asset's objects: compute them before the write transaction, not while holding the lock.

    ``digests`` (one per analysis) reuses the hashes of objects unchanged since its previous call.
    """
    if digests is None:
        return hash_objects(store, asset_object_keys(store, asset_id, storage_key))
    return digests.of_identified(asset_object_identities(store, asset_id, storage_key))


def seal(session: Session, *, who: str, asset_id: str, groups: Iterable[str],
         objects: dict[str, str] | None = None, action: str = SEAL_ACTION) -> AuditEvent:
    """Append an ``evidence.sealed`` event holding the current content of ``groups`` (and objects, if given).

    Call it in the transaction that wrote the rows, after the writes; a named group with no rows is sealed
    empty (its rows were deleted on purpose).
    """
    session.flush()
    names = sorted(set(groups))
    tables = sorted({name.split("/", 1)[0] for name in names})
    found = row_groups(session, tables, [asset_id])
    sealed: Groups = {name: found.get(name, {}) for name in names}
    if objects is not None:
        sealed[f"objects/{asset_id}"] = dict(sorted(objects.items()))
    return append_event(session, action=action, who=who, asset_id=asset_id, details={"groups": sealed})


def sealed_state(session: Session) -> Groups:
    """What every group must hold: the content of its last seal in the chain."""
    state: Groups = {}
    events = (select(AuditEvent.details_json).where(AuditEvent.action.in_(SEAL_ACTIONS))
              .order_by(AuditEvent.event_id))
    for details in session.execute(events).scalars():
        state.update((details or {}).get("groups", {}))
    return state


def current_state(session: Session, store: ObjectStore) -> Groups:
    """What every group holds now: all evidence rows, and every object in the store, hashed."""
    groups = row_groups(session, TABLES)
    owners = {key: aid for aid, stored in session.execute(select(Asset.asset_id, Asset.storage_key)).all()
              for key in upload_keys(stored)}
    for key in [k for area in ("raw", "quarantine", "derived") for k in store.list_identities(area)]:
        if key in owners:
            group = f"objects/{owners[key]}"
        elif key.startswith("derived/"):
            group = f"objects/{key.split('/')[1]}"
        else:
            group = UNOWNED
        groups.setdefault(group, {})[key] = hash_objects(store, [key])[key]
    return groups


@dataclass(frozen=True)
class Difference:
    """One named difference between sealed and current evidence."""

    kind: str  # changed | missing | added
    group: str
    key: str

    def __str__(self) -> str:
        table, _, rest = self.group.partition("/")
        asset = rest.split("/", 1)[0]
        if table == "objects":
            owner = f" (asset {asset})" if self.group != UNOWNED else " (no asset)"
            return f"object {self.key}{owner}: {self.kind}"
        stage = f", stage {rest.split('/', 1)[1]}" if table == "detections" else ""
        return f"{table} row {self.key} (asset {asset}{stage}): {self.kind}"


def compare(sealed: Groups, current: Groups, asset_id: str | None = None) -> list[Difference]:
    """Every row or object that differs from its seal; only ``asset_id``'s groups when given."""

    def wanted(group: str) -> bool:
        return asset_id is None or group.split("/")[1] == asset_id

    out: list[Difference] = []
    for group in sorted(g for g in set(sealed) | set(current) if wanted(g)):
        before, now = sealed.get(group, {}), current.get(group, {})
        for key in sorted(set(before) | set(now)):
            if key not in now:
                out.append(Difference("missing", group, key))
            elif key not in before:
                out.append(Difference("added", group, key))
            elif before[key] != now[key]:
                out.append(Difference("changed", group, key))
    return out
