"""The detector registry: name -> lazily imported class. ``tests/forensics/test_registry.py`` loads every one."""

from __future__ import annotations

import importlib

from tamperscope.errors import UsageError
from tamperscope.forensics.base import Detector

DETECTORS: dict[str, str] = {
    "ela": "tamperscope.forensics.ela:ELADetector",
    "noise": "tamperscope.forensics.noise:NoiseDetector",
    "srm": "tamperscope.forensics.srm:SRMDetector",
    "spectrum": "tamperscope.forensics.spectrum:SpectrumDetector",
    "lbp": "tamperscope.forensics.lbp:LBPDetector",
    "copymove_keypoint": "tamperscope.forensics.copymove:KeypointCopyMoveDetector",
    "copymove_block": "tamperscope.forensics.copymove:BlockCopyMoveDetector",
    "jpeg_dq": "tamperscope.forensics.jpeg:DoubleQuantizationDetector",
    "jpeg_ghost": "tamperscope.forensics.jpeg:JPEGGhostDetector",
}


def load_detector(name: str) -> Detector:
    """Instantiate the detector registered as ``name``."""
    try:
        target = DETECTORS[name]
    except KeyError as exc:
        raise UsageError(f"unknown detector {name!r}; known: {', '.join(DETECTORS)}") from exc
    module_name, _, class_name = target.partition(":")
    detector: Detector = getattr(importlib.import_module(module_name), class_name)()
    return detector


def all_detectors(names: list[str] | None = None) -> list[Detector]:
    """Every registered detector (or the named ones), in registry order."""
    return [load_detector(name) for name in (names or list(DETECTORS))]
