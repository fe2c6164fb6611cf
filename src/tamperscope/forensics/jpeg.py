"""JPEG double compression: aligned double quantisation (DQ) and JPEG ghosts.

* :class:`DoubleQuantizationDetector` (``jpeg_dq``): reads the luminance quantisation table and the decoder's
  own Y plane from the original JPEG bytes, recomputes the aligned 8 x 8 block DCT and rounds by the table to
  recover the quantised coefficients. A second compression with a different table leaves periodic peaks and
  gaps in their histograms. Per frequency the period is the one that best explains the histogram's deviation
  from its smooth envelope; each block gets Lin et al.'s posterior of *not* following the double-quantised
  pattern (tampered regions were compressed once). The image score is the histograms' periodic energy.
* :class:`JPEGGhostDetector` (``jpeg_ghost``): re-compresses at a range of qualities; a region that was saved
  at a lower quality than the rest shows a distinct minimum of the re-compression difference at that quality.

References
----------
.. [1] Z. Lin, J. He, X. Tang and C.-K. Tang, "Fast, automatic and fine-grained tampered JPEG image detection
       via DCT coefficient analysis", Pattern Recognition 42(11), 2009. doi:10.1016/j.patcog.2009.03.019
.. [2] T. Bianchi and A. Piva, "Image forgery localization via block-grained analysis of JPEG artifacts",
       IEEE TIFS 7(3), 2012. doi:10.1109/TIFS.2012.2187516
.. [3] A. C. Popescu and H. Farid, "Statistical tools for digital forensics", Information Hiding 2004
       (double-quantisation periodicity).
.. [4] H. Farid, "Exposing digital forgeries from JPEG ghosts", IEEE TIFS 4(1), 2009.
       doi:10.1109/TIFS.2008.2012215
"""

from __future__ import annotations

from typing import Any, ClassVar

import cv2
import numpy as np

from tamperscope.forensics.base import (
    AnalysisContext,
    DetectorResult,
    block_reduce,
    check_image,
    merge_params,
    outlier_map,
    outlier_score,
    upsample,
)

ZIGZAG: list[tuple[int, int]] = sorted(((u, v) for u in range(8) for v in range(8)),
                                       key=lambda uv: (uv[0] + uv[1], uv[0] if (uv[0] + uv[1]) % 2 else uv[1]))


