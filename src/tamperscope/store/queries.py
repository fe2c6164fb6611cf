"""The read queries every edge and stage shares: find an asset, its shots, frames, windows, detections, audit.

One place for the SQL, so the CLI, the API, the report loader and the stages ask the same question the same
way. Each function takes an open session; rows a caller keeps after the session closes come back as plain
records (:mod:`tamperscope.records`) or as ORM rows the caller expunges.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, select
from sqlalchemy.orm import Session, aliased

from tamperscope.errors import AmbiguousPrefixError, PrefixTooShortError, UnknownAssetError
from tamperscope.records import DetectionStatus, FaceRecord, FrameRecord, ShotRecord, WindowRecord
from tamperscope.store.models import Asset, AuditEvent, Detection, Frame, Report, Shot, StageRun, Window

MIN_PREFIX = 8


def find_asset(session: Session, ref: str) -> Asset:
    """An asset by id, full SHA-256 or unique SHA-256 prefix (at least :data:`MIN_PREFIX` hex digits).

    Raises :class:`UnknownAssetError`, :class:`PrefixTooShortError` (a hex string below the minimum) or
    :class:`AmbiguousPrefixError` (naming how many digits tell the matches apart).
    """
    asset = session.get(Asset, ref)
    if asset is not None:
        return asset
    ref_lower = ref.lower()
    is_hex = bool(ref_lower) and all(c in "0123456789abcdef" for c in ref_lower)
    if len(ref) < MIN_PREFIX:
        if is_hex:
            raise PrefixTooShortError(ref, MIN_PREFIX)
        raise UnknownAssetError(ref)
    digests = session.execute(select(Asset.sha256).where(Asset.sha256.startswith(ref_lower))).scalars().all()
    if len(digests) > 1:
        raise AmbiguousPrefixError(ref, len(digests), distinguishing_prefix_length(digests))
    if len(digests) == 1:
        return session.execute(select(Asset).where(Asset.sha256 == digests[0])).scalar_one()
    raise UnknownAssetError(ref)


def distinguishing_prefix_length(digests: Sequence[str]) -> int:
    """The shortest prefix length at which every digest differs from every other (longest shared prefix + 1)."""
    ordered = sorted(digests)
    shared = max((next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
                  for a, b in itertools.pairwise(ordered)), default=0)
    return max(MIN_PREFIX, shared + 1)


def recent_assets(session: Session, limit: int) -> Sequence[Asset]:
    """The newest ``limit`` assets, newest first."""
    return session.execute(select(Asset).order_by(Asset.upload_time.desc()).limit(limit)).scalars().all()


@dataclass(frozen=True)
class AssetFilter:
    """What ``list_assets`` keeps: a name substring, a SHA-256 prefix, a verdict band ("none" for assets without
    one), a media type and an upload-time range (inclusive ``since``, exclusive ``until``)."""

    name: str | None = None
    sha256_prefix: str | None = None
    band: str | None = None
    media_type: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def list_assets(session: Session, where: AssetFilter, *, limit: int | None = None
                ) -> list[tuple[Asset, Detection | None]]:
    """Assets matching ``where``, newest first, each with its verdict row (the asset-level fusion detection)."""
    verdict_row = aliased(Detection)
    query = select(Asset, verdict_row).outerjoin(verdict_row, and_(
        verdict_row.asset_id == Asset.asset_id, verdict_row.module_name == "fusion", verdict_row.window_id == "asset"))
    if where.name:
        query = query.where(Asset.original_name.ilike(f"%{where.name}%"))
    if where.sha256_prefix:
        query = query.where(Asset.sha256.startswith(where.sha256_prefix.lower()))
    if where.media_type:
        query = query.where(Asset.media_type == where.media_type)
    if where.since is not None:
        query = query.where(Asset.upload_time >= where.since)
    if where.until is not None:
        query = query.where(Asset.upload_time < where.until)
    if where.band == "none":
        query = query.where(verdict_row.band.is_(None))
    elif where.band:
        query = query.where(verdict_row.band == where.band)
    query = query.order_by(Asset.upload_time.desc(), Asset.asset_id)
    if limit is not None:
        query = query.limit(limit)
    return [(asset, verdict) for asset, verdict in session.execute(query).all()]


def shots(session: Session, asset_id: str) -> list[ShotRecord]:
    """The asset's shots in order."""
    rows = session.execute(select(Shot).where(Shot.asset_id == asset_id).order_by(Shot.index)).scalars()
    return [ShotRecord(s.shot_id, s.index, s.t_start_ms, s.t_end_ms) for s in rows]


