"""Rich-model (SRM) residual energy inconsistency.

A small bank of the spatial rich model's high-pass predictors (first/second/third order, 3x3 SQUARE, 5x5 KV)
suppresses content; the truncated residual energy per block is a fingerprint of the acquisition/processing
chain, and blocks whose energy departs from the image's typical level are flagged (both directions).

References
----------
.. [1] J. Fridrich and J. Kodovsky, "Rich models for steganalysis of digital images", IEEE TIFS 7(3), 2012.
       doi:10.1109/TIFS.2012.2190402
.. [2] P. Zhou, X. Han, V. I. Morariu and L. S. Davis, "Learning rich features for image manipulation
       detection", CVPR 2018 (SRM residuals for manipulation localisation).
"""

from __future__ import annotations

from typing import Any, ClassVar

import cv2
import numpy as np

from tamperscope.forensics.base import (
    AnalysisContext,
    DetectorResult,
    Tile,
    block_reduce,
    grid_align,
    image_map,
    outlier_score,
    prepare,
    robust_z,
    tiled,
)

SRM_KERNELS: dict[str, np.ndarray] = {
    "first": np.array([[0, 0, 0], [0, -1, 1], [0, 0, 0]], dtype=np.float32),
    "second": np.array([[0, 0, 0], [1, -2, 1], [0, 0, 0]], dtype=np.float32) / 2,
    "third": np.array([[0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 1, -3, 3, -1], [0, 0, 0, 0, 0],
                       [0, 0, 0, 0, 0]], dtype=np.float32) / 3,
    "square3": np.array([[-1, 2, -1], [2, -4, 2], [-1, 2, -1]], dtype=np.float32) / 4,
    "kv5": np.array([[-1, 2, -2, 2, -1], [2, -6, 8, -6, 2], [-2, 8, -12, 8, -2], [2, -6, 8, -6, 2],
                     [-1, 2, -2, 2, -1]], dtype=np.float32) / 12,
}


class SRMDetector:
    """Truncated SRM residuals, mean absolute value per block and filter, combined robust z-score. Residuals are
    filtered in tiles with a halo of the largest kernel's radius."""

    name: ClassVar[str] = "srm"
    version: ClassVar[str] = "1.0"
    min_side: ClassVar[int] = 32  # one full block
    defaults: ClassVar[dict[str, Any]] = {"block": 32, "truncation": 2.0, "z0": 2.5, "z1": 6.0}

    def analyze(self, image: np.ndarray, *, context: AnalysisContext | None = None,
                params: dict[str, Any] | None = None) -> DetectorResult:
        image, p, ctx = prepare(image, self.defaults, params, context)
        gray = ctx.gray(image)
        t, block = float(p["truncation"]), int(p["block"])

        def energies(tile: np.ndarray, where: Tile) -> np.ndarray:
            g = tile.astype(np.float32)
            return np.stack([block_reduce(np.abs(np.clip(cv2.filter2D(g, cv2.CV_32F, kernel,
                                                                      borderType=cv2.BORDER_REFLECT)[where.inner],
                                                         -t, t)), block) for kernel in SRM_KERNELS.values()])

        halo = max(k.shape[0] for k in SRM_KERNELS.values()) // 2
        zs = [np.abs(robust_z(np.log(energy + 0.02))) for energy in tiled(gray, grid_align(block), halo, energies)]
        z = np.mean(zs, axis=0)
        heat = np.clip((z - p["z0"]) / (p["z1"] - p["z0"]), 0.0, 1.0)
        graded = np.clip(z / p["z1"], 0.0, 1.0)
        return DetectorResult(score=outlier_score(heat), map=image_map(graded, gray.shape, ctx.map_max_pixels),
                              params=p,
                              version=self.version, evidence={"filters": list(SRM_KERNELS)})
