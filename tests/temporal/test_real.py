"""The temporal stages on third-party clips from ../shared/testdata (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from tamperscope.custody.intake import ingest_path
from tamperscope.pipeline.runner import analyze_asset
from tamperscope.store.models import Detection, StageRun
from tamperscope.workspace import Workspace

pytestmark = [pytest.mark.shared, pytest.mark.slow]


def _analyse(ws: Workspace, path: Path) -> tuple[dict[tuple[str, str], Detection], dict[str, StageRun]]:
    asset_id = ingest_path(ws, path).asset_id
    result = analyze_asset(ws, asset_id, only=["video", "temporal", "avsync"])
    assert not result.failed
    with ws.db.session() as session:
        rows = {(d.module_name, d.window_id): d for d in session.execute(
            select(Detection).where(Detection.asset_id == asset_id)).scalars()}
        runs = {r.stage: r for r in session.execute(select(StageRun).where(StageRun.asset_id == asset_id)).scalars()}
        session.expunge_all()
    return rows, runs


def test_dfdc_fake_is_followed_through_detector_dropouts(ws: Workspace, shared_dir: Path) -> None:
    rows, runs = _analyse(ws, shared_dir / "video" / "deepfake" / "abofeumbvv.mp4")
    summary = runs["temporal"].summary_json
    # The video stage finds the small face on few sampled frames; the guided dense pass keeps it for most frames.
    assert summary["face_frames"] >= 200 and summary["face_frames"] / summary["dense_frames"] > 0.9
    assert rows[("temporal.head_pose", "asset")].status == "scored"
    assert rows[("temporal.landmarks", "asset")].status == "scored"
    assert rows[("temporal.blink", "asset")].status == "insufficient_data"  # a 10 s clip, under min_face_s
    assert rows[("avsync.offset", "asset")].status in ("scored", "insufficient_data")


def test_real_talking_head_without_audio(ws: Workspace, shared_dir: Path) -> None:
    rows, _ = _analyse(ws, shared_dir / "video" / "real" / "dfd_actors_07__talking_against_wall.mp4")
    blink = rows[("temporal.blink", "asset")]
    assert blink.status == "scored" and 8 <= blink.evidence_json["rate_per_min"] <= 40
    assert rows[("temporal.head_pose", "asset")].score < 0.5
    assert rows[("temporal.landmarks", "asset")].score < 0.5
    assert rows[("avsync.offset", "asset")].status == "not_applicable"
