"""Local-binary-pattern texture inconsistency.

Uniform rotation-invariant LBP codes are histogrammed per block; each block's chi-square distance to the
image's median histogram measures how far its micro-texture departs from the rest. Splices, smoothing and
inpainting change micro-texture statistics even when they look plausible.

References
----------
.. [1] T. Ojala, M. Pietikainen and T. Maenpaa, "Multiresolution gray-scale and rotation invariant texture
       classification with local binary patterns", IEEE TPAMI 24(7), 2002. doi:10.1109/TPAMI.2002.1017623
.. [2] Z. Zhang, Y. Yu, Q. Wang, and Q. Kong, "Image splicing detection using LBP", (texture inconsistency as a
       splicing cue), 2012.
"""

from __future__ import annotations

from typing import Any, ClassVar

import cv2
import numpy as np
from skimage.feature import local_binary_pattern

from tamperscope.forensics.base import (
    AnalysisContext,
    DetectorResult,
    image_map,
    outlier_map,
    outlier_score,
    prepare,
)


def block_histograms(codes: np.ndarray, n_codes: int, block: int) -> np.ndarray:
    """Normalised histograms of integer ``codes`` over non-overlapping ``block`` x ``block`` tiles."""
    nby, nbx = codes.shape[0] // block, codes.shape[1] // block
    tiles = codes[: nby * block, : nbx * block].reshape(nby, block, nbx, block).swapaxes(1, 2)
    index = np.arange(nby * nbx, dtype=np.int64).reshape(nby, nbx, 1, 1) * n_codes + tiles.astype(np.int64)
    counts = np.bincount(index.ravel(), minlength=nby * nbx * n_codes).reshape(nby, nbx, n_codes)
    return counts / float(block * block)


class LBPDetector:
    """Chi-square distance of per-block uniform LBP histograms to the median histogram, robust outliers.

    The score uses blocks beyond ``z0`` robust standard deviations; the map is graded from z = 0 to ``z1``.
    """

    name: ClassVar[str] = "lbp"
    version: ClassVar[str] = "1.0"
    min_side: ClassVar[int] = 32  # one full block
    defaults: ClassVar[dict[str, Any]] = {"points": 8, "radius": 1, "block": 32, "max_pixels": 3_000_000,
                                          "z0": 2.0, "z1": 6.0}

    def analyze(self, image: np.ndarray, *, context: AnalysisContext | None = None,
                params: dict[str, Any] | None = None) -> DetectorResult:
        image, p, ctx = prepare(image, self.defaults, params, context)
        gray = ctx.gray(image)
        work, block = gray, int(p["block"])
        if gray.size > int(p["max_pixels"]):
            # micro-texture statistics per block survive an area down-scale; blocks shrink by the same factor
            factor = float(np.sqrt(int(p["max_pixels"]) / gray.size))
            work = cv2.resize(gray, (round(gray.shape[1] * factor), round(gray.shape[0] * factor)),
                              interpolation=cv2.INTER_AREA)
            block = max(8, round(block * factor))
        points = int(p["points"])
        codes = local_binary_pattern(work, points, float(p["radius"]), method="uniform").astype(np.uint8)
        hists = block_histograms(codes, points + 2, block)
        reference = np.median(hists.reshape(-1, points + 2), axis=0)
        chi2 = 0.5 * (((hists - reference) ** 2) / (hists + reference + 1e-9)).sum(axis=2)
        heat = outlier_map(chi2, float(p["z0"]), float(p["z1"]))
        graded = outlier_map(chi2, 0.0, float(p["z1"]))
        return DetectorResult(score=outlier_score(heat), map=image_map(graded, gray.shape, ctx.map_max_pixels),
                              params=p,
                              version=self.version, evidence={"median_chi2": round(float(np.median(chi2)), 5)})
