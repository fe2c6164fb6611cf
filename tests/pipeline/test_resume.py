"""A run killed with SIGKILL mid-stage resumes with no duplicate or partial rows, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select

from tamperscope.custody.intake import ingest_path
from tamperscope.custody.verify import verify
from tamperscope.settings import Settings
from tamperscope.store.models import Asset, Detection, StageRun
from tamperscope.workspace import Workspace

RUNNER = """
import sys
from tamperscope.pipeline import registry
registry.STAGES.clear()
registry.STAGES.update({
    "metadata": "tamperscope.stages.metadata:MetadataStage",
    "quick": "tests.pipeline.killable_stages:QuickStage",
    "blocking": "tests.pipeline.killable_stages:BlockingStage",
})
from tamperscope.pipeline.runner import analyze_asset
from tamperscope.settings import Settings
from tamperscope.workspace import Workspace
ws = Workspace.open(Settings(home=sys.argv[1], actor="tester", workers=1))
result = analyze_asset(ws, sys.argv[2])
print("ran=" + ",".join(sorted(result.ran)), "skipped=" + ",".join(sorted(result.skipped)))
"""


def _run(home: Path, asset_id: str, env: dict[str, str]) -> subprocess.Popen[str]:
    repo = Path(__file__).resolve().parents[2]
    return subprocess.Popen([sys.executable, "-c", RUNNER, str(home), asset_id], cwd=repo, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_sigkill_mid_stage_then_resume(any_settings: Settings, small_video: Path, tmp_path: Path) -> None:
    settings = any_settings
    ws = Workspace.open(settings)
    asset_id = ingest_path(ws, small_video).asset_id
    marker = tmp_path / "blocking.started"
    env = {**os.environ, "BLOCK_MARKER": str(marker)}
    if settings.db_url:  # the killed and the resuming process use the test's PostgreSQL database
        env["TAMPERSCOPE_DB_URL"] = settings.db_url
    proc = _run(settings.home, asset_id, env)
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    with ws.db.session() as session:
        runs = {r.stage: r.status for r in session.execute(select(StageRun)).scalars()}
        assert runs == {"metadata": "done", "quick": "done"}
        assert session.scalar(select(func.count()).where(Detection.stage == "blocking")) == 0
        metadata_rows = session.scalar(select(func.count()).where(Detection.stage == "metadata"))
        assert session.get(Asset, asset_id).status == "analyzing"  # type: ignore[union-attr]

    env.pop("BLOCK_MARKER")
    resumed = _run(settings.home, asset_id, env)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert "ran=blocking" in out and "skipped=metadata,quick" in out

    with ws.db.session() as session:
        per_stage = dict(session.execute(select(Detection.stage, func.count()).group_by(Detection.stage)).all())
        assert per_stage.pop("metadata", 0) == metadata_rows  # flags of the finished stage, not written twice
        assert per_stage == {"quick": 5, "blocking": 5}
        windows = session.execute(select(Detection.stage, Detection.window_id)).all()
        assert len(windows) == len(set(windows))
        assert session.get(Asset, asset_id).status == "analyzed"  # type: ignore[union-attr]
    assert not verify(ws).problems
    ws.close()
