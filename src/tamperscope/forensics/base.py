"""The detector contract and the small helpers every classical detector shares.

A detector is a pure function of an RGB ``uint8`` array (plus an :class:`AnalysisContext` carrying the original
encoded bytes where a method needs them) to a :class:`DetectorResult`: a score in [0, 1] (higher = more likely
manipulated), a ``float32`` map at image resolution (or scaled down to the context's ``map_max_pixels``, see
:func:`map_shape`), the parameters used and the detector version.

Detectors whose statistics are local (ELA, noise, SRM, resampling, JPEG traces) work at full resolution in
tiles (:func:`tiled`) aligned to their blocks and to the 8-pixel JPEG grid, so their working memory is bounded
by the tile, not by the image; only the block-level statistics of the whole image are kept.
"""

from __future__ import annotations

import io
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import cv2
import numpy as np


@dataclass(frozen=True)
class DetectorResult:
    """What one detector says about one image.

    Attributes
    ----------
    score : float
        Image-level manipulation score in [0, 1].
    map : numpy.ndarray
        ``float32`` localisation map in [0, 1] (higher = more suspicious), at image resolution, or scaled down to
        :func:`map_shape` when the context bounds ``map_max_pixels`` (its scale is its shape over the image's).
    params : dict
        The parameters the detector ran with.
    version : str
        The detector version.
    evidence : dict
        Optional extra, JSON-serialisable findings (estimated periods, match counts, ...).
    """

    score: float
    map: np.ndarray
    params: dict[str, Any]
    version: str
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass
class AnalysisContext:
    """Inputs beyond the pixels, and a per-image cache shared by detectors (e.g. re-compressions).

    Parameters
    ----------
    jpeg_bytes : bytes or None
        The original encoded file when it is a JPEG; needed by the double-quantisation detector.
    map_max_pixels : int or None
        Most pixels of a map (:func:`map_shape`; e.g. :data:`MAP_MAX_PIXELS`); None: maps at image resolution.
    """

    jpeg_bytes: bytes | None = None
    map_max_pixels: int | None = None
    _cache: dict[Any, Any] = field(default_factory=dict, repr=False)

    def gray(self, image: np.ndarray) -> np.ndarray:
        """The BT.601 luma of ``image`` as ``uint8`` (cached per image)."""
        key = ("gray", id(image))
        if key not in self._cache:
            self._cache[key] = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        return self._cache[key]  # type: ignore[no-any-return]

    def recompressed(self, image: np.ndarray, quality: int) -> np.ndarray:
        """``gray(image)`` re-encoded as a baseline JPEG at ``quality`` and decoded again (cached)."""
        key = ("jpeg", id(image), quality)
        if key not in self._cache:
            self._cache[key] = jpeg_roundtrip(self.gray(image), quality)
        return self._cache[key]  # type: ignore[no-any-return]

    def recompressed_tile(self, image: np.ndarray, tile: np.ndarray, quality: int) -> np.ndarray:
        """A tile of ``gray(image)`` (starting on the 8-pixel grid) re-encoded at ``quality``: the whole image's
        cached re-compression when the tile is the whole image, else the tile's own, not cached (an 8 x 8 block
        re-compresses alike in both; only partial blocks at the tile's edge, in its halo, differ)."""
        if tile.shape == image.shape[:2]:
            return self.recompressed(image, quality)
        return jpeg_roundtrip(tile, quality)

    def jpeg_luma(self) -> tuple[np.ndarray, list[np.ndarray]] | None:
        """The decoder's own Y plane and the quantisation tables of :attr:`jpeg_bytes`, or ``None``."""
        if self.jpeg_bytes is None:
            return None
        if "luma" not in self._cache:
            from PIL import Image, JpegImagePlugin

            with Image.open(io.BytesIO(self.jpeg_bytes)) as img:
                if not isinstance(img, JpegImagePlugin.JpegImageFile) or img.format != "JPEG":
                    self._cache["luma"] = None
                else:
                    tables = [np.asarray(t, dtype=np.float64) for _, t in sorted(img.quantization.items())]
                    img.draft("L", img.size)
                    y = np.asarray(img.convert("L"))
                    self._cache["luma"] = (y, tables)
        return self._cache["luma"]  # type: ignore[no-any-return]


def jpeg_roundtrip(gray: np.ndarray, quality: int) -> np.ndarray:
    """A ``uint8`` gray array encoded as a baseline JPEG at ``quality`` and decoded again."""
    ok, buf = cv2.imencode(".jpg", gray, [cv2.IMWRITE_JPEG_QUALITY, quality])
    decoded = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE) if ok else None
    if decoded is None:  # pragma: no cover - OpenCV always encodes and decodes uint8 gray
        raise ValueError("JPEG re-encoding failed")
    return decoded


