"""Landmark stability: per-landmark temporal acceleration with global motion removed.

Each frame's landmarks are aligned to a reference shape by a least-squares similarity transform
(Umeyama [1]_; generalised Procrustes, two passes), which removes translation, in-plane rotation and scale
-- camera pans, zooms and rigid head motion -- and expresses the residual shape in units of the reference
inter-ocular distance. The second temporal difference of each residual landmark then measures how
abruptly the face shape itself changes. Real faces deform smoothly (muscles and skin have mass);
frame-by-frame generation or blending makes landmarks flicker, the temporal artefact exploited by
landmark-trajectory detectors such as LRNet [2]_.

The per-frame value is the mean acceleration over landmarks, in inter-ocular units per reference frame
interval squared (:data:`REFERENCE_FPS`: the unit of a 30 fps per-frame second difference, in which the score
range was set), so the value describes the face, not the rate at which the dense pass sampled it: smooth
motion gives the same value at 15 and 30 fps. Independent per-frame flicker of amplitude ``s`` gives
``s * sqrt(6) * (rate / 30)^2``, so a lower sampling rate sees a quarter of it at 15 fps (a smaller but
still higher value than smooth motion). The clip value is the median over frames (robust to a single
tracking glitch). Out-of-plane rotation is
not a similarity transform, so fast head turns leave some residual; this is why the score uses the
median and why the head-pose jitter is a separate detector.

References
----------
.. [1] S. Umeyama, "Least-squares estimation of transformation parameters between two point patterns",
   IEEE TPAMI 13(4):376-380, 1991. doi:10.1109/34.88573
.. [2] Z. Sun, Y. Han, Z. Hua, N. Ruan, W. Jia, "Improving the Efficiency and Robustness of Deepfakes
   Detection through Precise Geometric Features", CVPR 2021. arXiv:2104.04480
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tamperscope.temporal.mesh import LEFT_EYE_OUTER, RIGHT_EYE_OUTER, check_landmarks, valid_frames

#: the frame rate whose squared frame interval is the acceleration unit (the rate the score range was set at)
REFERENCE_FPS = 30.0


@dataclass(frozen=True)
class LandmarkResult:
    """Landmark-stability analysis of one face track.

    Attributes
    ----------
    acceleration : numpy.ndarray
        ``N`` mean per-landmark acceleration (inter-ocular units per (1 / :data:`REFERENCE_FPS` s) squared),
        NaN where undefined.
    median_acceleration : float
    p95_acceleration : float
    score : float or None
        In [0, 1]; None with fewer than ``min_frames`` defined accelerations.
    """

    acceleration: np.ndarray
    median_acceleration: float
    p95_acceleration: float
    score: float | None

    def evidence(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {"median_acceleration": round(self.median_acceleration, 5),
                "p95_acceleration": round(self.p95_acceleration, 5),
                "n_frames": int(np.isfinite(self.acceleration).sum()), "unit": f"interocular/(1/{REFERENCE_FPS:g} s)^2"}


def similarity_fit(source: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity ``target ~ s R source + t`` (Umeyama [1]_).

    Parameters
    ----------
    source, target : numpy.ndarray
        ``K x 2`` corresponding points.

    Returns
    -------
    tuple
        ``(scale, rotation 2x2, translation 2)``.
    """
    mu_s, mu_t = source.mean(axis=0), target.mean(axis=0)
    src, tgt = source - mu_s, target - mu_t
    cov = tgt.T @ src / len(source)
    u, sing, vt = np.linalg.svd(cov)
    d = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1, 1] = -1.0
    rotation = u @ d @ vt
    var = (src**2).sum() / len(source)
    scale = float(np.trace(np.diag(sing) @ d) / var) if var > 0 else 1.0
    return scale, rotation, mu_t - scale * rotation @ mu_s


def stabilise(landmarks: np.ndarray, *, passes: int = 2) -> np.ndarray:
    """Landmarks with per-frame similarity motion removed, in reference inter-ocular units.

    Parameters
    ----------
    landmarks : numpy.ndarray
        ``N x 478 x (2|3)`` landmarks in pixels (NaN rows without a face).
    passes : int
        Generalised-Procrustes passes (the reference becomes the mean aligned shape).

    Returns
    -------
    numpy.ndarray
        ``N x 478 x 2`` aligned landmarks, NaN rows where the input had no face.
    """
    lm = check_landmarks(landmarks)[:, :, :2]
    valid = valid_frames(lm)
    out = np.full(lm.shape, np.nan)
    if not valid.any():
        return out
    reference = lm[np.flatnonzero(valid)[0]].copy()
    for _ in range(max(1, passes)):
        reference = reference - reference.mean(axis=0)
        reference /= np.linalg.norm(reference[LEFT_EYE_OUTER] - reference[RIGHT_EYE_OUTER])
        for i in np.flatnonzero(valid):
            scale, rotation, shift = similarity_fit(lm[i], reference)
            out[i] = scale * lm[i] @ rotation.T + shift
        reference = out[valid].mean(axis=0)
    return out


