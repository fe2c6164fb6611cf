from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import text

from tamperscope.custody.intake import ingest_path
from tamperscope.custody.objectstore import raw_key
from tamperscope.custody.verify import verify
from tamperscope.errors import IntegrityError
from tamperscope.pipeline.runner import analyze_asset
from tamperscope.workspace import Workspace


@pytest.fixture
def populated(any_ws: Workspace, small_video: Path, small_jpeg: Path) -> Workspace:
    ingest_path(any_ws, small_video)
    ingest_path(any_ws, small_jpeg)
    ingest_path(any_ws, small_jpeg)
    return any_ws


def test_clean_store_verifies(populated: Workspace) -> None:
    result = verify(populated)
    # two intakes (each an intake event and a seal) and one duplicate arrival
    assert (result.objects_checked, result.rows_checked, result.events_checked) == (2, 2, 5)
    assert not result.problems


def test_flipped_byte_in_a_stored_object_is_named(populated: Workspace, small_jpeg: Path) -> None:
    from tamperscope.custody.hashing import sha256_file

    digest, _ = sha256_file(small_jpeg)
    path = Path(populated.store.path(raw_key(digest)))
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError) as caught:
        verify(populated)
    assert any(raw_key(digest) in p for p in caught.value.problems)


def _sql(ws: Workspace, statement: str) -> None:
    with ws.db.engine.begin() as conn:
        conn.execute(text(statement))


def test_edited_audit_row_is_caught(populated: Workspace) -> None:
    _sql(populated, "UPDATE audit_events SET who = 'mallory' WHERE event_id = 2")
    with pytest.raises(IntegrityError) as caught:
        verify(populated)
    assert caught.value.problems == ["audit event 2: content does not match its hash (edited)"]


def test_deleted_audit_row_is_caught(populated: Workspace) -> None:
    _sql(populated, "DELETE FROM audit_events WHERE event_id = 2")
    with pytest.raises(IntegrityError) as caught:
        verify(populated)
    assert any("event 2 is missing" in p for p in caught.value.problems)


def test_deleted_last_audit_row_is_caught(populated: Workspace) -> None:
    _sql(populated, "DELETE FROM audit_events WHERE event_id = 5")
    with pytest.raises(IntegrityError) as caught:
        verify(populated)
    assert any("truncated" in p for p in caught.value.problems)


def test_reordered_audit_rows_are_caught(populated: Workspace) -> None:
    _sql(populated, "UPDATE audit_events SET event_id = 99 WHERE event_id = 1")
    _sql(populated, "UPDATE audit_events SET event_id = 1 WHERE event_id = 2")
    _sql(populated, "UPDATE audit_events SET event_id = 2 WHERE event_id = 99")
    with pytest.raises(IntegrityError) as caught:
        verify(populated)
    assert any("link broken" in p for p in caught.value.problems)
    assert any("does not match its hash" in p for p in caught.value.problems)


def test_analysis_events_extend_the_chain(populated: Workspace, small_video: Path) -> None:
    from tamperscope.custody.hashing import sha256_file

    analyze_asset(populated, sha256_file(small_video)[0][:16], only=["metadata"])
    assert verify(populated).events_checked > 5
