"""Error level analysis at several JPEG qualities.

References
----------
.. [1] N. Krawetz, "A picture's worth: digital image analysis and forensics", Black Hat USA, 2007.
.. [2] W. Wang and H. Farid, "Exposing digital forgeries in video by detecting double quantization",
       ACM MM&Sec, 2009 (re-compression residuals as a tampering cue).
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
    outlier_map,
    outlier_score,
    prepare,
    tiled,
)


class ELADetector:
    """Re-encode the luma at each quality, average the absolute residual over blocks, flag outlying blocks.

    Regions that were compressed fewer times (pasted, retouched) re-compress with a larger error than the rest
    of a JPEG. Residuals are normalised by local gradient energy so that texture alone does not light up.
    Works in tiles on the 8-pixel grid (re-compressing a tile gives the whole image's blocks), with an 8-pixel
    halo for the Laplacian.
    """

    name: ClassVar[str] = "ela"
    version: ClassVar[str] = "1.0"
    defaults: ClassVar[dict[str, Any]] = {"qualities": [75, 85, 95], "block": 16}

    def analyze(self, image: np.ndarray, *, context: AnalysisContext | None = None,
                params: dict[str, Any] | None = None) -> DetectorResult:
        image, p, ctx = prepare(image, self.defaults, params, context)
        gray = ctx.gray(image)
        block = int(p["block"])

        def levels(tile: np.ndarray, where: Tile) -> np.ndarray:
            laplacian = cv2.Laplacian(tile.astype(np.float32), cv2.CV_32F, ksize=1)[where.inner]
            texture = block_reduce(np.abs(laplacian), block) + 1.0
            return np.stack([block_reduce(cv2.absdiff(tile, ctx.recompressed_tile(image, tile, int(q)))[where.inner]
                                          .astype(np.float32), block) / texture for q in p["qualities"]])

        ratio = np.mean(tiled(gray, grid_align(block), 8, levels), axis=0)
        heat = outlier_map(ratio)
        graded = outlier_map(ratio, 0.0, 6.0)
        return DetectorResult(score=outlier_score(heat), map=image_map(graded, gray.shape, ctx.map_max_pixels),
                              params=p,
                              version=self.version,
                              evidence={"median_ratio": round(float(np.median(ratio)), 5)})
