"""Bilabial closure: /p/, /b/ and /m/ phones against a closed mouth.

/p/, /b/ and /m/ can only be produced with the lips closed. Agarwal et al. [1]_ found lip-sync deepfakes often
leave the mouth open on them. Each bilabial phone (from :mod:`tamperscope.temporal.phones`, shifted by the
offset that :func:`tamperscope.temporal.avsync.estimate_offset` found) is checked for a closed mouth within
+-40 ms; the stage reports the mismatch rate per speech segment.

References
----------
.. [1] S. Agarwal, H. Farid, O. Fried, M. Agrawala, "Detecting Deep-Fake Videos from Phoneme-Viseme
   Mismatches", CVPR Workshops 2020. doi:10.1109/CVPRW50498.2020.00338
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BILABIALS = frozenset({"P", "B", "M"})


@dataclass(frozen=True)
class Phone:
    """One recognised phone, in seconds on the audio clock."""

    label: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class BilabialResult:
    """Bilabial closure check over one time span."""

    n_bilabials: int
    n_mismatch: int
    closed_threshold: float

    @property
    def mismatch_rate(self) -> float | None:
        return self.n_mismatch / self.n_bilabials if self.n_bilabials else None


def closed_threshold(mouth: np.ndarray, *, fraction: float = 0.25) -> float:
    """Mouth opening below which the lips count as closed: ``p5 + fraction * (p95 - p5)`` of the track."""
    finite = mouth[np.isfinite(mouth)]
    if len(finite) == 0:
        return float("nan")
    lo, hi = np.percentile(finite, [5, 95])
    return float(lo + fraction * (hi - lo))


def bilabial_check(phones: list[Phone], mouth_t_s: np.ndarray, mouth: np.ndarray, *, offset_s: float = 0.0,
                   span: tuple[float, float] | None = None, threshold: float | None = None,
                   tolerance_s: float = 0.04) -> BilabialResult:
    """Count bilabial phones (p, b, m) whose lips are not closed at any frame within the phone.

    Parameters
    ----------
    phones : list of Phone
        Recognised phones on the audio clock.
    mouth_t_s, mouth : numpy.ndarray
        Mouth opening per frame (video clock).
    offset_s : float
        Estimated offset (positive = audio lags); phone times are mapped to video by subtracting it.
    span : tuple of float, optional
        Only phones starting within ``(start_s, end_s)`` of the audio clock are checked.
    threshold : float, optional
        Closed-lip threshold; default :func:`closed_threshold` of the whole series.
    tolerance_s : float
        Widening of each phone interval (one frame at 25 fps).

    Returns
    -------
    BilabialResult
    """
    thr = closed_threshold(mouth) if threshold is None else threshold
    t = np.asarray(mouth_t_s, float)
    n = mismatched = 0
    for phone in phones:
        if phone.label.upper() not in BILABIALS:
            continue
        if span is not None and not span[0] <= phone.start_s < span[1]:
            continue
        lo, hi = phone.start_s - offset_s - tolerance_s, phone.end_s - offset_s + tolerance_s
        inside = (t >= lo) & (t <= hi) & np.isfinite(mouth)
        if not inside.any():
            continue
        n += 1
        if float(np.min(mouth[inside])) > thr:
            mismatched += 1
    return BilabialResult(n, mismatched, thr)
