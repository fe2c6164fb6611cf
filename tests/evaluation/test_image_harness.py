"""``tamperscope eval-image``: manifest checks, synthetic folds, and the run end to end on generated photos."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

import tamperscope.evaluation
from tamperscope.cli.main import app
from tamperscope.errors import UsageError
from tamperscope.evaluation.image_pipeline import (
    PROCESSED,
    ImageItem,
    ImageRecord,
    read_image_manifest,
    synthetic_items,
)
from tamperscope.evaluation.image_systems import synthetic_augment
from tamperscope.fusion.branches import metadata_checked_row
from tamperscope.samples import demo as samples
from tamperscope.samples.forgeries import generate

MANIFEST = Path(tamperscope.evaluation.__file__).parent / "manifests" / "shared_image.csv"


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("path,label,kind,source,group,fold\n" + "\n".join(lines) + "\n")
    return path


def test_manifest_rejects_a_group_split_over_folds(tmp_path: Path) -> None:
    for name in ("a.jpg", "b.jpg"):
        (tmp_path / name).write_bytes(b"x")
    ok = read_image_manifest(_write(tmp_path / "ok.csv", ["a.jpg,0,original,s,g1,0", "b.jpg,1,edited,s,g1,0"]),
                             tmp_path)
    assert [it.fitted for it in ok] == [True, True] and ok[1].label == 1
    with pytest.raises(UsageError, match="g1"):
        read_image_manifest(_write(tmp_path / "bad.csv", ["a.jpg,0,original,s,g1,0", "b.jpg,1,edited,s,g1,1"]),
                            tmp_path)
    with pytest.raises(UsageError, match="does not exist"):
        read_image_manifest(_write(tmp_path / "gone.csv", ["c.jpg,0,camera,s,g2,0"]), tmp_path)


def test_synthetic_images_keep_each_source_in_one_fold_and_only_train_folds_augment(tmp_path: Path) -> None:
    generate(tmp_path, seed=1, size=96, crops_per_source=1, source_names=["camera", "coffee", "moon"])
    items = synthetic_items(tmp_path, [0, 1])
    folds_of: dict[str, set[int]] = {}
    for it in items:
        folds_of.setdefault(it.group, set()).add(it.fold)
    assert len(items) == 18 and all(len(f) == 1 for f in folds_of.values())
    assert {f for fs in folds_of.values() for f in fs} == {0, 1} and all(it.synthetic for it in items)
    real = [ImageRecord(ImageItem(tmp_path / "r.jpg", "r.jpg", y, "original", "g", fold), "a", [], 0.0)
            for fold, y in ((0, 0), (1, 1))]
    synth = [ImageRecord(it, "s", [metadata_checked_row("absent")], 0.0) for it in items]
    augment = synthetic_augment(real, synth, ["meta_flags"])
    assert len(augment([0])) == sum(it.fold == 0 for it in items)
    assert len(augment([0, 1])) == len(items)


@pytest.mark.slow
def test_eval_image_cross_validates_ships_the_model_and_caches(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    lines = []
    for fold in (0, 1):
        photo = samples.camera_like_jpeg(data / f"photo{fold}.jpg", quality=90 - 5 * fold)
        samples.edited_copy(photo, data / f"edited{fold}.jpg")
        lines += [f"photo{fold}.jpg,0,camera,gen,pair{fold},{fold}", f"edited{fold}.jpg,1,edited,gen,pair{fold},{fold}"]
    with Image.open(data / "photo0.jpg") as img:
        img.resize((256, 256)).save(data / "resaved.jpg", quality=80)
    lines.append(f"resaved.jpg,0,{PROCESSED},gen,other,1")
    manifest = _write(tmp_path / "manifest.csv", lines)
    synth = tmp_path / "synth"
    generate(synth, seed=0, size=96, crops_per_source=1, source_names=["camera", "coffee"])
    out, artifacts = tmp_path / "out", tmp_path / "artifacts"
    args = ["--home", str(tmp_path / "home"), "eval-image", "--data", str(data), "--manifest", str(manifest),
            "--synth", str(synth), "--out", str(out), "--workspace", str(tmp_path / "ws")]
    import tamperscope.fusion.model as fusion_model

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fusion_model, "ARTIFACTS", artifacts)
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        summary = json.loads((out / "metrics.json").read_text())
        again = CliRunner().invoke(app, args)
        assert again.exit_code == 0, again.output
    assert (summary["fitted"], summary["processed"], summary["synthetic"]) == (4, 1, 12)
    assert set(summary["systems"]) == {"forensics", "forensics_synth", "metadata", "fused"}
    fused, forensics = summary["systems"]["fused"], summary["systems"]["forensics"]
    assert not fused["synthetic_training"] and fused["n"] == 4 and fused["synthetic_auc"] is not None
    assert forensics["synthetic_training"]
    assert sum(fused["camera_bands"].values()) == 2
    # each edited photo is compared with its own original (same group) and with the source's photos
    assert (fused["within_group"]["pairs"], fused["within_group"]["strata"]) == (2, 2)
    assert (fused["within_source"]["pairs"], fused["within_source"]["strata"]) == (4, 1)
    assert "## Within sources and groups" in (out / "metrics.md").read_text()
    with (out / "images.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["fitted"] for r in rows] == ["1"] * 4 + ["0"] and all(0 <= float(r["p_fused"]) <= 1 for r in rows)
    assert rows[0]["meta_flags.no_exif"] == "0.000000"  # the camera-like photo carries Make/Model
    shipped = json.loads((artifacts / "image-v2.json").read_text())
    candidates = shipped["training"]["branch_selection"]["candidates"]
    assert shipped["branches"] and set(shipped["branches"]) <= set(candidates) == {"forensics_synth", "meta_flags"}
    assert shipped["policy"]["version"] == "image-v2/p90"
    assert shipped["training"]["real_images"] == 4 and shipped["training"]["synthetic_images"] == 0
    assert json.loads((out / "metrics.json").read_text())["timing"]["ran_now"] == 0  # second run: all cached


@pytest.mark.shared
def test_shared_image_manifest_resolves_with_pairs_in_one_fold(shared_dir: Path) -> None:
    items = read_image_manifest(MANIFEST, shared_dir)
    fitted = [it for it in items if it.fitted]
    assert {it.label for it in fitted} == {0, 1} and any(it.kind == "camera" for it in fitted)
    pairs: dict[str, set[int]] = {}
    for it in items:
        if "mantranet_pairs" in it.rel:
            pairs.setdefault(it.rel.split("_")[2], set()).add(it.fold)
    assert len(pairs) == 7 and all(len(f) == 1 for f in pairs.values())
    assert all(it.label == 0 for it in items if it.kind == PROCESSED)
    assert not any("exiftool_" in it.rel for it in items)  # stripped metadata samples have no real pixels

