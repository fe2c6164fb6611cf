"""One analysed image, shared by the report tests (analysis runs once per module)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tamperscope.custody.intake import ingest_path
from tamperscope.pipeline.runner import analyze_asset
from tamperscope.samples import demo as samples
from tamperscope.settings import Settings
from tamperscope.workspace import Workspace


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workspace, str]]:
    """A workspace with an edited camera-like JPEG analysed by every registered stage that applies."""
    root = tmp_path_factory.mktemp("report")
    photo = samples.camera_like_jpeg(root / "camera.jpg")
    edited, _ = samples.edited_copy(photo, root / "edited.jpg")
    ws = Workspace.open(Settings(home=Path(root / "home"), actor="reporter"))
    asset_id = ingest_path(ws, edited).asset_id
    analyze_asset(ws, asset_id)
    yield ws, asset_id
    ws.close()
