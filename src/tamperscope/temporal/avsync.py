"""Audio-visual synchrony: audio envelope, speech activity, mouth opening and the audio-video offset.

- **Offset.** In natural speech the mouth opening and the acoustic amplitude envelope are correlated
  (Chandrasekaran et al. [1]_), most strongly for the envelope of the 1-4 kHz band (second and third
  formants) and at syllabic modulation rates (2-7 Hz). The outer-lip height and the 1-4 kHz envelope are
  resampled to 100 Hz and band-passed to 0.5-8 Hz (removing slow drifts of pose and expression), and the
  Pearson correlation between the lips at ``t`` and the envelope at ``t + lag`` is computed for every lag
  within ``+-max_lag_s``; the peak (refined by a parabola through its neighbours) is the offset. **Positive
  offsets mean the audio lags the video.** Confidence is SyncNet's (Chung & Zisserman [3]_): the peak minus
  the median of the correlation over all lags, 0 when the peak lies on the edge of the search window. Its
  chance level falls with the overlap: unrelated mouth/audio pairs reach ``CHANCE_MARGIN / sqrt(seconds)``
  at about their 97th percentile, and only an offset whose confidence exceeds that is scored. The offset is
  scored against ITU-R BT.1359 [2]_: acceptable up to 185 ms of audio lag and 90 ms of audio lead; the
  score ramps to 1 at 400 ms lag / 300 ms lead. Dubbed or re-voiced videos drift or jump outside these
  limits; lip-sync generators are usually in sync, which the offset does not score.
  (The bilabial-closure check, the other AV-sync cue, is :mod:`tamperscope.temporal.bilabial`.)

References
----------
.. [1] C. Chandrasekaran, A. Trubanova, S. Stillittano, A. Caplier, A. A. Ghazanfar, "The Natural
   Statistics of Audiovisual Speech", PLoS Comput. Biol. 5(7):e1000436, 2009.
   doi:10.1371/journal.pcbi.1000436
.. [2] ITU-R Recommendation BT.1359-1, "Relative timing of sound and vision for broadcasting", 1998.
.. [3] J. S. Chung, A. Zisserman, "Out of Time: Automated Lip Sync in the Wild", ACCV Workshops 2016.
   doi:10.1007/978-3-319-54427-4_19
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tamperscope.temporal.mesh import LIP_PAIRS, check_landmarks, interocular

RATE_HZ = 100.0
# Acoustic band whose envelope follows the mouth best (Chandrasekaran et al.: the formant region above 1 kHz).
ENVELOPE_BAND_HZ = (1000.0, 4000.0)
# Modulation band of both series: the syllabic rhythm (coherence peaks at 2-7 Hz), widened to 0.5-8 Hz.
MODULATION_BAND_HZ = (0.5, 8.0)
# Confidence (peak minus median correlation) of unrelated mouth/audio pairs times sqrt(seconds of overlap):
# median 0.62, 95th percentile 1.02, 99th 1.26, steady from 3 s to 20 s, over 224 mismatched pairs of the
# training pool (bench/avsync_eval.py --null, docs/temporal.md); 1.1 is about their 97th percentile.
CHANCE_MARGIN = 1.1
ACCEPTABLE_LAG_MS = 185.0
ACCEPTABLE_LEAD_MS = 90.0


@dataclass(frozen=True)
class OffsetResult:
    """Audio-video offset estimate.

    Attributes
    ----------
    offset_ms : float
        Positive = audio lags video.
    confidence : float
        Peak minus median correlation over the lags, in [0, 1] (0 for a peak on the search edge).
    peak_corr : float
        Pearson correlation at the peak.
    chance : float
        Confidence that unrelated audio reaches (about its 97th percentile) for this overlap.
    lags_ms, corr : numpy.ndarray
        The correlation curve, for plots.
    """

    offset_ms: float
    confidence: float
    peak_corr: float
    chance: float = 0.0
    lags_ms: np.ndarray = field(default_factory=lambda: np.zeros(0))
    corr: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def reliable(self) -> bool:
        """Whether the confidence exceeds the chance level (only then is the offset scored)."""
        return self.confidence > self.chance

    def evidence(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {"offset_ms": round(self.offset_ms, 1), "confidence": round(self.confidence, 3),
                "chance_confidence": round(self.chance, 3), "peak_corr": round(self.peak_corr, 3),
                "convention": "positive = audio lags video"}


def audio_envelope(samples: np.ndarray, rate: int, *, hop_s: float = 1.0 / RATE_HZ,
                   window_s: float = 0.025) -> tuple[np.ndarray, np.ndarray]:
    """RMS amplitude envelope.

    Parameters
    ----------
    samples : numpy.ndarray
        Mono audio, any numeric dtype (int16 or float).
    rate : int
        Sample rate in Hz.
    hop_s, window_s : float
        Hop and window of the RMS frames.

    Returns
    -------
    tuple of numpy.ndarray
        ``(t_s, rms)``: frame centre times (seconds from the first sample) and RMS values.
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError("samples must be mono (1-D)")
    hop, win = max(1, round(hop_s * rate)), max(1, round(window_s * rate))
    if len(x) < win:
        return np.zeros(0), np.zeros(0)
    n = 1 + (len(x) - win) // hop
    power = np.concatenate([[0.0], np.cumsum(x**2)])
    starts = np.arange(n) * hop
    rms = np.sqrt((power[starts + win] - power[starts]) / win)
    return (starts + win / 2.0) / rate, rms


