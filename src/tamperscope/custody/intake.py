"""Intake: hash while storing, deduplicate by content, validate without trusting, quarantine what fails."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError as DBIntegrityError

from tamperscope._version import __version__
from tamperscope.custody.audit import append_event
from tamperscope.custody.objectstore import raw_key
from tamperscope.custody.seal import seal
from tamperscope.errors import InputRejectedError, RejectReason
from tamperscope.probe.validate import Validation, validate_file
from tamperscope.store.models import Asset
from tamperscope.workspace import Workspace


@dataclass(frozen=True)
class IntakeRecord:
    """Who brought what, from where, under which licence."""

    original_name: str
    source: str | None = None
    license: str | None = None
    label: str | None = None
    subject: str | None = None


@dataclass(frozen=True)
class IntakeResult:
    asset_id: str
    sha256: str
    size: int
    status: str
    duplicate: bool
    reject_reason: str | None = None


def asset_id_for(sha256: str) -> str:
    """Deterministic asset id: the same bytes are the same asset on every installation."""
    return sha256[:16]


def ingest_path(ws: Workspace, path: Path, record: IntakeRecord | None = None) -> IntakeResult:
    """Ingest one local file (see :func:`ingest_stream`)."""
    record = record or IntakeRecord(original_name=path.name, source=str(path))
    with open(path, "rb", buffering=0) as handle:
        return ingest_stream(ws, handle, record)


def _record_duplicate(ws: Workspace, sha256: str, size: int, details: dict[str, object]) -> IntakeResult | None:
    """If an asset with ``sha256`` exists, log that it came again and return it; else None."""
    with ws.db.session() as session:
        existing = session.execute(select(Asset).where(Asset.sha256 == sha256)).scalar_one_or_none()
        if existing is None:
            return None
        append_event(session, action="intake.duplicate", who=ws.actor, asset_id=existing.asset_id, details=details)
        return IntakeResult(existing.asset_id, sha256, size, existing.status, True, existing.reject_reason)


def _unless_rejected(duplicate: IntakeResult) -> IntakeResult:
    """A repeat of bytes that were rejected is rejected again, with the stored reason (exit 3, HTTP 422)."""
    if duplicate.status != "rejected":
        return duplicate
    reason = RejectReason(duplicate.reject_reason or RejectReason.CORRUPT_STREAM.value)
    raise InputRejectedError(reason, "these bytes were already rejected at intake", asset_id=duplicate.asset_id)


def _apply_validation(asset: Asset, validation: Validation) -> None:
    asset.status = "accepted"
    asset.media_type = validation.media_type
    asset.mime = validation.mime
    asset.container = validation.container
    asset.duration_ms = validation.duration_ms
    asset.width = validation.width
    asset.height = validation.height
    asset.fps = validation.fps
    asset.probe_json = validation.probe_json


def _revalidate(ws: Workspace, duplicate: IntakeResult, tmp_key: str, local: Path,
                details: dict[str, object]) -> IntakeResult:
    """Bytes rejected before come again: validate them with today's rules (the accepted formats or the validator
    may have changed since). Still invalid: rejected again with the stored reason. Valid now: the new upload
    becomes the raw object, the asset is accepted and the audit log says it was re-validated (the quarantined
    copy stays as the evidence of the earlier rejection). ``local`` holds the new upload's verified bytes."""
    try:
        validation = validate_file(local, ws.settings.limits)
    except InputRejectedError:
        ws.store.delete(tmp_key)
        return _unless_rejected(duplicate)
    key = raw_key(duplicate.sha256, "raw")
    ws.store.promote(tmp_key, key, duplicate.sha256)
    # both copies hold the bytes hashed at upload (the quarantined one unless purged); a rejected asset has no
    # derived objects to hash
    quarantined = raw_key(duplicate.sha256, "quarantine")
    objects = {k: duplicate.sha256 for k in (key, quarantined) if k == key or ws.store.exists(k)}
    with ws.db.session() as session:
        asset = session.get(Asset, duplicate.asset_id)
        assert asset is not None
        previous = asset.reject_reason
        _apply_validation(asset, validation)
        asset.reject_reason, asset.error, asset.storage_key = None, None, key
        append_event(session, action="intake.revalidated", who=ws.actor, asset_id=asset.asset_id,
                     details={**details, "storage_key": key, "media_type": validation.media_type,
                              "previous_reason": previous})
        seal(session, who=ws.actor, asset_id=asset.asset_id, groups=[f"assets/{asset.asset_id}"],
             objects=objects)
    return IntakeResult(duplicate.asset_id, duplicate.sha256, duplicate.size, "accepted", True)


