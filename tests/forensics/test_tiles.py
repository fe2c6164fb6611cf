"""Bounded memory at full resolution: tiled detectors give the whole image's results, maps of long images are
scaled to ``map_max_pixels`` when asked, and the working memory of the local detectors follows the tile, not the
image."""

import io
import tracemalloc

import cv2
import numpy as np
import pytest
from PIL import Image

from tamperscope.forensics import analyze_image, base, copymove, load_detector
from tamperscope.forensics.base import AnalysisContext, map_shape, tiles
from tamperscope.forensics.jpeg import ZIGZAG, block_coefficients, block_dct

LOCAL = ["ela", "noise", "srm", "spectrum", "jpeg_dq", "jpeg_ghost"]


def _double_jpeg(height: int, width: int, seed: int = 0) -> tuple[np.ndarray, bytes]:
    """A textured photo-like image saved at quality 70 then 90 (double quantisation), with its bytes."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    image = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    image = np.clip(image + rng.normal(0, 3, image.shape), 0, 255).astype(np.uint8)
    first, second = io.BytesIO(), io.BytesIO()
    Image.fromarray(image).save(first, "JPEG", quality=70)
    Image.open(first).save(second, "JPEG", quality=90)
    data = second.getvalue()
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")), data


@pytest.mark.parametrize("shape", [(300, 460), (517, 263), (96, 1000)])
def test_tiles_cover_the_image_once_with_aligned_inner_edges(shape: tuple[int, int]) -> None:
    seen = np.zeros(shape, np.int32)
    for row in tiles(shape, 32, halo=8, size=64):
        for tile in row:
            rows = range(*tile.outer[0].indices(shape[0]))[tile.inner[0]]
            cols = range(*tile.outer[1].indices(shape[1]))[tile.inner[1]]
            seen[rows.start:rows.stop, cols.start:cols.stop] += 1
            assert rows.start % 32 == 0 and cols.start % 32 == 0
            assert tile.outer[0].start % 8 == 0 and tile.outer[1].start % 8 == 0  # the JPEG grid, halo included
    assert (seen == 1).all()


def test_tiled_detectors_match_the_whole_image(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiles of 64 px (many, with remainders) against one tile: same scores, evidence and maps."""
    image, data = _double_jpeg(333, 517)
    whole = analyze_image(image, jpeg_bytes=data, names=LOCAL)
    monkeypatch.setattr(base, "TILE", 64)
    assert len(tiles(image.shape, 16)) > 4
    tiled = analyze_image(image, jpeg_bytes=data, names=LOCAL)
    assert whole["jpeg_dq"].score > 0  # the double-quantisation path with its map is exercised
    for name in LOCAL:
        assert tiled[name].score == pytest.approx(whole[name].score, abs=1e-6), name
        assert tiled[name].evidence.keys() == whole[name].evidence.keys()
        np.testing.assert_allclose(tiled[name].map, whole[name].map, atol=1e-5, err_msg=name)


def test_block_coefficients_are_those_of_the_block_dct(monkeypatch: pytest.MonkeyPatch) -> None:
    y = np.random.default_rng(3).integers(0, 255, (203, 150), dtype=np.uint8)
    monkeypatch.setattr(base, "TILE", 48)
    frequencies = ZIGZAG[1:10]
    coefficients = block_coefficients(y, frequencies)
    full = block_dct(y)
    assert coefficients.shape == (9, 25, 18)
    for k, (u, v) in enumerate(frequencies):
        np.testing.assert_array_equal(coefficients[k], full[:, :, u, v])


def test_maps_of_long_images_are_scaled_to_the_map_side_with_the_same_scores() -> None:
    image, data = _double_jpeg(240, 400)
    full = analyze_image(image, jpeg_bytes=data)
    assert all(result.map.shape == image.shape[:2] for result in full.values())  # by default: image resolution
    assert map_shape(image.shape, 96 * 160) == (96, 160) and map_shape(image.shape, 240 * 400) == (240, 400)
    bounded = analyze_image(image, jpeg_bytes=data, map_max_pixels=96 * 160)
    for name, result in bounded.items():
        assert result.map.shape == (96, 160) and result.map.dtype == np.float32, name
        assert result.score == full[name].score, name
        assert result.map.min() >= 0.0 and result.map.max() <= 1.0
        # the scaled map is the full one seen from afar
        shrunk = cv2.resize(full[name].map, (160, 96), interpolation=cv2.INTER_AREA)
        assert np.abs(shrunk - result.map).mean() < 0.05, name


def test_g2nn_matches_do_not_depend_on_the_row_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    descriptors = rng.normal(0, 1, (120, 16)).astype(np.float32)
    descriptors[60:80] = descriptors[:20] + rng.normal(0, 0.01, (20, 16))  # near copies: accepted matches
    whole = copymove.g2nn_matches(descriptors)
    monkeypatch.setattr(copymove, "MATCH_ROWS", 7)
    assert len(whole) >= 20
    np.testing.assert_array_equal(copymove.g2nn_matches(descriptors), whole)


@pytest.mark.parametrize("name", ["ela", "noise", "srm", "spectrum", "jpeg_ghost"])
def test_local_detectors_hold_a_tile_not_the_image(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a 3000 x 3000 image in 256-pixel tiles, with maps of at most 256 x 256 pixels, a local detector's NumPy
    and OpenCV allocations peak below one byte per image pixel plus 16 MiB (the fixed 512 x 512 FFT of the
    spectrum's azimuthal check): a float32 copy of the image alone would take four bytes per pixel."""
    monkeypatch.setattr(base, "TILE", 256)
    image = np.random.default_rng(7).integers(0, 255, (3000, 3000, 3), dtype=np.uint8)
    context = AnalysisContext(map_max_pixels=256 * 256)
    context.gray(image)
    tracemalloc.start()
    try:
        load_detector(name).analyze(image, context=context)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < image.shape[0] * image.shape[1] + (16 << 20), f"{name}: {peak / 2**20:.1f} MiB"
