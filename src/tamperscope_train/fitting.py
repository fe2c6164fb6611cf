"""What the frame and clip fits share: identity splits, temperature calibration, metrics, export checks and the
run's manifest.

Identities are split into train and calibration sets (:func:`tamperscope.store.splits.assign_splits`); a
temperature and a bias are fitted on the calibration identities [1]_ (the bias absorbs the base-rate shift
between synthetic training fakes and calibration data, which a temperature alone cannot). Everything is seeded;
:func:`write_manifest` records inputs (paths and SHA-256), identities per split, the configuration, the library
versions and the metrics next to the exported files.

References
----------
.. [1] C. Guo, G. Pleiss, Y. Sun and K. Q. Weinberger, "On calibration of modern neural networks", ICML 2017.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from tamperscope.custody.hashing import sha256_file
from tamperscope.store.splits import assign_splits
from tamperscope_train.dataset import FaceTrack, MediaItem


def split_identities(tracks: Sequence[FaceTrack], cal_share: float, seed: int) -> dict[str, str]:
    """Identity -> ``train`` / ``cal``, identity-disjoint (a medium showing two identities weighs both)."""
    subjects = [i for t in tracks for i in t.item.identities for _ in range(max(1, len(t.crops)))]
    return assign_splits(subjects, {"train": 1.0 - cal_share, "cal": cal_share}, seed)


def split_of(identities: Sequence[str], splits: dict[str, str]) -> str | None:
    """The split all of a sample's identities are in, ``None`` when they straddle splits (the sample is unused)."""
    names = {splits.get(i) for i in identities}
    return names.pop() if len(names) == 1 else None


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Temperature ``T`` and bias ``b`` minimising the negative log-likelihood of ``sigmoid(logit / T + b)``.

    Temperature scaling (Guo et al. 2017) with a bias term, i.e. Platt scaling parametrised by a temperature.
    """
    z = torch.tensor(logits, dtype=torch.float64)
    y = torch.tensor(labels, dtype=torch.float64)
    params = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([params], lr=0.1, max_iter=200)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(z / params[0].exp() + params[1], y)
        loss.backward()
        return loss

    opt.step(closure)
    return float(params[0].exp().item()), float(params[1].item())


def calibration_metrics(logits: np.ndarray, labels: np.ndarray, calibration: tuple[float, float]) -> dict[str, Any]:
    """AUC, ECE before/after calibration and the reliability curve on the calibration identities."""
    from sklearn.metrics import roc_auc_score

    from tamperscope.fusion.model import reliability

    temperature, bias = calibration
    raw = 1.0 / (1.0 + np.exp(-logits))
    cal = 1.0 / (1.0 + np.exp(-(logits / temperature + bias)))
    curve, ece = reliability(cal, labels)
    _, ece_raw = reliability(raw, labels)
    auc = float(roc_auc_score(labels, cal)) if len(set(labels.tolist())) == 2 else float("nan")
    return {"n": len(labels), "positives": int(labels.sum()), "auc": auc, "temperature": temperature,
            "bias": bias, "ece": ece, "ece_uncalibrated": ece_raw, "reliability": curve}


def auc_by_kind(logits: np.ndarray, labels: np.ndarray, kinds: Sequence[str]) -> dict[str, float]:
    """AUC of real samples against each kind of fake alone (``sbi``, ``swap``, a labelled family)."""
    from sklearn.metrics import roc_auc_score

    kinds_arr = np.asarray(kinds)
    real = kinds_arr == "real"
    out = {}
    for kind in sorted(set(kinds) - {"real"}):
        sel = real | (kinds_arr == kind)
        if real.any() and (kinds_arr == kind).any():
            out[kind] = float(roc_auc_score(labels[sel], logits[sel]))
    return out


def check_export(model: nn.Module, onnx_path: Path, images: np.ndarray) -> float:
    """Largest absolute difference between torch and ONNX Runtime outputs on a few inputs."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: images})
    with torch.no_grad():
        want = model(torch.from_numpy(images))
    want = want if isinstance(want, tuple) else (want,)
    return float(max(np.abs(g - w.numpy()).max() for g, w in zip(got, want, strict=True)))


def write_manifest(path: Path, *, kind: str, config: Any, items: Sequence[MediaItem], splits: dict[str, str],
                   metrics: dict[str, Any], extra: dict[str, Any]) -> None:
    """The reproducibility record of a training run (inputs with hashes, splits, config, versions, metrics)."""
    import onnxruntime

    record = {
        "kind": kind, "config": asdict(config),
        "inputs": [{"path": str(i.path), "sha256": sha256_file(i.path)[0], "label": i.label,
                    "identities": list(i.identities), "family": i.family} for i in items],
        "identity_splits": dict(sorted(splits.items())),
        "versions": {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
                     "numpy": np.__version__, "python": platform.python_version()},
        "metrics": metrics, **extra,
    }
    path.write_text(json.dumps(record, indent=1, sort_keys=True, default=float) + "\n")
