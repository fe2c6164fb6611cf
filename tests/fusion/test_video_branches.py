"""Video branches: deep frame/clip aggregates, temporal and AV-sync asset scores, explicit missing."""

import pytest

from tamperscope.fusion.branches import BRANCHES, Row, top_fraction_mean


def _frames(scores: list[float]) -> list[Row]:
    return [Row("deep.frame", f"a:f{i:09d}", s, "scored", t_start_ms=i * 125) for i, s in enumerate(scores)]


def test_top_fraction_mean_takes_the_highest_tenth() -> None:
    assert top_fraction_mean([0.1] * 18 + [0.9, 0.7]) == pytest.approx(0.8)
    assert top_fraction_mean([0.3]) == 0.3
    assert top_fraction_mean([0.2, 0.6, 0.4], 1.0) == pytest.approx(0.4)
    with pytest.raises(ValueError):
        top_fraction_mean([])
    with pytest.raises(ValueError):
        top_fraction_mean([0.5], 0.0)


def test_deep_frame_features_are_robust_aggregates() -> None:
    rows = [*_frames([0.1] * 18 + [0.9, 0.7]), Row("deep.frame", "asset", None, "not_applicable")]
    assert BRANCHES["deep_frame"].extract(rows) == pytest.approx({"top10_mean": 0.8, "median": 0.1})


def test_deep_clip_features_are_max_and_mean_of_scored_windows() -> None:
    rows = [Row("deep.clip", "a:c0:0", 0.2, "scored"), Row("deep.clip", "a:c0:1", 0.6, "scored"),
            Row("deep.clip", "a:c0:2", None, "insufficient_data")]
    assert BRANCHES["deep_clip"].extract(rows) == pytest.approx({"max": 0.6, "mean": 0.4})


def test_temporal_and_avsync_read_asset_rows_and_omit_unscored_modules() -> None:
    rows = [Row("temporal.blink", "asset", None, "insufficient_data"),
            Row("temporal.head_pose", "asset", 0.3, "scored"),
            Row("temporal.head_pose", "a:c0:0", 0.9, "scored"),
            Row("temporal.landmarks", "asset", 0.1, "scored"),
            Row("avsync.offset", "asset", 0.7, "scored"),
            Row("avsync.bilabial", "asset", None, "insufficient_data")]
    assert BRANCHES["temporal"].extract(rows) == {"head_pose": 0.3, "landmarks": 0.1}
    assert BRANCHES["avsync"].extract(rows) == {"offset": 0.7}


@pytest.mark.parametrize("branch", ["deep_frame", "deep_clip", "temporal", "avsync"])
def test_branch_without_scored_rows_is_missing(branch: str) -> None:
    rows = [Row("deep.frame", "asset", None, "not_applicable"), Row("deep.clip", "asset", None, "not_applicable"),
            Row("temporal.blink", "asset", None, "not_applicable"),
            Row("avsync.offset", "asset", None, "not_applicable"), Row("meta.software", "asset", 1.0, "flag")]
    assert BRANCHES[branch].extract(rows) is None
    assert BRANCHES[branch].extract([]) is None
