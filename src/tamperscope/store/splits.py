"""Subject-disjoint train/val/test splits: every asset of one subject (identity or source) lands in one split.

Subjects are shuffled with a seeded generator and handed out greedily, largest first, to the split furthest
below its target share of assets, so splits come close to the requested fractions while no subject leaks
across them (leakage of identities between train and test inflates deepfake-detection scores, see [1]_).

References
----------
.. [1] B. Dolhansky et al., "The DeepFake Detection Challenge (DFDC) dataset", arXiv:2006.07397, 2020.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from tamperscope.store.models import Asset

DEFAULT_FRACTIONS: dict[str, float] = {"train": 0.7, "val": 0.15, "test": 0.15}


def assign_splits(subjects: Sequence[str], fractions: Mapping[str, float] | None = None, seed: int = 0) -> dict[
        str, str]:
    """Map each subject to a split so that splits hold about ``fractions`` of the items.

    Parameters
    ----------
    subjects : sequence of str
        The subject of every item (repeats count: a subject with many assets weighs more).
    fractions : mapping of str to float, optional
        Split name to share; normalised to sum 1. Default 70/15/15 train/val/test.
    seed : int
        Seed of the shuffle that breaks ties between equally sized subjects.

    Returns
    -------
    dict of str to str
        Subject to split name.

    Examples
    --------
    >>> splits = assign_splits(["a", "a", "b", "c", "d"], {"train": 0.6, "test": 0.4}, seed=1)
    >>> sorted(set(splits.values()))
    ['test', 'train']
    """
    fractions = dict(DEFAULT_FRACTIONS if fractions is None else fractions)
    if not fractions or any(v < 0 for v in fractions.values()) or sum(fractions.values()) <= 0:
        raise ValueError("fractions must be non-negative with a positive sum")
    total_share = sum(fractions.values())
    shares = {name: value / total_share for name, value in fractions.items()}
    counts = Counter(subjects)
    order = sorted(counts)
    rng = np.random.default_rng(seed)
    rng.shuffle(order)
    order.sort(key=lambda s: -counts[s])  # stable: shuffled order breaks ties
    filled = dict.fromkeys(shares, 0)
    total = sum(counts.values())
    out: dict[str, str] = {}
    for subject in order:
        # The split with the largest deficit against its target after this subject would be placed.
        name = max(shares, key=lambda n: (shares[n] * total - filled[n], shares[n]))
        out[subject] = name
        filled[name] += counts[subject]
    return out


def split_assets(session: Session, fractions: Mapping[str, float] | None = None, seed: int = 0) -> dict[str, int]:
    """Write subject-disjoint splits to every asset (an asset without a subject is its own subject).

    Parameters
    ----------
    session : Session
        Open session; the caller commits.
    fractions : mapping of str to float, optional
        As in :func:`assign_splits`.
    seed : int
        As in :func:`assign_splits`.

    Returns
    -------
    dict of str to int
        Assets per split.
    """
    assets = list(session.execute(select(Asset).where(Asset.status != "rejected")).scalars())
    subject_of = {a.asset_id: a.subject or f"asset:{a.asset_id}" for a in assets}
    mapping = assign_splits([subject_of[a.asset_id] for a in assets], fractions, seed)
    for asset in assets:
        asset.split = mapping[subject_of[asset.asset_id]]
    return dict(Counter(a.split for a in assets if a.split))
