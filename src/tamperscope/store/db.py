"""Engine and sessions: SQLite by default, PostgreSQL through the URL; schema through Alembic.

On SQLite every write session opens with ``BEGIN IMMEDIATE`` (the driver's own transaction handling is
switched off), so whatever a writer reads, such as the audit head, cannot change before it commits;
taking the write lock waits up to the busy timeout and is retried a bounded number of times. Read-only
sessions use a deferred ``BEGIN`` and never block writers (WAL).
"""

from __future__ import annotations

import contextlib
import random
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
BEGIN_OPTION = "tamperscope_sqlite_begin"


def as_utc(value: datetime) -> datetime:
    """A stored time as an aware UTC datetime: SQLite hands back naive values (written as UTC), PostgreSQL aware."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _sqlite_connect(busy_timeout_s: float) -> Any:
    def on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None  # SQLAlchemy, not pysqlite, decides where transactions begin
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return on_connect


def _is_busy(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc))


def _sqlite_begin(retries: int) -> Any:
    def on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(BEGIN_OPTION, "IMMEDIATE")
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            for attempt in range(retries + 1):
                try:
                    cursor.execute(f"BEGIN {mode}")
                    return
                except sqlite3.OperationalError as exc:
                    if not _is_busy(exc) or attempt == retries:
                        raise
                    time.sleep(random.uniform(0.05, 0.25) * (attempt + 1))
        finally:
            cursor.close()

    return on_begin


class Database:
    """One engine and session factory for a database URL.

    ``busy_timeout_s`` is how long SQLite waits for the write lock before a retry (``busy_retries`` of them).
    ``signer``, when set, signs the audit chain head at every append (see :mod:`tamperscope.custody.keys`).
    """

    def __init__(self, url: str, *, busy_timeout_s: float = 30.0, busy_retries: int = 5) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.signer: Any = None
        if self.is_sqlite:
            db_path = url.split(":///", 1)[-1]
            if db_path and db_path != ":memory:":
                Path(db_path).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(url, connect_args={"timeout": busy_timeout_s})
            event.listen(self.engine, "connect", _sqlite_connect(busy_timeout_s))
            event.listen(self.engine, "begin", _sqlite_begin(busy_retries))
            read_engine: Engine = self.engine.execution_options(**{BEGIN_OPTION: "DEFERRED"})
        else:
            self.engine = create_engine(url, pool_pre_ping=True)
            read_engine = self.engine
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(read_engine, expire_on_commit=False)

    def upgrade(self) -> None:
        """Bring the schema to the newest Alembic revision."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A write session (SQLite: ``BEGIN IMMEDIATE``), committed on success and rolled back on any error."""
        with self._session(self._sessions) as session:
            yield session

    @contextlib.contextmanager
    def read_session(self) -> Iterator[Session]:
        """A session for reading only: it never holds the write lock, so long readers do not block writers."""
        with self._session(self._read_sessions) as session:
            yield session

    @contextlib.contextmanager
    def _session(self, factory: sessionmaker[Session]) -> Iterator[Session]:
        session = factory()
        session.info["signer"] = self.signer
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()
