"""Copy-move (cloning) detection: SIFT keypoints with g2NN matching, and overlapping DCT blocks.

Two detectors share this module because they share the region-verification step:

* :class:`KeypointCopyMoveDetector` (``copymove_keypoint``): SIFT keypoints matched against themselves with the
  generalised 2-nearest-neighbour (g2NN) test, agglomerative clustering of the matched points, and a RANSAC
  affine transform per pair of clusters; survives rotation and scaling.
* :class:`BlockCopyMoveDetector` (``copymove_block``): quantised low-frequency DCT features of every overlapping
  8 x 8 block, lexicographic sorting and shift-vector voting; finds clones in low-texture regions where
  keypoints are scarce (translation only).

Both verify a found transform densely: the image is warped by it and the pixels where the warped copy matches
the original (low local difference) form the map. The evidence keeps up to :data:`MAX_PAIRS` matched point
pairs per transform or shift (``pairs``: ``[x1, y1, x2, y2]`` in the input image's pixels), so a viewer can draw
the matches as lines.

References
----------
.. [1] I. Amerini, L. Ballan, R. Caldelli, A. Del Bimbo and G. Serra, "A SIFT-based forensic method for
       copy-move attack detection and transformation recovery", IEEE TIFS 6(3), 2011.
       doi:10.1109/TIFS.2011.2129512
.. [2] J. Fridrich, D. Soukal and J. Lukas, "Detection of copy-move forgery in digital images", DFRWS 2003.
.. [3] V. Christlein, C. Riess, J. Jordan, C. Riess and E. Angelopoulou, "An evaluation of popular copy-move
       forgery detection approaches", IEEE TIFS 7(6), 2012. doi:10.1109/TIFS.2012.2218597
"""

from __future__ import annotations

from typing import Any, ClassVar

import cv2
import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage

from tamperscope.forensics.base import (
    AnalysisContext,
    DetectorResult,
    evenly_spread,
    map_shape,
    prepare,
    upsample,
)

#: matched point pairs kept in the evidence per transform or shift (evenly spread over the matches).
MAX_PAIRS = 30
#: descriptors whose nearest neighbours :func:`g2nn_matches` finds at a time
MATCH_ROWS = 512


def point_pairs(src: np.ndarray, dst: np.ndarray, scale: float, offset: float = 0.0) -> list[list[float]]:
    """Up to :data:`MAX_PAIRS` ``[x1, y1, x2, y2]`` lines from ``(x, y)`` points of the analysed (rescaled) image,
    mapped back to input pixels (``offset`` added first, e.g. half a block to name its centre)."""
    if not len(src):
        return []
    keep = evenly_spread(len(src), MAX_PAIRS)
    lines = np.hstack([src[keep], dst[keep]]).astype(np.float64) + offset
    return np.round(lines / scale, 1).tolist()


def _rescale(gray: np.ndarray, max_side: int, min_side: int = 0) -> tuple[np.ndarray, float]:
    """Resize so the long side lies in [min_side, max_side] (area down-scaling, cubic up-scaling)."""
    long_side = max(gray.shape)
    scale = min(1.0, max_side / long_side) if long_side > max_side else max(1.0, min_side / long_side)
    if scale == 1.0:
        return gray, 1.0
    size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
    return cv2.resize(gray, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC), scale


def mask_map(mask: np.ndarray, shape: tuple[int, ...], max_pixels: int | None) -> np.ndarray:
    """A region mask found on the rescaled image as the map of an image of ``shape`` (:func:`map_shape`)."""
    heat, size = mask.astype(np.float32), map_shape(shape, max_pixels)
    return heat if heat.shape == size else upsample(heat, size)


def verify_affine(gray: np.ndarray, matrix: np.ndarray, *, window: int = 7, tolerance: float = 4.0,
                  min_shift: float = 8.0) -> np.ndarray:
    """Pixels whose neighbourhood is reproduced by ``matrix`` (source -> target), on both sides, as a bool mask.

    ``tolerance`` is the largest mean absolute grey-level difference over a ``window`` x ``window`` box;
    pixels that the transform moves by less than ``min_shift`` (self-similarity) are excluded.
    """
    h, w = gray.shape
    g = gray.astype(np.float32)
    full = np.vstack([matrix, [0.0, 0.0, 1.0]])
    # the pixel grid and the textured pixels are the same for both directions: computed once
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    textured = cv2.blur(g * g, (window, window)) - cv2.blur(g, (window, window)) ** 2 > 4.0
    masks = []
    for m in (full, np.linalg.inv(full)):
        # warped(x) = g(m^-1 x): pixel x of the target equals the source pixel it was copied from
        warped = cv2.warpAffine(g, m[:2], (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                borderValue=-1000.0)
        diff = cv2.blur(np.abs(g - warped), (window, window))
        inv = np.linalg.inv(m)
        sx = inv[0, 0] * xx + inv[0, 1] * yy + inv[0, 2]
        sy = inv[1, 0] * xx + inv[1, 1] * yy + inv[1, 2]
        moved = np.hypot(sx - xx, sy - yy) >= min_shift
        masks.append((diff < tolerance) & moved & textured)
    mask = (masks[0] | masks[1]).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
    return cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel).astype(bool)


