import io

import numpy as np
from PIL import Image
from skimage import data

from tamperscope.forensics.base import AnalysisContext
from tamperscope.forensics.jpeg import DoubleQuantizationDetector, block_dct, dq_period


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


def test_periodic_histogram_has_period_and_energy() -> None:
    k = np.arange(-40, 41)
    smooth = 1000 * np.exp(-np.abs(k) / 6.0)
    gapped = smooth * np.where(k % 3 == 0, 3.0, 0.0)
    assert dq_period(gapped)[0] == 3
    assert dq_period(gapped)[1] > dq_period(smooth)[1]


def test_double_compression_scores_higher_than_single() -> None:
    image = data.coffee()
    single = _encode(image, 90)
    double = _encode(_decode(_encode(image, 70)), 90)
    det = DoubleQuantizationDetector()
    s1 = det.analyze(_decode(single), context=AnalysisContext(jpeg_bytes=single))
    s2 = det.analyze(_decode(double), context=AnalysisContext(jpeg_bytes=double))
    assert s2.evidence["periodic_energy"] > s1.evidence["periodic_energy"]
    assert s2.score > s1.score
    none = det.analyze(image)
    assert none.evidence == {"applicable": False} and none.score == 0.0
