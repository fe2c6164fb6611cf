import cv2
from skimage import data

from tamperscope.forensics.spectrum import SpectrumDetector


def test_upsampled_image_scores_higher_than_original() -> None:
    image = data.camera()
    resized = cv2.resize(image, None, fx=1.3, fy=1.3, interpolation=cv2.INTER_LINEAR)
    det = SpectrumDetector()
    original, upsampled = det.analyze(image), det.analyze(resized)
    assert upsampled.score > 0.5 > original.score
    assert abs(upsampled.evidence["peak_freq_x"] - 0.23) < 0.02
