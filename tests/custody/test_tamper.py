"""The tamper matrix: every evidence table and artifact kind, each changed, deleted and added behind the
tool's back, is named by ``verify``; a rewritten chain fails ``verify --anchor``."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tamperscope.custody.anchor import create_installation_key, export_anchor
from tamperscope.custody.audit import event_hash
from tamperscope.custody.keys import verify_head
from tamperscope.custody.seal import row_digest
from tamperscope.custody.verify import verify
from tamperscope.errors import IntegrityError, exit_code_for
from tamperscope.pipeline.runner import analyze_asset
from tamperscope.report.service import write_report
from tamperscope.settings import Settings
from tamperscope.store.models import AuditEvent, AuditHead, Detection
from tamperscope.workspace import Workspace

pytestmark = pytest.mark.slow
TABLE_KEYS = {"assets": "asset_id", "shots": "shot_id", "frames": "frame_id", "windows": "window_id",
              "detections": "detection_id", "reports": "report_id"}
CHANGES = {"assets": "label = 'fake'", "shots": "t_end_ms = t_end_ms + 1", "frames": "blur = 0.5",
           "windows": "t_end_ms = t_end_ms + 40", "detections": "band = 'likely_real', score = 0.01",
           "reports": "sha256_json = '" + "0" * 64 + "'"}


@pytest.fixture(scope="module")
def golden(tmp_path_factory: pytest.TempPathFactory, small_video: Path) -> Iterator[dict[str, Any]]:
    """A keyed home with an analysed, reported video and an anchor; each test tampers with its own copy."""
    from tamperscope.custody.intake import ingest_path

    root = tmp_path_factory.mktemp("golden")
    ws = Workspace.open(Settings(home=root / "home", actor="examiner"))
    create_installation_key(ws)
    asset_id = ingest_path(ws, small_video).asset_id
    analyze_asset(ws, asset_id)
    written = write_report(ws, asset_id)
    anchor = export_anchor(ws)
    with ws.db.session() as session:
        fusion = session.execute(select(Detection.detection_id).where(Detection.stage == "fusion")).scalar_one()
        rows = {t: session.execute(select(Detection.__table__.metadata.tables[t].c[k])).scalars().first()
                for t, k in TABLE_KEYS.items()}
    rows["detections"] = fusion
    keys = {"raw": ws.store.list("raw")[0], "frame": f"derived/{asset_id}/video/frames/000000000.png",
            "window": f"derived/{asset_id}/video/clips/cs0_0.npy",
            "heatmap": f"derived/{asset_id}/forensics/f000000000/ela_heat.png",
            "report_json": ws.store.key_of(written.uri_json), "report_pdf": ws.store.key_of(written.uri_pdf)}
    assert all(ws.store.exists(k) for k in keys.values())
    ws.close()
    yield {"home": root / "home", "asset_id": asset_id, "rows": rows, "keys": keys, "anchor": anchor}


@pytest.fixture
def copy(golden: dict[str, Any], tmp_path: Path) -> Iterator[Workspace]:
    home = tmp_path / "home"
    shutil.copytree(golden["home"], home)
    ws = Workspace.open(Settings(home=home, actor="examiner"))
    yield ws
    ws.close()


def _problems(ws: Workspace, anchor: dict[str, Any] | None = None) -> list[str]:
    with pytest.raises(IntegrityError) as caught:
        verify(ws, anchor=anchor)
    assert exit_code_for(caught.value) == 4
    return caught.value.problems


def _db(ws: Workspace) -> sqlite3.Connection:
    """A plain connection, as an intruder would use (no foreign keys, no tamperscope code)."""
    return sqlite3.connect(ws.settings.home / "tamperscope.db", isolation_level=None)


def test_untouched_copy_verifies_against_its_anchor(copy: Workspace, golden: dict[str, Any]) -> None:
    result = verify(copy, anchor=golden["anchor"])
    assert result.head_signed and result.anchored_at == golden["anchor"]["event_id"]
    assert result.rows_checked > 50 and result.objects_checked > 100


@pytest.mark.parametrize("table", list(TABLE_KEYS))
@pytest.mark.parametrize("operation", ["changed", "missing", "added"])
def test_every_evidence_table_is_sealed(copy: Workspace, golden: dict[str, Any], table: str,
                                        operation: str) -> None:
    column, key = TABLE_KEYS[table], golden["rows"][table]
    new_key = 99_999 if table == "detections" else f"{key}x"
    with _db(copy) as conn:
        if operation == "changed":
            conn.execute(f"UPDATE {table} SET {CHANGES[table]} WHERE {column} = ?", (key,))
        elif operation == "missing":
            conn.execute(f"DELETE FROM {table} WHERE {column} = ?", (key,))
        else:
            conn.execute(f"CREATE TEMP TABLE c AS SELECT * FROM {table} WHERE {column} = ?", (key,))
            conn.execute(f"UPDATE c SET {column} = ?", (new_key,))
            if table == "assets":
                conn.execute("UPDATE c SET sha256 = ?", ("f" * 64,))
            conn.execute(f"INSERT INTO {table} SELECT * FROM c")
    named = new_key if operation == "added" else key
    asset = str(named) if table == "assets" else golden["asset_id"]
    stage = ", stage fusion" if table == "detections" else ""
    assert f"{table} row {named} (asset {asset}{stage}): {operation}" in _problems(copy)


@pytest.mark.parametrize("kind", ["raw", "frame", "window", "heatmap", "report_json", "report_pdf"])
@pytest.mark.parametrize("operation", ["changed", "missing", "added"])
def test_every_artifact_kind_is_sealed(copy: Workspace, golden: dict[str, Any], kind: str,
                                       operation: str) -> None:
    key = golden["keys"][kind]
    path = Path(copy.store.path(key))
    if operation == "changed":
        os.chmod(path, 0o644)
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))
    elif operation == "missing":
        path.unlink()
    else:
        key = key.replace(path.name, "e" * 64) if kind == "raw" else f"{key}.extra"
        Path(copy.store.path(key)).write_bytes(b"planted")
    owner = " (no asset)" if kind == "raw" and operation == "added" else f" (asset {golden['asset_id']})"
    assert f"object {key}{owner}: {operation}" in _problems(copy)


def _rewrite_chain(ws: Workspace, detection_id: int, *, resign: bool) -> None:
    """What an intruder with database access does: edit the verdict, fix its seal, rehash the chain after it."""
    with _db(ws) as conn:
        conn.execute(f"UPDATE detections SET {CHANGES['detections']} WHERE detection_id = ?", (detection_id,))
    with ws.db.session() as session:
        row = session.execute(select(Detection.__table__).where(Detection.detection_id == detection_id)
                              ).mappings().one()
        group = f"detections/{row['asset_id']}/fusion"
        events = session.execute(select(AuditEvent).order_by(AuditEvent.event_id)).scalars().all()
        first = max(i for i, e in enumerate(events) if group in (e.details_json or {}).get("groups", {}))
        details = json.loads(json.dumps(events[first].details_json))
        details["groups"][group][str(detection_id)] = row_digest("detections", row)
        events[first].details_json = details
        prev = events[first - 1].hash
        for event in events[first:]:
            event.prev_hash = prev
            event.hash = prev = event_hash(event.event_id, event.asset_id, event.who, event.when, event.action,
                                           event.details_json, prev)
        head = session.get(AuditHead, 1)
        assert head is not None
        head.last_hash = prev
        head.signature = ws.db.signer.sign_head(head.last_event_id, prev) if resign else head.signature


def test_rewritten_chain_with_the_key_fails_only_against_the_anchor(copy: Workspace,
                                                                    golden: dict[str, Any]) -> None:
    _rewrite_chain(copy, golden["rows"]["detections"], resign=True)
    assert verify(copy).problems == []  # consistent and signed: only an outside anchor can tell
    problems = _problems(copy, golden["anchor"])
    assert problems == [f"anchored event {golden['anchor']['event_id']} now has hash "
                        f"{_hash_of(copy, golden['anchor']['event_id'])}, anchor says {golden['anchor']['hash']} "
                        "(chain rewritten)"]


def _hash_of(ws: Workspace, event_id: int) -> str:
    with ws.db.session() as session:
        event = session.get(AuditEvent, event_id)
        assert event is not None
        return event.hash


def test_rewritten_chain_without_the_key_fails_on_the_head_signature(copy: Workspace,
                                                                     golden: dict[str, Any]) -> None:
    _rewrite_chain(copy, golden["rows"]["detections"], resign=False)
    problems = _problems(copy)
    assert len(problems) == 1 and "is not signed by the chain's key" in problems[0]


def test_truncated_chain_and_altered_anchor_fail(copy: Workspace, golden: dict[str, Any]) -> None:
    anchor = golden["anchor"]
    forged = {**anchor, "hash": "f" * 64}
    assert _problems(copy, forged) == ["anchor signature does not verify: the anchor file was altered"]
    assert verify_head(anchor["public_key"], anchor["event_id"], anchor["hash"], anchor["signature"])
    with _db(copy) as conn:
        conn.execute("DELETE FROM audit_events WHERE event_id >= ?", (anchor["event_id"],))
    assert f"anchored event {anchor['event_id']} is gone (chain truncated or rewritten)" in _problems(copy, anchor)


def test_report_carries_the_signed_head(copy: Workspace, golden: dict[str, Any]) -> None:
    report = json.loads(write_report(copy, golden["asset_id"]).json_bytes)
    head = report["custody"]["signed_head"]
    assert head["public_key"] == golden["anchor"]["public_key"]
    assert verify_head(head["public_key"], head["event_id"], head["hash"], head["signature"])
    assert head["hash"] == _hash_of(copy, head["event_id"])


def test_cli_verify_with_anchor_exit_codes(copy: Workspace, golden: dict[str, Any], tmp_path: Path) -> None:
    anchor = tmp_path / "anchor.json"
    env = {**os.environ, "TAMPERSCOPE_HOME": str(copy.settings.home), "PYTHONPATH": os.pathsep.join(sys.path),
           "COLUMNS": "400"}
    command = [sys.executable, "-c", "from tamperscope.cli.main import main; main()"]
    exported = subprocess.run([*command, "anchor", "export", str(anchor)], env=env, capture_output=True, text=True)
    assert exported.returncode == 0, exported.stderr
    ok = subprocess.run([*command, "verify", "--anchor", str(anchor)], env=env, capture_output=True, text=True)
    assert ok.returncode == 0 and "extends the anchor" in ok.stdout
    _rewrite_chain(copy, golden["rows"]["detections"], resign=True)
    bad = subprocess.run([*command, "verify", "--anchor", str(anchor)], env=env, capture_output=True, text=True)
    assert bad.returncode == 4 and "(chain rewritten)" in bad.stderr