def speech_segments(t_s: np.ndarray, rms: np.ndarray, *, min_speech_s: float = 0.2, max_gap_s: float = 0.3,
                    floor_db: float = 12.0, peak_db: float = 35.0) -> list[tuple[float, float]]:
    """Energy-based speech activity: frames above both ``noise floor + floor_db`` and ``peak - peak_db``.

    Parameters
    ----------
    t_s, rms : numpy.ndarray
        Envelope from :func:`audio_envelope`.
    min_speech_s : float
        Shorter active runs are dropped.
    max_gap_s : float
        Pauses shorter than this are bridged.
    floor_db, peak_db : float
        Thresholds relative to the 10th percentile (noise floor) and 99th percentile (peak) level.

    Returns
    -------
    list of tuple of float
        ``(start_s, end_s)`` speech segments on the audio clock.
    """
    if len(rms) == 0:
        return []
    level = 20.0 * np.log10(np.maximum(rms, 1e-9))
    floor, peak = np.percentile(level, 10), np.percentile(level, 99)
    if peak - floor < floor_db:
        return []
    active = level > max(floor + floor_db, peak - peak_db)
    hop = float(np.median(np.diff(t_s))) if len(t_s) > 1 else 0.01
    segments: list[list[float]] = []
    for i in np.flatnonzero(active):
        start, end = t_s[i] - hop / 2, t_s[i] + hop / 2
        if segments and start - segments[-1][1] <= max_gap_s:
            segments[-1][1] = end
        else:
            segments.append([start, end])
    return [(float(s), float(e)) for s, e in segments if e - s >= min_speech_s]


def band_envelope(samples: np.ndarray, rate: int, band_hz: tuple[float, float] = ENVELOPE_BAND_HZ
                  ) -> tuple[np.ndarray, np.ndarray]:
    """RMS envelope (:func:`audio_envelope`) of the audio band-passed to ``band_hz`` (4th-order Butterworth)."""
    x = np.asarray(samples, dtype=np.float64)
    high = min(band_hz[1], 0.45 * rate)
    # Imported here, as in blinks.py: scipy.signal takes ~0.7 s CPU to import, which every analysis paid when the
    # runner imported the stage modules, images and videos without audio included.
    from scipy import signal

    sos = signal.butter(4, [band_hz[0], high], btype="bandpass", fs=rate, output="sos")
    return audio_envelope(signal.sosfilt(sos, x), rate)


