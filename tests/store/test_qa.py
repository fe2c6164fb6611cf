"""Data QA expectations: a clean analysed workspace passes; each broken expectation is listed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tamperscope.errors import IntegrityError
from tamperscope.settings import Settings
from tamperscope.store.models import Asset, Frame, Shot, StageRun
from tamperscope.store.qa import run_qa
from tamperscope.workspace import Workspace


def add_asset(session: Session, asset_id: str, *, subject: str | None = "p", label: str | None = "real",
              split: str | None = None, media_type: str = "video", duration_ms: int | None = 2000,
              fps: float | None = 25.0) -> Asset:
    asset = Asset(asset_id=asset_id, sha256=asset_id.ljust(64, "0"), size_bytes=1, original_name=f"{asset_id}.mp4",
                  label=label, subject=subject, split=split, media_type=media_type, duration_ms=duration_ms, fps=fps,
                  upload_time=datetime.now(UTC), uploaded_by="tester", storage_key="raw/x", status="analyzed")
    session.add(asset)
    session.flush()
    return asset


def add_analysis(session: Session, asset_id: str, shots: list[tuple[int, int]], frames: list[tuple[int, int]]) -> None:
    """``shots``: (t_start, t_end); ``frames``: (shot index, t_ms)."""
    for n, (start, end) in enumerate(shots):
        session.add(Shot(shot_id=f"{asset_id}:s{n:04d}", asset_id=asset_id, index=n, t_start_ms=start, t_end_ms=end,
                         detector="start", confidence=1.0))
    session.flush()
    for shot, t_ms in frames:
        session.add(Frame(frame_id=f"{asset_id}:f{t_ms:09d}", asset_id=asset_id, shot_id=f"{asset_id}:s{shot:04d}",
                          t_ms=t_ms, keyframe=False))
    session.add(StageRun(asset_id=asset_id, stage="video", version="t", status="done",
                         finished_at=datetime.now(UTC)))


def checks(failures: list) -> set[str]:
    return {f"{f.table}: {f.check}" for f in failures}


def test_clean_tables_pass(ws: Workspace) -> None:
    with ws.db.session() as session:
        for n, (split, label) in enumerate([("train", "real"), ("train", "fake"), ("test", "real"),
                                            ("test", "fake")]):
            add_asset(session, f"ok{n}", subject=f"p{n}", label=label, split=split)
            add_analysis(session, f"ok{n}", [(0, 1000), (1000, 2000)], [(0, 0), (0, 500), (1, 1000)])
    assert run_qa(ws.db) == []


def test_every_broken_expectation_is_reported(ws: Workspace) -> None:
    with ws.db.session() as session:
        add_asset(session, "zero", duration_ms=0, subject="p1", split="train")
        add_asset(session, "fast", fps=5000.0, subject="p2", split="train")
        add_asset(session, "noshots", subject="p3", split="train")
        add_analysis(session, "noshots", [], [])
        add_asset(session, "emptyshot", subject="p4", split="test")
        add_analysis(session, "emptyshot", [(0, 1000), (1000, 2000)], [(0, 0)])
        add_asset(session, "late", subject="p5", split="test", duration_ms=1000)
        add_analysis(session, "late", [(0, 5000)], [(0, 4000)])
        add_asset(session, "leak", subject="p1", split="test")
    failures = run_qa(ws.db)
    found = checks(failures)
    assert "assets: duration_ms duration > 0" in found
    assert any(c.startswith("assets: fps fps in") for c in found)
    assert "shots: shots >= 1 shot per video" in found
    assert "frames: frames >= 1 frame per shot" in found
    assert "shots: timestamps inside duration" in found and "frames: timestamps inside duration" in found
    assert "splits: splits subject in one split only" in found
    by_check = {f"{f.table}: {f.check}": f.cases for f in failures}
    assert by_check["frames: frames >= 1 frame per shot"] == ["emptyshot:s0001"]
    assert by_check["splits: splits subject in one split only"] == ["p1"]
    assert by_check["frames: timestamps inside duration"] == ["late:f000004000"]


def test_label_balance_per_split(ws: Workspace) -> None:
    with ws.db.session() as session:
        for n in range(10):
            add_asset(session, f"tr{n}", subject=f"a{n}", split="train", label="real" if n < 5 else "fake")
            add_asset(session, f"te{n}", subject=f"b{n}", split="test", label="real")
    failures = run_qa(ws.db, max_label_skew=0.2)
    skew = [f for f in failures if "skew" in f.check]
    assert skew and skew[0].cases == ["test", "train"]
    assert not [f for f in run_qa(ws.db, max_label_skew=0.3) if "skew" in f.check]


def test_cli_lists_failures_and_exits_non_zero(tmp_path: Path) -> None:
    from tamperscope.cli.main import app

    home = tmp_path / "home"
    ws = Workspace.open(Settings(home=home, actor="tester"))
    with ws.db.session() as session:
        add_asset(session, "bad", duration_ms=0)
    ws.close()
    runner = CliRunner()
    result = runner.invoke(app, ["--home", str(home), "qa"])
    assert isinstance(result.exception, IntegrityError)  # exit code 4 through main()
    assert "duration > 0: bad" in result.output
    exported = runner.invoke(app, ["--home", str(home), "export", "--parquet", str(tmp_path / "pq")])
    assert exported.exit_code == 0 and (tmp_path / "pq" / "assets.parquet").is_file()
