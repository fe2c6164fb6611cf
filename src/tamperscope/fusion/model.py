"""The fusion model: standardised branch features with explicit missing indicators, logistic regression with
non-negative weights, Platt or temperature calibration, and a JSON artifact (no pickle) carrying coefficients,
training manifest and metrics.

Missing branches are *masked*: their features are set to the training mean (0 after standardisation) and the
branch's ``missing`` indicator is 1, so the model learns (or, with no missing data in training, ignores) the
absence explicitly instead of reading zeros as "looks real".

References
----------
.. [1] J. Platt, "Probabilistic outputs for support vector machines and comparisons to regularized likelihood
       methods", Advances in Large Margin Classifiers, 1999.
.. [2] C. Guo, G. Pleiss, Y. Sun and K. Q. Weinberger, "On calibration of modern neural networks", ICML 2017
       (reliability diagrams, expected calibration error).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from tamperscope.fusion.policy import ThresholdPolicy

ARTIFACTS = Path(__file__).parent / "artifacts"
CALIBRATIONS = ("platt", "temperature")

#: one training or evaluation sample: ``({branch: {feature: value} or None}, label)``.
Sample = tuple[Mapping[str, Mapping[str, float] | None], int]


@dataclass(frozen=True)
class FusionModel:
    """A fitted, calibrated fusion model as stored in ``fusion/artifacts/<model_id>.json``."""

    model_id: str
    branches: tuple[str, ...]
    features: dict[str, tuple[str, ...]]
    mean: dict[str, float]
    scale: dict[str, float]
    coef: dict[str, float]
    intercept: float
    platt_a: float
    platt_b: float
    policy: ThresholdPolicy
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    calibration: str = "platt"
    #: SHA-256 of the artifact file the model was read from (None when fitted in memory): the fusion stage's
    #: results are current only for this exact artifact.
    artifact_sha256: str | None = field(default=None, compare=False)

    @property
    def columns(self) -> list[str]:
        """Design-matrix columns: ``<branch>.<feature>`` then ``<branch>.missing`` per branch."""
        cols = [f"{b}.{f}" for b in self.branches for f in self.features[b]]
        return cols + [f"{b}.missing" for b in self.branches]

    def design(self, values: Mapping[str, Mapping[str, float] | None]) -> dict[str, float]:
        """Standardised feature values and missing indicators for one asset's branch outputs."""
        x: dict[str, float] = {}
        for b in self.branches:
            branch_values = values.get(b)
            for f in self.features[b]:
                col = f"{b}.{f}"
                raw = self.mean[col] if branch_values is None else float(branch_values.get(f, self.mean[col]))
                x[col] = (raw - self.mean[col]) / self.scale[col]
            x[f"{b}.missing"] = 1.0 if branch_values is None else 0.0
        return x

    def logit(self, values: Mapping[str, Mapping[str, float] | None]) -> tuple[float, dict[str, float]]:
        """Uncalibrated logit and each column's contribution ``coef * x``."""
        x = self.design(values)
        contributions = {c: self.coef.get(c, 0.0) * x[c] for c in self.columns}
        return self.intercept + sum(contributions.values()), contributions

    def probability(self, values: Mapping[str, Mapping[str, float] | None]) -> tuple[float, dict[str, float]]:
        """Calibrated manipulation probability and the per-column logit contributions."""
        z, contributions = self.logit(values)
        return float(sigmoid(self.platt_a * z + self.platt_b)), contributions

    def to_json(self) -> dict[str, Any]:
        return {"model_id": self.model_id, "branches": list(self.branches),
                "features": {b: list(f) for b, f in self.features.items()}, "mean": self.mean,
                "scale": self.scale, "coef": self.coef, "intercept": self.intercept,
                "calibration": {"method": self.calibration, "a": self.platt_a, "b": self.platt_b},
                "policy": self.policy.to_json(), "metrics": self.metrics, "training": self.training}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FusionModel:
        return cls(model_id=data["model_id"], branches=tuple(data["branches"]),
                   features={b: tuple(f) for b, f in data["features"].items()}, mean=dict(data["mean"]),
                   scale=dict(data["scale"]), coef=dict(data["coef"]), intercept=float(data["intercept"]),
                   platt_a=float(data["calibration"]["a"]), platt_b=float(data["calibration"]["b"]),
                   policy=ThresholdPolicy.from_json(data["policy"]), metrics=dict(data.get("metrics", {})),
                   training=dict(data.get("training", {})),
                   calibration=str(data["calibration"].get("method", "platt")))