class Detector(Protocol):
    """A classical forensic detector: pixels (and context) in, score and map out."""

    name: ClassVar[str]
    version: ClassVar[str]
    defaults: ClassVar[dict[str, Any]]

    def analyze(self, image: np.ndarray, *, context: AnalysisContext | None = None,
                params: dict[str, Any] | None = None) -> DetectorResult: ...


#: the smallest side any detector accepts (:func:`check_image`); a detector may declare a larger ``min_side``
MIN_SIDE = 16


def min_side(detector: Detector) -> int:
    """The smallest image side ``detector`` can analyse (its ``min_side``, at least :data:`MIN_SIDE`)."""
    return max(MIN_SIDE, int(getattr(detector, "min_side", MIN_SIDE)))


def not_applicable(detector: Detector, image: np.ndarray, reason: str,
                   map_max_pixels: int | None = None) -> DetectorResult:
    """The result of a detector that cannot judge ``image`` (e.g. too small): no score, an empty map."""
    return DetectorResult(score=0.0, map=np.zeros(map_shape(image.shape, map_max_pixels), np.float32),
                          params=dict(detector.defaults),
                          version=detector.version, evidence={"applicable": False, "reason": reason})


def check_image(image: np.ndarray) -> np.ndarray:
    """Validate an RGB ``uint8`` H x W x 3 array (gray arrays are expanded), returning it C-contiguous."""
    if image.dtype != np.uint8:
        raise ValueError(f"image: expected uint8, got {image.dtype}")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image: expected H x W x 3, got shape {image.shape}")
    if min(image.shape[:2]) < MIN_SIDE:
        raise ValueError(f"image: at least {MIN_SIDE} x {MIN_SIDE} pixels needed, got {image.shape[:2]}")
    return np.ascontiguousarray(image)


def merge_params(defaults: dict[str, Any], params: dict[str, Any] | None) -> dict[str, Any]:
    """Defaults overridden by ``params``; unknown keys raise ``ValueError``."""
    merged = dict(defaults)
    for key, value in (params or {}).items():
        if key not in defaults:
            raise ValueError(f"params: unknown parameter {key!r}; known: {', '.join(sorted(defaults))}")
        merged[key] = value
    return merged


def prepare(image: np.ndarray, defaults: dict[str, Any], params: dict[str, Any] | None,
            context: AnalysisContext | None) -> tuple[np.ndarray, dict[str, Any], AnalysisContext]:
    """The start of every ``analyze``: the validated image, the merged parameters and a context to cache in."""
    return check_image(image), merge_params(defaults, params), context or AnalysisContext()


