from pathlib import Path

import pytest
from sqlalchemy import select

from tamperscope.custody.intake import ingest_path
from tamperscope.pipeline.runner import analyze_asset
from tamperscope.store.models import Detection
from tamperscope.workspace import Workspace


@pytest.mark.slow
def test_image_gets_forensic_maps_and_a_banded_verdict(ws: Workspace, small_jpeg: Path) -> None:
    asset_id = ingest_path(ws, small_jpeg).asset_id
    analyze_asset(ws, asset_id, only=["metadata", "video", "forensics", "fusion"])
    with ws.db.session() as s:
        rows = list(s.scalars(select(Detection).where(Detection.asset_id == asset_id)))
    forensic = [r for r in rows if r.stage == "forensics"]
    assert len(forensic) == 9 and all(r.window_id == "asset" for r in forensic)
    for r in forensic:
        heat = ws.store.get_bytes(ws.store.key_of(r.saliency_uri))
        assert heat[:8] == b"\x89PNG\r\n\x1a\n"
        assert ws.store.exists(ws.store.key_of(r.overlay_uri))
    (verdict,) = [r for r in rows if r.module_name == "fusion"]
    assert verdict.window_id == "asset" and 0.0 <= verdict.score <= 1.0
    assert verdict.band in ("likely_real", "unsure", "likely_manipulated")
    assert verdict.evidence_json["policy_version"].startswith("image-v1")
    assert verdict.evidence_json["branches_present"] == ["forensics"]
