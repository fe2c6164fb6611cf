import json

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from tamperscope.fusion.model import FusionModel, fit, fit_logistic, load_model, sigmoid
from tamperscope.fusion.policy import LIKELY_MANIPULATED, LIKELY_REAL, UNSURE, ThresholdPolicy


def _samples(rng: np.random.Generator, n: int) -> list:
    out = []
    for _ in range(n):
        y = int(rng.random() < 0.5)
        meta = None if rng.random() < 0.3 else {"flags": float(rng.poisson(1 + 2 * y)), "max_score": float(y)}
        out.append(({"forensics": {"a": float(rng.normal(y * 1.5, 1)), "b": float(rng.normal(0, 1))},
                     "metadata": meta}, y))
    return out


def test_fit_calibrates_masks_missing_and_round_trips() -> None:
    rng = np.random.default_rng(0)
    model = fit("t-v1", {"forensics": ["a", "b"], "metadata": ["flags", "max_score"]},
                _samples(rng, 400), _samples(rng, 300))
    assert model.metrics["cal"]["auc"] > 0.8
    assert model.metrics["cal"]["ece"] < 0.1
    assert model.coef["forensics.a"] > abs(model.coef["forensics.b"])
    p_missing, contrib = model.probability({"forensics": {"a": 0.0, "b": 0.0}, "metadata": None})
    assert contrib["metadata.flags"] == 0.0 and "metadata.missing" in contrib
    again = FusionModel.from_json(json.loads(json.dumps(model.to_json())))
    assert again.probability({"forensics": {"a": 2.0, "b": 0.0}, "metadata": None})[0] == \
        model.probability({"forensics": {"a": 2.0, "b": 0.0}, "metadata": None})[0]
    assert 0.0 < p_missing < 1.0


def test_policy_bands_and_threshold_choice() -> None:
    policy = ThresholdPolicy("x", 0.2, 0.8, 0.9)
    assert [policy.band(p) for p in (0.1, 0.5, 0.9)] == [LIKELY_REAL, UNSURE, LIKELY_MANIPULATED]
    probs = np.linspace(0, 1, 101)
    labels = (probs > 0.5).astype(int)
    chosen = ThresholdPolicy.choose(probs, labels, target_precision=0.9, version="v")
    assert 0.4 < chosen.high <= 0.51 and 0.45 < chosen.low <= 0.6 and chosen.low <= chosen.high


def test_shipped_image_artifact_loads() -> None:
    model = load_model("image-v1")
    assert model.branches == ("forensics",)
    assert model.policy.version.startswith("image-v1")
    assert {"train", "cal"} <= set(model.metrics)


def test_shipped_image_v2_artifact_is_the_image_default_and_records_its_cv() -> None:
    from tamperscope.stages.fusion import MODEL_FOR_MEDIA

    model = load_model(MODEL_FOR_MEDIA["image"])
    selection = model.training["branch_selection"]
    assert model.model_id == "image-v2" and set(model.branches) <= set(selection["candidates"])
    assert set(selection["candidates"]) == {"forensics_synth", "meta_flags"} and model.branches
    # the shipped branches are the ones the recorded selection trials chose: no kept branch lowered the inner AUC
    singles = {t["branches"][0]: t["inner_auc"] for t in selection["trials"] if len(t["branches"]) == 1}
    assert singles[model.branches[0]] == max(singles.values())
    assert model.policy.version == "image-v2/p90" and model.policy.low <= model.policy.high
    cv = model.metrics["cv"]
    assert cv["n"] == model.training["real_images"] and 0.0 <= cv["auc"] <= 1.0
    assert sum(cv["camera_bands"].values()) == 6
    assert cv["camera_bands"]["likely_manipulated"] == 0


def test_a_score_never_counts_as_evidence_of_authenticity() -> None:
    rng = np.random.default_rng(1)
    labels = (rng.random(400) < 0.4).astype(int)
    # "a" rises with manipulation; "b" falls with it, as the temporal scores do on real collections
    train = [({"forensics": {"a": float(rng.normal(1.5 * y, 1)), "b": float(rng.normal(-1.5 * y, 1))}}, int(y))
             for y in labels]
    free = LogisticRegression().fit([[v["forensics"]["a"], v["forensics"]["b"]] for v, _ in train], labels)
    assert free.coef_[0][1] < 0  # an unconstrained fit would read "b" inverted
    model = fit_logistic("t", {"forensics": ["a", "b"]}, train)
    assert model.coef["forensics.a"] > 0 and model.coef["forensics.b"] == 0.0
    inverted = fit_logistic("t", {"forensics": ["b"]}, train)  # nothing left: the model says the base rate
    assert inverted.coef["forensics.b"] == 0.0
    assert float(sigmoid(inverted.intercept)) == pytest.approx(labels.mean())
    assert inverted.logit({"forensics": {"b": -3.0}})[0] == inverted.logit({"forensics": {"b": 3.0}})[0]
