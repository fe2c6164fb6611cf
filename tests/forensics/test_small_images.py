"""Images too small for a detector make that detector ``not_applicable``, never an exception."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from tamperscope.custody.intake import ingest_path
from tamperscope.forensics import analyze_image, load_detector
from tamperscope.forensics.base import min_side
from tamperscope.forensics.registry import DETECTORS
from tamperscope.pipeline.runner import analyze_asset
from tamperscope.store.models import Detection
from tamperscope.workspace import Workspace


@pytest.mark.parametrize("shape", [(1, 1), (8, 8), (16, 16), (31, 200), (67, 67)])
def test_every_detector_answers_on_small_images(shape: tuple[int, int]) -> None:
    image = (np.random.default_rng(0).random((*shape, 3)) * 255).astype(np.uint8)
    results = analyze_image(image)
    assert set(results) == set(DETECTORS)
    for name, result in results.items():
        applicable = result.evidence.get("applicable", True)
        if min(shape) < min_side(load_detector(name)):
            assert not applicable and "px needed" in result.evidence["reason"], name
        assert result.map.shape == shape and np.isfinite(result.map).all()
        assert 0.0 <= result.score <= 1.0


@pytest.mark.parametrize(("size", "fmt"), [((8, 8), "PNG"), ((16, 16), "PNG"), ((1, 1), "WEBP"), ((8, 8), "JPEG")])
def test_tiny_images_analyse_with_not_applicable_rows(size: tuple[int, int], fmt: str, ws: Workspace,
                                                      tmp_path: Path) -> None:
    path = tmp_path / f"tiny.{fmt.lower()}"
    Image.new("RGB", size, (120, 30, 200)).save(path, fmt)
    asset_id = ingest_path(ws, path).asset_id
    run = analyze_asset(ws, asset_id)
    assert run.failed == {}
    with ws.db.session() as session:
        rows = session.execute(select(Detection).where(Detection.asset_id == asset_id,
                                                       Detection.stage == "forensics")).scalars().all()
        statuses = {r.module_name: r.status for r in rows}
    assert len(statuses) == len(DETECTORS)
    assert statuses["forensics.noise"] == "not_applicable"
    assert statuses["forensics.spectrum"] == "not_applicable"
