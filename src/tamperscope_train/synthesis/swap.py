"""A crude face swap between two identities: piecewise-affine landmark warp, Reinhard colour transfer [1]_,
blend through the destination's face hull.

References
----------
.. [1] E. Reinhard, M. Adhikhmin, B. Gooch and P. Shirley, "Color transfer between images", IEEE Computer
   Graphics and Applications 21(5), 2001, doi:10.1109/38.946629.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.spatial import Delaunay

from tamperscope_train.synthesis.blending import blend, square_crop
from tamperscope_train.synthesis.landmarks import BROWS, EYES, FACE_OVAL, LIPS, MESH_POINTS, NOSE, landmark_points
from tamperscope_train.synthesis.masks import HULL_REGIONS, hull_mask, uniform

SWAP_POINTS = tuple(sorted(set(FACE_OVAL + BROWS + EYES + NOSE + LIPS)))
"""Landmarks triangulated for the piecewise-affine warp of :func:`landmark_swap` (128 of the 478)."""
SWAP_BLEND_RATIOS = (0.75, 1.0, 1.0, 1.0)
SWAP_FEATHER = (0.02, 0.06)
"""Width of the band inside the destination's face hull (the "inner" region, brows down, on the mesh) over
which a swap's mask fades to 0, so the other identity's background and hair never enter the blend."""


def _hull_region(points: np.ndarray, size: int) -> np.ndarray:
    """Boolean ``size x size`` inside of the convex hull of ``points`` (no randomness; colour statistics)."""
    hull = cv2.convexHull(points.astype(np.float32)).reshape(-1, 2)
    region = np.zeros((size, size), np.uint8)
    cv2.fillConvexPoly(region, np.round(hull).astype(np.int32), 1)
    return region.astype(bool)


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
    inside the face from the brows down (Reinhard [1]_), and it is blended into the destination through a
    :func:`.masks.hull_mask` of the destination landmarks, capped by that face region feathered inward
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
    src_crop, dst_crop = square_crop(src_crop, "src_crop"), square_crop(dst_crop, "dst_crop")
    if src_crop.shape != dst_crop.shape:
        raise ValueError(f"src_crop {src_crop.shape} and dst_crop {dst_crop.shape} differ in size")
    src_points, dst_points = landmark_points(src_lm, "src_lm"), landmark_points(dst_lm, "dst_lm")
    if len(src_points) != len(dst_points):
        raise ValueError(f"src_lm has {len(src_points)} points, dst_lm {len(dst_points)}")
    size = dst_crop.shape[0]
    subset = list(SWAP_POINTS) if len(dst_points) >= MESH_POINTS else slice(None)
    map_x, map_y = _triangulation_warp(src_points[subset], dst_points[subset], size)
    warped = cv2.remap(src_crop, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    face = _hull_region(dst_points[list(HULL_REGIONS["inner"])] if len(dst_points) >= MESH_POINTS else dst_points,
                        size)
    feather = max(2, round(float(uniform(rng, SWAP_FEATHER)) * size))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * feather + 1, 2 * feather + 1))
    blur = feather | 1  # the square kernel reaches sqrt(2) x feather / 2 < feather diagonally: 0 outside the face
    inside = cv2.GaussianBlur(cv2.erode(face.astype(np.float32), kernel), (blur, blur), 0)
    mask = np.minimum(hull_mask(dst_points, size, rng), inside) * np.float32(rng.choice(SWAP_BLEND_RATIOS))
    warped = _reinhard(warped, dst_crop, face).astype(np.float32)
    return blend(dst_crop, warped, mask), mask
