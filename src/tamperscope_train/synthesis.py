"""Synthetic face forgeries made from real face crops, to train the frame and clip detectors without fakes.

Three generators, all pure functions of arrays and a ``numpy.random.Generator`` (the same seed gives the same
output):

- :func:`self_blend` -- a Self-Blended Image (SBI) [1]_: a real crop blended into itself through a deformed
  landmark-hull mask after one copy was colour-, quality- and scale-jittered. The result carries the generic
  traces of face blending (boundary, colour and frequency mismatch, slight misalignment) without any identity
  change, so a detector trained on it does not overfit one manipulation method.
- :func:`landmark_swap` -- a crude face swap between two identities: piecewise-affine warp of the source face
  onto the destination's landmarks, Reinhard colour transfer in Lab [2]_, blend through the destination hull.
- :func:`inconsistent_clip` -- a temporally inconsistent fake clip for the clip model: per-frame self-blends
  whose mask deformation, jitter and blend ratio drift from frame to frame, so the blending boundary flickers.

:func:`hull_mask` is the mask all three blend through, and :func:`landmarks_in_crop` maps frame landmarks into
the pixels of the aligned crop :class:`tamperscope.media.faces.FaceAnalyzer` cuts.

Landmarks are the MediaPipe 478-point face mesh given as ``N x 2`` (or ``N x 3``, z ignored) crop pixels;
fewer points (any ``N >= 3``) work too, with the whole point set's hull as the only mask region.

Differences from SBI as published: only the source is jittered, with ranges symmetric around "no change"
(blur or sharpen, darker or brighter), which covers the relative mismatches SBI gets by jittering either side
while leaving every pixel outside the mask equal to the real crop; the mask regions are defined on the
MediaPipe mesh instead of dlib's 68/81 points; the mask deformation is an affine jitter, a smooth elastic
displacement, an erosion or dilation and a Gaussian blur, with sizes relative to the crop side.

The module-level constants below document every random range.

References
----------
.. [1] K. Shiohara and T. Yamasaki, "Detecting Deepfakes with Self-Blended Images", CVPR 2022,
   doi:10.1109/CVPR52688.2022.01816.
.. [2] E. Reinhard, M. Adhikhmin, B. Gooch and P. Shirley, "Color transfer between images", IEEE Computer
   Graphics and Applications 21(5), 2001, doi:10.1109/38.946629.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TypeVar

import cv2
import numpy as np
from scipy.spatial import Delaunay

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

HULL_REGIONS: dict[str, tuple[int, ...]] = {
    "full": FACE_OVAL,
    "inner": JAW + BROWS,
    "lower": LOWER_JAW + NOSE[5:] + LIPS,
}
"""Mask regions on the mesh: the whole face with forehead, the face from the brows down (DFL "full" style),
the lower face from the nose down (mouth-region reenactments)."""
HULL_REGION_WEIGHTS = (0.45, 0.4, 0.15)
SWAP_POINTS = tuple(sorted(set(FACE_OVAL + BROWS + EYES + NOSE + LIPS)))
"""Landmarks triangulated for the piecewise-affine warp of :func:`landmark_swap` (128 of the 478)."""

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
SWAP_BLEND_RATIOS = (0.75, 1.0, 1.0, 1.0)
SWAP_FEATHER = (0.02, 0.06)
"""Width of the band inside the destination's face hull (the "inner" region, brows down, on the mesh) over
which a swap's mask fades to 0, so the other identity's background and hair never enter the blend."""

# --- Temporal inconsistency of clips ---
CLIP_MILD_P = 0.3
"""Share of clips that jitter only mildly from frame to frame."""
CLIP_MILD_STRENGTH = (0.03, 0.12)
CLIP_STRENGTH = (0.2, 0.6)
"""Per-frame pull toward a fresh random draw (0: consistent blend, 1: independent per frame)."""
CLIP_WALK_P = 0.5
"""Probability that a clip's parameters random-walk (each frame moves from the last); otherwise every frame is
an independent perturbation of the clip's base draw."""


@dataclass(frozen=True)
class _MaskDraw:
    """Random draw of one mask deformation; floats and arrays mix linearly, the region does not."""

    region: str
    scale: np.ndarray
    angle: float
    shift: np.ndarray
    elastic: np.ndarray
    morph: float
    kernel: float
    sigma: float


@dataclass(frozen=True)
class _SourceDraw:
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
class _BlendDraw:
    """Everything one self-blend draws."""

    mask: _MaskDraw
    source: _SourceDraw
    ratio: float