@dataclass(frozen=True)
class AudioFeatures:
    """What the offset needs from the audio, on the video clock (seconds).

    Attributes
    ----------
    t_s : numpy.ndarray
        Envelope frame times.
    envelope : numpy.ndarray
        Full-band RMS envelope (speech activity).
    sync_envelope : numpy.ndarray
        RMS envelope of :data:`ENVELOPE_BAND_HZ` (correlated with the mouth).
    segments : list of tuple of float
        Speech segments (:func:`speech_segments`).
    """

    t_s: np.ndarray
    envelope: np.ndarray
    sync_envelope: np.ndarray
    segments: list[tuple[float, float]]

    @property
    def speech_s(self) -> float:
        return float(sum(end - start for start, end in self.segments))


def audio_features(samples: np.ndarray, rate: int, start_s: float = 0.0) -> AudioFeatures:
    """Envelopes and speech segments of mono audio whose first sample is at ``start_s`` on the video clock."""
    t_s, envelope = audio_envelope(samples, rate)
    _, sync_envelope = band_envelope(samples, rate)
    t_s = t_s + start_s
    return AudioFeatures(t_s, envelope, sync_envelope, speech_segments(t_s, envelope))


def mouth_opening(landmarks: np.ndarray, pairs: tuple[tuple[int, int], ...] = LIP_PAIRS) -> np.ndarray:
    """Lip gap per frame in inter-ocular units (mean over vertical lip ``pairs``), NaN without a face.

    Parameters
    ----------
    landmarks : numpy.ndarray
        ``N x 478 x (2|3)`` landmarks in pixels.
    pairs : tuple of (int, int)
        Upper/lower landmark pairs: the inner lips (default; closure for bilabials) or
        :data:`tamperscope.temporal.mesh.OUTER_LIP_PAIRS` (the lip height correlated with the audio).

    Returns
    -------
    numpy.ndarray
        ``N`` mouth openings.
    """
    lm = check_landmarks(landmarks)[:, :, :2]
    gaps = np.mean([np.linalg.norm(lm[:, u] - lm[:, d], axis=-1) for u, d in pairs], axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return gaps / interocular(lm)


def _resample(t_src: np.ndarray, values: np.ndarray, t_dst: np.ndarray) -> np.ndarray:
    finite = np.isfinite(values)
    if finite.sum() < 2:
        return np.full(len(t_dst), np.nan)
    out = np.interp(t_dst, t_src[finite], values[finite])
    # Leave gaps longer than 0.25 s and times outside the source undefined.
    idx = np.searchsorted(t_src[finite], t_dst)
    lo = t_src[finite][np.clip(idx - 1, 0, finite.sum() - 1)]
    hi = t_src[finite][np.clip(idx, 0, finite.sum() - 1)]
    out[(hi - lo > 0.25) | (t_dst < t_src[finite][0]) | (t_dst > t_src[finite][-1])] = np.nan
    return out


def modulation_band(values: np.ndarray, band_hz: tuple[float, float] = MODULATION_BAND_HZ) -> np.ndarray:
    """A 100 Hz series band-passed (zero phase) to ``band_hz``; NaN samples are bridged for the filter and kept NaN."""
    finite = np.isfinite(values)
    if finite.sum() < 30:
        return values
    idx = np.arange(len(values))
    filled = np.interp(idx, idx[finite], values[finite])
    from scipy import signal  # imported here: see band_envelope

    sos = signal.butter(2, band_hz, btype="bandpass", fs=RATE_HZ, output="sos")
    out = signal.sosfiltfilt(sos, filled - filled[finite].mean())
    out[~finite] = np.nan
    return out


def estimate_offset(mouth_t_s: np.ndarray, mouth: np.ndarray, env_t_s: np.ndarray, env: np.ndarray, *,
                    max_lag_s: float = 1.0, span: tuple[float, float] | None = None,
                    min_overlap_s: float = 1.0, chance_margin: float = CHANCE_MARGIN) -> OffsetResult | None:
    """Offset between mouth opening and audio envelope by normalised cross-correlation of their syllabic band.

    Parameters
    ----------
    mouth_t_s, mouth : numpy.ndarray
        Mouth opening per video frame and its times (seconds, video clock; NaN without a face).
    env_t_s, env : numpy.ndarray
        Audio envelope (:attr:`AudioFeatures.sync_envelope`) and its times (seconds, on the video clock).
    max_lag_s : float
        Search window ``+-max_lag_s`` (at least 1 s for the product requirement).
    span : tuple of float, optional
        Only mouth samples within ``(start_s, end_s)`` are correlated.
    min_overlap_s : float
        Fewer seconds of overlapping defined samples at a lag make that lag undefined.
    chance_margin : float
        Chance confidence times sqrt(seconds of overlap) (:data:`CHANCE_MARGIN`).

    Returns
    -------
    OffsetResult or None
        None when no lag has enough overlap or the signals are constant.
    """
    if len(env_t_s) < 2 or len(mouth_t_s) < 2:
        return None
    start = max(mouth_t_s[0], env_t_s[0]) if span is None else span[0]
    end = min(mouth_t_s[-1], env_t_s[-1]) if span is None else span[1]
    grid = np.arange(start, end, 1.0 / RATE_HZ)
    m = modulation_band(_resample(np.asarray(mouth_t_s, float), np.asarray(mouth, float), grid))
    k = round(max_lag_s * RATE_HZ)
    env_grid = np.arange(start - k / RATE_HZ, end + (k + 1) / RATE_HZ, 1.0 / RATE_HZ)
    a = modulation_band(_resample(np.asarray(env_t_s, float), np.asarray(env, float), env_grid))
    lags = np.arange(-k, k + 1)
    corr = np.full(len(lags), np.nan)
    overlap = np.zeros(len(lags))
    need = min_overlap_s * RATE_HZ
    for j, lag in enumerate(lags):
        seg = a[k + lag : k + lag + len(m)]
        ok = np.isfinite(m) & np.isfinite(seg)
        if ok.sum() < need:
            continue
        x, y = m[ok] - m[ok].mean(), seg[ok] - seg[ok].mean()
        denom = np.sqrt((x**2).sum() * (y**2).sum())
        if denom > 0:
            corr[j] = float((x * y).sum() / denom)
            overlap[j] = ok.sum() / RATE_HZ
    defined = np.flatnonzero(np.isfinite(corr))
    if len(defined) == 0:
        return None
    best = int(np.nanargmax(corr))
    peak = float(corr[best])
    refined = float(lags[best])
    if 0 < best < len(lags) - 1 and np.isfinite(corr[best - 1]) and np.isfinite(corr[best + 1]):
        c0, c1, c2 = corr[best - 1], corr[best], corr[best + 1]
        curvature = c0 - 2 * c1 + c2
        if curvature < 0:
            refined += 0.5 * (c0 - c2) / curvature
    confidence = float(np.clip(peak - np.median(corr[defined]), 0.0, 1.0))
    if best < defined[0] + 2 or best > defined[-1] - 2:
        confidence = 0.0  # a peak on the edge of the search window is a bound, not an estimate
    chance = chance_margin / float(np.sqrt(overlap[best]))
    return OffsetResult(refined * 1000.0 / RATE_HZ, confidence, peak, chance, lags * 1000.0 / RATE_HZ, corr)


def offset_score(offset_ms: float) -> float:
    """Badness of an offset against ITU-R BT.1359 acceptability (0 within it, 1 far outside)."""
    if offset_ms >= 0:
        return float(np.clip((offset_ms - ACCEPTABLE_LAG_MS) / (400.0 - ACCEPTABLE_LAG_MS), 0.0, 1.0))
    return float(np.clip((-offset_ms - ACCEPTABLE_LEAD_MS) / (300.0 - ACCEPTABLE_LEAD_MS), 0.0, 1.0))


def sync_score(result: OffsetResult | None) -> float | None:
    """:func:`offset_score` of a reliable offset (confidence above chance), else None (nothing to score)."""
    return offset_score(result.offset_ms) if result is not None and result.reliable else None
