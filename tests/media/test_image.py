"""Still images: EXIF orientation (arrays, points, decoded frames) and detail renderings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from tamperscope.media.image import read_image
from tamperscope.media.orientation import exif_orientation, upright, upright_points


def test_image_is_read_upright(tmp_path: Path) -> None:
    pixels = np.zeros((100, 200, 3), dtype=np.uint8)
    pixels[:, :100] = (255, 0, 0)
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display needs a 90 degree clockwise turn
    Image.fromarray(pixels).save(path, exif=exif, quality=95)
    frame = read_image(path, long_side=64)
    assert frame.rgb.shape == (64, 32, 3)
    assert frame.rgb[:20, :, 0].mean() > 200 and frame.rgb[-20:, :, 0].mean() < 60
    assert frame.key and frame.t_ms == 0


@pytest.mark.parametrize("orientation", range(1, 9))
def test_upright_turns_arrays_as_pillow_turns_images(orientation: int) -> None:
    pixels = np.random.default_rng(orientation).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    image.getexif()[0x0112] = orientation
    assert exif_orientation(image) == orientation
    expected = np.asarray(ImageOps.exif_transpose(image))
    np.testing.assert_array_equal(upright(pixels, orientation), expected)
    np.testing.assert_array_equal(upright(pixels[:, :, 0], orientation), expected[:, :, 0])  # a map


@pytest.mark.parametrize("orientation", range(1, 9))
def test_points_move_with_the_pixels_they_name(orientation: int) -> None:
    height, width = 5, 7
    stored = np.arange(height * width).reshape(height, width)  # every pixel names itself
    turned = upright(stored, orientation)
    ys, xs = np.mgrid[0:height, 0:width]
    points = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(float)
    moved = upright_points(points, orientation, width, height).astype(int)
    np.testing.assert_array_equal(turned[moved[:, 1], moved[:, 0]], stored[ys.ravel(), xs.ravel()])


def test_image_detail(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.fromarray(np.zeros((600, 1200, 3), np.uint8)).save(path)
    frame = read_image(path, long_side=300, detail_long_side=900)
    assert frame.detail is not None and frame.detail().shape == (450, 900, 3)
    assert read_image(path, long_side=300).detail is None
