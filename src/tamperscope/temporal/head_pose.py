"""Head pose per frame, its high-frequency jitter, and the central-face vs whole-head inconsistency.

Pose (yaw, pitch, roll) is recovered with ``cv2.solvePnP`` from MediaPipe landmarks and a small generic
3D head model (:data:`MODEL_POINTS`, millimetres, nose tip at the origin, x to the image right, y down, z
away from the camera), with a pinhole camera of focal length equal to the frame width and the principal
point at the frame centre. The model's coordinates are rounded adult averages in the spirit of the
anthropometric tables of Farkas [1]_ (eye fissure width ~30 mm, outer canthi ~90 mm apart, mouth width
~50 mm, bizygomatic width ~140 mm); exact values matter little because both scores compare the pose with
itself over time or with a second pose from the same model.

- **Jitter**: a real head is a massive body whose pose changes smoothly; per-frame independent errors of a
  face generator or of a frame-by-frame face swap add high-frequency energy. Jitter is the RMS (degrees)
  of the pose minus its moving average over ``smooth_s``.
- **Inconsistency** (Yang, Li & Lyu [2]_): a face swap splices a synthesised central face into an
  original head, so the pose estimated from the central landmarks (eyes, nose, mouth corners) disagrees
  with the pose estimated from the whole face including its outline (cheek contour, forehead). It is the
  angle (degrees) between the facing directions of the two estimates; the score uses its frame-to-frame
  fluctuation, since the generic model gives each face a constant bias. Face Mesh fits one mesh to the
  whole face, which damps this cue compared with the independent 68-point detector of the paper.

References
----------
.. [1] L. G. Farkas, "Anthropometry of the Head and Face", 2nd ed., Raven Press, 1994.
.. [2] X. Yang, Y. Li, S. Lyu, "Exposing Deep Fakes Using Inconsistent Head Poses", IEEE ICASSP 2019,
   pp. 8261-8265. doi:10.1109/ICASSP.2019.8683164
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from tamperscope.temporal.mesh import check_landmarks, valid_frames
from tamperscope.temporal.scoring import ramp

# MediaPipe index -> (x, y, z) in mm.
MODEL_POINTS: dict[int, tuple[float, float, float]] = {
    1: (0.0, 0.0, 0.0),            # nose tip
    168: (0.0, -48.0, 22.0),       # nasion (between the eyes)
    2: (0.0, 14.0, 14.0),          # subnasale
    33: (-45.0, -36.0, 36.0),      # right eye, outer corner
    133: (-15.0, -34.0, 30.0),     # right eye, inner corner
    362: (15.0, -34.0, 30.0),      # left eye, inner corner
    263: (45.0, -36.0, 36.0),      # left eye, outer corner
    61: (-25.0, 34.0, 26.0),       # right mouth corner
    291: (25.0, 34.0, 26.0),       # left mouth corner
    0: (0.0, 25.0, 12.0),          # upper lip, centre
    17: (0.0, 46.0, 16.0),         # lower lip / labiomental, centre
    152: (0.0, 76.0, 26.0),        # chin (gnathion)
    234: (-70.0, -22.0, 90.0),     # right face outline at eye level (near the tragus)
    454: (70.0, -22.0, 90.0),      # left face outline at eye level
    58: (-60.0, 45.0, 75.0),       # right jaw angle
    288: (60.0, 45.0, 75.0),       # left jaw angle
    10: (0.0, -95.0, 30.0),        # top of the forehead
}
# Points that move with the jaw (lips, chin, jaw angles) are kept out of both sets: speech would
# otherwise read as a pose change.
CENTRAL = (1, 168, 2, 33, 133, 362, 263, 61, 291)
WHOLE = (*CENTRAL, 234, 454, 10)


@dataclass(frozen=True)
class HeadPoseResult:
    """Head-pose analysis of one face track.

    Attributes
    ----------
    angles : numpy.ndarray
        ``N x 3`` yaw, pitch, roll in degrees from the whole model (NaN without a face).
    inconsistency : numpy.ndarray
        ``N`` angle in degrees between central-face and whole-head facing directions.
    jitter_deg : float
        RMS high-frequency pose energy.
    inconsistency_deg : float
        Median inconsistency (depends on how well the generic model fits this face).
    inconsistency_hf_deg : float
        RMS high-frequency inconsistency: its frame-to-frame fluctuation, which the score uses because a
        constant model-fit bias is not evidence of a splice.
    score : float or None
        In [0, 1]; None with fewer than ``min_frames`` frames with a face.
    """

    angles: np.ndarray
    inconsistency: np.ndarray
    jitter_deg: float
    inconsistency_deg: float
    inconsistency_hf_deg: float
    score: float | None

    def evidence(self) -> dict[str, Any]:
        """JSON-ready summary (the series are stored separately)."""
        finite = self.angles[np.isfinite(self.angles).all(axis=1)]
        spread = finite.std(axis=0).round(2).tolist() if len(finite) else None
        return {"jitter_deg": round(self.jitter_deg, 3), "inconsistency_deg": round(self.inconsistency_deg, 3),
                "inconsistency_hf_deg": round(self.inconsistency_hf_deg, 3),
                "pose_std_deg": spread, "n_frames": len(finite)}


def _camera(size: tuple[int, int]) -> np.ndarray:
    width, height = size
    return np.array([[width, 0.0, width / 2.0], [0.0, width, height / 2.0], [0.0, 0.0, 1.0]])


def euler_angles(rotation: np.ndarray) -> tuple[float, float, float]:
    """Yaw, pitch, roll in degrees from a rotation matrix (Y-X-Z decomposition, camera frame)."""
    yaw = np.degrees(np.arctan2(-rotation[2, 0], np.hypot(rotation[2, 1], rotation[2, 2])))
    pitch = np.degrees(np.arctan2(rotation[2, 1], rotation[2, 2]))
    roll = np.degrees(np.arctan2(rotation[1, 0], rotation[0, 0]))
    return float(yaw), float(pitch), float(roll)


def solve_pose(points: np.ndarray, indices: tuple[int, ...], size: tuple[int, int],
               guess: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """Rotation and translation vectors of the head model seen at ``points``.

    Parameters
    ----------
    points : numpy.ndarray
        ``478 x (2|3)`` landmarks of one frame, pixels.
    indices : tuple of int
        Which :data:`MODEL_POINTS` to use.
    size : tuple of int
        Frame ``(width, height)`` in pixels.
    guess : tuple of numpy.ndarray, optional
        Previous frame's ``(rvec, tvec)``, the starting point of an iterative refinement.

    Returns
    -------
    tuple of numpy.ndarray or None
        ``(rvec, tvec)``, or None when the solver fails.
    """
    model = np.array([MODEL_POINTS[i] for i in indices], dtype=np.float64)
    image = np.ascontiguousarray(points[list(indices), :2], dtype=np.float64)
    camera = _camera(size)
    # SQPnP finds the global optimum (no mirrored local minimum); the iterative refinement from the previous
    # frame's pose is kept only when it agrees, which keeps consecutive estimates on the same branch.
    ok, rvec, tvec = cv2.solvePnP(model, image, camera, None, flags=cv2.SOLVEPNP_SQPNP)
    if ok and guess is not None:
        ok2, rvec2, tvec2 = cv2.solvePnP(model, image, camera, None, rvec=guess[0].copy(), tvec=guess[1].copy(),
                                         useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE)
        if ok2 and tvec2[2, 0] > 0 and np.linalg.norm(rvec2 - rvec) < 0.2:
            rvec, tvec = rvec2, tvec2
    ok = bool(ok) and float(tvec[2, 0]) > 0
    return (rvec, tvec) if ok else None


def high_frequency_rms(series: np.ndarray, window: int) -> float:
    """RMS of a series minus its centred moving average (NaN-aware; NaN gaps are skipped).

    Parameters
    ----------
    series : numpy.ndarray
        ``N`` or ``N x K`` values over time.
    window : int
        Moving-average length in samples (made odd, at least 3).

    Returns
    -------
    float
        RMS over all finite residuals, 0.0 when there are none.
    """
    values = np.asarray(series, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    window = max(3, window | 1)
    if len(values) < window:
        return 0.0
    kernel = np.ones(window)
    residuals = []
    for column in values.T:
        finite = np.isfinite(column)
        filled = np.where(finite, column, 0.0)
        total = np.convolve(filled, kernel, mode="same")
        count = np.convolve(finite.astype(float), kernel, mode="same")
        full = (count == window) & finite
        residuals.append((column - total / np.maximum(count, 1))[full])
    flat = np.concatenate(residuals)
    return float(np.sqrt(np.mean(flat**2))) if len(flat) else 0.0


def analyze_head_pose(landmarks: np.ndarray, t_ms: np.ndarray, size: tuple[int, int], *, smooth_s: float = 0.4,
                      jitter_range: tuple[float, float] = (1.5, 4.0),
                      inconsistency_range: tuple[float, float] = (2.5, 6.0), min_frames: int = 8) -> HeadPoseResult:
    """Pose series, jitter and central/whole inconsistency of one face track.

    Parameters
    ----------
    landmarks : numpy.ndarray
        ``N x 478 x (2|3)`` landmarks in pixels (NaN rows without a face).
    t_ms : numpy.ndarray
        Frame times in milliseconds.
    size : tuple of int
        Frame ``(width, height)`` the landmarks refer to.
    smooth_s : float
        Moving-average window separating head motion from jitter.
    jitter_range, inconsistency_range : tuple of float
        Degrees mapped linearly onto scores 0..1 (provisional, set from the synthetic and real clips in
        ``docs/temporal.md``).
    min_frames : int
        Fewer frames with a face give ``score=None``.

    Returns
    -------
    HeadPoseResult
    """
    lm = check_landmarks(landmarks)
    t = np.asarray(t_ms, dtype=np.float64)
    n = len(lm)
    angles = np.full((n, 3), np.nan)
    inconsistency = np.full(n, np.nan)
    valid = valid_frames(lm)
    guess_whole: tuple[np.ndarray, np.ndarray] | None = None
    guess_central: tuple[np.ndarray, np.ndarray] | None = None
    for i in np.flatnonzero(valid):
        whole = solve_pose(lm[i], WHOLE, size, guess_whole)
        central = solve_pose(lm[i], CENTRAL, size, guess_central or whole)
        if whole is None or central is None:
            continue
        guess_whole, guess_central = whole, central
        r_whole = cv2.Rodrigues(whole[0])[0]
        r_central = cv2.Rodrigues(central[0])[0]
        angles[i] = euler_angles(r_whole)
        cosine = float(np.clip(r_whole[:, 2] @ r_central[:, 2], -1.0, 1.0))
        inconsistency[i] = np.degrees(np.arccos(cosine))
    finite = np.isfinite(angles).all(axis=1)
    angles[finite] = np.degrees(np.unwrap(np.radians(angles[finite]), axis=0))
    return score_pose_series(angles, inconsistency, t, smooth_s=smooth_s, jitter_range=jitter_range,
                             inconsistency_range=inconsistency_range, min_frames=min_frames)


def score_pose_series(angles: np.ndarray, inconsistency: np.ndarray, t_ms: np.ndarray, *, smooth_s: float = 0.4,
                      jitter_range: tuple[float, float] = (1.5, 4.0),
                      inconsistency_range: tuple[float, float] = (2.5, 6.0), min_frames: int = 8) -> HeadPoseResult:
    """Jitter, inconsistency and score of an existing pose series (e.g. a window of a longer track).

    Parameters
    ----------
    angles : numpy.ndarray
        ``N x 3`` yaw, pitch, roll in degrees (NaN without a face), unwrapped.
    inconsistency : numpy.ndarray
        ``N`` central/whole angle in degrees.
    t_ms : numpy.ndarray
        Frame times in milliseconds.
    smooth_s, jitter_range, inconsistency_range, min_frames
        As for :func:`analyze_head_pose`.

    Returns
    -------
    HeadPoseResult
    """
    t = np.asarray(t_ms, dtype=np.float64)
    n = len(angles)
    count = int(np.isfinite(angles).all(axis=1).sum())
    dt = float(np.median(np.diff(t))) if n > 1 else 1000.0
    window = round(smooth_s * 1000.0 / max(dt, 1.0))
    jitter = high_frequency_rms(angles, window)
    inc_hf = high_frequency_rms(inconsistency, window)
    median_inc = float(np.nanmedian(inconsistency)) if count else 0.0
    if count < min_frames:
        return HeadPoseResult(angles, inconsistency, jitter, median_inc, inc_hf, None)
    score = max(ramp(jitter, *jitter_range), ramp(inc_hf, *inconsistency_range))
    return HeadPoseResult(angles, inconsistency, jitter, median_inc, inc_hf, score)

