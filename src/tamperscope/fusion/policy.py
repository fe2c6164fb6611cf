"""The threshold policy: calibrated probability -> *Likely Real* / *Unsure* / *Likely Manipulated*.

See ``docs/threshold-policy.md``. Thresholds are chosen on the calibration split so that each confident band
reaches the target precision there; everything between them is *Unsure*.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tamperscope.records import Band

LIKELY_REAL = Band.LIKELY_REAL
UNSURE = Band.UNSURE
LIKELY_MANIPULATED = Band.LIKELY_MANIPULATED


@dataclass(frozen=True)
class ThresholdPolicy:
    """``p < low`` -> likely real; ``p >= high`` -> likely manipulated; otherwise unsure."""

    version: str
    low: float
    high: float
    target_precision: float

    def band(self, probability: float) -> str:
        if probability >= self.high:
            return LIKELY_MANIPULATED
        if probability < self.low:
            return LIKELY_REAL
        return UNSURE

    @classmethod
    def choose(cls, probs: np.ndarray, labels: np.ndarray, *, target_precision: float,
               version: str) -> ThresholdPolicy:
        """The lowest ``high`` whose band has precision >= target, the highest ``low`` whose band has NPV >= target.

        When no threshold reaches the target the band is closed (``high`` = 1.0 or ``low`` = 0.0), so the
        policy says *Unsure* rather than over-claim.
        """
        candidates = np.unique(probs)
        high = 1.0 + 1e-9
        for t in candidates:
            sel = probs >= t
            if sel.sum() >= 3 and labels[sel].mean() >= target_precision:
                high = float(t)
                break
        low = 0.0
        for t in candidates[::-1]:
            sel = probs < t
            if sel.sum() >= 3 and (1 - labels[sel]).mean() >= target_precision and t <= high:
                low = float(t)
                break
        return cls(version=version, low=low, high=min(high, 1.0 + 1e-9), target_precision=target_precision)

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "low": self.low, "high": self.high,
                "target_precision": self.target_precision}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ThresholdPolicy:
        return cls(version=str(data["version"]), low=float(data["low"]), high=float(data["high"]),
                   target_precision=float(data["target_precision"]))


def band_metrics(bands: Sequence[str], labels: np.ndarray) -> dict[str, Any]:
    """Share and count of *Unsure*, and the size and precision of each confident band (NPV for *Likely Real*)."""
    b = np.array(bands)
    out: dict[str, Any] = {"unsure_share": float((b == UNSURE).mean()) if len(b) else None,
                           UNSURE: {"n": int((b == UNSURE).sum())}}
    for band, positive in ((LIKELY_MANIPULATED, 1), (LIKELY_REAL, 0)):
        sel = b == band
        out[band] = {"n": int(sel.sum()),
                     "precision": float((labels[sel] == positive).mean()) if sel.any() else None}
    return out
