"""The video harness's fitting, metrics, tables and shipped artifact on synthetic per-video rows (no media)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from tamperscope.errors import UsageError
from tamperscope.evaluation.video import ship_model
from tamperscope.evaluation.video_pipeline import VideoItem, VideoRecord, fold_model_paths, read_video_manifest
from tamperscope.evaluation.video_systems import VIDEO_BRANCHES, evaluate_system, splicer, system_metrics
from tamperscope.evaluation.video_tables import metrics_markdown, write_outputs
from tamperscope.fusion.branches import Row
from tamperscope.fusion.model import FusionModel
from tamperscope.fusion.policy import band_metrics
from tamperscope.fusion.timeline import WindowSpan


def _record(rng: np.random.Generator, n: int, label: int, family: str, fold: int) -> VideoRecord:
    rows = [Row("temporal.head_pose", "asset", float(rng.uniform(0.1, 0.5) + 0.1 * label), "scored"),
            Row("avsync.offset", "asset", float(rng.uniform(0, 1)), "scored") if n % 2 else
            Row("avsync.offset", "asset", None, "not_applicable")]
    windows = []
    for w in range(int(rng.integers(3, 10))):
        span = WindowSpan(f"v{n}:c0:{w}", w * 2000, w * 2000 + 1875, 0)
        windows.append(span)
        level = 0.55 if label else 0.35
        rows.append(Row("deep.clip", span.window_id, float(np.clip(rng.normal(level, 0.12), 0, 1)), "scored",
                        t_start_ms=span.t_start_ms, t_end_ms=span.t_end_ms))
        for f in range(4):
            t = span.t_start_ms + f * 500
            rows.append(Row("deep.frame", f"v{n}:f{t}", float(np.clip(rng.normal(level, 0.15), 0, 1)), "scored",
                            t_start_ms=t, t_end_ms=t))
    item = VideoItem(Path(f"/v{n}.mp4"), f"v{n}.mp4", label, family, f"id{n}", f"g{n}", fold)
    return VideoRecord(item, f"a{n}", rows, windows, seconds=1.0, duration_s=len(windows) * 2.0)


@pytest.fixture(scope="module")
def records() -> list[VideoRecord]:
    rng = np.random.default_rng(0)
    families = ["deepfakes", "lipsync"]
    return [_record(rng, n, n % 2, families[(n // 2) % 2] if n % 2 else "real", (n // 2) % 4)
            for n in range(32)]


def test_band_and_system_metrics() -> None:
    labels = np.array([0, 0, 1, 1, 1])
    bands = ["likely_real", "unsure", "likely_manipulated", "likely_manipulated", "likely_real"]
    m = band_metrics(bands, labels)
    assert m["unsure_share"] == pytest.approx(0.2)
    assert m["likely_manipulated"] == {"n": 2, "precision": 1.0}
    assert m["likely_real"] == {"n": 2, "precision": 0.5}
    s = system_metrics(np.array([0.1, 0.2, 0.9, 0.8, 0.15]), labels, ["real", "real", "a", "a", "b"], bands)
    assert s["families"]["a"] == {"auc": 1.0, "n": 2} and s["families"]["b"]["auc"] == 0.5
    assert s["auc"] == pytest.approx(5 / 6) and 0.0 <= s["ece"] <= 1.0 and s["reliability"]


def test_a_family_is_also_compared_with_the_reals_of_its_own_sources() -> None:
    """A detector that scores one collection low overall ranks that collection's fakes below other collections'
    reals: against every real the family looks missed, against the reals of its own source it is found."""
    probs = np.array([0.1, 0.2, 0.6, 0.7, 0.4, 0.5, 0.8, 0.9])
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    families = ["real", "real", "real", "real", "swap", "swap", "talk", "talk"]
    controls = {"source": ["lowres", "lowres", "studio", "studio", "lowres", "lowres", "studio", "generator"],
                "group": ["a", "b", "c", "d", "a", "x", "", ""]}
    m = system_metrics(probs, labels, families, ["unsure"] * 8, controls)
    swap, talk = m["families"]["swap"], m["families"]["talk"]
    assert swap["auc"] == pytest.approx(0.5)
    assert swap["within_source"] == {"auc": 1.0, "fakes": 2, "reals": 2}
    assert talk["within_source"] == {"auc": 1.0, "fakes": 1, "reals": 2}  # no real from "generator": left out
    assert swap["within_group"] == {"auc": 1.0, "fakes": 1, "reals": 1}
    assert talk["within_group"] == {"auc": None, "fakes": 0, "reals": 0}
    # every within-collection pair is ordered (4 + 2 pairs in 2 collections), while the pooled AUC is not
    assert m["within_source"] == {"auc": 1.0, "pairs": 6, "strata": 2, "by_stratum": {
        "lowres": {"auc": 1.0, "fakes": 2, "reals": 2}, "studio": {"auc": 1.0, "fakes": 1, "reals": 2}}}
    assert m["auc"] == pytest.approx(0.75)
    flipped = system_metrics(probs[[2, 3, 0, 1, 4, 5, 6, 7]], labels, families, ["unsure"] * 8, controls)
    assert flipped["within_source"]["auc"] == pytest.approx(2 / 6)  # lowres fakes now below both lowres reals
    summary = {"manifest": "m.csv", "videos": 8, "positives": 4, "folds": 2, "target_precision": 0.9,
               "calibration": "platt", "c": 1.0, "systems": {"fused": {**m, "branch_present": {}}},
               "timing": {"pipeline_s": 1.0, "fit_s": 1.0, "video_seconds": 8.0, "total_s": 2.0}}
    md = metrics_markdown(summary)
    assert "against the reals of the same collections" in md and "swap (n=2/2) | talk (n=1/2)" in md
    assert "| fused | 0.750 | 1.000 (6, 2) | 1.000 (1, 1) |" in md and "| lowres (n=2/2) | 1.000 |" in md
    assert "| fused | 0.500 | 1.000 |" in md and "| fused | 1.000 | 1.000 |" in md and "| fused | 1.000 | - |" in md
    assert set(system_metrics(probs, labels, families, ["unsure"] * 8)["families"]["swap"]) == {"auc", "n"}


def test_a_family_spanning_two_collections_is_compared_only_within_each() -> None:
    """Each fake is above the reals of its own collection, but the high-scoring collection's real is above the other
    collection's fake: a cross-collection pair must not count."""
    probs = np.array([0.1, 0.7, 0.3, 0.9])
    labels = np.array([0, 0, 1, 1])
    m = system_metrics(probs, labels, ["real", "real", "talk", "talk"], ["unsure"] * 4,
                       {"source": ["low", "high", "low", "high"]})
    assert m["families"]["talk"]["within_source"] == {"auc": 1.0, "fakes": 2, "reals": 2}
    assert m["within_source"]["auc"] == 1.0 and m["auc"] == pytest.approx(0.75)


