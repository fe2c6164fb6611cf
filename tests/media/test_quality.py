"""Quality signals: sharpness falls with blur, luminance, pHash near-duplicates within a shot."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from tamperscope.media.quality import frame_quality, mark_near_duplicates, phash_distance, quality_weight


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.ascontiguousarray(data.astronaut()[::2, ::2])


def test_blur_measure_falls_with_blur(image: np.ndarray) -> None:
    sharp = frame_quality(image)
    soft = frame_quality(cv2.GaussianBlur(image, (0, 0), 2.0))
    assert soft.blur < sharp.blur / 4
    assert soft.weight < sharp.weight
    assert 0.0 <= soft.weight <= 1.0


def test_luminance_and_exposure_weight() -> None:
    black = np.zeros((64, 64, 3), np.uint8)
    assert frame_quality(black).luminance == 0.0
    assert frame_quality(black).weight == 0.0
    assert quality_weight(500.0, 0.5) > quality_weight(500.0, 0.95)


def test_phash_separates_different_images_and_matches_small_changes(image: np.ndarray) -> None:
    base = frame_quality(image).phash
    noisy = np.clip(image.astype(int) + np.random.default_rng(0).integers(-4, 5, image.shape), 0, 255)
    assert phash_distance(base, frame_quality(noisy.astype(np.uint8)).phash) <= 4
    other = np.ascontiguousarray(data.coffee()[::2, ::2])
    assert phash_distance(base, frame_quality(other).phash) > 16


def test_near_duplicates_point_to_the_reference() -> None:
    hashes = ["0000000000000000", "0000000000000001", "ffffffffffffffff", "fffffffffffffff0", "0000000000000003"]
    marks = mark_near_duplicates(["a", "b", "c", "d", "e"], hashes, 4)
    assert marks == [None, "a", None, "c", None]
    with pytest.raises(ValueError):
        mark_near_duplicates(["a"], [], 4)


def test_rejects_non_rgb() -> None:
    with pytest.raises(ValueError):
        frame_quality(np.zeros((8, 8), np.uint8))
