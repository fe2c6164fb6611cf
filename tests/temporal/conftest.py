"""Synthetic talking heads shared by the temporal tests (generated once per session)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tamperscope.samples.talking_head import FaceRig, SyntheticClip, astronaut_rig, talking_head
from tamperscope.temporal.dense import DenseTrack, dense_landmarks


@pytest.fixture(scope="session")
def rig() -> FaceRig:
    return astronaut_rig(256, 256)


@pytest.fixture(scope="session")
def make_clip(rig: FaceRig, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., SyntheticClip]:
    """Factory of synthetic clips, cached by their parameters."""
    cache: dict[str, SyntheticClip] = {}
    folder = tmp_path_factory.mktemp("talking")

    def make(**kwargs: Any) -> SyntheticClip:
        key = repr(sorted(kwargs.items()))
        if key not in cache:
            cache[key] = talking_head(folder / f"clip{len(cache)}.mp4", rig=rig, **kwargs)
        return cache[key]

    return make


@pytest.fixture(scope="session")
def landmarks_of() -> Callable[[Path], DenseTrack]:
    """Dense landmarks of a whole file (unguided), cached by path."""
    cache: dict[Path, DenseTrack] = {}

    def run(path: Path) -> DenseTrack:
        if path not in cache:
            cache[path] = dense_landmarks(path, [(0, 10**9)], long_side=256)
        return cache[path]

    return run