def block_dct(y: np.ndarray) -> np.ndarray:
    """Orthonormal 8 x 8 DCT-II of every aligned block of ``y - 128``: shape (rows, cols, 8, 8)."""
    h, w = (y.shape[0] // 8) * 8, (y.shape[1] // 8) * 8
    blocks = y[:h, :w].astype(np.float64).reshape(h // 8, 8, w // 8, 8).swapaxes(1, 2) - 128.0
    k = np.arange(8)
    c = np.sqrt(np.where(k == 0, 1.0, 2.0) / 8)[:, None] * np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / 16)
    return np.einsum("ui,abij,vj->abuv", c, blocks, c)


def dq_period(hist: np.ndarray, max_period: int = 8) -> tuple[int, float]:
    """The period (>= 2) whose comb best explains ``hist``'s deviation from its smooth envelope, and its energy.

    The energy is the fraction of the histogram mass (bins 0 and +-1 excluded) that departs from a 5-bin
    moving average: a measure of how periodic (peaked and gapped) the histogram is; single-compressed
    histograms are smooth.
    """
    total = hist.sum()
    if total < 50:
        return 1, 0.0
    envelope = np.convolve(hist, np.ones(5) / 5, mode="same")
    residual = hist - envelope
    n = hist.size
    centre = n // 2
    outer = np.abs(np.arange(n) - centre) >= 2
    energy = float(np.abs(residual[outer]).sum() / (hist[outer].sum() + 1e-9))
    best_p, best_corr = 1, 0.0
    for period in range(2, max_period + 1):
        comb = np.where((np.arange(n) - centre) % period == 0, 1.0, -1.0 / (period - 1))
        corr = float((residual * comb).sum() / (np.abs(residual).sum() + 1e-9))
        if corr > best_corr:
            best_p, best_corr = period, corr
    return best_p, energy * best_corr


class DoubleQuantizationDetector:
    """Aligned DQ from the file's own quantisation table: image score = periodic energy, map = Lin posterior."""

    name: ClassVar[str] = "jpeg_dq"
    version: ClassVar[str] = "1.0"
    defaults: ClassVar[dict[str, Any]] = {"frequencies": 15, "half_range": 40, "low": 0.3, "high": 0.9}

    def analyze(self, image: np.ndarray, *, context: AnalysisContext | None = None,
                params: dict[str, Any] | None = None) -> DetectorResult:
        image = check_image(image)
        p = merge_params(self.defaults, params)
        ctx = context or AnalysisContext()
        shape = image.shape[:2]
        luma = ctx.jpeg_luma()
        if luma is None:
            return DetectorResult(score=0.0, map=np.zeros(shape, dtype=np.float32), params=p,
                                  version=self.version, evidence={"applicable": False})
        y, tables = luma
        table = tables[0].reshape(8, 8)
        coeffs = block_dct(y)
        half = int(p["half_range"])
        log_ratio = np.zeros(coeffs.shape[:2], dtype=np.float64)
        energies, periods = [], []
        for u, v in ZIGZAG[1: 1 + int(p["frequencies"])]:
            q = np.rint(coeffs[:, :, u, v] / table[u, v]).astype(np.int64)
            clipped = np.clip(q, -half, half) + half
            hist = np.bincount(clipped.ravel(), minlength=2 * half + 1).astype(np.float64)
            hist[0] = hist[-1] = 0.0
            period, energy = dq_period(hist)
            energies.append(energy)
            periods.append(period)
            if period < 2:
                continue
            # Lin et al.: P(unchanged | bin) ~ h(bin) / mean over its period; tampered blocks follow the envelope
            envelope = np.convolve(hist, np.ones(period) / period, mode="same")
            unchanged = np.clip(hist / (envelope + 1e-9), 1e-3, None)
            log_ratio += np.log(unchanged[clipped]) * (np.abs(q) <= half)
        score = float(np.clip((np.mean(energies) - p["low"]) / (p["high"] - p["low"]), 0.0, 1.0))
        tampered = 1.0 / (1.0 + np.exp(np.clip(log_ratio, -50, 50)))
        heat = np.zeros(shape, dtype=np.float32)
        if score > 0:
            smooth = cv2.blur(tampered.astype(np.float32), (3, 3)) * score
            up = upsample(smooth, (smooth.shape[0] * 8, smooth.shape[1] * 8))
            heat[: up.shape[0], : up.shape[1]] = up[: shape[0], : shape[1]]
        return DetectorResult(score=score, map=heat, params=p, version=self.version,
                              evidence={"applicable": True, "periodic_energy": round(float(np.mean(energies)), 5),
                                        "periods": periods, "q_table_dc": float(table[0, 0])})


class JPEGGhostDetector:
    """Farid's JPEG ghosts: per-quality normalised block differences; the deepest local dip marks a ghost."""

    name: ClassVar[str] = "jpeg_ghost"
    version: ClassVar[str] = "1.0"
    defaults: ClassVar[dict[str, Any]] = {"qualities": [55, 65, 75, 85, 95], "block": 16, "z0": 3.0, "z1": 8.0}

    def analyze(self, image: np.ndarray, *, context: AnalysisContext | None = None,
                params: dict[str, Any] | None = None) -> DetectorResult:
        image = check_image(image)
        p = merge_params(self.defaults, params)
        ctx = context or AnalysisContext()
        gray = ctx.gray(image)
        g = gray.astype(np.float32)
        block = int(p["block"])
        curves = []
        for q in p["qualities"]:
            diff = g - ctx.recompressed(image, int(q)).astype(np.float32)
            d = block_reduce(diff * diff, block)
            curves.append(d / (np.median(d) + 1e-6))
        stack = np.stack(curves)  # quality x rows x cols, each normalised by its image median
        profile = stack / (stack.max(axis=0, keepdims=True) + 1e-6)
        typical = np.median(profile.reshape(len(curves), -1), axis=1)[:, None, None]
        dip = (typical - profile).max(axis=0)
        heat = outlier_map(dip, float(p["z0"]), float(p["z1"]))
        ghost_q = np.asarray(p["qualities"])[(typical - profile).argmax(axis=0)]
        return DetectorResult(score=outlier_score(heat), map=upsample(heat, gray.shape), params=p,
                              version=self.version,
                              evidence={"ghost_quality_mode": int(np.bincount(ghost_q[heat > 0.5].ravel()).argmax())
                                        if (heat > 0.5).any() else None})