_D = TypeVar("_D", _MaskDraw, _SourceDraw, _BlendDraw)


def _points(landmarks: np.ndarray, name: str = "landmarks") -> np.ndarray:
    points = np.asarray(landmarks, dtype=np.float32)
    if points.ndim != 2 or points.shape[1] not in (2, 3) or len(points) < 3:
        raise ValueError(f"{name} must be an N x 2 (or N x 3) array with N >= 3, got shape {points.shape}")
    if not np.isfinite(points[:, :2]).all():
        raise ValueError(f"{name} must be finite")
    return points[:, :2]


def _crop(image: np.ndarray, name: str) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or image.shape[0] != image.shape[1]:
        raise ValueError(f"{name} must be a square S x S x 3 uint8 image, got {image.dtype} {image.shape}")
    return image


def _uniform(rng: np.random.Generator, bounds: tuple[float, float], size: int | None = None) -> np.ndarray:
    return rng.uniform(bounds[0], bounds[1], size)


def _draw_mask(rng: np.random.Generator, n_points: int, *, deform: bool = True) -> _MaskDraw:
    if not deform:
        return _MaskDraw(region="full", scale=np.ones(2), angle=0.0, shift=np.zeros(2),
                         elastic=np.zeros((ELASTIC_GRID, ELASTIC_GRID, 2)), morph=0.0,
                         kernel=float(_uniform(rng, BLUR_KERNEL)), sigma=float(_uniform(rng, BLUR_SIGMA)))
    names = list(HULL_REGIONS)
    region = str(names[rng.choice(len(names), p=HULL_REGION_WEIGHTS)]) if n_points >= MESH_POINTS else "full"
    return _MaskDraw(region=region, scale=_uniform(rng, MASK_SCALE, 2), angle=float(_uniform(rng, MASK_ANGLE_DEG)),
                     shift=_uniform(rng, MASK_SHIFT, 2),
                     elastic=rng.normal(0.0, 1.0, (ELASTIC_GRID, ELASTIC_GRID, 2)) * _uniform(rng, ELASTIC_STD),
                     morph=float(_uniform(rng, MORPH_RADIUS)), kernel=float(_uniform(rng, BLUR_KERNEL)),
                     sigma=float(_uniform(rng, BLUR_SIGMA)))


def _draw_source(rng: np.random.Generator) -> _SourceDraw:
    shift = rng.uniform(-RGB_SHIFT, RGB_SHIFT, 3) if rng.random() < RGB_SHIFT_P else np.zeros(3)
    return _SourceDraw(rgb_shift=shift, hue=float(_uniform(rng, HUE_SHIFT_DEG)),
                       saturation=float(_uniform(rng, SATURATION_SCALE)),
                       brightness=float(_uniform(rng, BRIGHTNESS)), contrast=float(_uniform(rng, CONTRAST)),
                       downscale=bool(rng.random() < DOWNSCALE_P),
                       downscale_factor=float(_uniform(rng, DOWNSCALE)), sharpen=float(_uniform(rng, SHARPEN)),
                       scale=float(_uniform(rng, SOURCE_SCALE)), shift=_uniform(rng, SOURCE_SHIFT, 2))


def _draw_blend(rng: np.random.Generator, n_points: int) -> _BlendDraw:
    return _BlendDraw(mask=_draw_mask(rng, n_points), source=_draw_source(rng),
                      ratio=float(rng.choice(BLEND_RATIOS)))


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


def _odd(value: float) -> int:
    return max(3, round(value) | 1)


def _hull_region(points: np.ndarray, size: int) -> np.ndarray:
    """Boolean ``size x size`` inside of the convex hull of ``points`` (no randomness; colour statistics)."""
    hull = cv2.convexHull(points.astype(np.float32)).reshape(-1, 2)
    region = np.zeros((size, size), np.uint8)
    cv2.fillConvexPoly(region, np.round(hull).astype(np.int32), 1)
    return region.astype(bool)


def _render_mask(points: np.ndarray, size: int, draw: _MaskDraw) -> np.ndarray:
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
    points = _points(landmarks)
    if size < 8:
        raise ValueError(f"size must be at least 8, got {size}")
    return _render_mask(points, size, _draw_mask(rng, len(points), deform=deform))


def _jitter_source(crop: np.ndarray, points: np.ndarray, draw: _SourceDraw) -> np.ndarray:
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


