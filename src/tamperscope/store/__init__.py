"""Storage: the database (SQLite or PostgreSQL), its migrations, Parquet export and data QA."""

from tamperscope.store.db import Database
from tamperscope.store.models import (
    ApiToken,
    Asset,
    AuditEvent,
    AuditHead,
    Base,
    Detection,
    Frame,
    Report,
    Shot,
    StageRun,
    Window,
)

__all__ = [
    "ApiToken",
    "Asset",
    "AuditEvent",
    "AuditHead",
    "Base",
    "Database",
    "Detection",
    "Frame",
    "Report",
    "Shot",
    "StageRun",
    "Window",
]
