"""Fit the image fusion model from a harness ``scores.csv`` (synthetic benchmark) and write its artifact."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path
from typing import Any

from tamperscope.errors import UsageError
from tamperscope.forensics.registry import DETECTORS
from tamperscope.fusion.model import ARTIFACTS, FusionModel, fit


def train_image_model(scores_csv: Path, *, model_id: str = "image-v1", target_precision: float = 0.9,
                      out_dir: Path = ARTIFACTS, training: dict[str, Any] | None = None) -> FusionModel:
    """Fit on the ``train`` split, calibrate and set thresholds on ``cal``, report ``test``; write the JSON."""
    from sklearn.metrics import roc_auc_score

    with scores_csv.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    modules = [m for m in DETECTORS if rows and m in rows[0]]
    if not modules:
        raise UsageError(f"{scores_csv} has no detector columns")

    def samples(split: str) -> list[tuple[dict[str, dict[str, float] | None], int]]:
        return [({"forensics": {m: float(r[m]) for m in modules}}, int(r["label"]))
                for r in rows if r["split"] == split]

    train, cal, test = samples("train"), samples("cal"), samples("test")
    if not train or not cal:
        raise UsageError(f"{scores_csv} needs rows in the 'train' and 'cal' splits")
    manifest = {"scores_csv": scores_csv.name,
                "scores_sha256": hashlib.sha256(scores_csv.read_bytes()).hexdigest(),
                "splits": {s: sum(1 for r in rows if r["split"] == s) for s in ("train", "cal", "test")},
                **(training or {})}
    model = fit(model_id, {"forensics": modules}, train, cal, target_precision=target_precision,
                training=manifest)
    if test:
        probs = [model.probability(v)[0] for v, _ in test]
        labels = [y for _, y in test]
        bands = [model.policy.band(p) for p in probs]
        model.metrics["test"] = {
            "n": len(test), "auc": float(roc_auc_score(labels, probs)), "base_rate": sum(labels) / len(labels),
            "bands": {b: {"n": bands.count(b),
                          "manipulated_fraction": sum(y for y, bb in zip(labels, bands, strict=True) if bb == b)
                          / bands.count(b)} for b in sorted(set(bands))}}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{model_id}.json").write_text(json.dumps(model.to_json(), indent=1, sort_keys=True) + "\n")
    return model
