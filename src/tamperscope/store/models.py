"""SQLAlchemy models of the six product tables plus the bookkeeping the pipeline and the job queue need.

IDs are deterministic strings derived from content (asset = SHA-256 prefix, shot/frame = asset + position),
so re-running a stage rewrites the same rows and regenerated reports are byte-identical.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class Asset(Base):
    __tablename__ = "assets"

    asset_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    original_name: Mapped[str] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(Text)
    license: Mapped[str | None] = mapped_column(Text)
    label: Mapped[str | None] = mapped_column(String(64))
    subject: Mapped[str | None] = mapped_column(String(128), doc="identity or source group, for splits")
    split: Mapped[str | None] = mapped_column(String(16))
    media_type: Mapped[str | None] = mapped_column(String(16), doc="image | video | audio")
    mime: Mapped[str | None] = mapped_column(String(128))
    container: Mapped[str | None] = mapped_column(String(64))
    duration_ms: Mapped[int | None] = mapped_column(BigInteger)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    fps: Mapped[float | None] = mapped_column(Float)
    upload_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    uploaded_by: Mapped[str] = mapped_column(String(128))
    storage_key: Mapped[str] = mapped_column(Text, doc="object store key of the raw bytes")
    status: Mapped[str] = mapped_column(String(16), doc="accepted | rejected | analyzing | analyzed | failed | "
                                        "limit_exceeded")
    reject_reason: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)
    probe_json: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    exif_json: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    mediainfo_json: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    tool_versions_json: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    provenance_status: Mapped[str | None] = mapped_column(
        String(32), doc="valid | invalid | absent | remote_not_fetched | inaccessible | unsupported")
    provenance_json: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Shot(Base):
    __tablename__ = "shots"

    shot_id: Mapped[str] = mapped_column(String(96), primary_key=True)
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.asset_id"), index=True)
    index: Mapped[int] = mapped_column(Integer)
    t_start_ms: Mapped[int] = mapped_column(BigInteger)
    t_end_ms: Mapped[int] = mapped_column(BigInteger)
    frame_start: Mapped[int | None] = mapped_column(Integer)
    frame_end: Mapped[int | None] = mapped_column(Integer)
    detector: Mapped[str] = mapped_column(String(64))
    confidence: Mapped[float | None] = mapped_column(Float)


class Frame(Base):
    __tablename__ = "frames"

    frame_id: Mapped[str] = mapped_column(String(96), primary_key=True)
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.asset_id"), index=True)
    shot_id: Mapped[str | None] = mapped_column(ForeignKey("shots.shot_id"))
    t_ms: Mapped[int] = mapped_column(BigInteger)
    frame_index: Mapped[int | None] = mapped_column(Integer)
    keyframe: Mapped[bool] = mapped_column(Boolean, default=False)
    uri: Mapped[str | None] = mapped_column(Text)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    sha1: Mapped[str | None] = mapped_column(String(40))
    phash: Mapped[str | None] = mapped_column(String(32))
    blur: Mapped[float | None] = mapped_column(Float)
    luminance: Mapped[float | None] = mapped_column(Float)
    near_duplicate_of: Mapped[str | None] = mapped_column(String(96))
    quality_weight: Mapped[float | None] = mapped_column(Float)
    faces_json: Mapped[list[Any] | None] = mapped_column(JSON)


class Window(Base):
    """A clip window: consecutive sampled frames of one face track (or one shot), stored as an ``.npy`` array."""

    __tablename__ = "windows"

    window_id: Mapped[str] = mapped_column(String(128), primary_key=True, doc="<asset_id>:c<track>:<n>")
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.asset_id"), index=True)
    shot_id: Mapped[str | None] = mapped_column(ForeignKey("shots.shot_id"))
    track_id: Mapped[int | None] = mapped_column(Integer, doc="face track; None for a shot-level window")
    t_start_ms: Mapped[int] = mapped_column(BigInteger)
    t_end_ms: Mapped[int] = mapped_column(BigInteger)
    frame_ids_json: Mapped[list[Any]] = mapped_column(JSON)
    uri: Mapped[str] = mapped_column(Text, doc="N x S x S x 3 uint8 .npy: aligned face crops or letterboxed frames")


class Detection(Base):
    __tablename__ = "detections"
    __table_args__ = (Index("ix_detections_asset_stage", "asset_id", "stage"),)

    detection_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.asset_id"), index=True)
    stage: Mapped[str] = mapped_column(String(64), doc="pipeline stage that wrote the row")
    window_id: Mapped[str] = mapped_column(String(128), doc="'asset', a frame id, a shot id or a clip id")
    module_name: Mapped[str] = mapped_column(String(96))
    module_version: Mapped[str] = mapped_column(String(32))
    params_json: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    t_start_ms: Mapped[int | None] = mapped_column(BigInteger)
    t_end_ms: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(
        String(24), default="scored", doc="scored | flag | not_applicable | insufficient_data"
    )
    score: Mapped[float | None] = mapped_column(Float)
    logits_json: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    threshold: Mapped[float | None] = mapped_column(Float)
    band: Mapped[str | None] = mapped_column(String(32))
    evidence_json: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    saliency_uri: Mapped[str | None] = mapped_column(Text)
    overlay_uri: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AuditEvent(Base):
    __tablename__ = "audit_events"

    event_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    asset_id: Mapped[str | None] = mapped_column(String(64), index=True)
    who: Mapped[str] = mapped_column(String(128))
    when: Mapped[str] = mapped_column("when", String(40), doc="UTC ISO-8601, as hashed")
    action: Mapped[str] = mapped_column(String(64))
    details_json: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """Single row holding the chain's last event; locked while appending so the chain stays linear."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_event_id: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str | None] = mapped_column(String(128), doc="Ed25519 signature of the head (hex), if keyed")


