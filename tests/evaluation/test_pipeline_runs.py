"""The evaluation pipelines run every item through the analysis service: the intake record, the stages they
name, what ran versus what was cached, and the videos intake rejects."""

from __future__ import annotations

from pathlib import Path

from tamperscope.errors import RejectReason
from tamperscope.evaluation import image_pipeline, video_pipeline
from tamperscope.settings import Settings
from tamperscope.store.models import Asset, StageRun
from tamperscope.workspace import Workspace


def test_image_pipeline_records_the_item_runs_its_stages_then_reads_them_from_the_cache(
        tmp_path: Path, small_jpeg: Path) -> None:
    item = image_pipeline.ImageItem(small_jpeg, "real/small.jpg", 0, "camera", "g1", 0)
    settings = Settings(home=tmp_path / "home", actor="eval")
    seen: list[tuple[str, int, int]] = []
    first = image_pipeline.run_pipeline([item], settings, lambda r, done, total: seen.append((r.asset_id, done, total)))
    assert [r.item for r in first] == [item] and not first[0].failed
    assert set(first[0].ran) <= set(image_pipeline.STAGES) and "forensics" in first[0].ran
    assert seen == [(first[0].asset_id, 1, 1)]
    ws = Workspace.open(settings)
    try:
        with ws.db.session() as s:
            asset = s.get(Asset, first[0].asset_id)
            assert asset is not None
            assert (asset.original_name, asset.source, asset.label, asset.subject) == ("small.jpg", "real/small.jpg",
                                                                                        "0", "g1")
            assert {r.stage for r in s.query(StageRun).filter(StageRun.asset_id == asset.asset_id)} <= set(
                image_pipeline.STAGES)  # only the stages the harness names, no fusion
    finally:
        ws.close()
    second = image_pipeline.run_pipeline([item], settings)
    assert second[0].asset_id == first[0].asset_id and second[0].ran == []  # printed as "cached"
    assert second[0].rows == first[0].rows


def test_video_pipeline_lists_what_intake_rejects_and_evaluates_nothing_of_it(tmp_path: Path) -> None:
    bogus = tmp_path / "data" / "bogus.mp4"
    bogus.parent.mkdir()
    bogus.write_bytes(b"this is not a video" * 64)
    item = video_pipeline.VideoItem(bogus, "fake/bogus.mp4", 1, "gen", "i1", "g1", 0)
    seen: list[int] = []
    settings = Settings(home=tmp_path / "home", actor="eval")
    for _ in range(2):  # the second time intake answers from the rejected row it stored
        records, rejected = video_pipeline.run_pipeline([item], settings, None,
                                                        lambda r, done, total: seen.append(done))
        assert records == [] and seen == []
        assert list(rejected) == ["fake/bogus.mp4"]
        reason, _, message = rejected["fake/bogus.mp4"].partition(": ")
        assert RejectReason(reason) and message


def test_video_pipeline_runs_only_the_named_stages_and_rejects_unknown_ones(tmp_path: Path) -> None:
    import subprocess

    import pytest

    from tamperscope.errors import UsageError

    clip = tmp_path / "data" / "clip.mp4"
    clip.parent.mkdir()
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10:duration=1",
                    "-pix_fmt", "yuv420p", str(clip)], check=True)
    item = video_pipeline.VideoItem(clip, "real/clip.mp4", 0, "real", "i1", "g1", 0)
    settings = Settings(home=tmp_path / "home", actor="eval")
    records, rejected = video_pipeline.run_pipeline([item], settings, None, stages=["metadata"])
    assert not rejected and records[0].ran == ["metadata"]
    ws = Workspace.open(settings)
    try:
        with ws.db.session() as s:
            assert {r.stage for r in s.query(StageRun)} == {"metadata"}
    finally:
        ws.close()
    with pytest.raises(UsageError, match="fusion"):
        video_pipeline.run_pipeline([item], settings, None, stages=["fusion"])
