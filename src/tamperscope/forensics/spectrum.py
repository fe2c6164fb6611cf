"""Spectral traces of resampling and of up-sampling generators.

*Resampling*: interpolation makes pixels linearly correlated with their neighbours in a periodic pattern. The
residual of a fixed linear predictor, mapped to a "p-map", then shows strong periodic peaks in its Fourier
spectrum; each block's peak-to-median ratio (JPEG's 8-pixel grid frequencies excluded) is its resampling score.

*Azimuthal spectrum*: generators that up-sample (transposed convolutions) leave excess or deficit energy at
high spatial frequencies; the azimuthally averaged log-power spectrum's tail is compared with a power-law fit
of its mid band and reported as evidence.

References
----------
.. [1] A. C. Popescu and H. Farid, "Exposing digital forgeries by detecting traces of resampling", IEEE Trans.
       Signal Processing 53(2), 2005. doi:10.1109/TSP.2004.839932
.. [2] M. Kirchner, "Fast and reliable resampling detection by spectral analysis of fixed linear predictor
       residue", ACM MM&Sec, 2008. doi:10.1145/1411328.1411333
.. [3] R. Durall, M. Keuper and J. Keuper, "Watch your up-convolution: CNN based generative deep neural
       networks are failing to reproduce spectral distributions", CVPR 2020.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import cv2
import numpy as np

from tamperscope.forensics.base import AnalysisContext, DetectorResult, placed_map, prepare, tiles


def second_derivative_profiles(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Absolute second derivatives along x and along y (``float32``, cropped by two pixels on that axis)."""
    g = gray.astype(np.float32)
    dx = np.abs(g[:, :-2] - 2 * g[:, 1:-1] + g[:, 2:])
    dy = np.abs(g[:-2] - 2 * g[1:-1] + g[2:])
    return dx, dy