def _source_matrix(points: np.ndarray, size: int, draw: _SourceDraw) -> np.ndarray:
    """2 x 3 affine of the source's scale (about the landmark centroid) and translation."""
    centre = points.mean(axis=0)
    return np.array([[draw.scale, 0.0, (1.0 - draw.scale) * centre[0] + draw.shift[0] * size],
                     [0.0, draw.scale, (1.0 - draw.scale) * centre[1] + draw.shift[1] * size]])


def _blend(target: np.ndarray, source: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = target.astype(np.float32) + mask[..., None] * (source - target.astype(np.float32))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _self_blend(crop: np.ndarray, points: np.ndarray, draw: _BlendDraw) -> tuple[np.ndarray, np.ndarray]:
    """Blend of the jittered source into ``crop``; the mask moves with the source's face, as in SBI."""
    size = crop.shape[0]
    matrix = _source_matrix(points, size, draw.source)
    moved = points @ matrix[:, :2].T + matrix[:, 2]
    mask = _render_mask(moved, size, draw.mask) * np.float32(np.clip(draw.ratio, 0.0, 1.0))
    return _blend(crop, _jitter_source(crop, points, draw.source), mask), mask


def self_blend(crop: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Self-Blended Image [1]_: a real crop blended with a jittered copy of itself through a deformed hull.

    The source copy gets the colour jitter (:data:`RGB_SHIFT`, :data:`HUE_SHIFT_DEG`,
    :data:`SATURATION_SCALE`, :data:`BRIGHTNESS`, :data:`CONTRAST`), then either a down-and-up scaling
    (:data:`DOWNSCALE`) or sharpening (:data:`SHARPEN`), then a small scale/translation about the face centre
    (:data:`SOURCE_SCALE`, :data:`SOURCE_SHIFT`); it is blended into the untouched crop through
    :func:`hull_mask` of the landmarks moved with the source, times a blend ratio from :data:`BLEND_RATIOS`.

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
    crop = _crop(crop, "crop")
    points = _points(landmarks)
    return _self_blend(crop, points, _draw_blend(rng, len(points)))


def _triangulation_warp(src_points: np.ndarray, dst_points: np.ndarray, size: int) -> tuple[np.ndarray,
                                                                                                np.ndarray]:
    """Per-pixel source coordinates of a piecewise-affine map taking ``dst_points`` to ``src_points``.

    The points are triangulated (Delaunay) in the destination together with the crop's corners and edge
    midpoints, which map to themselves, so every pixel lies in a triangle. Each triangle is rasterised into a
    label image and its affine (destination to source) applied to its pixels at once.
    """
    edge = np.array([-1.0, size / 2.0, size], dtype=np.float64)
    frame = np.array([(x, y) for x in edge for y in edge if (x, y) != (size / 2.0, size / 2.0)])
    dst = np.vstack([dst_points.astype(np.float64), frame])
    src = np.vstack([src_points.astype(np.float64), frame])
    triangles = Delaunay(dst).simplices
    corners = dst[triangles]
    homogeneous = np.concatenate([corners, np.ones((len(triangles), 3, 1))], axis=2)
    keep = np.abs(np.linalg.det(homogeneous)) > 1e-6
    triangles, homogeneous = triangles[keep], homogeneous[keep]
    affines = np.linalg.solve(homogeneous, src[triangles])  # [x y 1] @ A = source x, y
    labels = np.zeros((size, size), np.int32)
    subpixel = 4
    for index, corner in enumerate(np.round(corners[keep] * (1 << subpixel)).astype(np.int32)):
        cv2.fillConvexPoly(labels, corner, index, cv2.LINE_8, subpixel)
    grid_y, grid_x = np.mgrid[0:size, 0:size].astype(np.float32)
    coefficients = np.take(affines.reshape(-1, 6).astype(np.float32), labels, axis=0)  # ax, ay, bx, by, cx, cy
    map_x = grid_x * coefficients[..., 0] + grid_y * coefficients[..., 2] + coefficients[..., 4]
    map_y = grid_x * coefficients[..., 1] + grid_y * coefficients[..., 3] + coefficients[..., 5]
    return map_x, map_y


def _reinhard(image: np.ndarray, reference: np.ndarray, region: np.ndarray) -> np.ndarray:
    """``image`` with the Lab mean and standard deviation of ``reference`` inside ``region`` (uint8 RGB in/out).

    Works in OpenCV's 8-bit Lab (L scaled to 0..255, a and b offset by 128), a linear rescaling of CIE Lab
    that leaves the transfer unchanged and converts several times faster than float Lab.
    """
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB)
    ref = cv2.cvtColor(reference, cv2.COLOR_RGB2LAB)
    inside = region.astype(np.uint8) if region.any() else None
    mean_i, std_i = (v.ravel() for v in cv2.meanStdDev(lab, mask=inside))
    mean_r, std_r = (v.ravel() for v in cv2.meanStdDev(ref, mask=inside))
    gain = (std_r / np.maximum(std_i, 1.0)).astype(np.float32)
    moved = (lab.astype(np.float32) - mean_i.astype(np.float32)) * gain + mean_r.astype(np.float32)
    return cv2.cvtColor(np.clip(np.rint(moved), 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


def landmark_swap(src_crop: np.ndarray, src_lm: np.ndarray, dst_crop: np.ndarray, dst_lm: np.ndarray,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Face swap between two identities by piecewise-affine landmark warping and colour transfer.

    The source face is warped onto the destination's landmark geometry (Delaunay triangles over
    :data:`SWAP_POINTS`, one affine per triangle), its Lab mean and spread are matched to the destination's
    inside the face from the brows down (Reinhard [2]_), and it is blended into the destination through a
    :func:`hull_mask` of the destination landmarks, capped by that face region feathered inward
    (:data:`SWAP_FEATHER`), times a ratio from :data:`SWAP_BLEND_RATIOS`.

    Parameters
    ----------
    src_crop, dst_crop : numpy.ndarray
        ``S x S x 3`` uint8 crops of the same size (RGB).
    src_lm, dst_lm : numpy.ndarray
        ``N x 2`` (or ``N x 3``) landmarks in crop pixels, the same points in the same order for both.
    rng : numpy.random.Generator
        Source of every random choice.

    Returns
    -------
    image : numpy.ndarray
        ``S x S x 3`` uint8: the source face in the destination's geometry and surroundings.
    mask : numpy.ndarray
        ``S x S`` float32 in [0, 1]: opacity of the warped source.
    """
    src_crop, dst_crop = _crop(src_crop, "src_crop"), _crop(dst_crop, "dst_crop")
    if src_crop.shape != dst_crop.shape:
        raise ValueError(f"src_crop {src_crop.shape} and dst_crop {dst_crop.shape} differ in size")
    src_points, dst_points = _points(src_lm, "src_lm"), _points(dst_lm, "dst_lm")
    if len(src_points) != len(dst_points):
        raise ValueError(f"src_lm has {len(src_points)} points, dst_lm {len(dst_points)}")
    size = dst_crop.shape[0]
    subset = list(SWAP_POINTS) if len(dst_points) >= MESH_POINTS else slice(None)
    map_x, map_y = _triangulation_warp(src_points[subset], dst_points[subset], size)
    warped = cv2.remap(src_crop, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    face = _hull_region(dst_points[list(HULL_REGIONS["inner"])] if len(dst_points) >= MESH_POINTS else dst_points,
                        size)
    feather = max(2, round(float(_uniform(rng, SWAP_FEATHER)) * size))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * feather + 1, 2 * feather + 1))
    blur = feather | 1  # the square kernel reaches sqrt(2) x feather / 2 < feather diagonally: 0 outside the face
    inside = cv2.GaussianBlur(cv2.erode(face.astype(np.float32), kernel), (blur, blur), 0)
    mask = np.minimum(hull_mask(dst_points, size, rng), inside) * np.float32(rng.choice(SWAP_BLEND_RATIOS))
    warped = _reinhard(warped, dst_crop, face).astype(np.float32)
    return _blend(dst_crop, warped, mask), mask


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
    crops = [_crop(frame, "frames[t]") for frame in frames]
    points = [_points(frame_points, "landmarks[t]") for frame_points in landmarks]
    base = _draw_blend(rng, len(points[0]))
    mild = rng.random() < CLIP_MILD_P
    strength = float(_uniform(rng, CLIP_MILD_STRENGTH if mild else CLIP_STRENGTH))
    walk = rng.random() < CLIP_WALK_P
    previous = base
    images, masks = [], []
    for crop, frame_points in zip(crops, points, strict=True):
        draw = _mix(previous if walk else base, _draw_blend(rng, len(frame_points)), strength)
        previous = draw
        image, mask = _self_blend(crop, frame_points, draw)
        images.append(image)
        masks.append(mask)
    return np.stack(images), np.stack(masks)


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
