"""The PNG writer: standard decoders read back exactly the pixels written."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data

from tamperscope.media.png import encode_png


@pytest.mark.parametrize("shape", [(288, 512, 3), (1, 1, 3), (7, 3, 3)])
def test_round_trip_is_lossless(shape: tuple[int, int, int]) -> None:
    rgb = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    png = encode_png(rgb)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png))), rgb)
    assert np.array_equal(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)[..., ::-1], rgb)


def test_compresses_natural_images() -> None:
    photo = np.ascontiguousarray(data.astronaut())
    png = encode_png(photo, level=1)
    assert len(png) < 0.75 * photo.nbytes
    Image.open(io.BytesIO(png)).verify()


def test_rejects_non_rgb() -> None:
    with pytest.raises(ValueError):
        encode_png(np.zeros((4, 4), np.uint8))
