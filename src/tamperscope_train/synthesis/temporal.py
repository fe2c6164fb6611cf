"""Temporally inconsistent fake clips for the clip model: per-frame self-blends whose parameters drift.

The mask deformation, source jitter and blend ratio of a self-blend (:mod:`.blending`) change from frame to frame,
so the blending boundary flickers. The module-level constants document every random range.
"""

from __future__ import annotations

import dataclasses
from typing import TypeVar

import numpy as np

from tamperscope_train.synthesis.blending import BlendDraw, SourceDraw, draw_blend, render_self_blend, square_crop
from tamperscope_train.synthesis.landmarks import landmark_points
from tamperscope_train.synthesis.masks import MaskDraw, uniform

# --- Temporal inconsistency of clips ---
CLIP_MILD_P = 0.3
"""Share of clips that jitter only mildly from frame to frame."""
CLIP_MILD_STRENGTH = (0.03, 0.12)
CLIP_STRENGTH = (0.2, 0.6)
"""Per-frame pull toward a fresh random draw (0: consistent blend, 1: independent per frame)."""
CLIP_WALK_P = 0.5
"""Probability that a clip's parameters random-walk (each frame moves from the last); otherwise every frame is
an independent perturbation of the clip's base draw."""

_D = TypeVar("_D", MaskDraw, SourceDraw, BlendDraw)


def _mix(a: _D, b: _D, weight: float) -> _D:
    """``a`` moved ``weight`` of the way to ``b`` in every continuous field; discrete fields stay ``a``'s."""
    values = {}
    for item in dataclasses.fields(a):
        x, y = getattr(a, item.name), getattr(b, item.name)
        if dataclasses.is_dataclass(x):
            values[item.name] = _mix(x, y, weight)
        elif isinstance(x, np.ndarray | float):
            values[item.name] = x + weight * (y - x)
        else:
            values[item.name] = x
    return dataclasses.replace(a, **values)


def inconsistent_clip(frames: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray,
                                                                                                   np.ndarray]:
    """Temporally inconsistent fake clip: per-frame self-blends whose parameters change from frame to frame.

    One SBI draw (region, mask deformation, jitter, blend ratio) is made for the clip; each frame then moves
    a share ``strength`` of the way toward a fresh draw -- starting from the previous frame's parameters
    (random walk, probability :data:`CLIP_WALK_P`) or from the clip's base draw (independent jitter). The
    strength is drawn per clip from :data:`CLIP_STRENGTH`, or from :data:`CLIP_MILD_STRENGTH` for the
    :data:`CLIP_MILD_P` share of mildly flickering clips. The mask follows each frame's landmarks.

    Parameters
    ----------
    frames : numpy.ndarray
        ``T x S x S x 3`` uint8 consecutive real crops of one face track.
    landmarks : numpy.ndarray
        ``T x N x 2`` (or ``T x N x 3``) landmarks of each frame in crop pixels.
    rng : numpy.random.Generator
        Source of every random choice.

    Returns
    -------
    frames : numpy.ndarray
        ``T x S x S x 3`` uint8 forged clip.
    masks : numpy.ndarray
        ``T x S x S`` float32 in [0, 1]: per-frame opacity of the blended source.
    """
    frames = np.asarray(frames)
    landmarks = np.asarray(landmarks)
    if frames.ndim != 4 or len(frames) == 0:
        raise ValueError(f"frames must be T x S x S x 3 with T >= 1, got shape {frames.shape}")
    if landmarks.ndim != 3 or len(landmarks) != len(frames):
        raise ValueError(f"landmarks must be T x N x 2 with T = {len(frames)}, got shape {landmarks.shape}")
    crops = [square_crop(frame, "frames[t]") for frame in frames]
    points = [landmark_points(frame_points, "landmarks[t]") for frame_points in landmarks]
    base = draw_blend(rng, len(points[0]))
    mild = rng.random() < CLIP_MILD_P
    strength = float(uniform(rng, CLIP_MILD_STRENGTH if mild else CLIP_STRENGTH))
    walk = rng.random() < CLIP_WALK_P
    previous = base
    images, masks = [], []
    for crop, frame_points in zip(crops, points, strict=True):
        draw = _mix(previous if walk else base, draw_blend(rng, len(frame_points)), strength)
        previous = draw
        image, mask = render_self_blend(crop, frame_points, draw)
        images.append(image)
        masks.append(mask)
    return np.stack(images), np.stack(masks)
