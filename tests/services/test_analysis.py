"""The analysis service: one sequence (ingest -> analyze -> summarise -> report) with progress, and the front door."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

import tamperscope
from tamperscope.custody.intake import IntakeRecord
from tamperscope.errors import IsDirectoryError, NotFoundError
from tamperscope.samples import demo as samples
from tamperscope.services.analysis import as_target, run_analysis
from tamperscope.settings import Settings
from tamperscope.workspace import Workspace


def test_run_analysis_ingests_analyses_summarises_and_reports(tmp_path: Path) -> None:
    photo, _ = samples.edited_copy(samples.camera_like_jpeg(tmp_path / "camera.jpg"), tmp_path / "edited.jpg")
    ws = Workspace.open(Settings(home=tmp_path / "home", actor="tester"))
    calls: list[tuple[str, float]] = []
    try:
        outcome = run_analysis(ws, photo, record=IntakeRecord(original_name="edited.jpg", label="manipulated"),
                               progress=lambda phase, fraction, _: calls.append((phase, fraction)),
                               report_dir=tmp_path / "reports")
        assert outcome.intake is not None and outcome.summary.asset_id == outcome.intake.asset_id
        assert outcome.summary.status == "analyzed" and not outcome.run.failed
        assert outcome.summary.ran == sorted(outcome.run.ran)
        phases = [phase for phase, _ in calls]
        assert phases[:2] == ["ingest", "ingest"] and phases[-2:] == ["report", "report"]
        assert set(outcome.run.ran) <= set(phases)
        assert all(0.0 <= fraction <= 1.0 for _, fraction in calls)
        written = outcome.report
        assert written is not None
        on_disk = (tmp_path / "reports" / f"{outcome.summary.asset_id}.json").read_bytes()
        assert hashlib.sha256(on_disk).hexdigest() == written.sha256_json
        assert json.loads(on_disk)["asset"]["asset_id"] == outcome.summary.asset_id

        again = run_analysis(ws, outcome.summary.sha256[:12])  # a str names a stored asset: nothing re-runs
        assert again.intake is None and again.report is None
        assert again.run.ran == []
        assert sorted(again.run.skipped) == sorted(outcome.run.ran + outcome.run.not_applicable)
        assert again.summary.verdict == outcome.summary.verdict
    finally:
        ws.close()


def test_a_string_target_is_never_ingested_even_if_a_file_has_that_name(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "deadbeefcafe").write_bytes(b"not an asset")
    ws = Workspace.open(Settings(home=tmp_path / "home"))
    try:
        with pytest.raises(NotFoundError):
            run_analysis(ws, "deadbeefcafe")
    finally:
        ws.close()
    assert as_target("deadbeefcafe") == Path("deadbeefcafe") and as_target("0123abcd") == "0123abcd"


def test_a_folder_is_not_one_target(tmp_path: Path) -> None:
    """One analysis takes one file; a folder is a batch (``tamperscope analyze DIR``), never read as a file."""
    with pytest.raises(IsDirectoryError, match="is a directory, not a file"):
        as_target(str(tmp_path))


def test_front_door_analyses_a_file_in_the_named_workspace(tmp_path: Path) -> None:
    photo = samples.camera_like_jpeg(tmp_path / "camera.jpg")
    settings = Settings(home=tmp_path / "home")
    summary = tamperscope.analyze(photo, settings)
    assert summary.sha256 == hashlib.sha256(photo.read_bytes()).hexdigest()
    assert summary.status == "analyzed" and "video" in summary.ran
    assert tamperscope.analyze(summary.asset_id, settings).ran == summary.ran
