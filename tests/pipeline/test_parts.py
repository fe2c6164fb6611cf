"""An analysis in parts (the batch's task graph per asset): begun once, each part running some stages under the
lease, finished once; it stores what one run stores and leaves no asset marked analysing between parts."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tamperscope.custody.intake import ingest_path
from tamperscope.custody.verify import verify
from tamperscope.errors import UsageError
from tamperscope.pipeline import registry
from tamperscope.pipeline.runner import RunResult, analyze_asset, begin_analysis, finish_analysis
from tamperscope.settings import Settings
from tamperscope.store import queries
from tamperscope.store.models import Asset, StageRun
from tamperscope.workspace import Workspace
from tests.services import batch_stages


def _state(ws: Workspace, asset_id: str) -> tuple[str, dict[str, tuple[str, str | None]], Counter[str]]:
    """The asset's status, its stage runs (status, fingerprint) and its audit events per action."""
    with ws.db.read_session() as session:
        asset = session.get(Asset, asset_id)
        assert asset is not None
        runs = {r.stage: (r.status, r.fingerprint) for r in session.query(StageRun).filter_by(asset_id=asset_id)}
        return asset.status, runs, Counter(e.action for e in queries.audit_events(session, asset_id))


def test_an_analysis_in_parts_stores_what_one_run_stores(tmp_path: Path, small_jpeg: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "STAGES", dict(batch_stages.STAGES))  # deep fails on still images
    parts_ws = Workspace.open(Settings(home=tmp_path / "parts", actor="tester"))
    one_ws = Workspace.open(Settings(home=tmp_path / "one", actor="tester"))
    try:
        asset_id = ingest_path(parts_ws, small_jpeg).asset_id
        with parts_ws.db.session() as session:  # as a run that died left it: marked analysing, no live lease
            stuck = session.get(Asset, asset_id)
            assert stuck is not None
            stuck.status = "analyzing"
        assert begin_analysis(parts_ws, asset_id) == asset_id  # recovers it once: accepted until the finish
        first = analyze_asset(parts_ws, asset_id, only=["video", "forensics"], part_of=RunResult(asset_id))
        assert (sorted(first.ran), first.skipped, first.failed) == (["forensics", "video"], [], {})
        status, _, actions = _state(parts_ws, asset_id)
        assert status == "accepted" and actions["analysis.started"] == 1 and actions["analysis.finished"] == 0
        second = analyze_asset(parts_ws, asset_id, only=["deep"], part_of=first)
        assert second.ran == [] and second.failed == {"deep": "RuntimeError: no model for stills"}
        # a stage whose requirement failed in an earlier part is skipped as failed, not run
        last = analyze_asset(parts_ws, asset_id, only=["fusion"], part_of=RunResult.merged(asset_id, [first, second]))
        assert last.failed == {"fusion": "skipped: deep failed"} and last.ran == []
        whole = RunResult.merged(asset_id, [first, second, last])
        finish_analysis(parts_ws, whole)

        one = analyze_asset(one_ws, ingest_path(one_ws, small_jpeg).asset_id, only=["video", "forensics", "deep",
                                                                                   "fusion"])
        assert (sorted(whole.ran), whole.failed) == (sorted(one.ran), one.failed)
        parts_status, parts_runs, parts_actions = _state(parts_ws, asset_id)
        one_status, one_runs, one_actions = _state(one_ws, one.asset_id)
        assert (parts_status, parts_runs) == (one_status, one_runs) == ("failed", parts_runs)
        assert {a: parts_actions[a] for a in ("analysis.started", "analysis.finished", "analysis.recovered")} == \
            {"analysis.started": 1, "analysis.finished": 1, "analysis.recovered": 1}
        assert parts_actions["stage.done"] == one_actions["stage.done"] == 2
        assert not verify(parts_ws).problems
        with pytest.raises(UsageError, match="unknown stages: nope"):
            begin_analysis(parts_ws, asset_id, only=["nope"])
    finally:
        parts_ws.close()
        one_ws.close()
