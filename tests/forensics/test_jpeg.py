import io
from typing import Any

import numpy as np
import pytest
from PIL import Image
from skimage import data

from tamperscope.forensics.base import AnalysisContext
from tamperscope.forensics.jpeg import DoubleQuantizationDetector, abs_histogram, block_dct, calibrated_luma


def _encode(image: np.ndarray, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _decode(raw: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"))


def test_block_dct_is_orthonormal() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 256, size=(16, 16)).astype(np.uint8)
    coeffs = block_dct(y)
    assert np.allclose((coeffs ** 2).sum(), ((y.astype(float) - 128) ** 2).sum())


def test_calibration_and_histogram_helpers() -> None:
    assert abs_histogram(np.array([-3, 0, 1, 25]), 20).tolist()[:4] == [1, 1, 0, 1]
    assert abs_histogram(np.array([-3, 0, 1, 25]), 20)[20] == 1
    raw = _encode(data.coffee(), 80)
    with Image.open(io.BytesIO(raw)) as img:
        table = np.asarray(img.quantization[0])
    cal = calibrated_luma(_decode(raw), table)
    assert cal.shape == (396, 596) and cal.dtype == np.uint8


def test_double_compression_scores_higher_than_single() -> None:
    image = data.coffee()
    single = _encode(image, 90)
    double = _encode(_decode(_encode(image, 70)), 90)
    det = DoubleQuantizationDetector()
    s1 = det.analyze(_decode(single), context=AnalysisContext(jpeg_bytes=single))
    s2 = det.analyze(_decode(double), context=AnalysisContext(jpeg_bytes=double))
    assert s2.evidence["calibrated_distance"] > 2 * s1.evidence["calibrated_distance"]
    assert s2.score > 0.5 > s1.score
    none = det.analyze(image)
    assert none.evidence == {"applicable": False} and none.score == 0.0
    png = io.BytesIO()
    Image.fromarray(image).save(png, "PNG")
    assert det.analyze(image, context=AnalysisContext(jpeg_bytes=png.getvalue())).evidence == {"applicable": False}
    # pixels of another grid than the file's (e.g. turned upright) are not its decoded image: not applicable
    turned = det.analyze(np.ascontiguousarray(_decode(double).swapaxes(0, 1)),
                         context=AnalysisContext(jpeg_bytes=double))
    assert turned.evidence == {"applicable": False} and turned.map.shape == image.shape[1::-1]


def _colour_calibration(raw: bytes) -> np.ndarray:
    """The calibration by its definition (and the previous implementation): the file decoded, cropped by 4 x 4,
    re-encoded whole as a colour JPEG with all the file's tables, and the Y plane of that re-encoding."""
    with Image.open(io.BytesIO(raw)) as img:
        tables = [list(t) for _, t in sorted(img.quantization.items())]
        cropped = img.convert("RGB").crop((4, 4, *img.size))
    buf = io.BytesIO()
    cropped.save(buf, format="JPEG", qtables=tables)
    with Image.open(buf) as cal:
        cal.draft("L", cal.size)
        return np.asarray(cal.convert("L"))


@pytest.mark.parametrize(("mode", "options"), [
    ("RGB", {"quality": 80}), ("RGB", {"quality": 60, "subsampling": 0}), ("RGB", {"quality": 92, "subsampling": 1}),
    ("RGB", {"quality": 75, "progressive": True}), ("L", {"quality": 85}), ("CMYK", {"quality": 90})])
def test_calibrated_luma_is_the_y_plane_of_the_colour_re_encoding(mode: str, options: dict[str, Any]) -> None:
    # odd sizes, past several bands of rows: the grayscale re-encoding of the decoded pixels' luma, band by band,
    # gives the same plane as re-encoding the cropped file in colour (the encoder's Y is Pillow's L)
    rng = np.random.default_rng(3)
    image = np.clip(np.resize(data.astronaut(), (700, 301, 3)).astype(int) + rng.integers(-12, 13, (700, 301, 3)),
                    0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(image).convert(mode).save(buf, "JPEG", **options)
    with Image.open(buf) as img:
        table = np.asarray(img.quantization[0])
    cal = calibrated_luma(_decode(buf.getvalue()), table)
    assert cal.shape == (696, 297)
    assert np.array_equal(cal, _colour_calibration(buf.getvalue()))
