"""Subject-disjoint splits."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import select

from tamperscope.store.models import Asset
from tamperscope.store.splits import assign_splits, split_assets
from tamperscope.workspace import Workspace
from tests.store.test_qa import add_asset


def test_subjects_never_straddle_splits_and_shares_are_close() -> None:
    subjects = [f"person{i % 40}" for i in range(400)] + [f"solo{i}" for i in range(100)]
    mapping = assign_splits(subjects, {"train": 0.7, "val": 0.15, "test": 0.15}, seed=3)
    assert set(mapping) == set(subjects)
    per_split = Counter(mapping[s] for s in subjects)
    assert per_split["train"] / 500 == pytest.approx(0.7, abs=0.03)
    assert per_split["val"] / 500 == pytest.approx(0.15, abs=0.03)
    assert per_split["test"] / 500 == pytest.approx(0.15, abs=0.03)


def test_deterministic_per_seed() -> None:
    subjects = [f"s{i}" for i in range(50)]
    assert assign_splits(subjects, seed=1) == assign_splits(subjects, seed=1)
    assert assign_splits(subjects, seed=1) != assign_splits(subjects, seed=2)


def test_rejects_bad_fractions() -> None:
    with pytest.raises(ValueError):
        assign_splits(["a"], {"train": -1.0})
    with pytest.raises(ValueError):
        assign_splits(["a"], {})


def test_split_assets_writes_disjoint_splits(ws: Workspace) -> None:
    with ws.db.session() as session:
        for n in range(30):
            add_asset(session, f"a{n:02d}", subject=f"p{n % 10}", label="fake" if n % 2 else "real")
        add_asset(session, "lonely", subject=None)
    with ws.db.session() as session:
        counts = split_assets(session, {"train": 0.6, "test": 0.4}, seed=0)
    assert sum(counts.values()) == 31
    with ws.db.session() as session:
        assets = list(session.execute(select(Asset)).scalars())
        by_subject: dict[str, set[str]] = {}
        for asset in assets:
            by_subject.setdefault(asset.subject or asset.asset_id, set()).add(asset.split or "")
    assert all(len(splits) == 1 for splits in by_subject.values())
    assert {s for splits in by_subject.values() for s in splits} == {"train", "test"}
