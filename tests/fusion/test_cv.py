"""Group-wise fitting and leave-one-fold-out cross-validation on a small synthetic feature set."""

import numpy as np
import pytest

from tamperscope.fusion.cv import cross_validate, fit_grouped, inner_logits, select_branches
from tamperscope.fusion.model import FusionModel

FEATURES = {"deep_clip": ["max", "mean"], "avsync": ["offset"]}


def _samples(n: int, seed: int = 0) -> tuple[list, list[int]]:
    rng = np.random.default_rng(seed)
    samples, folds = [], []
    for i in range(n):
        y = i % 2
        clip = {"max": float(rng.normal(0.4 + 0.4 * y, 0.15)), "mean": float(rng.normal(0.3 + 0.2 * y, 0.1))}
        av = None if rng.random() < 0.4 else {"offset": float(rng.normal(0.5, 0.2))}
        samples.append(({"deep_clip": clip, "avsync": av}, y))
        folds.append(i % 5)
    return samples, folds


def test_cross_validation_gives_held_out_probabilities_and_bands() -> None:
    samples, folds = _samples(60)
    cv = cross_validate("t-v2", FEATURES, samples, folds)
    labels = np.array([y for _, y in samples])
    assert cv.probabilities.shape == (60,) and set(cv.models) == {0, 1, 2, 3, 4}
    assert ((cv.probabilities > 0) & (cv.probabilities < 1)).all()
    assert cv.probabilities[labels == 1].mean() > cv.probabilities[labels == 0].mean() + 0.2
    assert set(cv.bands) <= {"likely_real", "unsure", "likely_manipulated"}
    # each fold's prediction comes from the model fitted without that fold
    first = next(i for i, f in enumerate(folds) if f == 0)
    assert cv.probabilities[first] == pytest.approx(cv.models[0].probability(samples[first][0])[0])
    assert cv.models[0].metrics["train"]["n"] == sum(f != 0 for f in folds)


def test_fit_grouped_calibrates_on_held_out_logits_and_round_trips() -> None:
    samples, folds = _samples(60, seed=1)
    model = fit_grouped("t-v2", FEATURES, samples, folds, calibration="temperature")
    assert model.calibration == "temperature" and model.platt_b == 0.0 and model.platt_a > 0
    assert model.metrics["cal"]["data"].startswith("inner") and model.metrics["cal"]["groups"] == 5
    assert model.metrics["cal"]["auc"] > 0.8
    assert model.coef["deep_clip.max"] > 0
    again = FusionModel.from_json(model.to_json())
    assert again.calibration == "temperature"
    assert again.probability(samples[0][0])[0] == model.probability(samples[0][0])[0]


def test_too_few_groups_fall_back_to_training_logits() -> None:
    samples, _ = _samples(20)
    assert inner_logits("t", FEATURES, samples, [0] * 20) is None
    model = fit_grouped("t", FEATURES, samples, [0] * 20, calibration="platt")
    assert model.metrics["cal"]["data"].startswith("training")


def test_single_fold_or_single_class_is_refused() -> None:
    samples, _ = _samples(10)
    with pytest.raises(ValueError):
        cross_validate("t", FEATURES, samples, [0] * 10)
    with pytest.raises(ValueError):
        fit_grouped("t", FEATURES, [(v, 0) for v, _ in samples], list(range(10)))


def test_augmented_samples_keep_the_learned_prior() -> None:
    """Extra positives are weighted so that positives keep their total weight: duplicates change nothing."""
    samples, folds = _samples(40, seed=2)

    def duplicate_positives(positions):
        return [samples[i] for i in positions for _ in range(3) if samples[i][1] == 1]

    plain = fit_grouped("t", FEATURES, samples, folds, calibration="platt")
    dup = fit_grouped("t", FEATURES, samples, folds, calibration="platt", augment=duplicate_positives)
    assert dup.metrics["train"]["augmented"] == 3 * sum(y for _, y in samples)
    assert dup.intercept == pytest.approx(plain.intercept, abs=1e-3)
    assert dup.coef["deep_clip.max"] == pytest.approx(plain.coef["deep_clip.max"], abs=1e-3)


def test_branch_selection_keeps_informative_branches_and_weights_out_noise() -> None:
    rng = np.random.default_rng(3)
    samples, folds = [], []
    for i in range(120):
        y = i % 2
        samples.append(({"deep_clip": {"max": float(rng.normal(0.3 + 0.4 * y, 0.2)), "mean": 0.0},
                         "avsync": {"offset": float(rng.normal(0.5, 0.2))}}, y))  # avsync carries no signal
        folds.append(i % 5)
    selection = select_branches("t-v3", FEATURES, samples, folds, min_gain=0.01)
    assert selection.branches == ("deep_clip",)
    singles = {t["branches"][0]: t["inner_auc"] for t in selection.trials if len(t["branches"]) == 1}
    assert singles["deep_clip"] > 0.8 and abs(singles["avsync"] - 0.5) < 0.15
    cv = cross_validate("t-v3", FEATURES, samples, folds, select_gain=0.01)
    assert all(m.branches == ("deep_clip",) for m in cv.models.values())
    assert all(m.policy is not None for m in cv.models.values())


def test_branch_presence_confounded_with_the_label_does_not_vote() -> None:
    """avsync evidence exists for most fakes and few reals (speech in talking-head fakes), its values carry no
    signal: the fitted model gives the missing indicator no weight, so presence alone cannot rank videos."""
    rng = np.random.default_rng(5)
    samples = []
    for i in range(200):
        y = i % 2
        present = rng.random() < (0.8 if y else 0.2)
        samples.append(({"deep_clip": {"max": float(rng.normal(0.5, 0.2)), "mean": 0.0},
                         "avsync": {"offset": float(rng.normal(0.5, 0.2))} if present else None}, y))
    model = fit_grouped("t-v3", FEATURES, samples, [i % 5 for i in range(200)])
    assert model.coef["avsync.missing"] == 0.0 and model.coef["deep_clip.missing"] == 0.0
    labels = np.array([y for _, y in samples])
    probs = np.array([model.probability(v)[0] for v, _ in samples])
    assert abs(float(np.corrcoef(probs, labels)[0, 1])) < 0.2


def _two_signals(noise_shared: float, noise_clip: float, seed: int = 5) -> tuple[list, list[int]]:
    """The clip branch sees the avsync branch's value plus its own noise: avsync is the better one alone."""
    rng = np.random.default_rng(seed)
    samples, folds = [], []
    for i in range(150):
        y = i % 2
        av = float(rng.normal(y, noise_shared))
        samples.append(({"deep_clip": {"max": av + float(rng.normal(0, noise_clip)), "mean": 0.0},
                         "avsync": {"offset": av}}, y))
        folds.append(i % 5)
    return samples, folds


def test_selection_keeps_an_informative_primary_branch_against_a_better_one() -> None:
    samples, folds = _two_signals(noise_shared=1.0, noise_clip=0.3)
    selection = select_branches("t-v3", FEATURES, samples, folds, min_gain=0.05)
    singles = {t["branches"][0]: t["inner_auc"] for t in selection.trials if len(t["branches"]) == 1}
    assert singles["avsync"] > singles["deep_clip"] > 0.55  # the second branch is better alone
    assert selection.branches[0] == "deep_clip"


def test_a_clearly_better_branch_replaces_an_uninformative_primary() -> None:
    samples, folds = _two_signals(noise_shared=0.5, noise_clip=50.0)
    selection = select_branches("t-v3", FEATURES, samples, folds, min_gain=0.01)
    assert selection.branches == ("avsync",)