def _keep_large_components(mask: np.ndarray, min_area: int) -> np.ndarray:
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    keep = np.zeros(n, dtype=bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_area
    return keep[labels]


def g2nn_matches(descriptors: np.ndarray, *, k: int = 10, ratio: float = 0.5) -> np.ndarray:
    """Pairs ``(i, j)`` (i < j) accepted by the generalised 2NN test of Amerini et al. [1]_.

    For each descriptor the ``k`` nearest others are sorted by distance ``d_1 <= d_2 <= ...``; ``j``-th neighbours
    are accepted while ``d_j / d_{j+1} < ratio``. Exact L2 distances by matrix products (deterministic), in chunks
    of :data:`MATCH_ROWS` rows, so 6000 keypoints take 0.1 GB instead of a full distance and index matrix (0.4 GB).
    """
    n = descriptors.shape[0]
    k = min(k, n - 1)
    if k < 2:
        return np.empty((0, 2), dtype=np.int64)
    d = descriptors.astype(np.float32)
    sq = (d * d).sum(axis=1)
    nearest = np.empty((n, k + 1), dtype=np.int64)
    nd = np.empty((n, k + 1), dtype=np.float32)
    for start in range(0, n, MATCH_ROWS):
        chunk = slice(start, min(n, start + MATCH_ROWS))
        dist2 = sq[chunk, None] + sq[None, :] - 2.0 * (d[chunk] @ d.T)
        dist2[np.arange(chunk.stop - start), np.arange(start, chunk.stop)] = np.inf
        nearest[chunk] = np.argpartition(dist2, k, axis=1)[:, :k + 1]
        nd[chunk] = np.take_along_axis(dist2, nearest[chunk], axis=1)
    order = np.argsort(nd, axis=1, kind="stable")
    nearest = np.take_along_axis(nearest, order, axis=1)
    dists = np.sqrt(np.maximum(np.take_along_axis(nd, order, axis=1), 0.0))
    passes = dists[:, :-1] < ratio * np.maximum(dists[:, 1:], 1e-6)
    accepted = np.cumprod(passes, axis=1).astype(bool)
    rows, cols = np.nonzero(accepted)
    if rows.size == 0:
        return np.empty((0, 2), dtype=np.int64)
    other = nearest[rows, cols]
    pairs = np.stack([np.minimum(rows, other), np.maximum(rows, other)], axis=1).astype(np.int64)
    return np.unique(pairs, axis=0)


class KeypointCopyMoveDetector:
    """SIFT + g2NN + agglomerative clustering + RANSAC affine, then dense verification of each transform.

    A transform counts only when the dense verification finds at least ``min_area`` of the image reproduced by
    it: repetitive natural texture (grass, gravel) yields many consistent keypoint matches but no region.
    Small images are up-scaled to ``min_side`` so that SIFT finds enough keypoints in small clones. Ward linkage
    needs memory quadratic in the matches (up to ``k`` per keypoint), so at most ``max_matches`` of them are
    clustered: a 13 KB fuzzed JPEG with 5822 matches took 1.1 GB before.
    """

    name: ClassVar[str] = "copymove_keypoint"
    version: ClassVar[str] = "1.2"  # 1.1: matched point pairs in the evidence; 1.2: at most max_matches clustered
    defaults: ClassVar[dict[str, Any]] = {
        "max_side": 800, "min_side": 768, "max_keypoints": 6000, "ratio": 0.65, "min_distance": 16.0,
        "cluster_cut": 0.08, "min_inliers": 5, "ransac_threshold": 3.0, "min_area": 0.003,
        "contrast_threshold": 0.01, "max_matches": 2000,
    }

    def analyze(self, image: np.ndarray, *, context: AnalysisContext | None = None,
                params: dict[str, Any] | None = None) -> DetectorResult:
        image, p, ctx = prepare(image, self.defaults, params, context)
        full_gray = ctx.gray(image)
        gray, scale = _rescale(full_gray, int(p["max_side"]), int(p["min_side"]))
        sift = cv2.SIFT_create(  # type: ignore[attr-defined]  # in OpenCV >= 4.4, missing from its stubs
            nfeatures=int(p["max_keypoints"]), contrastThreshold=float(p["contrast_threshold"]))
        keypoints, descriptors = sift.detectAndCompute(gray, None)
        evidence: dict[str, Any] = {"keypoints": len(keypoints), "matches": 0, "transforms": []}
        mask = np.zeros(gray.shape, dtype=bool)
        best = 0
        if descriptors is not None and len(keypoints) >= 3:
            points = np.array([kp.pt for kp in keypoints], dtype=np.float32)
            pairs = g2nn_matches(descriptors, ratio=float(p["ratio"]))
            if pairs.size:
                far = np.hypot(*(points[pairs[:, 0]] - points[pairs[:, 1]]).T) >= float(p["min_distance"]) * max(
                    scale, 1.0)
                pairs = pairs[far]
            evidence["matches"] = len(pairs)
            if len(pairs) > int(p["max_matches"]):  # evenly spread, deterministic: bounds linkage memory and time
                pairs = pairs[evenly_spread(len(pairs), int(p["max_matches"]))]
                evidence["matches_clustered"] = len(pairs)
            best, mask = self._transforms(gray, points, pairs, p, evidence, scale)
        score = float(1.0 - np.exp(-best / 8.0)) if best >= int(p["min_inliers"]) else 0.0
        return DetectorResult(score=score, map=mask_map(mask, full_gray.shape, ctx.map_max_pixels), params=p,
                              version=self.version, evidence=evidence)

    @staticmethod
    def _transforms(gray: np.ndarray, points: np.ndarray, pairs: np.ndarray, p: dict[str, Any],
                    evidence: dict[str, Any], scale: float) -> tuple[int, np.ndarray]:
        mask = np.zeros(gray.shape, dtype=bool)
        if len(pairs) < 4:
            return 0, mask
        src, dst = points[pairs[:, 0]], points[pairs[:, 1]]
        coords = np.vstack([src, dst])
        labels = fcluster(linkage(coords, method="ward"), t=float(p["cluster_cut"]) * max(gray.shape) * 4,
                          criterion="distance")
        la, lb = labels[: len(src)], labels[len(src):]
        best = 0
        candidates = []
        for ca, cb in sorted({(min(a, b), max(a, b)) for a, b in zip(la, lb, strict=True)}):
            sel = ((la == ca) & (lb == cb)) | ((la == cb) & (lb == ca))
            if sel.sum() < int(p["min_inliers"]):
                continue
            s, d = src[sel].copy(), dst[sel].copy()
            flip = la[sel] != ca
            s[flip], d[flip] = dst[sel][flip], src[sel][flip]
            candidates.append((s, d))
        # all matches at once, oriented left-to-right: catches one clone whose matches the clustering split
        flip = src[:, 0] > dst[:, 0]
        s_all, d_all = np.where(flip[:, None], dst, src), np.where(flip[:, None], src, dst)
        candidates.append((s_all, d_all))
        for s, d in candidates:
            cv2.setRNGSeed(0)
            matrix, inliers = cv2.estimateAffine2D(s, d, method=cv2.RANSAC,
                                                   ransacReprojThreshold=float(p["ransac_threshold"]),
                                                   maxIters=2000, confidence=0.995, refineIters=10)
            if matrix is None or inliers is None:
                continue
            count = int(inliers.sum())
            if count < int(p["min_inliers"]) or abs(np.linalg.det(matrix[:, :2])) < 0.2:
                continue
            region = verify_affine(gray, matrix)
            verified = float(region.mean()) >= float(p["min_area"])
            if verified:
                best = max(best, count)
                mask |= region
            inlier = inliers.ravel().astype(bool)
            evidence["transforms"].append({"inliers": count, "matrix": np.round(matrix, 4).tolist(),
                                           "area_fraction": round(float(region.mean()), 5), "verified": verified,
                                           "pairs": point_pairs(s[inlier], d[inlier], scale)})
        return best, mask


def dct_basis(size: int = 8, n: int = 6) -> list[np.ndarray]:
    """The first ``n`` zig-zag 2-D DCT-II basis kernels of a ``size`` x ``size`` block (orthonormal)."""
    order = sorted(((u, v) for u in range(size) for v in range(size)), key=lambda uv: (uv[0] + uv[1], uv[1]))
    c = np.array([[np.sqrt((1 if k == 0 else 2) / size) * np.cos(np.pi * (2 * i + 1) * k / (2 * size))
                   for i in range(size)] for k in range(size)], dtype=np.float32)
    return [np.outer(c[u], c[v]) for u, v in order[:n]]


class BlockCopyMoveDetector:
    """Overlapping-block DCT features, lexicographic sort, shift-vector voting, dense verification."""

    name: ClassVar[str] = "copymove_block"
    version: ClassVar[str] = "1.1"  # 1.1: matched block pairs in the evidence
    defaults: ClassVar[dict[str, Any]] = {
        "max_side": 512, "block": 8, "features": 6, "quantization": 2.0, "neighbours": 4,
        "min_shift": 16, "min_votes": 40, "min_std": 1.5,
    }

    def analyze(self, image: np.ndarray, *, context: AnalysisContext | None = None,
                params: dict[str, Any] | None = None) -> DetectorResult:
        image, p, ctx = prepare(image, self.defaults, params, context)
        full_gray = ctx.gray(image)
        gray, scale = _rescale(full_gray, int(p["max_side"]))
        b = int(p["block"])
        g = gray.astype(np.float32)
        hb, wb = g.shape[0] - b + 1, g.shape[1] - b + 1
        feats = np.stack([cv2.filter2D(g, cv2.CV_32F, k, anchor=(0, 0), borderType=cv2.BORDER_CONSTANT)[:hb, :wb]
                          for k in dct_basis(b, int(p["features"]))], axis=-1)
        std = np.sqrt(np.maximum(cv2.blur(g * g, (b, b), anchor=(0, 0))[:hb, :wb]
                                 - cv2.blur(g, (b, b), anchor=(0, 0))[:hb, :wb] ** 2, 0))
        ys, xs = np.nonzero(std >= float(p["min_std"]))
        evidence: dict[str, Any] = {"blocks": len(ys), "shifts": []}
        mask = np.zeros(gray.shape, dtype=bool)
        best = 0
        if len(ys) > 2:
            q = np.round(feats[ys, xs] / (float(p["quantization"]) * np.array([4.0] + [1.0] * (feats.shape[-1] - 1),
                                                                              dtype=np.float32))).astype(np.int32)
            order = np.lexsort(q.T[::-1])
            q, ys, xs = q[order], ys[order], xs[order]
            src_all, shift_all = [], []
            for k in range(1, int(p["neighbours"]) + 1):
                same = np.all(q[k:] == q[:-k], axis=1)
                i = np.nonzero(same)[0]
                dy, dx = ys[i + k] - ys[i], xs[i + k] - xs[i]
                flip = (dy < 0) | ((dy == 0) & (dx < 0))
                dy, dx = np.where(flip, -dy, dy), np.where(flip, -dx, dx)
                sy, sx = np.where(flip, ys[i + k], ys[i]), np.where(flip, xs[i + k], xs[i])
                far = np.hypot(dy, dx) >= float(p["min_shift"])
                src_all.append(np.stack([sy[far], sx[far]], axis=1))
                shift_all.append(np.stack([dy[far], dx[far]], axis=1))
            shifts = np.concatenate(shift_all) if shift_all else np.empty((0, 2), dtype=np.int64)
            sources = np.concatenate(src_all) if src_all else np.empty((0, 2), dtype=np.int64)
            if len(shifts):
                uniq, counts = np.unique(shifts, axis=0, return_counts=True)
                for idx in np.argsort(-counts, kind="stable")[:3]:
                    if counts[idx] < int(p["min_votes"]):
                        break
                    shift_y, shift_x = (int(v) for v in uniq[idx])
                    matrix = np.array([[1.0, 0.0, shift_x], [0.0, 1.0, shift_y]])
                    region = verify_affine(gray, matrix, min_shift=float(p["min_shift"]))
                    region = _keep_large_components(region, 4 * b * b)
                    mask |= region
                    best = max(best, int(counts[idx]))
                    voters = sources[(shifts[:, 0] == shift_y) & (shifts[:, 1] == shift_x)][:, ::-1]
                    lines = point_pairs(voters, voters + np.array([shift_x, shift_y]), scale, b / 2)
                    evidence["shifts"].append({"dy": shift_y, "dx": shift_x, "votes": int(counts[idx]),
                                               "area_fraction": round(float(region.mean()), 5),
                                               "pairs": lines if region.any() else []})
        score = float(1.0 - np.exp(-best / (2.0 * int(p["min_votes"])))) if best else 0.0
        if not mask.any():
            score = min(score, 0.2)
        return DetectorResult(score=score, map=mask_map(mask, full_gray.shape, ctx.map_max_pixels), params=p,
                              version=self.version, evidence=evidence)
