"""Group-wise fitting and cross-validation of fusion models on small labelled sets (e.g. 51 videos in 5 folds).

With a few dozen samples there is no room for a separate calibration split. :func:`fit_grouped` therefore fits
the regression on every sample and calibrates it on *inner out-of-group* logits: for each group, a regression
fitted without that group scores it, so the calibration (and the policy thresholds) see only held-out logits.
:func:`cross_validate` repeats this per outer fold, leaving one fold out, and returns out-of-fold probabilities
for every sample together with the band each fold model's own policy gives them, so the reported band
precision never uses thresholds chosen on the samples it is measured on.

An optional ``augment`` callable adds extra training samples derived from the training samples only (e.g.
spliced videos, :mod:`tamperscope.fusion.augment`): it receives the positions of the samples a regression is
fitted on and returns the extra samples; they are never used for calibration or thresholds. The positive
samples (own and extra) are weighted so that their total weight stays the number of own positives: the extra
samples change what the model looks at, not the prior it learns.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from tamperscope.fusion.model import (
    FusionModel,
    Sample,
    auc_or_none,
    calibration_metrics,
    calibration_params,
    fit_logistic,
    sigmoid,
)
from tamperscope.fusion.policy import ThresholdPolicy

#: positions of the training samples -> extra training samples derived from them.
Augment = Callable[[Sequence[int]], list[Sample]]


@dataclass(frozen=True)
class CrossValidation:
    """Out-of-fold results of :func:`cross_validate`, in sample order."""

    probabilities: np.ndarray
    bands: list[str]
    folds: list[Hashable]
    models: dict[Hashable, FusionModel] = field(default_factory=dict)


def _has_both(labels: np.ndarray) -> bool:
    return len(set(np.asarray(labels).tolist())) == 2


def _train_set(samples: Sequence[Sample], positions: Sequence[int],
               augment: Augment | None) -> tuple[list[Sample], list[float] | None]:
    """The training samples at ``positions`` plus the augmented ones, with prior-preserving weights."""
    own = [samples[i] for i in positions]
    extra = augment(positions) if augment is not None else []
    if not extra:
        return own, None
    n_pos = sum(y for _, y in own)
    n_pos_all = n_pos + sum(y for _, y in extra)
    n_neg_extra = sum(1 - y for _, y in extra)
    n_neg = len(own) - n_pos
    w_pos = n_pos / n_pos_all if n_pos_all else 1.0
    w_neg = n_neg / (n_neg + n_neg_extra) if n_neg + n_neg_extra else 1.0
    train = own + extra
    return train, [w_pos if y else w_neg for _, y in train]


def inner_logits(model_id: str, branch_features: Mapping[str, Sequence[str]], samples: Sequence[Sample],
                 groups: Sequence[Hashable], *, c: float = 1.0, augment: Augment | None = None) -> np.ndarray | None:
    """Logit of each sample from a regression fitted without its group; ``None`` if that is impossible.

    It is impossible with fewer than two groups, or when leaving a group out leaves a single class.
    """
    labels = np.array([y for _, y in samples])
    unique = sorted(set(groups), key=str)
    if len(unique) < 2:
        return None
    z = np.zeros(len(samples))
    for g in unique:
        held = np.array([gg == g for gg in groups])
        if not _has_both(labels[~held]):
            return None
        train, weights = _train_set(samples, [i for i, h in enumerate(held) if not h], augment)
        model = fit_logistic(model_id, branch_features, train, c=c, sample_weight=weights)
        z[held] = [model.logit(v)[0] for (v, _), h in zip(samples, held, strict=True) if h]
    return z


def fit_grouped(model_id: str, branch_features: Mapping[str, Sequence[str]], samples: Sequence[Sample],
                groups: Sequence[Hashable], *, c: float = 1.0, calibration: str = "temperature",
                target_precision: float = 0.9, policy_version: str | None = None,
                training: dict[str, Any] | None = None, augment: Augment | None = None) -> FusionModel:
    """Fit on all ``samples``; calibrate and choose the policy on inner leave-one-group-out logits.

    Parameters
    ----------
    model_id
        Name of the model (and of the default policy version ``<model_id>/p<target x 100>``).
    branch_features
        ``{branch: feature names}``.
    samples
        ``({branch: {feature: value} or None}, label)`` pairs.
    groups
        Group of each sample (e.g. its CV fold); samples of one group are held out together.
    c
        Inverse L2 regularisation strength.
    calibration
        ``temperature`` (default) or ``platt``.
    target_precision
        Precision each confident band must reach on the held-out logits.
    policy_version
        Overrides the default policy version.
    training
        Training manifest stored in the artifact.
    augment
        Extra training samples from the positions of the training samples (see the module docstring).

    Returns
    -------
    FusionModel
        The calibrated model; ``metrics["cal"]`` describes the held-out logits it was calibrated on. With fewer
        than two usable groups it is calibrated on its own training logits, which ``metrics["cal"]["data"]``
        states.

    Raises
    ------
    ValueError
        If ``samples`` and ``groups`` differ in length or hold a single class.
    """
    if len(samples) != len(groups):
        raise ValueError("samples and groups must have the same length")
    labels = np.array([y for _, y in samples])
    train, weights = _train_set(samples, range(len(samples)), augment)
    model = fit_logistic(model_id, branch_features, train, c=c, target_precision=target_precision,
                         sample_weight=weights)
    z_in = np.array([model.logit(v)[0] for v, _ in samples])
    z_held = inner_logits(model_id, branch_features, samples, groups, c=c, augment=augment)
    data = "inner leave-one-group-out logits" if z_held is not None else "training logits (too few groups)"
    z_cal = z_held if z_held is not None else z_in
    a, b = calibration_params(z_cal, labels, calibration)
    policy = ThresholdPolicy.choose(sigmoid(a * z_cal + b), labels, target_precision=target_precision,
                                    version=policy_version or f"{model_id}/p{int(target_precision * 100)}")
    metrics = {"train": {"n": len(labels), "augmented": len(train) - len(samples), "auc": auc_or_none(labels, z_in)},
               "cal": {**calibration_metrics(z_cal, labels, a, b), "data": data,
                       "groups": len(set(groups))}}
    return replace(model, platt_a=a, platt_b=b, policy=policy, metrics=metrics, training=dict(training or {}),
                   calibration=calibration)


def cross_validate(model_id: str, branch_features: Mapping[str, Sequence[str]], samples: Sequence[Sample],
                   folds: Sequence[Hashable], *, c: float = 1.0, calibration: str = "temperature",
                   target_precision: float = 0.9, augment: Augment | None = None,
                   select_gain: float | None = None,
                   augment_for: Callable[[tuple[str, ...]], Augment | None] | None = None) -> CrossValidation:
    """Leave-one-fold-out: the model for fold ``k`` is :func:`fit_grouped` on the other folds (grouped by fold).

    With ``select_gain``, each fold model first selects its branches (:func:`select_branches`) on its own
    training folds only, so the selection is part of what is cross-validated; ``augment_for`` then gives the
    augmentation for a branch subset (``augment`` is ignored).

    Returns
    -------
    CrossValidation
        Out-of-fold calibrated probabilities, each sample's band under its fold model's policy, and the fold
        models.

    Raises
    ------
    ValueError
        If fewer than two folds are given or a training set holds a single class.
    """
    if len(samples) != len(folds):
        raise ValueError("samples and folds must have the same length")
    unique = sorted(set(folds), key=str)
    if len(unique) < 2:
        raise ValueError("cross-validation needs at least two folds")
    probs = np.zeros(len(samples))
    bands: list[str] = [""] * len(samples)
    models: dict[Hashable, FusionModel] = {}
    for k in unique:
        train_idx = [i for i, f in enumerate(folds) if f != k]

        train_folds = [folds[i] for i in train_idx]
        fold_augment = _remapped(augment, train_idx)
        features = dict(branch_features)
        if select_gain is not None:
            def fold_augment_for(branches: tuple[str, ...], idx: list[int] = train_idx) -> Augment | None:
                return _remapped(augment_for(branches) if augment_for else None, idx)

            chosen = select_branches(model_id, branch_features, [samples[i] for i in train_idx], train_folds, c=c,
                                     min_gain=select_gain, augment_for=fold_augment_for).branches
            features = {b: branch_features[b] for b in chosen}
            fold_augment = fold_augment_for(chosen)
        model = fit_grouped(model_id, features, [_only(samples[i], features) for i in train_idx], train_folds, c=c,
                            calibration=calibration, target_precision=target_precision, augment=fold_augment)
        models[k] = model
        for i, f in enumerate(folds):
            if f == k:
                probs[i] = model.probability(samples[i][0])[0]
                bands[i] = model.policy.band(float(probs[i]))
    return CrossValidation(probabilities=probs, bands=bands, folds=list(folds), models=models)


def _remapped(augment: Augment | None, idx: Sequence[int]) -> Augment | None:
    """``augment`` over positions within the subset ``idx`` of the samples."""
    if augment is None:
        return None
    return lambda positions: augment([idx[p] for p in positions])


def _only(sample: Sample, features: Mapping[str, Sequence[str]]) -> Sample:
    """A sample restricted to the given branches."""
    values, label = sample
    return {b: values.get(b) for b in features}, label


@dataclass(frozen=True)
class Selection:
    """Branches kept by :func:`select_branches` and the inner AUC of every step that was tried."""

    branches: tuple[str, ...]
    trials: list[dict[str, Any]]


def select_branches(model_id: str, branch_features: Mapping[str, Sequence[str]],
                    samples: Sequence[Sample], groups: Sequence[Hashable], *, c: float = 1.0,
                    min_gain: float = 0.01, augment_for: Callable[[tuple[str, ...]], Augment | None] | None = None,
                    ) -> Selection:
    """Greedy forward selection of branches by inner leave-one-group-out AUC, anchored on the primary branch.

    The first candidate is the primary detector (the one trained for the task); selection starts from it, and
    another branch joins only while it raises the inner AUC by at least ``min_gain``. The primary is dropped only
    when it is uninformative or inverted alone (inner AUC below ``0.5 + min_gain``); selection then starts from the
    best single branch. Starting from whichever single branch scores best lets near-equal branches swap between
    cross-validation folds, and the pooled out-of-fold ranking then mixes differently calibrated models (video-v3:
    0.590 against 0.656 for the frame model alone). An inverted or uninformative branch is weighted out with the
    figures that show it (``trials``).
    """
    labels = np.array([y for _, y in samples])
    trials: list[dict[str, Any]] = []

    def inner_auc(candidate: tuple[str, ...]) -> float:
        features = {b: branch_features[b] for b in candidate}
        z = inner_logits(model_id, features, [_only(sample, features) for sample in samples], groups, c=c,
                         augment=augment_for(candidate) if augment_for else None)
        auc = auc_or_none(labels, z) if z is not None else None
        trials.append({"branches": list(candidate), "inner_auc": auc})
        return auc if auc is not None else -np.inf

    if not branch_features:
        return Selection((), trials)
    singles = {branch: inner_auc((branch,)) for branch in branch_features}
    primary = next(iter(branch_features))
    start = primary if singles[primary] >= 0.5 + min_gain else max(singles, key=lambda b: singles[b])
    chosen: tuple[str, ...] = (start,)
    best = singles[start]
    remaining = [b for b in branch_features if b != start]
    while remaining:
        auc, branch = max((inner_auc((*chosen, b)), b) for b in remaining)
        if auc < best + min_gain:
            break
        chosen, best = (*chosen, branch), auc
        remaining.remove(branch)
    return Selection(chosen, trials)


def fit_selected(model_id: str, candidates: Mapping[str, Sequence[str]], samples: Sequence[Sample],
                 groups: Sequence[Hashable], *, min_gain: float, c: float = 1.0, calibration: str = "temperature",
                 target_precision: float = 0.9, training: dict[str, Any] | None = None,
                 augment_for: Callable[[tuple[str, ...]], Augment | None] | None = None) -> FusionModel:
    """:func:`select_branches` on all groups, then :func:`fit_grouped` on the kept branches; the candidates and
    every selection trial are recorded in the model's ``training["branch_selection"]``."""
    selection = select_branches(model_id, candidates, samples, groups, c=c, min_gain=min_gain,
                                augment_for=augment_for)
    chosen = {b: candidates[b] for b in selection.branches}
    record = {"candidates": list(candidates), "min_gain": min_gain, "trials": selection.trials}
    return fit_grouped(model_id, chosen, [_only(sample, chosen) for sample in samples], groups, c=c,
                       calibration=calibration, target_precision=target_precision,
                       training={**(training or {}), "branch_selection": record},
                       augment=augment_for(selection.branches) if augment_for else None)