def run_intervals(t_ms: np.ndarray, defined: np.ndarray) -> np.ndarray:
    """Frame interval (ms) of each frame's run of consecutive defined frames: the run's duration over its steps.

    One interval per run rather than per step, because timestamps are whole milliseconds: single steps of a
    30 fps track alternate between 33 and 34 ms, and their squared ratios would add +-6 % of noise to every
    acceleration. NaN for frames outside a run of at least two.
    """
    t = np.asarray(t_ms, dtype=np.float64)
    out = np.full(len(t), np.nan)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], defined.astype(np.int8), [0]])))
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        if stop - start >= 2:
            out[start:stop] = (t[stop - 1] - t[start]) / (stop - start - 1)
    return out


def landmark_acceleration(aligned: np.ndarray, t_ms: np.ndarray, *, reference_fps: float = REFERENCE_FPS
                          ) -> np.ndarray:
    """Mean acceleration over landmarks per frame, in inter-ocular units per reference frame interval squared.

    The second difference of consecutive frames divided by their squared frame interval (per unit time, so
    the sampling rate cancels) and multiplied by ``(1000 / reference_fps)^2`` ms (a per-frame second
    difference at ``reference_fps``, the unit the score range was set in).

    Parameters
    ----------
    aligned : numpy.ndarray
        ``N x K x 2`` aligned landmarks (:func:`stabilise`), NaN rows where undefined.
    t_ms : numpy.ndarray
        ``N`` frame times in milliseconds, increasing.
    reference_fps : float
        Rate whose frame interval is the time unit.

    Returns
    -------
    numpy.ndarray
        ``N`` accelerations, NaN at the ends of each run of defined frames.
    """
    n = len(aligned)
    accel = np.full(n, np.nan)
    if n < 3:
        return accel
    second = np.linalg.norm(aligned[2:] - 2.0 * aligned[1:-1] + aligned[:-2], axis=-1).mean(axis=1)
    interval = run_intervals(t_ms, valid_frames(aligned))
    accel[1:-1] = second * ((1000.0 / reference_fps) / interval[1:-1]) ** 2
    return accel


def analyze_landmarks(landmarks: np.ndarray, t_ms: np.ndarray, *, accel_range: tuple[float, float] = (0.01, 0.04),
                      min_frames: int = 8) -> LandmarkResult:
    """Per-frame landmark acceleration and a stability score for one face track.

    Parameters
    ----------
    landmarks : numpy.ndarray
        ``N x 478 x (2|3)`` landmarks of consecutive frames (NaN rows without a face).
    t_ms : numpy.ndarray
        ``N`` frame times in milliseconds.
    accel_range : tuple of float
        Median accelerations (:func:`landmark_acceleration`) mapped linearly onto scores 0..1 (provisional;
        see ``docs/temporal.md``).
    min_frames : int
        Fewer defined accelerations give ``score=None``.

    Returns
    -------
    LandmarkResult
    """
    accel = landmark_acceleration(stabilise(landmarks), t_ms)
    return score_acceleration(accel, accel_range=accel_range, min_frames=min_frames)


def score_acceleration(acceleration: np.ndarray, *, accel_range: tuple[float, float] = (0.01, 0.04),
                       min_frames: int = 8) -> LandmarkResult:
    """Score an acceleration series (e.g. a window of a longer track); see :func:`analyze_landmarks`."""
    finite = acceleration[np.isfinite(acceleration)]
    med = float(np.median(finite)) if len(finite) else 0.0
    p95 = float(np.percentile(finite, 95)) if len(finite) else 0.0
    if len(finite) < min_frames:
        return LandmarkResult(acceleration, med, p95, None)
    score = float(np.clip((med - accel_range[0]) / (accel_range[1] - accel_range[0]), 0.0, 1.0))
    return LandmarkResult(acceleration, med, p95, score)