def frames(session: Session, asset_id: str) -> list[FrameRecord]:
    """The asset's sampled frames in time order, with their faces as typed records."""
    rows = session.execute(select(Frame).where(Frame.asset_id == asset_id).order_by(Frame.t_ms)).scalars()
    return [FrameRecord(frame_id=f.frame_id, shot_id=f.shot_id, t_ms=f.t_ms, frame_index=f.frame_index,
                        keyframe=f.keyframe, uri=f.uri, width=f.width, height=f.height,
                        quality_weight=f.quality_weight,
                        faces=tuple(FaceRecord.from_json(face) for face in f.faces_json or []))
            for f in rows]


def windows(session: Session, asset_id: str) -> list[WindowRecord]:
    """The asset's clip windows in time order (ties by id, so every reader sees the same order)."""
    rows = session.execute(select(Window).where(Window.asset_id == asset_id)
                           .order_by(Window.t_start_ms, Window.window_id)).scalars()
    return [WindowRecord(window_id=w.window_id, shot_id=w.shot_id, track_id=w.track_id, t_start_ms=w.t_start_ms,
                         t_end_ms=w.t_end_ms, frame_ids=tuple(str(f) for f in w.frame_ids_json or []), uri=w.uri)
            for w in rows]


def detections(session: Session, asset_id: str, *, status: str | None = None) -> Sequence[Detection]:
    """The asset's detection rows (optionally of one status), ordered by stage, module and window."""
    query = select(Detection).where(Detection.asset_id == asset_id)
    if status is not None:
        query = query.where(Detection.status == status)
    return session.execute(query.order_by(Detection.stage, Detection.module_name, Detection.window_id)
                           ).scalars().all()


def flags(session: Session, asset_id: str) -> Sequence[Detection]:
    """The raised flags (metadata rules, structure findings), ordered by module and window."""
    return session.execute(select(Detection).where(Detection.asset_id == asset_id,
                                                   Detection.status == DetectionStatus.FLAG)
                           .order_by(Detection.module_name, Detection.window_id)).scalars().all()


def verdict(session: Session, asset_id: str) -> Detection | None:
    """The asset-level fusion row (the verdict), if fusion ran."""
    return session.execute(select(Detection).where(Detection.asset_id == asset_id, Detection.module_name == "fusion",
                                                   Detection.window_id == "asset")).scalar_one_or_none()


def stage_runs(session: Session, asset_id: str) -> Sequence[StageRun]:
    """The asset's ``stage_runs`` rows."""
    return session.execute(select(StageRun).where(StageRun.asset_id == asset_id)).scalars().all()


def audit_events(session: Session, asset_id: str | None = None, *, limit: int | None = None
                 ) -> Sequence[AuditEvent]:
    """Audit events in chain order: all of them, or one asset's."""
    query = select(AuditEvent).order_by(AuditEvent.event_id)
    if asset_id is not None:
        query = query.where(AuditEvent.asset_id == asset_id)
    if limit is not None:
        query = query.limit(limit)
    return session.execute(query).scalars().all()


def latest_report(session: Session, asset_id: str) -> Report | None:
    """The newest stored report of the asset."""
    return session.execute(select(Report).where(Report.asset_id == asset_id)
                           .order_by(Report.created_at.desc(), Report.report_id.desc())).scalars().first()


def references_artifact(session: Session, asset_id: str, uri: str) -> bool:
    """Whether a frame or a detection map of the asset names ``uri`` (the API serves only those)."""
    frame = session.execute(select(Frame.frame_id).where(Frame.asset_id == asset_id, Frame.uri == uri)).first()
    detection = session.execute(select(Detection.detection_id).where(
        Detection.asset_id == asset_id, (Detection.saliency_uri == uri) | (Detection.overlay_uri == uri))).first()
    return frame is not None or detection is not None
