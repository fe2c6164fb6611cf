import csv
import json
from pathlib import Path

import numpy as np
from PIL import Image

from tamperscope.evaluation.harness import evaluate, load_mask, pixel_metrics
from tamperscope.samples.forgeries import generate


def test_pixel_metrics_on_known_maps() -> None:
    truth = np.zeros((10, 10), bool)
    truth[:5] = True
    perfect = pixel_metrics(truth.astype(np.float32), truth)
    assert perfect["f1_best"] == 1.0 and perfect["iou_best"] == 1.0 and perfect["mcc_best"] == 1.0
    half = np.zeros((10, 10), np.float32)
    half[:5, :5] = 1.0
    m = pixel_metrics(half, truth)
    assert abs(m["f1_fixed"] - 2 * 25 / (50 + 25)) < 1e-9 and abs(m["iou_fixed"] - 0.5) < 1e-9


def test_mask_polarity(tmp_path: Path) -> None:
    values = np.zeros((4, 4), np.uint8)
    values[0] = 255
    Image.fromarray(values).save(tmp_path / "m.png")
    assert load_mask(tmp_path / "m.png", (4, 4), "white").sum() == 4
    assert load_mask(tmp_path / "m.png", (4, 4), "black").sum() == 12


def test_generator_is_seeded_and_evaluation_writes_tables(tmp_path: Path) -> None:
    a = generate(tmp_path / "a", seed=3, size=128, crops_per_source=1, source_names=["coffee", "chelsea"])
    generate(tmp_path / "b", seed=3, size=128, crops_per_source=1, source_names=["coffee", "chelsea"])
    rows = list(csv.DictReader(a.open()))
    assert len(rows) == 12 and {r["kind"] for r in rows} >= {"pristine", "splice", "copymove", "double_jpeg"}
    for r in rows:
        assert (tmp_path / "a" / r["path"]).read_bytes() == (tmp_path / "b" / r["path"]).read_bytes()
        if r["mask"]:
            mask = np.asarray(Image.open(tmp_path / "a" / r["mask"]))
            assert 0 < (mask > 0).mean() < 0.5
    summary = evaluate(tmp_path / "a", a, tmp_path / "out", names=["ela", "noise"])
    stored = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert stored["images"] == 12 and set(stored["detectors"]) == {"ela", "noise"}
    assert summary["detectors"]["ela"]["pixel"]["splice"]["n"] == 2
    assert "| ela |" in (tmp_path / "out" / "metrics.md").read_text()
