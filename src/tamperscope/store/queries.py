"""The read queries every edge and stage shares: find an asset, its shots, frames, windows, detections, audit.

One place for the SQL, so the CLI, the API, the report loader and the stages ask the same question the same
way. Each function takes an open session; rows a caller keeps after the session closes come back as plain
records (:mod:`tamperscope.records`) or as ORM rows the caller expunges.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, String, cast, func, or_, select
from sqlalchemy.orm import Session, defer

from tamperscope.errors import AmbiguousPrefixError, PrefixTooShortError, UnknownAssetError, UsageError
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
    return session.execute(select(Asset).where(Asset.sha256 == _sha256_of_prefix(session, ref))).scalar_one()


def asset_id_of(session: Session, ref: str) -> str:
    """The id of the asset :func:`find_asset` finds, reading only ids and hashes (not the large JSON columns)."""
    if session.execute(select(Asset.asset_id).where(Asset.asset_id == ref)).first() is not None:
        return ref
    return session.execute(select(Asset.asset_id).where(Asset.sha256 == _sha256_of_prefix(session, ref))).scalar_one()


def _sha256_of_prefix(session: Session, ref: str) -> str:
    """The one stored SHA-256 that starts with ``ref``, or the typed error saying why there is none."""
    ref_lower = ref.lower()
    is_hex = bool(ref_lower) and all(c in "0123456789abcdef" for c in ref_lower)
    if len(ref) < MIN_PREFIX:
        if is_hex:
            raise PrefixTooShortError(ref, MIN_PREFIX)
        raise UnknownAssetError(ref)
    digests = session.execute(select(Asset.sha256).where(Asset.sha256.startswith(ref_lower, autoescape=True))
                              ).scalars().all()
    if len(digests) > 1:
        raise AmbiguousPrefixError(ref, len(digests), distinguishing_prefix_length(digests))
    if len(digests) == 1:
        return digests[0]
    raise UnknownAssetError(ref)


def distinguishing_prefix_length(digests: Sequence[str]) -> int:
    """The shortest prefix length at which every digest differs from every other (longest shared prefix + 1)."""
    ordered = sorted(digests)
    shared = max((next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
                  for a, b in itertools.pairwise(ordered)), default=0)
    return max(MIN_PREFIX, shared + 1)


#: the columns :func:`search_assets` sorts by (``band`` sorts by the verdict's probability).
ASSET_SORTS = ("upload_time", "original_name", "size_bytes", "media_type", "status", "probability")


@dataclass(frozen=True)
class AssetQuery:
    """A filtered, sorted page of assets: ``text`` matches the name (substring) or the SHA-256/id (prefix);
    ``name`` and ``sha256_prefix`` match one of them only."""

    text: str | None = None
    name: str | None = None
    sha256_prefix: str | None = None
    media_type: str | None = None
    band: str | None = None
    uploaded_from: datetime | None = None
    uploaded_to: datetime | None = None
    sort: str = "upload_time"
    descending: bool = True
    offset: int = 0
    limit: int = 50


@dataclass(frozen=True)
class AssetHit:
    """One row of the asset list: the asset and its verdict (band and probability; ``None`` without fusion)."""

    asset: Asset
    band: str | None
    probability: float | None


def search_assets(session: Session, query: AssetQuery) -> tuple[list[AssetHit], int]:
    """One page of assets matching ``query`` and the number of matches, in one SQL pass each.

    ``band="none"`` selects assets without a calibrated verdict; ``sort`` is one of :data:`ASSET_SORTS`
    (ties broken by asset id, so paging is stable).
    """
    if query.sort not in ASSET_SORTS:
        raise UsageError(f"sort must be one of {', '.join(ASSET_SORTS)}")
    fusion = (select(Detection.asset_id, Detection.band, Detection.score)
              .where(Detection.module_name == "fusion", Detection.window_id == "asset").subquery())
    conditions: list[ColumnElement[bool]] = []
    if query.text:
        text = query.text.strip().lower()
        conditions.append(or_(func.lower(Asset.original_name).contains(text, autoescape=True),
                              Asset.sha256.startswith(text, autoescape=True),
                              Asset.asset_id.startswith(text, autoescape=True)))
    if query.name:
        conditions.append(func.lower(Asset.original_name).contains(query.name.lower(), autoescape=True))
    if query.sha256_prefix:
        conditions.append(Asset.sha256.startswith(query.sha256_prefix.lower(), autoescape=True))
    if query.media_type:
        conditions.append(Asset.media_type == query.media_type)
    if query.band == "none":
        conditions.append(fusion.c.band.is_(None))
    elif query.band:
        conditions.append(fusion.c.band == query.band)
    if query.uploaded_from is not None:
        conditions.append(Asset.upload_time >= query.uploaded_from)
    if query.uploaded_to is not None:
        conditions.append(Asset.upload_time <= query.uploaded_to)
    base = select(Asset, fusion.c.band, fusion.c.score).outerjoin(fusion, fusion.c.asset_id == Asset.asset_id)
    if conditions:
        base = base.where(*conditions)
    total = session.execute(select(func.count()).select_from(base.subquery())).scalar_one()
    column = fusion.c.score if query.sort == "probability" else getattr(Asset, query.sort)
    ordered = (column.desc().nulls_last(), Asset.asset_id.desc()) if query.descending else \
        (column.asc().nulls_last(), Asset.asset_id.asc())
    rows = session.execute(base.order_by(*ordered).offset(max(query.offset, 0)).limit(query.limit)).all()
    return [AssetHit(asset, band, score) for asset, band, score in rows], int(total)


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


def frame_times(session: Session, asset_id: str) -> list[tuple[str, int, str | None, int | None, int | None]]:
    """``(frame_id, t_ms, uri, width, height)`` of the asset's sampled frames in time order, without their faces
    (whose landmarks make :func:`frames` slow on long videos)."""
    rows = session.execute(select(Frame.frame_id, Frame.t_ms, Frame.uri, Frame.width, Frame.height)
                           .where(Frame.asset_id == asset_id).order_by(Frame.t_ms)).all()
    return [(r[0], r[1], r[2], r[3], r[4]) for r in rows]


def frame_faces(session: Session, frame_ids: Sequence[str]) -> dict[str, tuple[FaceRecord, ...]]:
    """The faces of the given frames, by frame id."""
    if not frame_ids:
        return {}
    rows = session.execute(select(Frame.frame_id, Frame.faces_json).where(Frame.frame_id.in_(list(frame_ids))))
    return {fid: tuple(FaceRecord.from_json(face) for face in faces or []) for fid, faces in rows}


def frame_phashes(session: Session, asset_id: str) -> list[str]:
    """The stored pHashes of the asset's sampled frames, in time order."""
    rows = session.execute(select(Frame.phash).where(Frame.asset_id == asset_id, Frame.phash.is_not(None))
                           .order_by(Frame.t_ms)).scalars()
    return [h for h in rows if h]


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


