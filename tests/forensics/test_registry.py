import io

import numpy as np
import pytest
from PIL import Image
from skimage import data

from tamperscope.errors import UsageError
from tamperscope.forensics import analyze_image
from tamperscope.forensics.registry import DETECTORS, load_detector


@pytest.fixture(scope="module")
def jpeg() -> tuple[np.ndarray, bytes]:
    buf = io.BytesIO()
    Image.fromarray(data.chelsea()).save(buf, "JPEG", quality=85)
    raw = buf.getvalue()
    return np.asarray(Image.open(io.BytesIO(raw)).convert("RGB")), raw


@pytest.mark.parametrize("name", list(DETECTORS))
def test_every_registered_detector_loads_and_runs(name: str, jpeg: tuple[np.ndarray, bytes]) -> None:
    image, raw = jpeg
    detector = load_detector(name)
    assert detector.name == name
    first = analyze_image(image, jpeg_bytes=raw, names=[name])[name]
    second = analyze_image(image, jpeg_bytes=raw, names=[name])[name]
    assert 0.0 <= first.score <= 1.0
    assert first.map.shape == image.shape[:2] and first.map.dtype == np.float32
    assert float(first.map.min()) >= 0.0 and float(first.map.max()) <= 1.0
    assert first.map.tobytes() == second.map.tobytes() and first.score == second.score
    assert first.version == detector.version


def test_unknown_detector_and_parameter_are_rejected(jpeg: tuple[np.ndarray, bytes]) -> None:
    with pytest.raises(UsageError):
        load_detector("nope")
    with pytest.raises(ValueError, match="unknown parameter"):
        load_detector("ela").analyze(jpeg[0], params={"bogus": 1})