def ingest_stream(ws: Workspace, stream: BinaryIO, record: IntakeRecord) -> IntakeResult:
    """Store ``stream`` under its SHA-256, record the intake, validate it and accept or quarantine it.

    Raises :class:`InputRejectedError` (after recording asset, quarantine copy and audit event) when the
    content fails validation. A repeated upload returns the existing asset and logs that it came again.
    Validation reads the store's verified local copy of the upload (see ``ObjectStore.staged_upload``), so a
    remote store's object is downloaded once.
    """
    with ws.store.staged_upload(stream, max_bytes=ws.settings.limits.max_bytes) as (sha256, size, tmp_key, local):
        return _intake(ws, record, sha256, size, tmp_key, local)


def _intake(ws: Workspace, record: IntakeRecord, sha256: str, size: int, tmp_key: str,
            local: Path) -> IntakeResult:
    """Record, validate and accept or quarantine the upload under ``tmp_key`` (verified bytes in ``local``)."""
    actor = ws.actor
    asset_id = asset_id_for(sha256)
    details = {
        "original_name": record.original_name,
        "size": size,
        "sha256": sha256,
        "source": record.source,
        "license": record.license,
        "label": record.label,
        "tool_version": __version__,
    }
    duplicate = _record_duplicate(ws, sha256, size, details)
    if duplicate is not None and duplicate.status == "rejected":
        return _revalidate(ws, duplicate, tmp_key, local, details)
    if duplicate is not None:
        ws.store.delete(tmp_key)
        return duplicate

    rejection: InputRejectedError | None = None
    try:
        validation = validate_file(local, ws.settings.limits)
    except InputRejectedError as exc:
        rejection = exc

    now = datetime.now(UTC)
    area = "quarantine" if rejection else "raw"
    key = raw_key(sha256, area)
    ws.store.promote(tmp_key, key, sha256)
    asset = Asset(
        asset_id=asset_id,
        sha256=sha256,
        size_bytes=size,
        original_name=record.original_name,
        source=record.source,
        license=record.license,
        label=record.label,
        subject=record.subject,
        upload_time=now,
        uploaded_by=actor,
        storage_key=key,
    )
    if rejection is None:
        _apply_validation(asset, validation)
    else:
        asset.status = "rejected"
        asset.reject_reason = rejection.reason.value
        asset.error = rejection.message
        asset.probe_json = getattr(rejection, "probe_json", None)
    try:
        with ws.db.session() as session:
            session.add(asset)
            session.flush()
            if rejection is None:
                append_event(session, action="intake.accepted", who=actor, asset_id=asset_id,
                             details={**details, "storage_key": key, "media_type": validation.media_type})
            else:
                append_event(session, action="intake.rejected", who=actor, asset_id=asset_id,
                             details={**details, "storage_key": key, "reason": rejection.reason.value,
                                      "message": rejection.message})
            seal(session, who=actor, asset_id=asset_id, groups=[f"assets/{asset_id}"], objects={key: sha256})
    except DBIntegrityError:
        # Another intake of the same bytes committed first (unique sha256): its object is the same content
        # under the same key, so this one is a duplicate arrival.
        duplicate = _record_duplicate(ws, sha256, size, details)
        if duplicate is None:
            raise
        return _unless_rejected(duplicate)
    if rejection is not None:
        rejection.asset_id = asset_id
        raise rejection
    return IntakeResult(asset_id, sha256, size, "accepted", False)
