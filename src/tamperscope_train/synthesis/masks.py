"""The soft blending mask every forgery blends through: a landmark hull, randomly deformed as in SBI [1]_.

Differences from SBI as published: the mask regions are defined on the MediaPipe mesh instead of dlib's 68/81
points; the mask deformation is an affine jitter, a smooth elastic displacement, an erosion or dilation and a
Gaussian blur, with sizes relative to the crop side. The module-level constants document every random range.

References
----------
.. [1] K. Shiohara and T. Yamasaki, "Detecting Deepfakes with Self-Blended Images", CVPR 2022,
   doi:10.1109/CVPR52688.2022.01816.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from tamperscope_train.synthesis.landmarks import (
    BROWS,
    FACE_OVAL,
    JAW,
    LIPS,
    LOWER_JAW,
    MESH_POINTS,
    NOSE,
    landmark_points,
)

HULL_REGIONS: dict[str, tuple[int, ...]] = {
    "full": FACE_OVAL,
    "inner": JAW + BROWS,
    "lower": LOWER_JAW + NOSE[5:] + LIPS,
}
"""Mask regions on the mesh: the whole face with forehead, the face from the brows down (DFL "full" style),
the lower face from the nose down (mouth-region reenactments)."""
HULL_REGION_WEIGHTS = (0.45, 0.4, 0.15)

# --- Mask deformation (sizes are fractions of the crop side S) ---
MASK_SCALE = (0.92, 1.05)
"""Independent x / y scale of the hull about its centroid."""
MASK_ANGLE_DEG = (-4.0, 4.0)
MASK_SHIFT = (-0.02, 0.02)
ELASTIC_GRID = 6
"""Control points per side of the smooth random displacement field (cubic-upsampled to S x S)."""
ELASTIC_STD = (0.0, 0.015)
"""Standard deviation of the control-point displacements, drawn per mask."""
MORPH_RADIUS = (-0.05, 0.02)
"""Erosion (negative) or dilation (positive) radius."""
BLUR_KERNEL = (0.02, 0.12)
"""Gaussian blur kernel side (rounded to an odd pixel count >= 3); sigma = kernel x ``BLUR_SIGMA``."""
BLUR_SIGMA = (0.15, 0.4)


@dataclass(frozen=True)
class MaskDraw:
    """Random draw of one mask deformation; floats and arrays mix linearly, the region does not."""

    region: str
    scale: np.ndarray
    angle: float
    shift: np.ndarray
    elastic: np.ndarray
    morph: float
    kernel: float
    sigma: float


def uniform(rng: np.random.Generator, bounds: tuple[float, float], size: int | None = None) -> np.ndarray:
    """A uniform draw in ``bounds`` (``size`` values, or one)."""
    return rng.uniform(bounds[0], bounds[1], size)


def draw_mask(rng: np.random.Generator, n_points: int, *, deform: bool = True) -> MaskDraw:
    """One mask deformation; ``deform=False`` keeps the full hull and draws only the blur."""
    if not deform:
        return MaskDraw(region="full", scale=np.ones(2), angle=0.0, shift=np.zeros(2),
                        elastic=np.zeros((ELASTIC_GRID, ELASTIC_GRID, 2)), morph=0.0,
                        kernel=float(uniform(rng, BLUR_KERNEL)), sigma=float(uniform(rng, BLUR_SIGMA)))
    names = list(HULL_REGIONS)
    region = str(names[rng.choice(len(names), p=HULL_REGION_WEIGHTS)]) if n_points >= MESH_POINTS else "full"
    return MaskDraw(region=region, scale=uniform(rng, MASK_SCALE, 2), angle=float(uniform(rng, MASK_ANGLE_DEG)),
                    shift=uniform(rng, MASK_SHIFT, 2),
                    elastic=rng.normal(0.0, 1.0, (ELASTIC_GRID, ELASTIC_GRID, 2)) * uniform(rng, ELASTIC_STD),
                    morph=float(uniform(rng, MORPH_RADIUS)), kernel=float(uniform(rng, BLUR_KERNEL)),
                    sigma=float(uniform(rng, BLUR_SIGMA)))


def _odd(value: float) -> int:
    return max(3, round(value) | 1)


def render_mask(points: np.ndarray, size: int, draw: MaskDraw) -> np.ndarray:
    """The hull of ``draw.region`` deformed as ``draw`` says, as a float32 ``size x size`` mask in [0, 1]."""
    if len(points) >= MESH_POINTS:
        points = points[list(HULL_REGIONS[draw.region])]
    hull = cv2.convexHull(points.astype(np.float32)).reshape(-1, 2).astype(np.float64)
    centre = hull.mean(axis=0)
    angle = np.deg2rad(draw.angle)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    hull = (hull - centre) * draw.scale @ rotation.T + centre + draw.shift * size
    subpixel = 4
    canvas = np.zeros((size, size), np.uint8)
    cv2.fillPoly(canvas, [np.round(hull * (1 << subpixel)).astype(np.int32)], 255, cv2.LINE_AA, subpixel)
    mask: np.ndarray = canvas.astype(np.float32) * np.float32(1.0 / 255.0)
    if np.any(draw.elastic):
        field = cv2.resize(draw.elastic.astype(np.float32) * size, (size, size), interpolation=cv2.INTER_CUBIC)
        grid = np.arange(size, dtype=np.float32)
        mask = cv2.remap(mask, grid[None, :] + field[..., 0], grid[:, None] + field[..., 1], cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    radius = round(draw.morph * size)
    if radius:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(radius) + 1, 2 * abs(radius) + 1))
        mask = (cv2.dilate if radius > 0 else cv2.erode)(mask, kernel)
    kernel_px = _odd(draw.kernel * size)
    mask = cv2.GaussianBlur(mask, (kernel_px, kernel_px), max(0.5, draw.sigma * kernel_px))
    peak = float(mask.max())
    return np.clip(mask / peak, 0.0, 1.0) if peak > 0 else mask


def hull_mask(landmarks: np.ndarray, size: int, rng: np.random.Generator, *, deform: bool = True) -> np.ndarray:
    """Soft blending mask from the convex hull of face landmarks, randomly deformed as in SBI [1]_.

    Parameters
    ----------
    landmarks : numpy.ndarray
        ``N x 2`` (or ``N x 3``) landmark x, y in the pixels of a ``size x size`` crop; with the 478-point
        MediaPipe mesh one of :data:`HULL_REGIONS` is drawn, with fewer points the hull of all of them is used.
    size : int
        Side of the mask.
    rng : numpy.random.Generator
        Source of every random choice.
    deform : bool
        Draw a region and apply the affine jitter, elastic displacement and erosion/dilation of
        :data:`MASK_SCALE` .. :data:`MORPH_RADIUS`; when False the full hull is only blurred (random kernel).

    Returns
    -------
    numpy.ndarray
        ``size x size`` float32 in [0, 1], peak 1 (0 far outside the hull).
    """
    points = landmark_points(landmarks)
    if size < 8:
        raise ValueError(f"size must be at least 8, got {size}")
    return render_mask(points, size, draw_mask(rng, len(points), deform=deform))

