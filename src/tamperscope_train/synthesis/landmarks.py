"""Face landmarks for synthesis: the MediaPipe face-mesh index sets, landmark validation, and frame landmarks
mapped into the aligned crop.

Landmarks are the MediaPipe 478-point face mesh given as ``N x 2`` (or ``N x 3``, z ignored) crop pixels;
fewer points (any ``N >= 3``) work too.
"""

from __future__ import annotations

import cv2
import numpy as np

# --- MediaPipe face-mesh index sets (478 points; the iris points 468..477 are never needed) ---
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152,
             148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
JAW = (356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93,
       234, 127)
LOWER_JAW = (361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176, 149, 150, 136, 172, 58, 132)
BROWS = (70, 63, 105, 66, 107, 55, 65, 52, 53, 46, 336, 296, 334, 293, 300, 276, 283, 282, 295, 285)
EYES = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246,
        263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
NOSE = (168, 6, 197, 195, 5, 4, 1, 19, 94, 2, 98, 327, 64, 294, 49, 279, 48, 278, 115, 344, 129, 358)
LIPS = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)
MESH_POINTS = 468
"""Meshes with at least this many points use the index sets above; smaller point sets use all points."""


def landmark_points(landmarks: np.ndarray, name: str = "landmarks") -> np.ndarray:
    """``landmarks`` checked and reduced to their x, y as float32 (``ValueError`` if malformed)."""
    points = np.asarray(landmarks, dtype=np.float32)
    if points.ndim != 2 or points.shape[1] not in (2, 3) or len(points) < 3:
        raise ValueError(f"{name} must be an N x 2 (or N x 3) array with N >= 3, got shape {points.shape}")
    if not np.isfinite(points[:, :2]).all():
        raise ValueError(f"{name} must be finite")
    return points[:, :2]


def landmarks_in_crop(landmarks: np.ndarray, *, size: int, margin: float) -> np.ndarray:
    """Frame-pixel landmarks mapped into the aligned crop :func:`tamperscope.media.faces.aligned_crop` cuts.

    The crop's affine is read back from ``aligned_crop`` itself rather than recomputed: it is applied to an
    image whose pixels hold their own coordinates (bilinear interpolation reproduces a linear function), sized
    to cover the crop's whole footprint around the landmarks; three crop corners then give the inverse map. The
    result can thus never drift from how the crops are cut.

    Parameters
    ----------
    landmarks : numpy.ndarray
        ``N x 2`` or ``N x 3`` landmarks in frame pixels (``Face.landmarks``).
    size, margin : int, float
        The crop size and margin the crop was cut with (``FaceAnalyzer.crop_size`` / ``crop_margin``).

    Returns
    -------
    numpy.ndarray
        ``N x 2`` float32 landmark x, y in crop pixels.
    """
    from tamperscope.media.faces import aligned_crop

    points = np.asarray(landmarks, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] not in (2, 3) or len(points) < 3:
        raise ValueError(f"landmarks must be an N x 2 (or N x 3) array with N >= 3, got shape {points.shape}")
    low, high = points[:, :2].min(axis=0), points[:, :2].max(axis=0)
    reach = float((high - low).max()) * (1.0 + 2.0 * margin) * 0.75 + 4.0  # > half the rotated crop's diagonal
    offset = (low + high) / 2.0 - reach
    shifted = points.copy()
    shifted[:, :2] -= offset
    side = int(np.ceil(2.0 * reach)) + 1
    ys, xs = np.mgrid[0:side, 0:side].astype(np.float32)
    coordinates, _ = aligned_crop(np.dstack([xs, ys]), shifted, size=size, margin=margin)
    probes = np.array([(0, 0), (size - 1, 0), (0, size - 1)])
    ramp_at = coordinates[probes[:, 1], probes[:, 0]].astype(np.float64)
    to_ramp = np.linalg.solve(np.column_stack([probes, np.ones(3)]), ramp_at).T  # 2 x 3, crop -> ramp
    to_crop = cv2.invertAffineTransform(to_ramp)
    return ((points[:, :2] - offset) @ to_crop[:, :2].T + to_crop[:, 2]).astype(np.float32)
