"""Classical image forensics: one detector per module behind a small registry.

Detectors (``registry.DETECTORS``): ``ela`` (error level analysis), ``noise`` (NOI local noise level),
``srm`` (rich-model residuals), ``spectrum`` (resampling periodicity, azimuthal spectrum), ``lbp`` (texture),
``copymove_keypoint`` (SIFT g2NN + RANSAC), ``copymove_block`` (DCT blocks), ``jpeg_dq`` (aligned double
quantisation), ``jpeg_ghost`` (JPEG ghosts). Each is a pure ``analyze(image, *, context, params)`` returning a
:class:`~tamperscope.forensics.base.DetectorResult`; :func:`analyze_image` runs them all. The pipeline stage
lives in :mod:`tamperscope.stages.forensics`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from tamperscope.forensics.base import AnalysisContext, Detector, DetectorResult, min_side, not_applicable
from tamperscope.forensics.registry import DETECTORS, all_detectors, load_detector

__all__ = ["DETECTORS", "AnalysisContext", "Detector", "DetectorResult", "all_detectors", "analyze_image",
           "iter_analyze", "load_detector"]


def iter_analyze(image: np.ndarray, *, jpeg_bytes: bytes | None = None, names: list[str] | None = None,
                 params: dict[str, dict[str, Any]] | None = None, between: Callable[[], None] | None = None,
                 map_max_pixels: int | None = None) -> Iterator[tuple[str, DetectorResult]]:
    """Run the registered detectors (or ``names``) on one RGB ``uint8`` image one after the other, sharing one
    context, yielding ``(name, result)`` as each finishes: a caller that stores each map and drops it holds one
    map at a time.

    A detector that needs a larger image than this one gets a ``not_applicable`` result, never an exception.
    ``between`` is called before each detector (a stage's budget check, which may raise to stop); maps of more than
    ``map_max_pixels`` pixels are scaled down to it (:func:`~tamperscope.forensics.base.map_shape`).
    """
    context = AnalysisContext(jpeg_bytes=jpeg_bytes, map_max_pixels=map_max_pixels)
    side = min(image.shape[:2])
    for d in all_detectors(names):
        if between is not None:
            between()
        yield d.name, (d.analyze(image, context=context, params=(params or {}).get(d.name)) if side >= min_side(d)
                       else not_applicable(d, image, f"the image's short side is {side} px; {min_side(d)} px needed",
                                            map_max_pixels))


def analyze_image(image: np.ndarray, *, jpeg_bytes: bytes | None = None, names: list[str] | None = None,
                  params: dict[str, dict[str, Any]] | None = None, between: Callable[[], None] | None = None,
                  map_max_pixels: int | None = None) -> dict[str, DetectorResult]:
    """Every result of :func:`iter_analyze` at once, by detector name."""
    return dict(iter_analyze(image, jpeg_bytes=jpeg_bytes, names=names, params=params, between=between,
                             map_max_pixels=map_max_pixels))