def light_asset(session: Session, asset_id: str) -> Asset:
    """The asset row without its ffprobe and MediaInfo JSON (ffprobe's packet list makes a video's row large);
    reading either later needs the session open."""
    return session.execute(select(Asset).options(defer(Asset.probe_json), defer(Asset.mediainfo_json))
                           .where(Asset.asset_id == asset_id)).scalar_one()


def references_artifact(session: Session, asset_id: str, uri: str, frame_id: str | None = None) -> bool:
    """Whether a frame, a face crop or a detection map of the asset names ``uri`` (the API serves only those).

    ``frame_id`` names the frame whose faces hold a crop URI, so only that frame's faces are read; without it
    every frame whose faces mention the URI is.
    """
    frame = session.execute(select(Frame.frame_id).where(Frame.asset_id == asset_id, Frame.uri == uri)).first()
    detection = session.execute(select(Detection.detection_id).where(
        Detection.asset_id == asset_id, (Detection.saliency_uri == uri) | (Detection.overlay_uri == uri))).first()
    if frame is not None or detection is not None:
        return True
    query = select(Frame.faces_json).where(Frame.asset_id == asset_id)
    if frame_id is not None:
        query = query.where(Frame.frame_id == frame_id)
    else:  # the crop URI as it appears in faces_json: narrows the rows parsed to a few
        query = query.where(cast(Frame.faces_json, String).contains(json.dumps(uri), autoescape=True))
    return any(face.get("crop_uri") == uri for listed in session.execute(query).scalars() for face in listed or [])
