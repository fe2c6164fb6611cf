"""JPEG double compression: aligned double quantisation (DQ) and JPEG ghosts.

* :class:`DoubleQuantizationDetector` (``jpeg_dq``): reads the luminance quantisation table and the decoder's
  own Y plane from the original JPEG bytes, recomputes the aligned 8 x 8 block DCT and rounds by the table to
  recover the quantised coefficients. A second compression with a different table leaves periodic peaks and
  gaps in their histograms, measured against the histogram of a calibrated (cropped, re-compressed) copy.
* :class:`JPEGGhostDetector` (``jpeg_ghost``): re-compresses at a range of qualities; a region that was saved
  at a lower quality than the rest shows a distinct minimum of the re-compression difference at that quality.

References
----------
.. [1] Z. Lin, J. He, X. Tang and C.-K. Tang, "Fast, automatic and fine-grained tampered JPEG image detection
       via DCT coefficient analysis", Pattern Recognition 42(11), 2009. doi:10.1016/j.patcog.2009.03.019
.. [2] T. Bianchi and A. Piva, "Image forgery localization via block-grained analysis of JPEG artifacts",
       IEEE TIFS 7(3), 2012. doi:10.1109/TIFS.2012.2187516
.. [3] J. Lukas and J. Fridrich, "Estimation of primary quantization matrix in double compressed JPEG
       images", DFRWS 2003 (calibrated histograms of double-compressed JPEGs).
.. [4] H. Farid, "Exposing digital forgeries from JPEG ghosts", IEEE TIFS 4(1), 2009.
       doi:10.1109/TIFS.2008.2012215
"""

from __future__ import annotations

import io
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
    map_shape,
    outlier_map,
    outlier_score,
    placed_map,
    prepare,
    tiled,
)

#: rows of the image turned into luma at a time by :func:`calibrated_luma`: each band's copies stay a few MB
BAND_ROWS = 256

ZIGZAG: list[tuple[int, int]] = sorted(((u, v) for u in range(8) for v in range(8)),
                                       key=lambda uv: (uv[0] + uv[1], uv[0] if (uv[0] + uv[1]) % 2 else uv[1]))


