"""Shot detection against PySceneDetect's goldens and generated videos with known cuts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tamperscope.media.shots import ShotDetector, cut_f1, detection_frame
from tamperscope.media.video_reader import VideoReader
from tamperscope.samples.shots import KnownCuts, video_with_known_cuts


def detect(path: Path, detectors: tuple[str, ...], min_scene_len: int | None = None) -> list[int]:
    with VideoReader(path, long_side=512) as reader:
        length = min_scene_len if min_scene_len is not None else round(0.25 * reader.info.fps)
        detector = ShotDetector(reader.info.fps, detectors=detectors, min_scene_len=length)
        for frame in reader:
            detector.push(frame.index, detection_frame(frame.rgb))
        detector.finish()
    return [cut.index for cut in detector.cuts]


def test_cut_f1() -> None:
    assert cut_f1([10, 21, 50], [10, 20, 30]) == pytest.approx((2 / 3, 2 / 3, 2 / 3))
    assert cut_f1([], []) == (1.0, 1.0, 1.0)
    assert cut_f1([5], []) == (0.0, 1.0, 0.0)
    assert cut_f1([10, 11], [10])[0] == 0.5  # one-to-one matching


def test_frames_must_be_sequential() -> None:
    import numpy as np

    detector = ShotDetector(25.0)
    detector.push(0, np.zeros((36, 64, 3), np.uint8))
    with pytest.raises(ValueError, match="index"):
        detector.push(2, np.zeros((36, 64, 3), np.uint8))
    with pytest.raises(ValueError, match="unknown"):
        ShotDetector(25.0, detectors=("hash",))


@pytest.mark.shared
@pytest.mark.parametrize(("video", "detector", "golden"), [
    ("testvideo.mp4", "content", "ContentDetector"),
    ("fades.mp4", "content", "ContentDetector"),
    ("fades.mp4", "threshold", "ThresholdDetector"),
    ("counter.mp4", "content", "ContentDetector"),
])
def test_matches_pyscenedetect_goldens(shared_dir: Path, video: str, detector: str, golden: str) -> None:
    folder = shared_dir / "video" / "shots"
    expected = json.loads((folder / "goldens" / f"{video}.{golden}.default.json").read_text())["cuts"]
    found = detect(folder / video, (detector,), min_scene_len=15)  # PySceneDetect's default
    print(f"{video} {detector}: found {found}, golden {expected}")
    assert cut_f1(found, expected, tolerance=1)[2] == 1.0


@pytest.fixture(scope="module")
def known(tmp_path_factory: pytest.TempPathFactory) -> KnownCuts:
    """Eight lavfi sources, a 0.3 s inserted shot and a 0.5 s dissolve, 30 fps."""
    return video_with_known_cuts(tmp_path_factory.mktemp("shots") / "known.mp4",
                                 [45, 9, 60, 90, 75, 40, 50, 60], dissolve_after=2, dissolve_frames=15)


@pytest.mark.parametrize("detectors", [("content",), ("adaptive",), ("content", "adaptive", "threshold")])
def test_cut_f1_on_generated_video(known: KnownCuts, detectors: tuple[str, ...]) -> None:
    found = detect(known.path, detectors)
    in_dissolve = [i for i in found if any(a - 1 <= i <= b + 1 for a, b in known.dissolves)]
    hard = [i for i in found if i not in in_dissolve]
    precision, recall, f1 = cut_f1(hard, known.cuts, tolerance=1)
    print(f"generated {'+'.join(detectors)}: cuts {known.cuts}, found {found}; hard-cut P={precision:.3f} "
          f"R={recall:.3f} F1={f1:.3f}; dissolve {known.dissolves} hit by {in_dissolve}")
    assert f1 >= 0.9
    assert 54 in hard  # the 0.3 s inserted shot is its own shot


def test_detection_frame_is_small_bgr() -> None:
    rgb = np.zeros((288, 512, 3), dtype=np.uint8)
    rgb[..., 0] = 255
    small = detection_frame(rgb)
    assert small.shape == (144, 256, 3)
    assert small[..., 2].min() == 255 and small[..., 0].max() == 0
