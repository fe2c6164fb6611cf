"""Benchmark: every forensic detector on a 12 MP JPEG (scikit-image's astronaut up-scaled to 4000 x 3000).

Prints per-detector seconds, the total, and ratios to decoding the JPEG once (the baseline, same process).
Run on 2 cores: ``taskset -c 0,1 .venv/bin/python bench/forensics.py``.
"""

from __future__ import annotations

import io
import time

import cv2
import numpy as np
from PIL import Image
from skimage import data

from tamperscope.forensics.base import AnalysisContext
from tamperscope.forensics.registry import all_detectors


def make_jpeg(width: int = 4000, height: int = 3000, quality: int = 90) -> bytes:
    """A 12 MP JPEG: the astronaut tiled with its mirror (to a 4:3 frame) and up-scaled, with mild noise."""
    base = np.concatenate([data.astronaut(), data.astronaut()[:, ::-1]], axis=1)
    big = cv2.resize(base, (width, height), interpolation=cv2.INTER_CUBIC)
    noise = np.random.default_rng(0).normal(0, 2.0, big.shape)
    big = np.clip(big + noise, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(big).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def decode(raw: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(raw)) as img:
        return np.asarray(img.convert("RGB"))


def main() -> None:
    raw = make_jpeg()
    decode(raw)
    t0 = time.perf_counter()
    image = decode(raw)
    t_decode = time.perf_counter() - t0
    print(f"image {image.shape[1]}x{image.shape[0]} ({image.shape[0] * image.shape[1] / 1e6:.1f} MP), "
          f"{len(raw) / 1e6:.1f} MB JPEG; decode once: {t_decode:.3f} s")
    context = AnalysisContext(jpeg_bytes=raw)
    total = 0.0
    print(f"{'detector':20s} {'seconds':>8s} {'x decode':>9s} {'score':>6s}")
    for detector in all_detectors():
        t0 = time.perf_counter()
        result = detector.analyze(image, context=context)
        dt = time.perf_counter() - t0
        total += dt
        assert result.map.shape == image.shape[:2]
        print(f"{detector.name:20s} {dt:8.3f} {dt / t_decode:9.1f} {result.score:6.3f}")
    print(f"{'total':20s} {total:8.3f} {total / t_decode:9.1f}   (goal <= 3 s)")


if __name__ == "__main__":
    main()
