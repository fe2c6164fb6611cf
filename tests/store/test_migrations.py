"""Migration 0002 adds the windows table, and downgrades cleanly."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect

from tamperscope.store.db import MIGRATIONS_DIR, Database
from tamperscope.workspace import Workspace


def test_windows_table_up_and_down(any_ws: Workspace) -> None:
    db: Database = any_ws.db
    columns = {c["name"] for c in inspect(db.engine).get_columns("windows")}
    assert columns == {"window_id", "asset_id", "shot_id", "track_id", "t_start_ms", "t_end_ms", "frame_ids_json",
                       "uri"}
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0001")
    assert "windows" not in inspect(db.engine).get_table_names()
    db.upgrade()
    assert "windows" in inspect(db.engine).get_table_names()


def test_custody_migrations_up_and_down(any_ws: Workspace) -> None:
    """0003 adds analysis leases, 0004 the head signature; both downgrade cleanly and come back."""
    db: Database = any_ws.db
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0002")
    inspector = inspect(db.engine)
    assert "analysis_leases" not in inspector.get_table_names()
    assert "signature" not in {c["name"] for c in inspector.get_columns("audit_head")}
    db.upgrade()
    inspector = inspect(db.engine)
    assert "analysis_leases" in inspector.get_table_names()
    assert "signature" in {c["name"] for c in inspector.get_columns("audit_head")}


def test_upgrade_to_head_keeps_a_populated_database(any_ws: Workspace, small_jpeg: Path) -> None:
    """Every migration after 0004 runs on a database that already holds assets with rows pointing at them (SQLite
    refuses to rebuild a table that foreign keys reference) and keeps its rows; remote_not_fetched fits."""
    from tamperscope.custody.intake import ingest_path
    from tamperscope.store.models import Asset

    asset_id = ingest_path(any_ws, small_jpeg).asset_id
    db: Database = any_ws.db
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0004")
    db.upgrade()
    with db.session() as session:
        asset = session.get(Asset, asset_id)
        assert asset is not None
        asset.provenance_status = "remote_not_fetched"
    with db.session() as session:
        assert session.get(Asset, asset_id).provenance_status == "remote_not_fetched"  # type: ignore[union-attr]