def load_model(model_id: str, directory: Path = ARTIFACTS) -> FusionModel:
    """Load ``<directory>/<model_id>.json``."""
    from tamperscope.errors import NotFoundError

    path = directory / f"{model_id}.json"
    if not path.is_file():
        raise NotFoundError(f"fusion model artifact {path} does not exist")
    data = path.read_bytes()
    return replace(FusionModel.from_json(json.loads(data)), artifact_sha256=hashlib.sha256(data).hexdigest())


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = 10) -> tuple[list[dict[str, float]], float]:
    """Reliability curve (equal-width bins) and the expected calibration error."""
    edges = np.linspace(0, 1, bins + 1)
    curve, ece = [], 0.0
    for lo, hi in itertools.pairwise(edges):
        sel = (probs >= lo) & ((probs < hi) if hi < 1 else (probs <= hi))
        if not sel.any():
            continue
        conf, acc = float(probs[sel].mean()), float(labels[sel].mean())
        curve.append({"lo": float(lo), "hi": float(hi), "n": int(sel.sum()), "confidence": conf, "accuracy": acc})
        ece += sel.mean() * abs(conf - acc)
    return curve, float(ece)


def sigmoid(z: np.ndarray | float) -> np.ndarray:
    """The logistic function, elementwise (arguments clipped to +-500, so it never overflows)."""
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(np.asarray(z, dtype=np.float64), -500.0, 500.0))))


