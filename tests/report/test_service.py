"""Writing, regenerating and verifying reports: byte-identical, recorded, audited, re-hashable."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from tamperscope.custody.verify import verify
from tamperscope.errors import IntegrityError
from tamperscope.report.service import verify_report_bytes, write_report
from tamperscope.store.models import AuditEvent, Report
from tamperscope.workspace import Workspace


def test_regenerating_yields_identical_json_and_pdf(analysed: tuple[Workspace, str], tmp_path: Path) -> None:
    ws, asset_id = analysed
    first = write_report(ws, asset_id, tmp_path / "a")
    second = write_report(ws, asset_id, tmp_path / "b")
    assert first.json_bytes == second.json_bytes
    assert first.pdf_bytes == second.pdf_bytes
    assert first.report_id == second.report_id == f"{asset_id}:r{first.sha256_json[:16]}"
    assert (tmp_path / "a" / f"{asset_id}.pdf").read_bytes() == (tmp_path / "b" / f"{asset_id}.pdf").read_bytes()
    assert first.pdf_bytes.startswith(b"%PDF")
    with ws.db.session() as session:
        rows = session.execute(select(Report).where(Report.asset_id == asset_id)).scalars().all()
        events = session.execute(select(AuditEvent).where(AuditEvent.action == "report.written")).scalars().all()
        assert [r.sha256_pdf for r in rows] == [hashlib.sha256(first.pdf_bytes).hexdigest()]
        assert len(events) == 2 and events[0].details_json["report_id"] == first.report_id
    assert ws.store.get_bytes(ws.store.key_of(first.uri_json)) == first.json_bytes
    assert verify(ws, asset_id).problems == []


def test_pdf_embeds_the_json_digest_and_has_the_sections(analysed: tuple[Workspace, str], tmp_path: Path) -> None:
    ws, asset_id = analysed
    written = write_report(ws, asset_id, tmp_path)
    text = subprocess.run(["pdftotext", "-layout", str(tmp_path / f"{asset_id}.pdf"), "-"], check=True,
                          capture_output=True, text=True).stdout
    assert written.sha256_json in text
    for heading in ("tamperscope evidence report", "Findings", "The image and every module's map",
                    "Metadata and provenance", "entered the verdict", "Per-module evidence", "Methods", "Limitations",
                    "Asset identity and custody", "Appendix: versions and parameters"):
        assert heading in text
    info = subprocess.run(["pdfinfo", str(tmp_path / f"{asset_id}.pdf")], check=True, capture_output=True,
                          text=True).stdout
    report = json.loads(written.json_bytes)
    assert report["generated_at"][:4] in info.split("CreationDate:")[1].splitlines()[0]


def test_verify_accepts_the_report_and_rejects_an_edit(analysed: tuple[Workspace, str]) -> None:
    ws, asset_id = analysed
    written = write_report(ws, asset_id)
    assert verify_report_bytes(ws, written.json_bytes)["ok"] is True
    edited = json.loads(written.json_bytes)
    edited["asset"]["original_name"] = "innocent.jpg"
    with pytest.raises(IntegrityError, match="asset"):
        verify_report_bytes(ws, json.dumps(edited).encode())


@pytest.mark.slow
def test_cli_report_and_verify_exit_codes(analysed: tuple[Workspace, str], tmp_path: Path) -> None:
    ws, asset_id = analysed
    cli = [str(Path(sys.executable).with_name("tamperscope")), "--home", str(ws.settings.home)]
    ok = subprocess.run([*cli, "report", asset_id, "--out", str(tmp_path)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    report_file = tmp_path / f"{asset_id}.json"
    assert subprocess.run([*cli, "report", "verify", str(report_file)], capture_output=True).returncode == 0
    report_file.write_bytes(report_file.read_bytes().replace(b'"status":"analyzed"', b'"status":"accepted"'))
    bad = subprocess.run([*cli, "report", "verify", str(report_file)], capture_output=True, text=True)
    assert bad.returncode == 4, bad.stderr


@pytest.mark.slow
def test_video_report_has_timeline_and_is_deterministic(small_video: Path, tmp_path: Path) -> None:
    from tamperscope.custody.intake import ingest_path
    from tamperscope.pipeline.runner import analyze_asset
    from tamperscope.settings import Settings

    ws = Workspace.open(Settings(home=tmp_path / "home", actor="reporter"))
    try:
        asset_id = ingest_path(ws, small_video).asset_id
        analyze_asset(ws, asset_id)
        first = write_report(ws, asset_id, tmp_path / "a")
        second = write_report(ws, asset_id, tmp_path / "b")
        report = json.loads(first.json_bytes)
    finally:
        ws.close()
    assert first.pdf_bytes == second.pdf_bytes and first.json_bytes == second.json_bytes
    if not report["timelines"]:
        pytest.skip("no stage wrote per-frame scores in this checkout")
    text = subprocess.run(["pdftotext", str(tmp_path / "a" / f"{asset_id}.pdf"), "-"], check=True,
                          capture_output=True, text=True).stdout
    assert "Every module over time" in text and "Frames with classical-detector maps" in text
