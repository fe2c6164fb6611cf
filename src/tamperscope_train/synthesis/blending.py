"""Self-Blended Images (SBI) [1]_: a real crop blended with a jittered copy of itself through a deformed hull.

The result carries the generic traces of face blending (boundary, colour and frequency mismatch, slight
misalignment) without any identity change, so a detector trained on it does not overfit one manipulation method.

Differences from SBI as published: only the source is jittered, with ranges symmetric around "no change" (blur or
sharpen, darker or brighter), which covers the relative mismatches SBI gets by jittering either side while
leaving every pixel outside the mask equal to the real crop; the mask is :func:`.masks.hull_mask`'s. The
module-level constants document every random range.

References
----------
.. [1] K. Shiohara and T. Yamasaki, "Detecting Deepfakes with Self-Blended Images", CVPR 2022,
   doi:10.1109/CVPR52688.2022.01816.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from tamperscope_train.synthesis.landmarks import landmark_points
from tamperscope_train.synthesis.masks import MaskDraw, draw_mask, render_mask, uniform

# --- Source jitter ---
RGB_SHIFT = 20.0
"""Per-channel shift, +-, in 8-bit levels, applied with probability ``RGB_SHIFT_P``."""
RGB_SHIFT_P = 0.3
HUE_SHIFT_DEG = (-5.0, 5.0)
SATURATION_SCALE = (0.85, 1.15)
BRIGHTNESS = (-0.1, 0.1)
"""Additive brightness as a fraction of 255."""
CONTRAST = (0.9, 1.1)
DOWNSCALE_P = 0.5
"""Probability of degrading the source by down- and up-scaling; otherwise it is sharpened."""
DOWNSCALE = (1.3, 3.0)
"""Down-scaling factor (area) before scaling back up (bilinear)."""
SHARPEN = (0.2, 0.8)
"""Unsharp-mask amount (sigma 1 px)."""
SOURCE_SCALE = (0.95, 1.05)
"""Scale of the source about the landmark centroid (SBI: 0.95..1/0.95)."""
SOURCE_SHIFT = (-0.03, 0.03)
"""Translation of the source, x and y independently (SBI: +-3 %)."""
BLEND_RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)
"""Peak opacity of the blended source, drawn uniformly from this list (as in SBI)."""


@dataclass(frozen=True)
class SourceDraw:
    """Random draw of the source jitter."""

    rgb_shift: np.ndarray
    hue: float
    saturation: float
    brightness: float
    contrast: float
    downscale: bool
    downscale_factor: float
    sharpen: float
    scale: float
    shift: np.ndarray


@dataclass(frozen=True)
class BlendDraw:
    """Everything one self-blend draws."""

    mask: MaskDraw
    source: SourceDraw
    ratio: float


def square_crop(image: np.ndarray, name: str) -> np.ndarray:
    """``image`` checked to be a square ``S x S x 3`` uint8 crop (``ValueError`` otherwise)."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or image.shape[0] != image.shape[1]:
        raise ValueError(f"{name} must be a square S x S x 3 uint8 image, got {image.dtype} {image.shape}")
    return image


def _draw_source(rng: np.random.Generator) -> SourceDraw:
    shift = rng.uniform(-RGB_SHIFT, RGB_SHIFT, 3) if rng.random() < RGB_SHIFT_P else np.zeros(3)
    return SourceDraw(rgb_shift=shift, hue=float(uniform(rng, HUE_SHIFT_DEG)),
                      saturation=float(uniform(rng, SATURATION_SCALE)),
                      brightness=float(uniform(rng, BRIGHTNESS)), contrast=float(uniform(rng, CONTRAST)),
                      downscale=bool(rng.random() < DOWNSCALE_P),
                      downscale_factor=float(uniform(rng, DOWNSCALE)), sharpen=float(uniform(rng, SHARPEN)),
                      scale=float(uniform(rng, SOURCE_SCALE)), shift=uniform(rng, SOURCE_SHIFT, 2))


def draw_blend(rng: np.random.Generator, n_points: int) -> BlendDraw:
    """Everything one self-blend draws, in a fixed order: mask, source jitter, blend ratio."""
    return BlendDraw(mask=draw_mask(rng, n_points), source=_draw_source(rng),
                     ratio=float(rng.choice(BLEND_RATIOS)))