class AnalysisLease(Base):
    """Who is analysing an asset right now; renewed while the run lives, taken over once it expires."""

    __tablename__ = "analysis_leases"

    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.asset_id"), primary_key=True)
    token: Mapped[str] = mapped_column(String(32), doc="random id of the holding run")
    owner: Mapped[str] = mapped_column(String(128), doc="actor of the holding run")
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    acquired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Job(Base):
    """One queued analysis: claimed by one worker at a time, its lease renewed by heartbeats while it runs.

    ``status`` goes queued -> running -> done | failed; a running job whose lease expired (its worker died) goes
    back to queued and is resumed by the next worker, since completed stages are already committed.
    """

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status_created", "status", "created_at"),)

    job_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), doc="analyze: run the stages not yet current, then the report")
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.asset_id"), index=True)
    batch_id: Mapped[str | None] = mapped_column(String(32), index=True)
    requested_by: Mapped[str] = mapped_column(String(128), doc="the actor the audit events of the run name")
    force: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), doc="queued | running | done | failed")
    stage: Mapped[str | None] = mapped_column(String(64), doc="phase last reported: a stage name or report")
    fraction: Mapped[float] = mapped_column(Float, default=0.0, doc="overall progress 0..1")
    progress_json: Mapped[dict[str, Any] | None] = mapped_column(JSON, doc="fraction per phase")
    message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error_type: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    failed_stages_json: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    report_id: Mapped[str | None] = mapped_column(String(96))
    claimed_by: Mapped[str | None] = mapped_column(String(160), doc="worker id: host:pid:random")
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0, doc="claims so far, the current one included")


class Report(Base):
    __tablename__ = "reports"

    report_id: Mapped[str] = mapped_column(String(96), primary_key=True)
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.asset_id"), index=True)
    uri_pdf: Mapped[str | None] = mapped_column(Text)
    uri_json: Mapped[str | None] = mapped_column(Text)
    sha256_json: Mapped[str | None] = mapped_column(String(64))
    sha256_pdf: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    pipeline_versions_json: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class StageRun(Base):
    """One row per (asset, stage): written in the same transaction as the stage's results."""

    __tablename__ = "stage_runs"

    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.asset_id"), primary_key=True)
    stage: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[str] = mapped_column(String(32))
    params_json: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), doc="done | not_applicable | failed | limit_exceeded")
    error: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    summary_json: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    fingerprint: Mapped[str | None] = mapped_column(String(64), doc="hash of the stage version, its settings, "
                                                    "model files and its inputs' fingerprints (stages/base.py)")


class ApiToken(Base):
    __tablename__ = "api_tokens"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
