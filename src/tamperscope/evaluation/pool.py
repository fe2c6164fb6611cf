"""The labelled video pool: the 51 development videos plus the shared training corpus, in identity-disjoint folds.

The shared data's ``MANIFEST.tsv`` labels every ``train/`` video ``REAL|FAKE; family; evidence; identity=<token>``;
the development videos (``video/real``, ``video/fake``) carry their identity groups in
``evaluation/manifests/shared_video.csv``. :func:`pool_rows` joins both into one manifest with one family
vocabulary and one identity vocabulary (a person seen in both keeps one token), and :func:`assign_folds` splits it
into cross-validation folds grouped by identity and stratified by label (scikit-learn's ``StratifiedGroupKFold``),
so no identity is ever on both sides of a fold.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tamperscope.errors import UsageError

#: development-manifest groups that the training corpus names with another token (same person or same source clip).
DEV_GROUP_TOKENS = {"dfd08": "dfd-actor08", "dfd13": "dfd-actor13", "svls": "svls-original",
                    "art_0": "sadtalker-art_0", "aoc": "aoc"}
#: family of a training-corpus fake, by the words of its manifest label (first match wins).
FAMILY_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"FF\+\+ Deepfakes", "ffpp_deepfakes"), (r"FF\+\+ FaceSwap", "ffpp_faceswap"),
    (r"FF\+\+ Face2Face", "ffpp_face2face"), (r"FF\+\+ NeuralTextures", "ffpp_neuraltextures"),
    (r"DFDC", "dfdc"), (r"lip-sync", "lipsync"), (r"talking-head", "talking_head"), (r"face swap", "oneshot_swap"),
)
#: development-manifest families renamed to the pool vocabulary, by file-name prefix.
DEV_FAMILY_BY_PREFIX = {"dfdc_": "dfdc", "abofeumbvv": "dfdc", "roop_": "oneshot_swap"}
FIELDS = ("path", "label", "family", "identity", "group", "fold", "split")


def _train_family(label: str) -> str:
    for pattern, family in FAMILY_PATTERNS:
        if re.search(pattern, label):
            return family
    raise UsageError(f"no family rule matches the manifest label {label!r}")


def pool_rows(shared_manifest: Path, dev_manifest: Path) -> list[dict[str, str]]:
    """One row per labelled face video: the development set (``split=dev``) and ``train/`` (``split=train``).

    Raises
    ------
    UsageError
        When a ``train/`` label has no ``identity=`` token or no known family.
    """
    rows: list[dict[str, str]] = []
    with dev_manifest.open(newline="") as fh:
        for rec in csv.DictReader(fh):
            name = Path(rec["path"]).name
            family = next((f for p, f in DEV_FAMILY_BY_PREFIX.items() if name.startswith(p)), rec["family"])
            group = DEV_GROUP_TOKENS.get(rec["group"], rec["group"])
            rows.append({"path": rec["path"], "label": rec["label"], "family": family if rec["label"] == "1"
                         else "real", "identity": group, "group": group, "split": "dev"})
    with shared_manifest.open(newline="") as fh:
        for rec in csv.DictReader(fh, delimiter="\t"):
            if not rec["path"].startswith("train/video/"):
                continue
            label = rec["label_ground_truth"]
            token = re.search(r"identity=([^\s;]+)", label)
            if token is None:
                raise UsageError(f"{rec['path']}: label has no identity= token")
            fake = label.startswith("FAKE")
            rows.append({"path": rec["path"], "label": "1" if fake else "0",
                         "family": _train_family(label) if fake else "real", "identity": token.group(1),
                         "group": token.group(1), "split": "train"})
    return rows


def assign_folds(rows: Sequence[dict[str, str]], folds: int = 5, seed: int = 0) -> list[dict[str, str]]:
    """Rows with a ``fold`` column: identity groups never straddle folds; labels are spread evenly."""
    from sklearn.model_selection import StratifiedGroupKFold

    labels = np.array([int(r["label"]) for r in rows])
    groups = np.array([r["group"] for r in rows])
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    fold_of = np.zeros(len(rows), int)
    for k, (_, test) in enumerate(splitter.split(np.zeros(len(rows)), labels, groups)):
        fold_of[test] = k
    return [{**r, "fold": str(int(f))} for r, f in zip(rows, fold_of, strict=True)]


def write_pool_manifest(shared_manifest: Path, dev_manifest: Path, out: Path, *, folds: int = 5,
                        seed: int = 0) -> list[dict[str, str]]:
    """Build the pooled manifest and write it as CSV (``FIELDS``); returns its rows."""
    rows = assign_folds(pool_rows(shared_manifest, dev_manifest), folds, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return rows