def _jitter_source(crop: np.ndarray, points: np.ndarray, draw: SourceDraw) -> np.ndarray:
    """The crop with the colour, quality and scale jitter of ``draw``, as float32 in [0, 255]."""
    size = crop.shape[0]
    hsv = cv2.cvtColor(crop.astype(np.float32) * np.float32(1.0 / 255.0), cv2.COLOR_RGB2HSV)
    hsv[..., 0] = hsv[..., 0] + np.float32(draw.hue)  # HSV2RGB wraps the hue into 0..360 itself
    hsv[..., 1] = np.minimum(hsv[..., 1] * np.float32(draw.saturation), np.float32(1.0))
    image = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    mean = np.array(cv2.mean(image)[:3], np.float64)
    offset = mean * (1.0 - draw.contrast) + draw.brightness + draw.rgb_shift / 255.0
    image = np.clip(image * np.float32(draw.contrast) + offset.astype(np.float32), 0.0, 1.0)
    if draw.downscale:
        small = max(8, round(size / draw.downscale_factor))
        image = cv2.resize(cv2.resize(image, (small, small), interpolation=cv2.INTER_AREA), (size, size),
                           interpolation=cv2.INTER_LINEAR)
    else:
        blurred = cv2.GaussianBlur(image, (0, 0), 1.0)
        image = np.clip(cv2.addWeighted(image, 1.0 + draw.sharpen, blurred, -draw.sharpen, 0.0), 0.0, 1.0)
    image = cv2.warpAffine(image, _source_matrix(points, size, draw), (size, size), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REFLECT_101)
    return image * np.float32(255.0)


def _source_matrix(points: np.ndarray, size: int, draw: SourceDraw) -> np.ndarray:
    """2 x 3 affine of the source's scale (about the landmark centroid) and translation."""
    centre = points.mean(axis=0)
    return np.array([[draw.scale, 0.0, (1.0 - draw.scale) * centre[0] + draw.shift[0] * size],
                     [0.0, draw.scale, (1.0 - draw.scale) * centre[1] + draw.shift[1] * size]])


def blend(target: np.ndarray, source: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``source`` over ``target`` with per-pixel opacity ``mask``, rounded back to uint8."""
    out = target.astype(np.float32) + mask[..., None] * (source - target.astype(np.float32))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def render_self_blend(crop: np.ndarray, points: np.ndarray, draw: BlendDraw) -> tuple[np.ndarray, np.ndarray]:
    """Blend of the jittered source into ``crop``; the mask moves with the source's face, as in SBI."""
    size = crop.shape[0]
    matrix = _source_matrix(points, size, draw.source)
    moved = points @ matrix[:, :2].T + matrix[:, 2]
    mask = render_mask(moved, size, draw.mask) * np.float32(np.clip(draw.ratio, 0.0, 1.0))
    return blend(crop, _jitter_source(crop, points, draw.source), mask), mask


def self_blend(crop: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Self-Blended Image [1]_: a real crop blended with a jittered copy of itself through a deformed hull.

    The source copy gets the colour jitter (:data:`RGB_SHIFT`, :data:`HUE_SHIFT_DEG`,
    :data:`SATURATION_SCALE`, :data:`BRIGHTNESS`, :data:`CONTRAST`), then either a down-and-up scaling
    (:data:`DOWNSCALE`) or sharpening (:data:`SHARPEN`), then a small scale/translation about the face centre
    (:data:`SOURCE_SCALE`, :data:`SOURCE_SHIFT`); it is blended into the untouched crop through
    :func:`.masks.hull_mask` of the landmarks moved with the source, times a blend ratio from :data:`BLEND_RATIOS`.

    Parameters
    ----------
    crop : numpy.ndarray
        ``S x S x 3`` uint8 real face crop (RGB or BGR; the channel order only affects the hue direction).
    landmarks : numpy.ndarray
        ``N x 2`` (or ``N x 3``) landmarks in crop pixels.
    rng : numpy.random.Generator
        Source of every random choice.

    Returns
    -------
    image : numpy.ndarray
        ``S x S x 3`` uint8 forgery, equal to ``crop`` wherever ``mask`` is 0.
    mask : numpy.ndarray
        ``S x S`` float32 in [0, 1]: the opacity of the source at each pixel (the blend ratio included).
    """
    crop = square_crop(crop, "crop")
    points = landmark_points(landmarks)
    return render_self_blend(crop, points, draw_blend(rng, len(points)))