def test_fused_system_is_cross_validated_with_window_timeline(records: list[VideoRecord]) -> None:
    result = evaluate_system("fused", VIDEO_BRANCHES, records, c=1.0, calibration="temperature",
                             target_precision=0.9)
    assert result is not None
    assert result.probabilities.shape == (32,) and set(result.fold_models) == {0, 1, 2, 3}
    m = result.metrics
    assert m["auc"] > 0.8 and set(m["families"]) == {"deepfakes", "lipsync"}
    assert set(m["branch_present"]) == set(VIDEO_BRANCHES) and m["branch_present"]["deep_clip"] == 32
    assert m["unit"]["module"] == "fusion.window" and m["unit"]["n"] == sum(len(r.windows) for r in records)
    frame = evaluate_system("frame", ("deep_frame",), records, c=1.0, calibration="platt", target_precision=0.9)
    assert frame is not None and frame.metrics["raw"]["auc"] > 0.7
    assert frame.metrics["unit"]["module"] == "deep.frame" and frame.metrics["unit"]["auc"] > 0.6
    assert evaluate_system("metadata", ("metadata",), records, c=1.0, calibration="platt",
                           target_precision=0.9) is None


def test_splicer_only_uses_the_given_training_videos(records: list[VideoRecord]) -> None:
    augment = splicer(records, VIDEO_BRANCHES)
    extra = augment([0, 1, 2, 3, 4])
    assert len(extra) == 3 and all(y == 1 for _, y in extra)
    assert augment([0, 2]) == []


