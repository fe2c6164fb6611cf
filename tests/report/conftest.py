"""One analysed image, shared by the report tests: analysed once per session, and each module gets its own copy of
that workspace, so what one module writes (reports, case fields, audit events) never shows in another."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tamperscope.custody.intake import ingest_path
from tamperscope.pipeline.runner import analyze_asset
from tamperscope.samples import demo as samples
from tamperscope.settings import Settings
from tamperscope.workspace import Workspace

ACTOR = "reporter"


@pytest.fixture(scope="session")
def analysed_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A closed workspace home with an edited camera-like JPEG analysed by every registered stage that applies."""
    root = tmp_path_factory.mktemp("report")
    photo = samples.camera_like_jpeg(root / "camera.jpg")
    edited, _ = samples.edited_copy(photo, root / "edited.jpg")
    ws = Workspace.open(Settings(home=root / "home", actor=ACTOR))
    try:
        asset_id = ingest_path(ws, edited).asset_id
        analyze_asset(ws, asset_id)
    finally:
        ws.close()
    return root / "home", asset_id


@pytest.fixture(scope="module")
def analysed(analysed_home: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[tuple[Workspace, str]]:
    """This module's own copy of the analysed workspace (database, store and key as the analysis left them)."""
    template, asset_id = analysed_home
    home = tmp_path_factory.mktemp("report-copy") / "home"
    shutil.copytree(template, home)
    ws = Workspace.open(Settings(home=home, actor=ACTOR))
    yield ws, asset_id
    ws.close()