def block_reduce(values: np.ndarray, block: int, func: str = "mean") -> np.ndarray:
    """Reduce non-overlapping ``block`` x ``block`` tiles of a 2-D array (edges cropped) by mean or median."""
    h, w = (values.shape[0] // block) * block, (values.shape[1] // block) * block
    if func == "mean":
        # an exact-multiple INTER_AREA resize is the tile mean, without the copy a reshape would make
        cropped = np.ascontiguousarray(values[:h, :w], dtype=np.float32)
        return cv2.resize(cropped, (w // block, h // block), interpolation=cv2.INTER_AREA)
    tiles = values[:h, :w].reshape(h // block, block, w // block, block).swapaxes(1, 2).reshape(
        h // block, w // block, block * block)
    return np.median(tiles, axis=2)


def upsample(values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a (block-level) map to ``shape`` (H, W) with bilinear interpolation, as ``float32`` clipped to [0, 1]
    in place (one map-sized array)."""
    resized = cv2.resize(np.asarray(values, dtype=np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    return np.clip(resized, 0.0, 1.0, out=resized)


#: the most pixels of a map the ``forensics`` stage stores (4096 x 3072: a 12 MP photo's maps stay at full size;
#: at most 48 MiB per map whatever the image), above the block resolution of every detector up to 50 MP (16-pixel
#: blocks of a 7000-pixel side are 438 across, its maps 3547 pixels); the detectors work at full resolution
MAP_MAX_PIXELS = 4096 * 3072


def map_shape(shape: tuple[int, ...], max_pixels: int | None = None) -> tuple[int, int]:
    """The (H, W) of the map of an image of ``shape``: the image's own, or scaled (aspect kept) to at most
    ``max_pixels`` when it has more."""
    height, width = shape[:2]
    if max_pixels is None or height * width <= max_pixels:
        return height, width
    scale = math.sqrt(max_pixels / (height * width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def image_map(values: np.ndarray, shape: tuple[int, ...], max_pixels: int | None = None) -> np.ndarray:
    """A block-level map stretched over an image of ``shape``, at :func:`map_shape`."""
    return upsample(values, map_shape(shape, max_pixels))


def placed_map(values: np.ndarray, covered: tuple[int, int], shape: tuple[int, ...],
               max_pixels: int | None = None) -> np.ndarray:
    """A block-level map of the top-left ``covered`` (H, W) pixels of an image of ``shape`` (its whole blocks),
    upsampled there and zero beyond, at :func:`map_shape`."""
    out = np.zeros(map_shape(shape, max_pixels), np.float32)
    rows = min(out.shape[0], round(covered[0] * out.shape[0] / shape[0]))
    cols = min(out.shape[1], round(covered[1] * out.shape[1] / shape[1]))
    if rows and cols:
        out[:rows, :cols] = upsample(values, (rows, cols))
    return out


#: side of the tiles local detectors work in, before alignment (:func:`tiled`); a tile is at most twice this
TILE = 1024


@dataclass(frozen=True)
class Tile:
    """One tile of an image: ``outer`` (row and column slices of the image, halo included) and ``inner`` (the
    tile proper, as slices of the ``outer`` crop). Inner edges lie on multiples of the alignment."""

    outer: tuple[slice, slice]
    inner: tuple[slice, slice]


def _edges(length: int, step: int) -> list[int]:
    """Tile edges along one axis: multiples of ``step``, the last tile taking the remainder (up to 2 steps)."""
    return [i * step for i in range(max(1, length // step))] + [length]


def tiles(shape: tuple[int, ...], align: int, halo: int = 0, size: int | None = None) -> list[list[Tile]]:
    """The tiles of an image of ``shape`` as rows of a grid: inner edges on multiples of ``align`` (a block size,
    the JPEG grid), ``halo`` pixels of context around each (clipped at the image's edge, where a filter then sees
    the same border as on the whole image). One tile when the image is shorter than two tiles (``size``, default
    :data:`TILE`) each way."""
    size = TILE if size is None else size
    step = max(align, size // align * align)
    rows, cols = _edges(shape[0], step), _edges(shape[1], step)
    grid = []
    for r0, r1 in itertools.pairwise(rows):
        row = []
        for c0, c1 in itertools.pairwise(cols):
            o_r0, o_c0 = max(0, r0 - halo), max(0, c0 - halo)
            outer = (slice(o_r0, min(shape[0], r1 + halo)), slice(o_c0, min(shape[1], c1 + halo)))
            row.append(Tile(outer, (slice(r0 - o_r0, r1 - o_r0), slice(c0 - o_c0, c1 - o_c0))))
        grid.append(row)
    return grid


def tiled(values: np.ndarray, align: int, halo: int, func: Callable[[np.ndarray, Tile], np.ndarray]) -> np.ndarray:
    """``func(outer_crop, tile)`` on every tile of ``values`` (see :func:`tiles`), each giving block-level
    statistics of its inner part with the blocks on its last two axes, joined into the whole image's.

    ``align`` must be a multiple of the block size, so the tiles' blocks are the image's blocks; the last tile of
    a row or column takes the partial block the whole-image statistic would crop, and crops it alike.
    """
    grid = [[func(values[t.outer], t) for t in row] for row in tiles(values.shape, align, halo)]
    return np.concatenate([np.concatenate(row, axis=-1) for row in grid], axis=-2)


def grid_align(*blocks: int) -> int:
    """The least common multiple of block sizes and the 8-pixel JPEG grid: the alignment of tiles."""
    return math.lcm(8, *blocks)


def evenly_spread(count: int, keep: int) -> np.ndarray:
    """Indices of at most ``keep`` of ``count`` items, evenly spread and deterministic (first and last kept)."""
    return np.unique(np.linspace(0, count - 1, min(keep, count)).round().astype(int))


def robust_z(values: np.ndarray) -> np.ndarray:
    """``(x - median) / (1.4826 MAD)`` with a floor on the scale, for outlier maps."""
    med = float(np.median(values))
    mad = float(np.median(np.abs(values - med))) * 1.4826
    return (values - med) / max(mad, 1e-6 + 1e-3 * abs(med))


def outlier_map(values: np.ndarray, z0: float = 2.0, z1: float = 6.0) -> np.ndarray:
    """Map robust z-scores linearly from [z0, z1] to [0, 1] (one-sided: only high values are suspicious)."""
    return np.clip((robust_z(values) - z0) / (z1 - z0), 0.0, 1.0)


def outlier_score(heat: np.ndarray, min_fraction: float = 0.005) -> float:
    """Image-level score of a [0, 1] heat map: the mean heat of its top ``max(min_fraction, 2 %)`` cells.

    A compact suspicious region of at least ``min_fraction`` of the image drives the score towards 1; uniform
    or scattered low heat keeps it low.
    """
    flat = np.sort(heat.ravel())[::-1]
    k = max(1, round(max(min_fraction, 0.02) * flat.size))
    return float(np.clip(flat[:k].mean(), 0.0, 1.0))