def auc_or_none(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """ROC AUC, or ``None`` when only one class is present."""
    from sklearn.metrics import roc_auc_score

    labels = np.asarray(labels)
    if len(set(labels.tolist())) < 2:
        return None
    return float(roc_auc_score(labels, np.asarray(scores, dtype=np.float64)))


def stratified_auc(probs: np.ndarray, labels: np.ndarray, strata: Sequence[str] | np.ndarray) -> dict[str, Any]:
    """AUC over only the (fake, real) pairs that share a stratum (empty strata values are left out): the
    Mann-Whitney statistic summed over strata, so differences between strata cannot raise it. ``pairs`` and
    ``strata`` count what it rests on; ``by_stratum`` gives each stratum's own AUC and counts."""
    value = np.array(strata)
    concordant, pairs = 0.0, 0
    by_stratum: dict[str, dict[str, Any]] = {}
    for stratum in sorted(set(value.tolist()) - {""}):
        sel = value == stratum
        positives, negatives = int(labels[sel].sum()), int((labels[sel] == 0).sum())
        auc = auc_or_none(labels[sel], probs[sel])
        if auc is None:
            continue
        concordant += auc * positives * negatives
        pairs += positives * negatives
        by_stratum[stratum] = {"auc": auc, "fakes": positives, "reals": negatives}
    return {"auc": concordant / pairs if pairs else None, "pairs": pairs, "strata": len(by_stratum),
            "by_stratum": by_stratum}


def fit_logistic(model_id: str, branch_features: Mapping[str, Sequence[str]], train: Sequence[Sample],
                 *, c: float = 1.0, target_precision: float = 0.9,
                 sample_weight: Sequence[float] | None = None) -> FusionModel:
    """Standardise the features and fit the logistic regression with every weight >= 0 (no score counts as evidence
    of authenticity); uncalibrated (``a = 1``, ``b = 0``), policy unset.

    Parameters
    ----------
    model_id
        Name of the model.
    branch_features
        ``{branch: feature names}``; the branches' order is the design's.
    train
        Samples with both labels present.
    c
        Inverse L2 regularisation strength of the regression.
    target_precision
        Stored in the placeholder policy.
    sample_weight
        Weight of each training sample in the standardisation and the likelihood (default all 1).

    Returns
    -------
    FusionModel
        The fitted, uncalibrated model.

    Raises
    ------
    ValueError
        If ``train`` holds only one class.
    """
    from sklearn.linear_model import LogisticRegression

    y_train = np.array([y for _, y in train])
    if len(set(y_train.tolist())) < 2:
        raise ValueError("train needs samples of both labels")
    branches = tuple(branch_features)
    features = {b: tuple(branch_features[b]) for b in branches}
    cols = [f"{b}.{f}" for b in branches for f in features[b]]
    weights = np.ones(len(train)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    raw: dict[str, list[tuple[float, float]]] = {col: [] for col in cols}
    for (values, _), w in zip(train, weights, strict=True):
        for b in branches:
            branch_values = values.get(b)
            if branch_values is not None:
                for f in features[b]:
                    if f in branch_values:
                        raw[f"{b}.{f}"].append((float(branch_values[f]), float(w)))
    mean, scale = {}, {}
    for col, pairs in raw.items():
        v, w = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
        mean[col] = float(np.average(v, weights=w)) if len(v) else 0.0
        sd = float(np.sqrt(np.average((v - mean[col]) ** 2, weights=w))) if len(v) else 0.0
        scale[col] = sd if sd > 1e-9 else 1.0
    proto = FusionModel(model_id, branches, features, mean, scale, {}, 0.0, 1.0, 0.0,
                        ThresholdPolicy("unset", 0.5, 0.5, target_precision))
    # Missing indicators stay in the design (and in the evidence) but get no weight: which branches have evidence
    # depends on the content (audio with speech, a visible face), not on manipulation, and in a labelled
    # collection that composition is a confound (talking-head fakes have speech far more often than the reals).
    fitted = [col for col in proto.columns if not col.endswith(".missing")]
    x_train = np.array([[proto.design(v)[col] for col in fitted] for v, _ in train]).reshape(len(train), len(fitted))
    # Every feature is a score of manipulation (more is more suspicious), so none may count as evidence of
    # authenticity. Correlated aggregates of one detector pull against each other in a free fit (the frame
    # model's median got -0.19 beside its top-10 % mean, which ranked videos below either aggregate alone): the
    # most negative feature is dropped and the rest refit until every weight is >= 0 (backward elimination).
    kept = list(range(len(fitted)))
    while kept:
        clf = LogisticRegression(C=c, max_iter=1000)
        clf.fit(x_train[:, kept], y_train, sample_weight=None if sample_weight is None else weights)
        if clf.coef_[0].min() >= 0.0:
            break
        del kept[int(clf.coef_[0].argmin())]
    if kept:
        weights_of = {fitted[i]: float(w) for i, w in zip(kept, clf.coef_[0], strict=True)}
        intercept = float(clf.intercept_[0])
    else:  # every feature inverted: the model says the base rate
        rate = float(np.average(y_train, weights=weights))
        weights_of, intercept = {}, float(np.log(rate / (1.0 - rate)))
    coef = {col: 0.0 for col in proto.columns} | weights_of
    return replace(proto, coef=coef, intercept=intercept)


def calibration_params(z: np.ndarray, labels: np.ndarray, method: str = "platt") -> tuple[float, float]:
    """``(a, b)`` of ``p = sigmoid(a * z + b)`` fitted by maximum likelihood on held-out logits.

    ``platt`` fits slope and offset [1]_; ``temperature`` fits only the slope ``a = 1 / T`` [2]_ (``b = 0``),
    which keeps the decision boundary and cannot overfit a small calibration set as easily.
    """
    from sklearn.linear_model import LogisticRegression

    if method not in CALIBRATIONS:
        raise ValueError(f"method must be one of {CALIBRATIONS}, got {method!r}")
    clf = LogisticRegression(C=1e6, max_iter=1000, fit_intercept=method == "platt")
    clf.fit(np.asarray(z, dtype=np.float64)[:, None], np.asarray(labels))
    return float(clf.coef_[0][0]), float(clf.intercept_[0]) if method == "platt" else 0.0


def calibration_metrics(z: np.ndarray, labels: np.ndarray, a: float, b: float) -> dict[str, Any]:
    """AUC, ECE (calibrated and raw) and the reliability curve of held-out logits ``z``."""
    probs = sigmoid(a * z + b)
    curve, ece = reliability(probs, labels)
    _, ece_uncal = reliability(sigmoid(z), labels)
    return {"n": len(labels), "auc": auc_or_none(labels, probs), "ece": ece, "ece_uncalibrated": ece_uncal,
            "reliability": curve}


def fit(model_id: str, branch_features: Mapping[str, Sequence[str]], train: Sequence[Sample], cal: Sequence[Sample],
        *, target_precision: float = 0.9, policy_version: str | None = None, c: float = 1.0,
        training: dict[str, Any] | None = None, calibration: str = "platt") -> FusionModel:
    """Fit logistic regression on ``train``, calibrate and choose the policy thresholds on ``cal``.

    Each sample is ``({branch: {feature: value} or None}, label)``.
    """
    uncal = fit_logistic(model_id, branch_features, train, c=c, target_precision=target_precision)
    y_train = np.array([y for _, y in train])
    z_train = np.array([uncal.logit(v)[0] for v, _ in train])
    z_cal = np.array([uncal.logit(v)[0] for v, _ in cal])
    y_cal = np.array([y for _, y in cal])
    a, b = calibration_params(z_cal, y_cal, calibration)
    policy = ThresholdPolicy.choose(sigmoid(a * z_cal + b), y_cal, target_precision=target_precision,
                                    version=policy_version or f"{model_id}/p{int(target_precision * 100)}")
    metrics = {"train": {"n": len(y_train), "auc": auc_or_none(y_train, sigmoid(a * z_train + b))},
               "cal": calibration_metrics(z_cal, y_cal, a, b)}
    return replace(uncal, platt_a=a, platt_b=b, policy=policy, metrics=metrics, training=dict(training or {}),
                   calibration=calibration)
