"""Local noise-level inconsistency (NOI).

The noise standard deviation of each block is estimated robustly from the finest diagonal wavelet sub-band
(``sigma = median(|HH|) / 0.6745``, Donoho's estimator); blocks whose level departs from the image's typical
level are flagged. Both directions count: pasted regions may be noisier or (after smoothing/inpainting)
cleaner than the host.

References
----------
.. [1] B. Mahdian and S. Saic, "Using noise inconsistencies for blind image forensics", Image and Vision
       Computing 27(10), 2009. doi:10.1016/j.imavis.2009.02.001
.. [2] D. L. Donoho and I. M. Johnstone, "Ideal spatial adaptation by wavelet shrinkage", Biometrika 81(3), 1994.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from tamperscope.forensics.base import (
    AnalysisContext,
    DetectorResult,
    block_reduce,
    grid_align,
    image_map,
    outlier_score,
    prepare,
    robust_z,
    tiled,
)


def haar_hh(gray: np.ndarray) -> np.ndarray:
    """The first-level diagonal Haar detail sub-band (half resolution, orthonormal scaling)."""
    g = gray.astype(np.float32)
    h, w = (g.shape[0] // 2) * 2, (g.shape[1] // 2) * 2
    g = g[:h, :w]
    return (g[0::2, 0::2] - g[0::2, 1::2] - g[1::2, 0::2] + g[1::2, 1::2]) / 2.0


class NoiseDetector:
    """Block-wise MAD noise estimate on the HH1 sub-band; two-sided robust outliers in log-sigma. The sub-band
    and its block medians are computed in tiles aligned to the blocks."""

    name: ClassVar[str] = "noise"
    version: ClassVar[str] = "1.0"
    min_side: ClassVar[int] = 32  # one full block
    defaults: ClassVar[dict[str, Any]] = {"block": 32, "z0": 2.0, "z1": 5.0}

    def analyze(self, image: np.ndarray, *, context: AnalysisContext | None = None,
                params: dict[str, Any] | None = None) -> DetectorResult:
        image, p, ctx = prepare(image, self.defaults, params, context)
        gray = ctx.gray(image)
        half = max(2, int(p["block"]) // 2)
        sigma = tiled(gray, grid_align(2 * half), 0,
                      lambda tile, _: block_reduce(np.abs(haar_hh(tile)), half, "median")) / 0.6745
        log_sigma = np.log(sigma + 0.05)
        z = np.abs(robust_z(log_sigma))
        heat = np.clip((z - p["z0"]) / (p["z1"] - p["z0"]), 0.0, 1.0)
        graded = np.clip(z / p["z1"], 0.0, 1.0)
        return DetectorResult(score=outlier_score(heat), map=image_map(graded, gray.shape, ctx.map_max_pixels),
                              params=p,
                              version=self.version,
                              evidence={"median_sigma": round(float(np.median(sigma)), 4)})
