"""``verify``: re-hash stored objects against their recorded SHA-256 and walk the audit chain."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select

from tamperscope.custody.audit import append_event, verify_chain
from tamperscope.custody.hashing import sha256_stream
from tamperscope.errors import IntegrityError, NotFoundError
from tamperscope.pipeline.runner import find_asset
from tamperscope.store.models import Asset, Report
from tamperscope.workspace import Workspace


@dataclass
class VerifyResult:
    objects_checked: int = 0
    events_checked: int = 0
    head_hash: str = ""
    problems: list[str] = field(default_factory=list)


def verify(ws: Workspace, ref: str | None = None) -> VerifyResult:
    """Check every asset's bytes (or one asset's), report files, and the whole audit chain.

    Raises :class:`IntegrityError` naming each broken object or event; records the check in the log.
    """
    result = VerifyResult()
    with ws.db.session() as session:
        assets = [find_asset(session, ref)] if ref else list(session.execute(select(Asset)).scalars())
        targets = [(a.asset_id, a.storage_key, a.sha256) for a in assets]
        reports = session.execute(
            select(Report).where(Report.asset_id.in_([a.asset_id for a in assets]))).scalars().all()
        for report in reports:
            for uri, digest in ((report.uri_json, report.sha256_json), (report.uri_pdf, report.sha256_pdf)):
                if uri and digest:
                    targets.append((report.asset_id, ws.store.key_of(uri), digest))
    for asset_id, key, expected in targets:
        result.objects_checked += 1
        try:
            with ws.store.open(key) as handle:
                actual, _ = sha256_stream(handle)
        except NotFoundError:
            result.problems.append(f"object {key} (asset {asset_id}) is missing")
            continue
        if actual != expected:
            result.problems.append(f"object {key} (asset {asset_id}) has SHA-256 {actual}, expected {expected}")
    with ws.db.session() as session:
        chain = verify_chain(session)
    result.events_checked = chain.events
    result.head_hash = chain.head_hash
    result.problems.extend(chain.problems)
    if not chain.problems:
        with ws.db.session() as session:
            append_event(session, action="verify", who=ws.actor, asset_id=assets[0].asset_id if ref else None,
                         details={"objects": result.objects_checked, "events": result.events_checked,
                                  "ok": not result.problems, "problems": result.problems[:20]})
    if result.problems:
        raise IntegrityError(result.problems)
    return result
