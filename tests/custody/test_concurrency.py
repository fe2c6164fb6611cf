"""Custody under concurrency: 20 processes ingesting at once (SQLite and PostgreSQL), and analysis leases."""

from __future__ import annotations

import multiprocessing
import os
import socket
import traceback
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from tamperscope.custody import lease
from tamperscope.custody.intake import ingest_path
from tamperscope.custody.verify import verify
from tamperscope.errors import BusyError
from tamperscope.pipeline.runner import analyze_asset
from tamperscope.records import StageOutput
from tamperscope.settings import Settings
from tamperscope.stages.base import Stage, StageContext
from tamperscope.store.models import AnalysisLease, Asset, AuditEvent
from tamperscope.workspace import Workspace

PROCESSES = 20


def _png(path: Path, seed: int) -> Path:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def _ingest_worker(settings: Settings, path: Path, barrier: Any, results: Any) -> None:
    try:
        ws = Workspace.open(settings)
        barrier.wait(timeout=120)
        result = ingest_path(ws, path)
        results.put(("ok", result.asset_id, result.duplicate))
        ws.close()
    except BaseException:
        results.put(("error", traceback.format_exc(), False))


def _ingest_concurrently(settings: Settings, paths: list[Path]) -> list[tuple[str, str, bool]]:
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(len(paths))
    results = context.Queue()
    workers = [context.Process(target=_ingest_worker, args=(settings, p, barrier, results)) for p in paths]
    for worker in workers:
        worker.start()
    out = [results.get(timeout=600) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    assert [w.exitcode for w in workers] == [0] * len(workers)
    return out


def _counts(ws: Workspace) -> tuple[int, dict[str, int]]:
    with ws.db.session() as session:
        assets = session.scalar(select(func.count()).select_from(Asset)) or 0
        actions = dict(session.execute(select(AuditEvent.action, func.count()).group_by(AuditEvent.action)).all())
    return assets, actions


@pytest.mark.slow
def test_twenty_processes_ingest_one_file(any_ws: Workspace, tmp_path: Path) -> None:
    path = _png(tmp_path / "same.png", 0)
    outcomes = _ingest_concurrently(any_ws.settings, [path] * PROCESSES)
    errors = [o[1] for o in outcomes if o[0] == "error"]
    assert errors == []
    assert len({o[1] for o in outcomes}) == 1
    assert sum(not o[2] for o in outcomes) == 1  # exactly one arrival created the asset
    assets, actions = _counts(any_ws)
    assert assets == 1
    assert actions == {"intake.accepted": 1, "intake.duplicate": PROCESSES - 1, "evidence.sealed": 1}
    assert any_ws.store.list("tmp") == []
    assert len(any_ws.store.list("raw")) == 1
    assert verify(any_ws).events_checked == PROCESSES + 1


@pytest.mark.slow
def test_twenty_processes_ingest_twenty_files(any_ws: Workspace, tmp_path: Path) -> None:
    paths = [_png(tmp_path / f"f{i}.png", i) for i in range(PROCESSES)]
    outcomes = _ingest_concurrently(any_ws.settings, paths)
    assert [o[1] for o in outcomes if o[0] == "error"] == []
    assert len({o[1] for o in outcomes}) == PROCESSES and not any(o[2] for o in outcomes)
    assets, actions = _counts(any_ws)
    assert assets == PROCESSES and actions == {"intake.accepted": PROCESSES, "evidence.sealed": PROCESSES}
    assert any_ws.store.list("tmp") == []
    assert len(any_ws.store.list("raw")) == PROCESSES
    assert verify(any_ws).events_checked == 2 * PROCESSES


@pytest.fixture
def image_asset(ws: Workspace, tmp_path: Path) -> str:
    return ingest_path(ws, _png(tmp_path / "a.png", 7)).asset_id


def test_second_analysis_of_a_leased_asset_exits_busy(ws: Workspace, image_asset: str) -> None:
    held = lease.acquire(ws, image_asset)
    with pytest.raises(BusyError) as caught:
        analyze_asset(ws, image_asset, only=["metadata"])
    assert f"asset {image_asset} is being analysed by tester (pid {os.getpid()}" in str(caught.value)
    lease.release(ws, held)
    assert analyze_asset(ws, image_asset, only=["metadata"]).ran == ["metadata"]
    with ws.db.session() as session:
        assert session.scalar(select(func.count()).select_from(AnalysisLease)) == 0


def _dead_pid() -> int:
    process = multiprocessing.get_context("fork").Process(target=int)
    process.start()
    process.join()
    assert process.pid is not None
    return process.pid


@pytest.mark.parametrize("case", ["dead_process", "expired"])
def test_stale_lease_after_a_crash_is_recovered(ws: Workspace, image_asset: str, case: str) -> None:
    now = datetime.now(UTC)
    host, pid, expires = socket.gethostname(), _dead_pid(), now + timedelta(hours=1)
    if case == "expired":
        host, pid, expires = "elsewhere", 1, now - timedelta(seconds=1)
    with ws.db.session() as session:
        session.get(Asset, image_asset).status = "analyzing"  # type: ignore[union-attr]
        session.add(AnalysisLease(asset_id=image_asset, token="crashed", owner="ghost", host=host, pid=pid,
                                  acquired_at=now, expires_at=expires))
    analyze_asset(ws, image_asset, only=["metadata"])
    with ws.db.session() as session:
        assert session.get(Asset, image_asset).status == "analyzed"  # type: ignore[union-attr]
        recovered = session.execute(select(AuditEvent).where(AuditEvent.action == "analysis.recovered")
                                    ).scalar_one()
        assert session.scalar(select(func.count()).select_from(AnalysisLease)) == 0
    expected = "holder process is gone" if case == "dead_process" else "expired"
    assert (recovered.details_json["reason"], recovered.details_json["owner"]) == (expected, "ghost")


def test_analyzing_status_without_a_lease_is_recovered(ws: Workspace, image_asset: str) -> None:
    with ws.db.session() as session:
        session.get(Asset, image_asset).status = "analyzing"  # type: ignore[union-attr]
    analyze_asset(ws, image_asset, only=["metadata"])
    with ws.db.session() as session:
        actions = session.execute(select(AuditEvent.action).order_by(AuditEvent.event_id)).scalars().all()
    assert actions[2:4] == ["analysis.recovered", "analysis.started"]


def test_second_run_waits_for_the_first_when_asked(ws: Workspace, image_asset: str) -> None:
    import threading

    ws.settings.custody.lease_wait_s = 30.0
    held = lease.acquire(ws, image_asset)
    timer = threading.Timer(1.0, lease.release, args=(ws, held))
    timer.start()
    assert analyze_asset(ws, image_asset, only=["metadata"]).ran == ["metadata"]
    timer.join()


class _RefusingStage(Stage):
    """A stage whose decoder refuses the input with a typed reason."""

    name = "refuses"
    version = "1"

    def run(self, ctx: StageContext) -> StageOutput:
        from tamperscope.errors import InputRejectedError, RejectReason

        raise InputRejectedError(RejectReason.CORRUPT_STREAM, "decoder refused the first frame")


def test_typed_rejection_inside_analysis_is_kept_typed(ws: Workspace, image_asset: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from tamperscope.pipeline import runner

    monkeypatch.setattr(runner, "all_stages", lambda: [_RefusingStage()])
    result = analyze_asset(ws, image_asset)
    assert result.rejected == {"refuses": "corrupt_stream"} and "refuses" in result.failed
    verify(ws)  # the failed run left sealed, consistent evidence
