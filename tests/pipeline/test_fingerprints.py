"""Whether a stored stage result is current: each stage's fingerprint (``params``) covers exactly what its
results depend on, so the runner re-runs what changed and nothing else."""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tamperscope.custody.intake import ingest_path
from tamperscope.fusion.model import ARTIFACTS, load_model
from tamperscope.pipeline.runner import analyze_asset
from tamperscope.settings import ModelSettings, Settings, TemporalSettings
from tamperscope.stages import fusion as fusion_stage
from tamperscope.stages.avsync import AVSyncStage
from tamperscope.stages.base import fingerprint
from tamperscope.stages.deep import DeepStage
from tamperscope.stages.temporal import TemporalStage
from tamperscope.store.models import Detection
from tamperscope.workspace import Workspace


def _verdict(ws: Workspace, asset_id: str) -> float | None:
    with ws.db.session() as session:
        row = session.scalars(select(Detection).where(Detection.asset_id == asset_id,
                                                      Detection.module_name == "fusion")).one()
        return row.score


def test_refitted_fusion_artifact_makes_stored_verdicts_stale(any_ws: Workspace, small_jpeg: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    ws = any_ws
    artifacts = tmp_path / "artifacts"
    shutil.copytree(ARTIFACTS, artifacts)
    monkeypatch.setattr(fusion_stage, "load_model", functools.partial(load_model, directory=artifacts))
    asset_id = ingest_path(ws, small_jpeg).asset_id
    stages = ["video", "forensics", "fusion"]
    first = analyze_asset(ws, asset_id, only=stages)
    assert first.ran == stages and not first.failed
    before = _verdict(ws, asset_id)
    assert before is not None

    assert not analyze_asset(ws, asset_id, only=stages).ran

    # refit: new coefficients under the same threshold policy (its version unchanged)
    path = artifacts / f"{fusion_stage.MODEL_FOR_MEDIA['image']}.json"
    model = json.loads(path.read_text())
    model["intercept"] -= 2.0
    path.write_text(json.dumps(model))
    again = analyze_asset(ws, asset_id, only=stages)
    assert again.ran == ["fusion"]
    after = _verdict(ws, asset_id)
    assert after is not None and after < before


def test_deep_fingerprint_covers_the_model_and_its_sidecar(tmp_path: Path) -> None:
    model = tmp_path / "frame.onnx"
    model.write_bytes(b"stand-in for an ONNX graph")
    sidecar = model.with_suffix(".yaml")
    sidecar.write_text("kind: frame\ninput_size: 160\n", encoding="utf-8")
    settings = Settings(home=tmp_path, models=ModelSettings(frame_path=model, clip_path=None))
    inputs = {"video": "v1"}
    first = fingerprint(DeepStage(), settings, inputs)
    assert fingerprint(DeepStage(), settings, inputs) == first
    sidecar.write_text("kind: frame\ninput_size: 224\n", encoding="utf-8")
    second = fingerprint(DeepStage(), settings, inputs)
    assert second != first
    model.write_bytes(b"a retrained ONNX graph")
    assert fingerprint(DeepStage(), settings, inputs) not in (first, second)


def test_fingerprint_follows_version_settings_and_inputs() -> None:
    settings = Settings()
    stage = TemporalStage()
    base = fingerprint(stage, settings, {"video": "v1"})
    assert fingerprint(stage, settings, {"video": "v2"}) != base  # an input re-ran with other results
    assert fingerprint(stage, settings, {"video": "v1", "metadata": "m2"}) == base  # not an input of temporal
    changed = settings.model_copy(update={"temporal": settings.temporal.model_copy(update={"blink_drop": 0.4})})
    assert fingerprint(stage, changed, {"video": "v1"}) != base
    unrelated = settings.model_copy(update={"temporal": settings.temporal.model_copy(update={"max_offset_s": 2.0})})
    assert fingerprint(stage, unrelated, {"video": "v1"}) == base

    class Bumped(TemporalStage):
        version = "9.9.9"

    assert fingerprint(Bumped(), settings, {"video": "v1"}) != base


def test_a_changed_input_reruns_its_dependents_and_nothing_else(ws: Workspace, small_jpeg: Path) -> None:
    asset_id = ingest_path(ws, small_jpeg).asset_id
    stages = ["metadata", "video", "forensics"]
    assert sorted(analyze_asset(ws, asset_id, only=stages).ran) == sorted(stages)
    ws.settings.video.near_duplicate_phash += 1  # a video setting: video and forensics (its dependent) re-run
    again = analyze_asset(ws, asset_id, only=stages)
    assert sorted(again.ran) == ["forensics", "video"] and "metadata" in again.skipped


def _changed(field: str, value: Any) -> set[str]:
    """The stages whose fingerprint changes when ``settings.temporal.<field>`` does."""
    base = Settings()
    changed = base.model_copy(update={"temporal": base.temporal.model_copy(update={field: value})})
    return {stage.name for stage in (TemporalStage(), AVSyncStage())
            if stage.params(changed) != stage.params(base)}


def test_temporal_and_avsync_fingerprints_cover_only_the_settings_each_uses() -> None:
    assert _changed("blink_drop", 0.4) == {"temporal"}
    assert _changed("min_face_s", 20.0) == {"temporal"}
    assert _changed("max_offset_s", 2.0) == {"avsync"}
    assert _changed("min_bilabials", 20) == {"avsync"}
    assert _changed("long_side", 480) == {"temporal", "avsync"}  # the shared dense landmark pass
    assert _changed("range_pad_ms", 1000) == {"temporal", "avsync"}


@pytest.mark.parametrize("field", sorted(TemporalSettings.model_fields))
def test_every_temporal_setting_is_in_some_stage_fingerprint(field: str) -> None:
    value = getattr(TemporalSettings(), field)
    assert _changed(field, value * 2 + 1), f"no stage's fingerprint covers temporal.{field}"
