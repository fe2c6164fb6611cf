"""Still images: EXIF orientation (arrays, points, decoded frames), Pillow's exact pixels, memory, detail renderings."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from tamperscope.media.image import BAND_ROWS, decode_rgb, image_frame, read_image, read_stored_image
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


def _textured(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _jpeg(path: Path, pixels: np.ndarray, orientation: int = 1) -> Path:
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(pixels).save(path, exif=exif, quality=90)
    return path


@pytest.mark.parametrize("orientation", range(1, 9))
def test_decoding_keeps_pillows_pixels_for_every_orientation(tmp_path: Path, orientation: int) -> None:
    """The banded decode gives exactly Pillow's whole-image RGB conversion, turned by :func:`upright`."""
    path = _jpeg(tmp_path / "photo.jpg", _textured(2 * BAND_ROWS + 13, 41), orientation)  # 3 bands, not square
    with Image.open(path) as image:
        whole = np.asarray(image.convert("RGB"))
    with Image.open(path) as image:
        turned, found = decode_rgb(image, turn=True)
    assert found == orientation
    np.testing.assert_array_equal(turned, upright(whole, orientation))
    stored = read_stored_image(path)
    assert stored.orientation == orientation and stored.jpeg == path.read_bytes()
    np.testing.assert_array_equal(stored.rgb, whole)
    assert not stored.rgb.flags.writeable  # shared by the stages
    frame, reference = read_image(path, long_side=64, detail_long_side=200), image_frame(turned, long_side=64,
                                                                                      detail_long_side=200)
    assert frame.detail is not None and reference.detail is not None
    np.testing.assert_array_equal(frame.rgb, reference.rgb)
    np.testing.assert_array_equal(frame.detail(), reference.detail())


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGBA", "CMYK", "I;16", "I", "F"])
def test_every_mode_decodes_to_pillows_rgb(tmp_path: Path, mode: str) -> None:
    """Bands converted one by one give the pixels of converting the whole image (palette, alpha, CMYK, 16 bit)."""
    path = tmp_path / "image.tiff"
    source = Image.fromarray(_textured(BAND_ROWS + 7, 23))
    (source.convert(mode) if mode in ("1", "L", "P", "RGBA", "CMYK") else source.convert("L").convert(mode)).save(path)
    with Image.open(path) as image:
        assert image.mode == mode
        whole = np.asarray(image.convert("RGB"))
    with Image.open(path) as image:
        np.testing.assert_array_equal(decode_rgb(image, turn=False)[0], whole)


@pytest.mark.parametrize("orientation", [1, 6])
def test_decoding_holds_one_full_size_array(tmp_path: Path, orientation: int) -> None:
    """Python-side memory (NumPy arrays and bytes; tracemalloc does not see Pillow's own C image) peaks at the
    RGB array, the file's bytes and a band's two copies: no converted copy, no ``tobytes`` buffer of the whole
    image, no turned copy (each another full array)."""
    path = _jpeg(tmp_path / "big.jpg", _textured(2000, 2000), orientation)
    array_bytes, band_bytes, file_bytes = 2000 * 2000 * 3, BAND_ROWS * 2000 * 3, path.stat().st_size
    tracemalloc.start()
    try:
        stored = read_stored_image(path)
        stored_peak = tracemalloc.get_traced_memory()[1]
        del stored
        tracemalloc.reset_peak()
        read_image(path, long_side=256)
        upright_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert stored_peak < array_bytes + 3 * band_bytes + file_bytes
    assert upright_peak < array_bytes + 3 * band_bytes

