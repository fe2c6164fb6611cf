"""Blinks: eye aspect ratio per frame, blink events, rate, durations and interval regularity.

The eye aspect ratio (EAR) of Soukupová & Čech [1]_ is computed per eye from six MediaPipe landmarks and
averaged over both eyes. A blink is a run of frames whose EAR drops more than ``drop`` below the local
open-eye level (the rolling 80th percentile over ``baseline_s``); its onset and duration are measured at
half amplitude (between the half-depth crossings); longer events than ``max_blink_ms`` are eye closures,
not blinks.

Scoring compares the track with documented human figures:

- spontaneous blink rate: 17 /min at rest, 26 /min in conversation and 4.5 /min while reading (means
  reported by Bentivoglio et al. [2]_). Too few blinks is scored with a Poisson tail against the lowest
  of those means (4.5 /min), too many against 50 /min;
- blink duration: 100-400 ms (Stern, Walrath & Goldstein [3]_; Caffier et al. [4]_ report means near
  200 ms in alert subjects);
  events outside 50-500 ms (the range widened by one frame of quantisation) count as anomalous;
- interval regularity: spontaneous inter-blink intervals are highly irregular (coefficient of variation
  typically well above 0.5 [2]_); a coefficient of variation below 0.35 is increasingly suspicious, as
  produced by animation that blinks on a timer.

Absence of blinking in face-swap videos was the cue of Li, Chang & Lyu [5]_.

References
----------
.. [1] T. Soukupová, J. Čech, "Real-Time Eye Blink Detection using Facial Landmarks", 21st Computer
   Vision Winter Workshop, 2016.
.. [2] A. R. Bentivoglio et al., "Analysis of blink rate patterns in normal subjects", Movement Disorders
   12(6):1028-1034, 1997. doi:10.1002/mds.870120629
.. [3] J. A. Stern, L. C. Walrath, R. Goldstein, "The endogenous eyeblink", Psychophysiology 21(1):22-33,
   1984. doi:10.1111/j.1469-8986.1984.tb02312.x
.. [4] P. P. Caffier, U. Erdmann, P. Ullsperger, "Experimental evaluation of eye-blink parameters as a
   drowsiness measure", Eur. J. Appl. Physiol. 89:319-325, 2003. doi:10.1007/s00421-003-0807-5
.. [5] Y. Li, M.-C. Chang, S. Lyu, "In Ictu Oculi: Exposing AI Created Fake Videos by Detecting Eye
   Blinking", IEEE WIFS 2018. doi:10.1109/WIFS.2018.8630787
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tamperscope.temporal.mesh import LEFT_EYE_EAR, RIGHT_EYE_EAR, check_landmarks
from tamperscope.temporal.scoring import ramp

REST_RATE_PER_MIN = 17.0
CONVERSATION_RATE_PER_MIN = 26.0
LOW_RATE_PER_MIN = 4.5
HIGH_RATE_PER_MIN = 50.0
DURATION_RANGE_MS = (50.0, 500.0)
REGULAR_CV = (0.1, 0.35)


@dataclass(frozen=True)
class BlinkEvent:
    """One blink: onset time, duration and the deepest EAR reached."""

    onset_ms: float
    duration_ms: float
    min_ear: float


@dataclass(frozen=True)
class BlinkResult:
    """Blink analysis of one face track.

    Attributes
    ----------
    status : str
        ``scored`` or ``insufficient_data`` (face time below ``min_face_s``).
    score : float or None
        In [0, 1], the largest of the rate, duration and regularity components.
    events : list of BlinkEvent
    rate_per_min : float
    face_time_s : float
    interval_cv : float or None
        Coefficient of variation of the inter-blink intervals (None with fewer than 3 intervals).
    components : dict
        Each component score, for the evidence.
    ear : numpy.ndarray
        EAR per frame (NaN without a face).
    """

    status: str
    score: float | None
    events: list[BlinkEvent]
    rate_per_min: float
    face_time_s: float
    interval_cv: float | None
    components: dict[str, float] = field(default_factory=dict)
    ear: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def evidence(self) -> dict[str, Any]:
        """JSON-ready summary (the EAR series is stored separately as an artifact)."""
        return {"status": self.status, "rate_per_min": round(self.rate_per_min, 2),
                "face_time_s": round(self.face_time_s, 2), "n_blinks": len(self.events),
                "interval_cv": None if self.interval_cv is None else round(self.interval_cv, 3),
                "components": {k: round(v, 3) for k, v in self.components.items()},
                "events": [{"onset_ms": round(e.onset_ms), "duration_ms": round(e.duration_ms),
                            "min_ear": round(e.min_ear, 3)} for e in self.events],
                "reference": {"rest_rate_per_min": REST_RATE_PER_MIN,
                              "conversation_rate_per_min": CONVERSATION_RATE_PER_MIN,
                              "duration_ms": [100, 400]}}


def eye_aspect_ratio(landmarks: np.ndarray) -> np.ndarray:
    """Mean eye aspect ratio of both eyes per frame [1]_.

    Parameters
    ----------
    landmarks : numpy.ndarray
        ``N x 478 x (2|3)`` MediaPipe landmarks in pixels (NaN rows without a face).

    Returns
    -------
    numpy.ndarray
        ``N`` EAR values, ``(|p2-p6| + |p3-p5|) / (2 |p1-p4|)``, NaN without a face.
    """
    lm = check_landmarks(landmarks)[:, :, :2]
    ears = []
    for p1, p2, p3, p4, p5, p6 in (RIGHT_EYE_EAR, LEFT_EYE_EAR):
        vertical = np.linalg.norm(lm[:, p2] - lm[:, p6], axis=-1) + np.linalg.norm(lm[:, p3] - lm[:, p5], axis=-1)
        horizontal = np.linalg.norm(lm[:, p1] - lm[:, p4], axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            ears.append(vertical / (2.0 * horizontal))
    return np.mean(ears, axis=0)


def _rolling_percentile(values: np.ndarray, window: int, q: float) -> np.ndarray:
    half = max(1, window // 2)
    padded = np.pad(values, half, mode="edge")
    views = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)
    with np.errstate(all="ignore"):
        out = np.nanpercentile(views, q, axis=1) if np.isnan(values).any() else np.percentile(views, q, axis=1)
    return out[: len(values)]


def detect_blinks(ear: np.ndarray, t_ms: np.ndarray, *, drop: float = 0.3, baseline_s: float = 3.0,
                  max_blink_ms: float = 1000.0) -> list[BlinkEvent]:
    """Blink events in an EAR series.

    Parameters
    ----------
    ear : numpy.ndarray
        EAR per frame (NaN where there is no face; NaN frames split events).
    t_ms : numpy.ndarray
        Frame times in milliseconds, increasing.
    drop : float
        Relative drop below the open-eye level that marks a closed eye.
    baseline_s : float
        Window of the rolling open-eye level.
    max_blink_ms : float
        Longer closures are not counted as blinks.

    Returns
    -------
    list of BlinkEvent
        Onset and duration at half amplitude: from the half-closed crossing on the way down to the one on
        the way up, interpolated between frames (shorter than the full lid movement, hence the tolerant
        50-500 ms range used by :func:`score_blinks`).
    """
    ear = np.asarray(ear, dtype=np.float64)
    t = np.asarray(t_ms, dtype=np.float64)
    if ear.shape != t.shape:
        raise ValueError("ear and t_ms must have the same length")
    if len(ear) < 3 or np.isfinite(ear).sum() < 3:
        return []
    dt = float(np.median(np.diff(t))) if len(t) > 1 else 40.0
    window = max(3, round(baseline_s * 1000.0 / max(dt, 1.0)))
    level = _rolling_percentile(ear, window, 80.0)
    closed = ear < level * (1.0 - drop)
    partly = ear < level * (1.0 - drop / 2.0)
    events: list[BlinkEvent] = []
    i, n = 0, len(ear)
    while i < n:
        if not closed[i]:
            i += 1
            continue
        start = i
        while start > 0 and partly[start - 1] and np.isfinite(ear[start - 1]):
            start -= 1
        end = i
        while end + 1 < n and partly[end + 1] and np.isfinite(ear[end + 1]):
            end += 1
        deepest = start + int(np.nanargmin(ear[start : end + 1]))
        half = level[deepest] - (level[deepest] - ear[deepest]) / 2.0
        onset, offset = _crossing(t, ear, deepest, half, -1, dt), _crossing(t, ear, deepest, half, 1, dt)
        if offset - onset <= max_blink_ms:
            events.append(BlinkEvent(onset_ms=onset, duration_ms=offset - onset, min_ear=float(ear[deepest])))
        i = end + 1
    return events


def _crossing(t: np.ndarray, ear: np.ndarray, deepest: int, half: float, step: int, dt: float) -> float:
    """Time where the EAR crosses ``half`` walking from ``deepest`` in direction ``step`` (interpolated)."""
    j = deepest
    while 0 <= j + step < len(ear) and np.isfinite(ear[j + step]) and ear[j + step] < half:
        j += step
    k = j + step
    if not (0 <= k < len(ear)) or not np.isfinite(ear[k]) or ear[k] == ear[j]:
        return float(t[j] + step * dt / 2.0)
    frac = (half - ear[j]) / (ear[k] - ear[j])
    return float(t[j] + frac * (t[k] - t[j]))



def score_blinks(events: list[BlinkEvent], face_time_s: float, *, min_face_s: float = 10.0) -> BlinkResult:
    """Score blink events against human ranges (see the module notes for the figures and sources).

    Parameters
    ----------
    events : list of BlinkEvent
    face_time_s : float
        Seconds during which the face (and so the eyes) was visible.
    min_face_s : float
        Below this, the result is ``insufficient_data`` with no score.

    Returns
    -------
    BlinkResult
    """
    minutes = face_time_s / 60.0
    rate = len(events) / minutes if minutes > 0 else 0.0
    onsets = np.array([e.onset_ms for e in events])
    intervals = np.diff(onsets) if len(onsets) > 1 else np.zeros(0)
    cv = float(intervals.std() / intervals.mean()) if len(intervals) >= 3 and intervals.mean() > 0 else None
    if face_time_s < min_face_s:
        return BlinkResult("insufficient_data", None, events, rate, face_time_s, cv)
    # Imported here: scipy.stats takes ~1.5 s to import, which otherwise delays the start of every analysis
    # (the runner imports every stage module before running the first stage).
    from scipy.stats import poisson

    k = len(events)
    # Probability of seeing at most k blinks at the lowest documented mean rate, at least k at a very high one.
    p_low = float(poisson.cdf(k, LOW_RATE_PER_MIN * minutes))
    p_high = float(poisson.sf(k - 1, HIGH_RATE_PER_MIN * minutes)) if k > 0 else 1.0
    lo, hi = DURATION_RANGE_MS
    odd = [e for e in events if not lo <= e.duration_ms <= hi]
    duration = (len(odd) / k) * min(1.0, k / 3.0) if k else 0.0
    regular = 1.0 - ramp(cv, *REGULAR_CV) if cv is not None and len(intervals) >= 5 else 0.0
    components = {"rate_low": ramp(1.0 - p_low, 0.5, 0.99), "rate_high": ramp(1.0 - p_high, 0.5, 0.99),
                  "duration": duration,
                  "regularity": regular}
    return BlinkResult("scored", max(components.values()), events, rate, face_time_s, cv, components)


def analyze_blinks(landmarks: np.ndarray, t_ms: np.ndarray, *, drop: float = 0.3,
                   min_face_s: float = 10.0) -> BlinkResult:
    """EAR series, blink events and their score for one face track.

    Parameters
    ----------
    landmarks : numpy.ndarray
        ``N x 478 x (2|3)`` landmarks per frame (NaN rows without a face).
    t_ms : numpy.ndarray
        Frame times in milliseconds.
    drop : float
        Relative EAR drop marking a blink (see :func:`detect_blinks`).
    min_face_s : float
        Face time needed for a score.

    Returns
    -------
    BlinkResult
    """
    ear = eye_aspect_ratio(landmarks)
    t = np.asarray(t_ms, dtype=np.float64)
    dt = float(np.median(np.diff(t))) if len(t) > 1 else 0.0
    face_time_s = float(np.isfinite(ear).sum() * dt / 1000.0)
    events = detect_blinks(ear, t, drop=drop)
    result = score_blinks(events, face_time_s, min_face_s=min_face_s)
    return BlinkResult(result.status, result.score, result.events, result.rate_per_min, result.face_time_s,
                       result.interval_cv, result.components, ear)
