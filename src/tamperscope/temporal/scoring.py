"""Mapping a measured value onto a [0, 1] score, shared by the temporal detectors."""

from __future__ import annotations

import numpy as np


def ramp(x: float, lo: float, hi: float) -> float:
    """0 at or below ``lo``, 1 at or above ``hi``, linear between: how far a measure sits into its suspect range."""
    return float(np.clip((x - lo) / (hi - lo), 0.0, 1.0))