def test_tables_and_shipped_artifact(records: list[VideoRecord], tmp_path: Path) -> None:
    fused = evaluate_system("fused", VIDEO_BRANCHES, records, c=1.0, calibration="temperature",
                            target_precision=0.9)
    assert fused is not None
    summary = {"manifest": "m.csv", "videos": 32, "positives": 16, "folds": 4, "target_precision": 0.9,
               "calibration": "temperature", "c": 1.0, "systems": {"fused": fused.metrics}, "skipped_systems": [],
               "timing": {"pipeline_s": 1.0, "fit_s": 1.0, "video_seconds": 10.0, "total_s": 2.0}}
    model = ship_model(records, fused, summary, c=1.0, calibration="temperature", target_precision=0.9,
                       training={"manifest": "m.csv"})
    assert model.model_id == "video-v3" and model.policy.version == "video-v3/p90"
    assert model.metrics["cv"]["auc"] == fused.metrics["auc"] and "cv_shipped_policy" in model.metrics
    selection = model.training["branch_selection"]
    assert set(model.branches) <= set(VIDEO_BRANCHES) and selection["trials"]
    assert fused.metrics["selected_branches"] and set(selection["candidates"]) == set(VIDEO_BRANCHES)
    again = FusionModel.from_json(json.loads(json.dumps(model.to_json())))
    assert again.branches == model.branches and again.calibration == "temperature"
    write_outputs(summary, [fused], records, tmp_path)
    md = (tmp_path / "metrics.md").read_text()
    assert "| fused |" in md and "deepfakes" in md
    with (tmp_path / "videos.csv").open() as fh:
        videos = list(csv.DictReader(fh))
    assert len(videos) == 32 and videos[0]["p_fused"] and "deep_clip.max" in videos[0]
    with (tmp_path / "windows.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == fused.metrics["unit"]["n"]
    assert json.loads((tmp_path / "metrics.json").read_text())["systems"]["fused"]["auc"] == fused.metrics["auc"]


def test_manifest_and_fold_models(tmp_path: Path) -> None:
    (tmp_path / "v.mp4").write_bytes(b"x")
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label,family,identity,group,fold\nv.mp4,1,lipsync,a,g,3\n")
    [item] = read_video_manifest(manifest, tmp_path)
    assert (item.label, item.family, item.fold, item.source) == (1, "lipsync", 3, "")
    (tmp_path / "MANIFEST.tsv").write_text("path\tsha256\tsource_repo\nv.mp4\t00\tlab/lipsync-demo\n")
    assert read_video_manifest(manifest, tmp_path)[0].source == "lab/lipsync-demo"
    manifest.write_text("path,label,fold\nmissing.mp4,0,0\n")
    with pytest.raises(UsageError):
        read_video_manifest(manifest, tmp_path)
    (tmp_path / "fold3").mkdir()
    (tmp_path / "fold3" / "frame.onnx").write_bytes(b"")
    assert fold_model_paths(tmp_path, 3) == (tmp_path / "fold3" / "frame.onnx", None)
    assert fold_model_paths(None, 0) == (None, None)


def test_fold_mean_auc_ignores_shifts_between_folds() -> None:
    from tamperscope.evaluation.video_systems import fold_mean_auc

    labels = np.array([0, 1, 0, 1])
    probs = np.array([0.1, 0.2, 0.8, 0.9])  # perfect within each fold, shifted between them
    assert fold_mean_auc(probs, labels, [0, 0, 1, 1]) == 1.0
    assert fold_mean_auc(probs, labels, [0, 0, 0, 0]) == 0.75
    assert fold_mean_auc(probs, np.array([0, 0, 1, 1]), [0, 0, 1, 1]) is None
