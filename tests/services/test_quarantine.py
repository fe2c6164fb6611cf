"""Quarantine retention: expired rejected bodies are purged on the record; verify sees them as purged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from tamperscope.custody import intake
from tamperscope.custody.intake import ingest_path
from tamperscope.custody.objectstore import raw_key
from tamperscope.custody.seal import seal
from tamperscope.custody.verify import verify
from tamperscope.errors import InputRejectedError, IntegrityError, RejectReason
from tamperscope.probe.validate import Validation
from tamperscope.services.quarantine import PURGE_ACTION, RUN_ACTION, parse_age, purge_quarantine
from tamperscope.settings import LimitSettings
from tamperscope.store.models import Asset, AuditEvent
from tamperscope.workspace import Workspace
from tests.cli.runner import invoke, run


def _reject(ws: Workspace, tmp_path: Path, name: str = "notes.mp4") -> str:
    bogus = tmp_path / name
    bogus.write_bytes(f"{name}: this is not a video at all\n".encode() * 10)
    with pytest.raises(InputRejectedError) as caught:
        ingest_path(ws, bogus)
    assert caught.value.asset_id
    return caught.value.asset_id


def _actions(ws: Workspace) -> list[str]:
    with ws.db.session() as session:
        return list(session.execute(select(AuditEvent.action).order_by(AuditEvent.event_id)).scalars())


def test_purge_deletes_expired_bodies_on_the_record_and_verify_passes(ws: Workspace, tmp_path: Path) -> None:
    asset_id = _reject(ws, tmp_path)
    with ws.db.session() as session:
        asset = session.get(Asset, asset_id)
        assert asset is not None
        key, size = raw_key(asset.sha256, "quarantine"), asset.size_bytes
    assert ws.store.exists(key)

    kept = purge_quarantine(ws)  # default retention (90 days): nothing is that old yet
    assert kept.purged == [] and ws.store.exists(key)

    purged = purge_quarantine(ws, timedelta(0))
    assert purged.purged == [asset_id] and purged.bytes_freed == size
    assert not ws.store.exists(key)
    actions = _actions(ws)
    assert actions[-3:] == [PURGE_ACTION, "evidence.sealed", RUN_ACTION]
    result = verify(ws)  # purged on the record: not missing evidence
    assert not result.problems
    with ws.db.session() as session:  # the asset row and its reason stay
        asset = session.get(Asset, asset_id)
        assert asset is not None and asset.status == "rejected" and asset.reject_reason == "unsupported_format"


def test_a_body_deleted_without_a_purge_is_still_missing(ws: Workspace, tmp_path: Path) -> None:
    asset_id = _reject(ws, tmp_path)
    with ws.db.session() as session:
        asset = session.get(Asset, asset_id)
        assert asset is not None
        ws.store.delete(raw_key(asset.sha256, "quarantine"))
    with pytest.raises(IntegrityError) as caught:
        verify(ws)
    assert any("quarantine" in p and "missing" in p for p in caught.value.problems)


def test_purge_keeps_young_bodies_and_dry_run_deletes_nothing(ws: Workspace, tmp_path: Path) -> None:
    old = _reject(ws, tmp_path, "old.bin")
    young = _reject(ws, tmp_path, "young.bin")
    now = datetime.now(UTC)
    with ws.db.session() as session:
        asset = session.get(Asset, old)
        assert asset is not None
        asset.upload_time = now - timedelta(days=100)  # an edit for the test, sealed as a real write would be
        seal(session, who="tester", asset_id=old, groups=[f"assets/{old}"])
    dry = purge_quarantine(ws, dry_run=True)
    assert dry.purged == [old] and len(ws.store.list("quarantine")) == 2
    assert RUN_ACTION not in _actions(ws)
    done = purge_quarantine(ws)
    assert done.purged == [old]
    remaining = ws.store.list("quarantine")
    assert len(remaining) == 1 and remaining[0].endswith(_sha(ws, young))
    assert not verify(ws).problems


def _sha(ws: Workspace, asset_id: str) -> str:
    with ws.db.session() as session:
        asset = session.get(Asset, asset_id)
        assert asset is not None
        return asset.sha256


def test_purged_bytes_that_come_again_are_rejected_again_and_verify_passes(ws: Workspace, tmp_path: Path) -> None:
    _reject(ws, tmp_path)
    purge_quarantine(ws, timedelta(0))
    _reject(ws, tmp_path)  # the same bytes: rejected again with the stored reason, nothing stored
    assert ws.store.list("quarantine") == [] and ws.store.list("tmp") == []
    assert not verify(ws).problems


def test_revalidation_after_a_purge_seals_only_the_raw_copy(ws: Workspace, small_jpeg: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    real_validate = intake.validate_file

    def refuse(path: Path, limits: LimitSettings) -> Validation:
        raise InputRejectedError(RejectReason.UNSUPPORTED_FORMAT, "not yet accepted")

    monkeypatch.setattr(intake, "validate_file", refuse)
    with pytest.raises(InputRejectedError):
        ingest_path(ws, small_jpeg)
    purge_quarantine(ws, timedelta(0))
    monkeypatch.setattr(intake, "validate_file", real_validate)
    assert ingest_path(ws, small_jpeg).status == "accepted"
    assert not verify(ws).problems


@pytest.mark.parametrize(("text", "seconds"), [("30d", 30 * 86400), ("12h", 43200), ("15m", 900), ("90s", 90),
                                               ("2w", 14 * 86400), ("7", 7 * 86400), ("0s", 0)])
def test_parse_age(text: str, seconds: float) -> None:
    assert parse_age(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "soon", "-1d", "3x"])
def test_parse_age_refuses_nonsense(text: str) -> None:
    with pytest.raises(ValueError):
        parse_age(text)


def test_cli_purge(tmp_path: Path) -> None:
    home = tmp_path / "home"
    bogus = tmp_path / "bogus.bin"
    bogus.write_bytes(b"not media\n" * 20)
    assert invoke(home, "ingest", str(bogus)).returncode == 3  # set-up and the usage error run in process
    bad = invoke(home, "quarantine", "purge", "--older-than", "soon")
    assert bad.returncode == 2 and "soon" in bad.stderr
    done = run(home, "quarantine", "purge", "--older-than", "0s")  # the purge itself on a real process
    assert done.returncode == 0, done.stderr
    assert "purged 1 quarantined bodies" in done.stdout
    assert not list((home / "store" / "quarantine").rglob("*")) or all(
        p.is_dir() for p in (home / "store" / "quarantine").rglob("*"))
    assert invoke(home, "verify").returncode == 0