def _valid_frequencies(n: int, min_freq: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    """rfft frequencies of a length-``n`` signal, and a mask excluding DC and JPEG's 1/8 harmonics (+-2 bins)."""
    f = np.fft.rfftfreq(n)
    off_grid = np.abs(f * 8 - np.round(f * 8)) * n / 8 > 2
    return f, (f > min_freq) & off_grid


def periodicity(profile: np.ndarray) -> tuple[float, float]:
    """Peak-to-median ratio of a detrended 1-D profile's spectrum, and the peak frequency (cycles/pixel)."""
    n = profile.size
    detrended = profile - cv2.GaussianBlur(profile[None, :].astype(np.float32), (0, 0), 8)[0]
    spec = np.abs(np.fft.rfft(detrended * np.hanning(n)))
    f, valid = _valid_frequencies(n)
    if valid.sum() < 8:
        return 1.0, 0.0
    values = spec[valid]
    i = int(np.argmax(values))
    return float(values[i] / (np.median(values) + 1e-9)), float(f[valid][i])


def band_means(d2: np.ndarray, block: int) -> np.ndarray:
    """Means of ``d2`` over bands of ``block`` rows (the last partial band dropped): shape (rows // block, cols)."""
    nby = d2.shape[0] // block
    return d2[: nby * block].reshape(nby, block, d2.shape[1]).mean(axis=1)  # type: ignore[no-any-return]


def band_strength(bands: np.ndarray, freq: float, block: int) -> np.ndarray:
    """Per ``block`` x ``block`` tile: relative spectral energy at ``freq`` of its profile in the
    :func:`band_means` of the second derivatives."""
    nbx = bands.shape[1] // block
    tiles = bands[:, : nbx * block].reshape(bands.shape[0], nbx, block)
    tiles = tiles - tiles.mean(axis=2, keepdims=True)
    spec = np.abs(np.fft.rfft(tiles * np.hanning(block), axis=2))
    f, valid = _valid_frequencies(block)
    k = int(np.argmin(np.abs(f - freq)))
    lo, hi = max(k - 1, 0), min(k + 2, spec.shape[2])
    return (spec[:, :, lo:hi].max(axis=2) / (np.median(spec[:, :, valid], axis=2) + 1e-9)).astype(np.float32)


def azimuthal_profile(gray: np.ndarray, size: int = 512) -> np.ndarray:
    """Azimuthally averaged log-power spectrum of the central ``size`` x ``size`` crop (radius bins 1..size/2)."""
    h, w = gray.shape
    s = min(size, h, w) // 2 * 2
    crop = gray[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s].astype(np.float32)
    power = np.abs(np.fft.fftshift(np.fft.fft2(crop - crop.mean()))) ** 2
    yy, xx = np.indices(power.shape)
    r = np.hypot(yy - s // 2, xx - s // 2).astype(int)
    sums = np.bincount(r.ravel(), weights=np.log(power.ravel() + 1e-8))
    counts = np.bincount(r.ravel())
    return (sums / np.maximum(counts, 1))[1:s // 2]


def high_frequency_excess(profile: np.ndarray) -> float:
    """Mean deviation of the top-quarter tail of a log-power profile from a line fitted on its mid band."""
    n = profile.size
    if n < 16:
        return 0.0
    r = np.log(np.arange(1, n + 1, dtype=np.float64))
    mid = slice(n // 8, n // 2)
    slope, intercept = np.polyfit(r[mid], profile[mid], 1)
    tail = slice(3 * n // 4, n)
    return float(np.mean(profile[tail] - (slope * r[tail] + intercept)))


@dataclass
class DerivativeStats:
    """What the detector keeps of the absolute second derivatives of a whole image (:func:`derivative_stats`):
    their column and row means (the profiles) and their :func:`band_means` along and across."""

    profile_x: np.ndarray
    profile_y: np.ndarray
    bands_x: np.ndarray
    bands_y: np.ndarray


def derivative_stats(gray: np.ndarray, block: int) -> DerivativeStats:
    """:class:`DerivativeStats` of ``gray``, computed in tiles aligned to ``block`` (each with the two pixels of
    context the second derivative needs), so the full-resolution derivatives are never held at once."""
    h, w = gray.shape
    sums_x, sums_y = np.zeros(w - 2, np.float32), np.zeros(h - 2, np.float32)
    bands_x = np.zeros((h // block, w - 2), np.float32)
    bands_y = np.zeros((w // block, h - 2), np.float32)

    for row in tiles(gray.shape, block):
        for tile in row:
            rows, cols = tile.outer[0].start, tile.outer[1].start  # no halo: the tile proper starts there
            inner_h, inner_w = tile.inner[0].stop, tile.inner[1].stop
            # two more pixels each way (clipped at the image's edge): the second derivative's context
            dx, dy = second_derivative_profiles(gray[rows: rows + inner_h + 2, cols: cols + inner_w + 2])
            dx, dy = dx[:inner_h, :inner_w], dy[:inner_h, :inner_w]
            sums_x[cols: cols + dx.shape[1]] += dx.sum(axis=0)
            sums_y[rows: rows + dy.shape[0]] += dy.sum(axis=1)
            band_row, band_col = rows // block, cols // block
            bands_x[band_row: band_row + inner_h // block, cols: cols + dx.shape[1]] = band_means(dx, block)
            bands_y[band_col: band_col + inner_w // block, rows: rows + dy.shape[0]] = band_means(dy.T, block)
    return DerivativeStats(sums_x / np.float32(h), sums_y / np.float32(w), bands_x, bands_y)


class SpectrumDetector:
    """Periodicity of the second-derivative profiles (global score, tile map at the peak) plus an azimuthal check.

    The image-level statistic follows Gallagher's observation that the variance of the second derivative of an
    interpolated signal is periodic (the averaged profile's spectrum peaks at the resampling frequency);
    Kirchner's analysis of linear-predictor residues [2]_ motivates excluding the JPEG grid harmonics.
    Derivatives are taken in tiles (:func:`derivative_stats`); only their profiles and band means are kept.
    """

    name: ClassVar[str] = "spectrum"
    version: ClassVar[str] = "1.0"
    min_side: ClassVar[int] = 68  # tiles of half the short side; below 68 px they have no valid frequency
    defaults: ClassVar[dict[str, Any]] = {"block": 128, "low": 12.0, "high": 30.0}

    def analyze(self, image: np.ndarray, *, context: AnalysisContext | None = None,
                params: dict[str, Any] | None = None) -> DetectorResult:
        image, p, ctx = prepare(image, self.defaults, params, context)
        gray = ctx.gray(image)
        block = min(int(p["block"]), max(16, min(gray.shape) // 2))
        stats = derivative_stats(gray, block)
        rx, fx = periodicity(stats.profile_x)
        ry, fy = periodicity(stats.profile_y)
        ratio = max(rx, ry)
        lo, hi = np.log(p["low"]), np.log(p["high"])
        score = float(np.clip((np.log(ratio) - lo) / (hi - lo), 0.0, 1.0))
        sx = band_strength(stats.bands_x, fx, block)
        sy = band_strength(stats.bands_y, fy, block).T
        rows, cols = min(sx.shape[0], sy.shape[0]), min(sx.shape[1], sy.shape[1])
        strength = np.maximum(sx[:rows, :cols], sy[:rows, :cols])
        heat = np.clip((np.log(strength + 1e-6) - np.log(3.0)) / np.log(3.0), 0.0, 1.0) * score
        full = placed_map(heat, (heat.shape[0] * block, heat.shape[1] * block), gray.shape,
                          ctx.map_max_pixels)
        hf = high_frequency_excess(azimuthal_profile(gray))
        return DetectorResult(score=score, map=full, params=p, version=self.version,
                              evidence={"peak_ratio_x": round(rx, 3), "peak_freq_x": round(fx, 4),
                                        "peak_ratio_y": round(ry, 3), "peak_freq_y": round(fy, 4),
                                        "hf_excess": round(hf, 4)})
