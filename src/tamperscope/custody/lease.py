"""Analysis leases: at most one live ``analyze`` run per asset, and recovery after a run died.

A lease row names the run (random token, actor, host, pid) and expires ``ttl`` seconds after its last renewal;
a background thread renews it every third of that while the run lives. A lease whose time ran out, or whose
process is gone on this host, is stale: the next run takes it over and records that in the audit log.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError as DBIntegrityError

from tamperscope.custody.audit import append_event
from tamperscope.errors import BusyError
from tamperscope.store.db import as_utc
from tamperscope.store.models import AnalysisLease, Asset
from tamperscope.workspace import Workspace


@dataclass(frozen=True)
class Lease:
    """The lease this run holds, and what it took over (None when the asset was free)."""

    asset_id: str
    token: str
    recovered: dict[str, object] | None


def process_alive(host: str, pid: int) -> bool:
    """False only when the process is known to be gone (same host, no such pid); True when unsure."""
    if host != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale_reason(row: AnalysisLease, now: datetime) -> str | None:
    """Why a lease no longer protects a run, or None while its holder may still be working."""
    if as_utc(row.expires_at) <= now:
        return "expired"
    if not process_alive(row.host, row.pid):
        return "holder process is gone"
    return None


def _try_acquire(ws: Workspace, asset_id: str, token: str, ttl_s: float) -> Lease | str:
    """Take the lease in one write transaction; return it, or a message naming the live holder."""
    now = datetime.now(UTC)
    with ws.db.session() as session:
        asset = session.get(Asset, asset_id)
        row = session.get(AnalysisLease, asset_id, with_for_update=True)
        recovered: dict[str, object] | None = None
        if row is not None:
            reason = stale_reason(row, now)
            if reason is None:
                return (f"asset {asset_id} is being analysed by {row.owner} (pid {row.pid} on {row.host}, since "
                        f"{as_utc(row.acquired_at).isoformat(timespec='seconds')}); try again when it finishes")
            recovered = {"reason": reason, "owner": row.owner, "host": row.host, "pid": row.pid,
                         "acquired_at": as_utc(row.acquired_at).isoformat()}
            session.delete(row)
            session.flush()
        elif asset is not None and asset.status == "analyzing":
            recovered = {"reason": "status analyzing without a live lease"}
        session.add(AnalysisLease(asset_id=asset_id, token=token, owner=ws.actor, host=socket.gethostname(),
                                  pid=os.getpid(), acquired_at=now, expires_at=now + timedelta(seconds=ttl_s)))
        if recovered is not None:
            append_event(session, action="analysis.recovered", who=ws.actor, asset_id=asset_id, details=recovered)
        session.flush()
    return Lease(asset_id, token, recovered)


def acquire(ws: Workspace, asset_id: str) -> Lease:
    """Take the asset's lease, waiting up to ``custody.lease_wait_s``; raise :class:`BusyError` if still held."""
    settings = ws.settings.custody
    token = uuid.uuid4().hex
    deadline = time.monotonic() + settings.lease_wait_s
    while True:
        try:
            outcome = _try_acquire(ws, asset_id, token, settings.lease_ttl_s)
        except DBIntegrityError:  # PostgreSQL: another run inserted the row first
            outcome = f"asset {asset_id} is being analysed by another run"
        if isinstance(outcome, Lease):
            return outcome
        if time.monotonic() >= deadline:
            raise BusyError(outcome)
        time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))


def renew(ws: Workspace, lease: Lease) -> bool:
    """Push the expiry forward; False when the lease was taken over (the run should not trust it)."""
    expires = datetime.now(UTC) + timedelta(seconds=ws.settings.custody.lease_ttl_s)
    with ws.db.session() as session:
        done = session.execute(update(AnalysisLease).where(
            AnalysisLease.asset_id == lease.asset_id, AnalysisLease.token == lease.token).values(expires_at=expires))
    return bool(getattr(done, "rowcount", 0))


def release(ws: Workspace, lease: Lease) -> None:
    with ws.db.session() as session:
        session.execute(delete(AnalysisLease).where(
            AnalysisLease.asset_id == lease.asset_id, AnalysisLease.token == lease.token))


@contextlib.contextmanager
def hold(ws: Workspace, asset_id: str) -> Iterator[Lease]:
    """Hold the asset's lease for the block, renewing it in the background; released on any exit."""
    lease = acquire(ws, asset_id)
    stop = threading.Event()
    interval = ws.settings.custody.lease_ttl_s / 3

    def renewer() -> None:
        while not stop.wait(interval):
            with contextlib.suppress(Exception):  # a missed renewal only shortens the lease
                renew(ws, lease)

    thread = threading.Thread(target=renewer, name="lease-renewer", daemon=True)
    thread.start()
    try:
        yield lease
    finally:
        stop.set()
        thread.join()
        release(ws, lease)