def block_dct(y: np.ndarray) -> np.ndarray:
    """Orthonormal 8 x 8 DCT-II of every aligned block of ``y - 128``: shape (rows, cols, 8, 8), ``float32``."""
    h, w = (y.shape[0] // 8) * 8, (y.shape[1] // 8) * 8
    blocks = y[:h, :w].astype(np.float32).reshape(h // 8, 8, w // 8, 8).swapaxes(1, 2) - 128.0
    k = np.arange(8)
    c = (np.sqrt(np.where(k == 0, 1.0, 2.0) / 8)[:, None]
         * np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / 16)).astype(np.float32)
    return np.matmul(np.matmul(c, blocks), c.T)


def block_coefficients(y: np.ndarray, frequencies: list[tuple[int, int]]) -> np.ndarray:
    """The ``(u, v)`` coefficients of :func:`block_dct` for each of ``frequencies``: shape (n, rows, cols), computed
    in tiles on the 8-pixel grid, so only these coefficients of a large image are held."""
    us, vs = np.array([f[0] for f in frequencies]), np.array([f[1] for f in frequencies])
    return tiled(y, 8, 0, lambda tile, _: np.moveaxis(block_dct(tile)[:, :, us, vs], -1, 0))


def calibrated_luma(rgb: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Fridrich's calibration of a decoded JPEG (``rgb``, its luminance quantisation ``table`` as Pillow reads it):
    the image cropped by 4 x 4 pixels, re-encoded with the table, and the Y plane of that re-encoding.

    The crop breaks the 8 x 8 grid, so the re-encoded coefficients follow (approximately) the histogram a
    *single* compression with the file's table would give: the reference a double-compressed histogram departs
    from. Only the Y plane is read, and a JPEG encoder's Y of an RGB pixel is Pillow's ``convert("L")`` (libjpeg's
    fixed-point BT.601 weights), so the crop's luma, taken band by band, is re-encoded as a grayscale JPEG: the
    plane a colour re-encoding gives, with no copy of the image held beside it.
    """
    from PIL import Image

    height, width = rgb.shape[:2]
    luma = np.empty((height - 4, width - 4), np.uint8)
    for top in range(4, height, BAND_ROWS):
        band = np.ascontiguousarray(rgb[top:top + BAND_ROWS, 4:])
        luma[top - 4:top - 4 + band.shape[0]] = np.asarray(Image.fromarray(band).convert("L"))
    buf = io.BytesIO()
    Image.fromarray(luma).save(buf, format="JPEG", qtables=[[int(q) for q in table.ravel()]])
    del luma  # only the encoded bytes are held while the calibrated plane is decoded
    with Image.open(buf) as cal:
        return np.asarray(cal)


def abs_histogram(q: np.ndarray, half: int) -> np.ndarray:
    """Counts of ``|q|`` = 0..half (values beyond ``half`` clipped into the last bin)."""
    return np.bincount(np.minimum(np.abs(q), half).ravel(), minlength=half + 1).astype(np.float64)


class DoubleQuantizationDetector:
    """Aligned DQ: distance of the AC histograms to their calibrated single-compression estimate; Lin-style map.

    *Score* (Lukas and Fridrich [3]_): for the first ``frequencies`` zig-zag AC coefficients, the L1 distance
    between the normalised histogram of ``|round(DCT / Q)|`` (bins 1..``half_range``) of the file and of its
    calibrated re-compression, averaged, mapped linearly from [``low``, ``high``] to [0, 1].
    *Map* (Lin et al. [1]_, with the calibrated histogram as the single-compression model as in Bianchi and
    Piva [2]_): per 8 x 8 block, the posterior that its coefficients follow the single-compression histogram
    rather than the observed (double-compressed) one; tampered regions pasted after the first compression
    light up. The map is scaled by the score, so it stays dark for single-compressed files.

    ``image`` is the file's decoded RGB in its stored pixel grid (as the ``forensics`` stage and the evaluation
    harness pass it): the calibration re-encodes these pixels rather than decoding the file a second time. An image
    of another size than the file's is not applicable.
    """

    name: ClassVar[str] = "jpeg_dq"
    version: ClassVar[str] = "2.0"
    defaults: ClassVar[dict[str, Any]] = {"frequencies": 9, "half_range": 20, "low": 0.18, "high": 0.4}

    def analyze(self, image: np.ndarray, *, context: AnalysisContext | None = None,
                params: dict[str, Any] | None = None) -> DetectorResult:
        image, p, ctx = prepare(image, self.defaults, params, context)
        shape = image.shape[:2]
        luma = ctx.jpeg_luma()
        if luma is None or luma[0].shape != shape or min(shape) < 24:  # no JPEG, not its pixel grid, or too small
            return DetectorResult(score=0.0, map=np.zeros(map_shape(shape, ctx.map_max_pixels), np.float32),
                                  params=p,
                                  version=self.version, evidence={"applicable": False})
        y, tables = luma
        table = tables[0].reshape(8, 8)
        frequencies = ZIGZAG[1: 1 + int(p["frequencies"])]
        # the calibrated plane is dropped once its coefficients are taken, before the file's own are
        ref = block_coefficients(calibrated_luma(image, table), frequencies)
        coeffs = block_coefficients(y, frequencies)
        half = int(p["half_range"])
        log_ratio = np.zeros(coeffs.shape[1:], dtype=np.float64)
        distances = []
        for k, (u, v) in enumerate(frequencies):
            q = np.rint(coeffs[k] / table[u, v]).astype(np.int64)
            h_obs = abs_histogram(q, half)
            h_ref = abs_histogram(np.rint(ref[k] / table[u, v]).astype(np.int64), half)
            if h_obs[1:half].sum() < 20:
                continue
            n_obs, n_ref = h_obs[1:half] / h_obs[1:half].sum(), h_ref[1:half] / max(h_ref[1:half].sum(), 1.0)
            distances.append(float(np.abs(n_obs - n_ref).sum()))
            p_obs = (h_obs + 0.5) / (h_obs.sum() + 0.5 * h_obs.size)
            p_ref = (h_ref + 0.5) / (h_ref.sum() + 0.5 * h_ref.size)
            bins = np.minimum(np.abs(q), half)
            log_ratio += np.log(p_ref / p_obs)[bins] * (bins > 0)
        distance = float(np.mean(distances)) if distances else 0.0
        score = float(np.clip((distance - p["low"]) / (p["high"] - p["low"]), 0.0, 1.0))
        if score > 0:
            tampered = 1.0 / (1.0 + np.exp(-np.clip(cv2.blur(log_ratio, (3, 3)), -50, 50)))
            heat = placed_map((tampered * score).astype(np.float32), (tampered.shape[0] * 8, tampered.shape[1] * 8),
                              shape, ctx.map_max_pixels)
        else:
            heat = np.zeros(map_shape(shape, ctx.map_max_pixels), np.float32)
        return DetectorResult(score=score, map=heat, params=p, version=self.version,
                              evidence={"applicable": True, "calibrated_distance": round(distance, 5),
                                        "q_table_dc": float(table[0, 0])})


class JPEGGhostDetector:
    """Farid's JPEG ghosts: per-quality normalised block differences; the deepest local dip marks a ghost. The
    block differences are computed in tiles on the 8-pixel grid (a tile re-compresses as the whole image does)."""

    name: ClassVar[str] = "jpeg_ghost"
    version: ClassVar[str] = "1.0"
    defaults: ClassVar[dict[str, Any]] = {"qualities": [55, 65, 75, 85, 95], "block": 16, "z0": 3.0, "z1": 8.0}

    def analyze(self, image: np.ndarray, *, context: AnalysisContext | None = None,
                params: dict[str, Any] | None = None) -> DetectorResult:
        image, p, ctx = prepare(image, self.defaults, params, context)
        gray = ctx.gray(image)
        block = int(p["block"])

        def differences(tile: np.ndarray, where: Tile) -> np.ndarray:
            g = tile.astype(np.float32)
            squares = []
            for q in p["qualities"]:
                diff = g - ctx.recompressed_tile(image, tile, int(q)).astype(np.float32)
                squares.append(block_reduce(diff * diff, block))
            return np.stack(squares)

        curves = [d / (np.median(d) + 1e-6) for d in tiled(gray, grid_align(block), 0, differences)]
        stack = np.stack(curves)  # quality x rows x cols, each normalised by its image median
        profile = stack / (stack.max(axis=0, keepdims=True) + 1e-6)
        typical = np.median(profile.reshape(len(curves), -1), axis=1)[:, None, None]
        dip = (typical - profile).max(axis=0)
        heat = outlier_map(dip, float(p["z0"]), float(p["z1"]))
        ghost_q = np.asarray(p["qualities"])[(typical - profile).argmax(axis=0)]
        return DetectorResult(score=outlier_score(heat), map=image_map(heat, gray.shape, ctx.map_max_pixels),
                              params=p,
                              version=self.version,
                              evidence={"ghost_quality_mode": int(np.bincount(ghost_q[heat > 0.5].ravel()).argmax())
                                        if (heat > 0.5).any() else None})
