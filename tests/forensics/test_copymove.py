import cv2
import numpy as np
import pytest
from skimage import data

from tamperscope.forensics.copymove import BlockCopyMoveDetector, KeypointCopyMoveDetector


def _jpeg(image: np.ndarray, quality: int = 92) -> np.ndarray:
    _, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)


def test_keypoint_method_finds_rotated_clone_and_localises_it() -> None:
    image = data.astronaut().copy()
    patch = cv2.warpAffine(image[180:320, 180:320], cv2.getRotationMatrix2D((70, 70), 25, 1.1), (140, 140))
    forged = image.copy()
    forged[380:480, 20:120] = patch[20:120, 20:120]
    truth = np.zeros(image.shape[:2], bool)
    truth[380:480, 20:120] = True
    result = KeypointCopyMoveDetector().analyze(_jpeg(forged))
    clean = KeypointCopyMoveDetector().analyze(_jpeg(image))
    assert result.score > 0.5 > clean.score
    assert result.evidence["transforms"]
    hit = result.map > 0.5
    assert (hit & truth).sum() > 0.4 * truth.sum()
    verified = [t for t in result.evidence["transforms"] if t["verified"]]
    lines = np.array([pair for t in verified for pair in t["pairs"]])
    assert 5 <= len(lines) <= 30 * len(verified)
    # each line joins a point of the source patch and one of the clone (either way round), in input pixels
    ends = np.concatenate([lines[:, :2], lines[:, 2:]])
    in_clone = (ends[:, 0] >= 15) & (ends[:, 0] <= 125) & (ends[:, 1] >= 375) & (ends[:, 1] <= 485)
    in_source = (ends[:, 0] >= 175) & (ends[:, 0] <= 325) & (ends[:, 1] >= 175) & (ends[:, 1] <= 325)
    assert (in_clone | in_source).mean() > 0.9 and in_clone.any() and in_source.any()


def test_block_method_finds_translated_clone_in_low_texture() -> None:
    image = data.astronaut().copy()
    forged = image.copy()
    forged[300:380, 350:430] = image[50:130, 50:130]
    result = BlockCopyMoveDetector().analyze(forged)
    assert result.score > 0.3
    assert result.evidence["shifts"][0]["dy"] == 250 and result.evidence["shifts"][0]["dx"] == 300
    assert result.map[300:380, 350:430].mean() > 0.3  # flat pixels (variance <= 4) are left unmarked
    assert result.map[50:130, 50:130].mean() > 0.3  # both copies are marked
    assert result.map[150:280].mean() < 0.01
    lines = np.array(result.evidence["shifts"][0]["pairs"])
    assert 0 < len(lines) <= 30
    assert np.allclose(lines[:, 2] - lines[:, 0], 300) and np.allclose(lines[:, 3] - lines[:, 1], 250)
    assert ((lines[:, 0] >= 50) & (lines[:, 0] <= 130) & (lines[:, 1] >= 50) & (lines[:, 1] <= 130)).all()


@pytest.mark.slow
def test_keypoint_matches_clustered_are_capped() -> None:
    """Found by bench/fuzz.py: a 13 KB JPEG of repeated blocks gave 5822 matches and Ward linkage took 1.1 GB.
    A tiled random texture does the same; at most ``max_matches`` are clustered, in bounded memory."""
    import tracemalloc

    tile = np.random.default_rng(0).integers(0, 255, (12, 12, 3), dtype=np.uint8)
    tiled = np.tile(tile, (6, 9, 1))
    tracemalloc.start()
    try:
        result = KeypointCopyMoveDetector().analyze(tiled)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.evidence["matches"] > 4000
    assert result.evidence["matches_clustered"] == KeypointCopyMoveDetector.defaults["max_matches"]
    assert peak < 300 * 2**20
