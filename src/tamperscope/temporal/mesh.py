"""MediaPipe Face Mesh landmark indices and face-size helpers shared by the temporal detectors.

Indices refer to the 478-point topology of MediaPipe Face Mesh with iris refinement (468 mesh points and
10 iris points); "left"/"right" are the subject's. Landmarks arrive as ``N x 478 x 2`` or ``N x 478 x 3``
arrays in pixels, with NaN rows for frames where the face was not found.

References
----------
.. [1] Kartynnik, Ablavatski, Grishchenko, Grundmann, "Real-time Facial Surface Geometry from Monocular
   Video on Mobile GPUs", CVPR Workshops 2019. arXiv:1907.06724
"""

from __future__ import annotations

import numpy as np

N_LANDMARKS = 478

# Eye-aspect-ratio points p1..p6 (outer corner, two upper lid, inner corner, two lower lid) per eye.
RIGHT_EYE_EAR = (33, 160, 158, 133, 153, 144)
LEFT_EYE_EAR = (362, 385, 387, 263, 373, 380)
RIGHT_EYE_CONTOUR = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
LEFT_EYE_CONTOUR = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
RIGHT_EYE_OUTER, LEFT_EYE_OUTER = 33, 263

# Inner lip contour, upper and lower, from the right mouth corner to the left.
INNER_LIP_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
INNER_LIP_LOWER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
# Pairs (upper, lower) across the inner lips used for the mouth opening.
LIP_PAIRS = ((82, 87), (13, 14), (312, 317))
# Pairs (upper, lower) across the outer lip contour: the lip-to-lip height, which Face Mesh tracks more steadily
# than the inner gap and which follows the jaw as well as the lips.
OUTER_LIP_PAIRS = ((37, 84), (0, 17), (267, 314))
MOUTH_CORNERS = (61, 291)

FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152,
             148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
NOSE_TIP = 1


def check_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """Validate an ``N x 478 x (2|3)`` landmark array and return it as float64.

    Parameters
    ----------
    landmarks : numpy.ndarray
        Landmarks per frame in pixels; NaN rows mark frames without a face.

    Returns
    -------
    numpy.ndarray
        The same values as float64.
    """
    arr = np.asarray(landmarks, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[1] != N_LANDMARKS or arr.shape[2] not in (2, 3):
        raise ValueError(f"landmarks must be N x {N_LANDMARKS} x 2|3, got shape {arr.shape}")
    return arr


def valid_frames(landmarks: np.ndarray) -> np.ndarray:
    """Boolean mask of frames whose landmarks are all finite."""
    return np.isfinite(landmarks[:, :, :2]).all(axis=(1, 2))


def interocular(landmarks: np.ndarray) -> np.ndarray:
    """Distance between the outer eye corners per frame (the face-size unit), NaN where no face."""
    return np.linalg.norm(landmarks[:, LEFT_EYE_OUTER, :2] - landmarks[:, RIGHT_EYE_OUTER, :2], axis=-1)
