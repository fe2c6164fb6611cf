import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tamperscope.evaluation
from tamperscope.evaluation.harness import evaluate, load_mask, read_manifest

MANIFEST = Path(tamperscope.evaluation.__file__).parent / "manifests" / "shared_forgery.csv"


@pytest.mark.shared
def test_shared_manifest_resolves_and_masks_mark_a_minority(shared_dir: Path) -> None:
    rows = read_manifest(MANIFEST, shared_dir / "forgery")
    assert len(rows) == 20 and all(r.path.is_file() for r in rows)
    for row in rows:
        if row.mask is not None:
            with Image.open(row.path) as img:
                truth = load_mask(row.mask, (img.height, img.width), row.mask_polarity)
            assert 0.01 < truth.mean() < 0.3, row.mask  # polarity: the tampered area is the small white part


@pytest.mark.shared
@pytest.mark.slow
def test_casia_clone_is_scored_and_localised(shared_dir: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "casia.csv"
    with MANIFEST.open() as src, manifest.open("w", newline="") as dst:
        reader = csv.DictReader(src)
        writer = csv.DictWriter(dst, fieldnames=reader.fieldnames or [])
        writer.writeheader()
        writer.writerows(r for r in reader if r["source"] in ("casia", "mantranet"))
    summary = evaluate(shared_dir / "forgery", manifest, tmp_path / "out", names=["copymove_keypoint", "lbp"])
    pixel = summary["detectors"]["copymove_keypoint"]["pixel"]["copymove"]
    assert pixel["n"] == 1 and np.isfinite(pixel["f1_best"])
    assert summary["images"] == 15
