"""The pooled video manifest: one family and identity vocabulary, identity-disjoint stratified folds."""

import csv
from collections import defaultdict
from pathlib import Path

import pytest

from tamperscope.errors import UsageError
from tamperscope.evaluation.pool import assign_folds, pool_rows, write_pool_manifest

DEV = Path(__file__).resolve().parents[2] / "src/tamperscope/evaluation/manifests/shared_video.csv"
POOL = DEV.with_name("pool_video.csv")


def _tsv(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh, delimiter="\t")
        w.writerow(["path", "sha256", "source_repo", "source_commit", "source_path", "license", "label_ground_truth"])
        for p, label in rows:
            w.writerow([p, "0" * 64, "r", "c", "s", "l", label])
    return path


def test_pool_rows_map_families_and_shared_identities(tmp_path: Path) -> None:
    dev = tmp_path / "dev.csv"
    dev.write_text("path,label,family,identity,group,fold\n"
                   "video/real/svls_original.mp4,0,real,svls,svls,3\n"
                   "video/fake/roop_snapshot.mp4,1,faceswap_other,roop,roop,4\n")
    tsv = _tsv(tmp_path / "m.tsv", [
        ("train/video/fake/a.mp4", "FAKE; lip-sync SadTalker-Video-Lip-Sync; evidence: x; identity=svls-original"),
        ("train/video/fake/b.mp4", "FAKE; facial reenactment (FF++ Face2Face), c23; evidence: y; identity=ffpp-750"),
        ("train/video/real/c.mp4", "REAL; MEAD clip; evidence: z; identity=MEAD-M030"),
        ("exif/x.jpg", "camera sample")])
    rows = {Path(r["path"]).name: r for r in pool_rows(tsv, dev)}
    assert set(rows) == {"svls_original.mp4", "roop_snapshot.mp4", "a.mp4", "b.mp4", "c.mp4"}
    assert rows["svls_original.mp4"]["group"] == rows["a.mp4"]["group"] == "svls-original"
    assert rows["roop_snapshot.mp4"]["family"] == "oneshot_swap"
    assert (rows["a.mp4"]["family"], rows["b.mp4"]["family"], rows["c.mp4"]["family"]) == \
        ("lipsync", "ffpp_face2face", "real")
    assert rows["svls_original.mp4"]["split"] == "dev" and rows["c.mp4"]["split"] == "train"


def test_a_label_without_identity_is_rejected(tmp_path: Path) -> None:
    dev = tmp_path / "dev.csv"
    dev.write_text("path,label,family,identity,group,fold\n")
    tsv = _tsv(tmp_path / "m.tsv", [("train/video/real/c.mp4", "REAL; MEAD clip; evidence: z")])
    with pytest.raises(UsageError, match="identity"):
        pool_rows(tsv, dev)


def test_folds_never_split_an_identity_and_spread_labels() -> None:
    rows = [{"path": f"{g}-{i}", "label": str(int(g % 3 == 0)), "group": f"id{g}"} for g in range(40) for i in range(3)]
    folded = assign_folds(rows, folds=5, seed=0)
    folds_of = defaultdict(set)
    for r in folded:
        folds_of[r["group"]].add(r["fold"])
    assert all(len(f) == 1 for f in folds_of.values())
    positives = [sum(r["label"] == "1" for r in folded if r["fold"] == str(k)) for k in range(5)]
    assert min(positives) > 0 and max(positives) - min(positives) <= 6


@pytest.mark.shared
def test_shipped_pool_manifest_is_reproducible_from_the_shared_manifest(shared_dir: Path, tmp_path: Path) -> None:
    rows = write_pool_manifest(shared_dir / "MANIFEST.tsv", DEV, tmp_path / "pool.csv")
    assert (tmp_path / "pool.csv").read_text() == POOL.read_text()
    assert len(rows) == 257 and sum(r["label"] == "1" for r in rows) == 83
    assert all((shared_dir / r["path"]).is_file() for r in rows)
