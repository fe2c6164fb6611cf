from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tamperscope.custody import intake
from tamperscope.custody.hashing import sha256_file
from tamperscope.custody.intake import IntakeRecord, IntakeResult, ingest_path
from tamperscope.custody.objectstore import raw_key
from tamperscope.custody.verify import verify
from tamperscope.errors import InputRejectedError, RejectReason
from tamperscope.probe.validate import Validation
from tamperscope.settings import LimitSettings
from tamperscope.store.models import Asset, AuditEvent
from tamperscope.workspace import Workspace


def test_ingest_stores_bytes_read_only_under_their_hash(any_ws: Workspace, small_video: Path) -> None:
    digest, size = sha256_file(small_video)
    result = ingest_path(any_ws, small_video, IntakeRecord("small.mp4", source="lavfi", license="CC0",
                                                           label="real"))
    assert (result.sha256, result.size, result.status, result.duplicate) == (digest, size, "accepted", False)
    stored = Path(any_ws.store.path(raw_key(digest)))
    assert stored.read_bytes() == small_video.read_bytes()
    assert not stored.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert stored.parent == Path(any_ws.store.root) / "raw" / "sha256" / digest[:2] / digest[2:4]
    with any_ws.db.session() as session:
        asset = session.get(Asset, result.asset_id)
        assert asset is not None
        assert (asset.media_type, asset.width, asset.height, asset.label) == ("video", 320, 240, "real")
        assert asset.duration_ms == pytest.approx(2000, abs=100)
        event = session.execute(select(AuditEvent).where(AuditEvent.action != "evidence.sealed")).scalar_one()
        assert event.action == "intake.accepted" and event.who == "tester"
        assert event.details_json["original_name"] == "small.mp4"
        assert event.details_json["license"] == "CC0"


def test_same_bytes_twice_is_one_asset_and_a_logged_duplicate(any_ws: Workspace, small_jpeg: Path,
                                                               tmp_path: Path) -> None:
    copy = tmp_path / "renamed.bin"
    copy.write_bytes(small_jpeg.read_bytes())
    first = ingest_path(any_ws, small_jpeg)
    second = ingest_path(any_ws, copy)
    assert second.asset_id == first.asset_id and second.duplicate
    with any_ws.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Asset)) == 1
        actions = session.execute(select(AuditEvent.action).order_by(AuditEvent.event_id)).scalars().all()
    assert actions == ["intake.accepted", "evidence.sealed", "intake.duplicate"]
    assert any_ws.store.list("raw") == [raw_key(first.sha256)]
    assert any_ws.store.list("tmp") == []


def test_rejected_input_is_quarantined_with_a_reason(ws: Workspace, tmp_path: Path) -> None:
    bogus = tmp_path / "notes.mp4"
    bogus.write_bytes(b"this is not a video at all\n" * 10)
    with pytest.raises(InputRejectedError) as caught:
        ingest_path(ws, bogus)
    assert caught.value.reason is RejectReason.UNSUPPORTED_FORMAT
    digest, _ = sha256_file(bogus)
    assert ws.store.exists(raw_key(digest, "quarantine")) and not ws.store.exists(raw_key(digest))
    with ws.db.session() as session:
        asset = session.execute(select(Asset)).scalar_one()
        assert (asset.status, asset.reject_reason) == ("rejected", "unsupported_format")
        actions = session.execute(select(AuditEvent.action).order_by(AuditEvent.event_id)).scalars().all()
        assert actions == ["intake.rejected", "evidence.sealed"]


def test_oversized_upload_is_refused_while_streaming(ws: Workspace, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    with open(big, "wb") as handle:
        handle.write(os.urandom(3 * 1024 * 1024))
    ws.settings.limits.max_bytes = 2 * 1024 * 1024
    with pytest.raises(InputRejectedError) as caught:
        ingest_path(ws, big)
    assert caught.value.reason is RejectReason.TOO_LARGE
    assert ws.store.list("tmp") == []


def test_concurrent_intake_of_the_same_bytes_is_a_duplicate(ws: Workspace, small_jpeg: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A second intake commits while the first is validating: the first sees the unique sha256 and yields."""
    real_validate = intake.validate_file
    raced: list[IntakeResult] = []
    calls: list[Path] = []

    def validate_while_another_intake_commits(path: Path, limits: LimitSettings) -> Validation:
        calls.append(path)
        if len(calls) == 1:
            raced.append(intake.ingest_path(ws, small_jpeg))
        return real_validate(path, limits)

    monkeypatch.setattr(intake, "validate_file", validate_while_another_intake_commits)
    first = intake.ingest_path(ws, small_jpeg)
    assert raced and not raced[0].duplicate
    assert first.duplicate and first.asset_id == raced[0].asset_id
    with ws.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Asset)) == 1
        actions = [e.action for e in session.execute(select(AuditEvent).order_by(AuditEvent.event_id)).scalars()]
    assert actions.count("intake.accepted") == 1 and actions.count("intake.duplicate") == 1
    assert not verify(ws).problems


def test_same_rejected_bytes_again_are_rejected_again(ws: Workspace, tmp_path: Path) -> None:
    bogus = tmp_path / "notes.mp4"
    bogus.write_bytes(b"this is not a video at all\n" * 10)
    with pytest.raises(InputRejectedError):
        ingest_path(ws, bogus)
    with pytest.raises(InputRejectedError) as caught:
        ingest_path(ws, bogus)
    assert caught.value.reason is RejectReason.UNSUPPORTED_FORMAT and caught.value.asset_id
    with ws.db.session() as session:
        actions = session.execute(select(AuditEvent.action).order_by(AuditEvent.event_id)).scalars().all()
    assert actions == ["intake.rejected", "evidence.sealed", "intake.duplicate"]
    assert ws.store.list("tmp") == []


def test_rejected_bytes_that_todays_rules_accept_are_revalidated(ws: Workspace, small_jpeg: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Bytes rejected under older rules (e.g. a format not yet accepted) are accepted when they come again and
    today's validator passes them; the audit log says so and verify still passes."""
    real_validate = intake.validate_file

    def refuse(path: Path, limits: LimitSettings) -> Validation:
        raise InputRejectedError(RejectReason.UNSUPPORTED_FORMAT, "not yet accepted")

    monkeypatch.setattr(intake, "validate_file", refuse)
    with pytest.raises(InputRejectedError):
        ingest_path(ws, small_jpeg)
    monkeypatch.setattr(intake, "validate_file", real_validate)
    again = ingest_path(ws, small_jpeg)
    assert again.status == "accepted" and again.duplicate
    with ws.db.session() as session:
        asset = session.get(Asset, again.asset_id)
        assert asset is not None and asset.status == "accepted" and asset.reject_reason is None
        assert asset.storage_key == raw_key(again.sha256, "raw") and asset.media_type == "image"
        actions = session.execute(select(AuditEvent.action).order_by(AuditEvent.event_id)).scalars().all()
    assert "intake.revalidated" in actions and actions.index("intake.revalidated") > actions.index("intake.rejected")
    assert ws.store.exists(raw_key(again.sha256, "quarantine")) and ws.store.list("tmp") == []
    assert not verify(ws).problems
