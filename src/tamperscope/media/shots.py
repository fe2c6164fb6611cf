"""Shot boundary detection fed frame by frame from our own decode loop.

Wraps three PySceneDetect 0.7 detectors: ``ContentDetector`` (HSV frame difference against a fixed
threshold) and ``AdaptiveDetector`` (the same score against a rolling average, robust to camera motion) find
hard cuts; ``ThresholdDetector`` finds fades through black. Cuts found by several detectors within a few
frames are merged into one, keeping the earliest index and the highest confidence.

References
----------
.. [1] B. Castellano, "PySceneDetect", https://www.scenedetect.com (v0.7.2).
.. [2] A. Hanjalic, "Shot-boundary detection: unraveled and resolved?", IEEE TCSVT 12(2), 2002,
   doi:10.1109/76.988659.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import cv2
import numpy as np
from scenedetect import FrameTimecode
from scenedetect.detectors import AdaptiveDetector, ContentDetector, ThresholdDetector

DETECTORS = ("content", "adaptive", "threshold")
SCORE_HISTORY = 512  # frames of per-detector scores kept to rate late-reported cuts


class _SharedScoreAdaptive(AdaptiveDetector):
    """``AdaptiveDetector`` that reuses the frame score a ``ContentDetector`` with the same weights already
    computed for this frame (both compute the identical HSV difference), halving the per-frame cost."""

    shared_score: float | None = None

    def _calculate_frame_score(self, timecode: FrameTimecode, frame_img: np.ndarray) -> float:
        if self.shared_score is not None:
            return self.shared_score
        return float(super()._calculate_frame_score(timecode, frame_img))


@dataclass
class Cut:
    """A shot boundary: the first frame of a new shot.

    Attributes
    ----------
    index : int
        Frame index (decode order) of the first frame after the cut.
    detectors : list of str
        Detectors that reported it.
    confidence : float
        In [0, 1]; 0.5 at the detector's threshold, 1.0 at twice the threshold or more.
    """

    index: int
    detectors: list[str] = field(default_factory=list)
    confidence: float = 0.0

    @property
    def detector(self) -> str:
        return "+".join(self.detectors)


class ShotDetector:
    """Streaming shot boundary detector.

    Parameters
    ----------
    fps : float
        Average frame rate; the detectors' ``min_scene_len`` is counted in frames.
    detectors : tuple of str
        Subset of ``("content", "adaptive", "threshold")``.
    content_threshold : float
        ``ContentDetector`` threshold (PySceneDetect default 27).
    adaptive_threshold : float
        ``AdaptiveDetector`` ratio threshold (default 3).
    fade_threshold : int
        ``ThresholdDetector`` mean-intensity threshold (default 12).
    min_scene_len : int
        Minimum shot length in frames for the cut detectors (default 15).
    fade_min_len : int
        Minimum shot length in frames for the fade detector (default 15; a fade-in from black at the start
        would otherwise open a spurious shot).
    merge_frames : int
        Cuts from different detectors closer than this many frames are one cut.

    Notes
    -----
    Cuts may be reported with a delay (the flash filter of ``ContentDetector`` holds a cut up to
    ``min_scene_len`` frames; ``AdaptiveDetector`` looks ``window_width`` frames ahead; fades are placed in the
    middle of the black run). :attr:`max_latency` bounds the delay of the cut detectors.
    """

    def __init__(self, fps: float, *, detectors: tuple[str, ...] = DETECTORS, content_threshold: float = 27.0,
                 adaptive_threshold: float = 3.0, fade_threshold: int = 12, min_scene_len: int = 15,
                 fade_min_len: int = 15, merge_frames: int = 2) -> None:
        unknown = set(detectors) - set(DETECTORS)
        if unknown:
            raise ValueError(f"detectors: unknown {sorted(unknown)}")
        self.fps = fps
        self.merge_frames = merge_frames
        self.min_scene_len = min_scene_len
        self._content = ContentDetector(threshold=content_threshold, min_scene_len=min_scene_len) \
            if "content" in detectors else None
        self._adaptive = _SharedScoreAdaptive(adaptive_threshold=adaptive_threshold, min_scene_len=min_scene_len) \
            if "adaptive" in detectors else None
        self._threshold = ThresholdDetector(threshold=fade_threshold, min_scene_len=max(min_scene_len, fade_min_len)) \
            if "threshold" in detectors else None
        self._thresholds = {"content": content_threshold, "adaptive": adaptive_threshold,
                            "threshold": float(fade_threshold)}
        self._scores: dict[str, deque[tuple[int, float]]] = {
            name: deque(maxlen=SCORE_HISTORY) for name in DETECTORS}
        self._last_index = -1
        self.cuts: list[Cut] = []

    @property
    def max_latency(self) -> int:
        """Most frames a hard cut can be reported after its first frame was pushed."""
        return self.min_scene_len + 4

    def _timecode(self, index: int) -> FrameTimecode:
        return FrameTimecode(index, fps=self.fps)

    def _confidence(self, name: str, index: int) -> float:
        score = next((s for i, s in self._scores[name] if i == index), None)
        if score is None:
            return 0.5
        threshold = self._thresholds[name]
        if name == "threshold":
            return float(np.clip(1.0 - score / (2.0 * threshold), 0.0, 1.0))
        if name == "adaptive":
            threshold = 15.0  # AdaptiveDetector's min_content_val: the content score it needs at least
        return float(np.clip(score / (2.0 * threshold), 0.0, 1.0))

    def _add(self, name: str, timecodes: list[FrameTimecode]) -> list[Cut]:
        added: list[Cut] = []
        for timecode in timecodes:
            index = int(timecode.frame_num)
            if index <= 0:
                continue
            confidence = self._confidence(name, index)
            near = [c for c in self.cuts if abs(c.index - index) <= self.merge_frames]
            if near:
                cut = near[0]
                if name not in cut.detectors:
                    cut.detectors.append(name)
                cut.confidence = max(cut.confidence, confidence)
                continue
            cut = Cut(index=index, detectors=[name], confidence=confidence)
            self.cuts.append(cut)
            self.cuts.sort(key=lambda c: c.index)
            added.append(cut)
        return added

    def push(self, index: int, frame_bgr: np.ndarray) -> list[Cut]:
        """Feed the next frame (BGR, downscaled); returns cuts newly found (possibly in the past).

        Parameters
        ----------
        index : int
            Frame index; must increase by one per call.
        frame_bgr : numpy.ndarray
            ``h x w x 3`` uint8 BGR.

        Returns
        -------
        list of Cut
            New cuts, each at most :attr:`max_latency` frames behind ``index`` for hard cuts.
        """
        if index != self._last_index + 1:
            raise ValueError(f"index: expected {self._last_index + 1}, got {index}")
        self._last_index = index
        timecode = self._timecode(index)
        added: list[Cut] = []
        if self._content is not None:
            found = self._content.process_frame(timecode, frame_bgr)
            self._scores["content"].append((index, float(self._content._frame_score or 0.0)))
            added += self._add("content", found)
        if self._adaptive is not None:
            self._adaptive.shared_score = self._content._frame_score if self._content is not None else None
            found = self._adaptive.process_frame(timecode, frame_bgr)
            self._scores["adaptive"].append((index, float(self._adaptive._frame_score or 0.0)))
            added += self._add("adaptive", found)
        if self._threshold is not None:
            found = self._threshold.process_frame(timecode, frame_bgr)
            self._scores["threshold"].append((index, float(np.mean(cv2.mean(frame_bgr)[:3]))))
            added += self._add("threshold", found)
        return added

    def finish(self) -> list[Cut]:
        """Flush detectors at the end of the stream; returns cuts newly found."""
        if self._last_index < 0:
            return []
        timecode = self._timecode(self._last_index)
        added: list[Cut] = []
        for name, detector in (("content", self._content), ("adaptive", self._adaptive),
                               ("threshold", self._threshold)):
            if detector is not None:
                added += self._add(name, detector.post_process(timecode))
        return added


def cut_f1(found: list[int], truth: list[int], tolerance: int = 1) -> tuple[float, float, float]:
    """Precision, recall and F1 of detected cut frames against ground truth, one-to-one within a tolerance.

    Parameters
    ----------
    found, truth : list of int
        Frame indices of the first frame after each cut.
    tolerance : int
        Largest index difference counted as a match.

    Returns
    -------
    tuple of float
        ``(precision, recall, f1)``; all 1.0 when both lists are empty.
    """
    unmatched = sorted(truth)
    hits = 0
    for index in sorted(found):
        match = next((t for t in unmatched if abs(t - index) <= tolerance), None)
        if match is not None:
            unmatched.remove(match)
            hits += 1
    precision = hits / len(found) if found else (1.0 if not truth else 0.0)
    recall = hits / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def detection_frame(rgb: np.ndarray, width: int = 256) -> np.ndarray:
    """BGR frame downscaled to ``width`` for shot detection (PySceneDetect's default working size).

    Parameters
    ----------
    rgb : numpy.ndarray
        Normalised RGB frame.
    width : int
        Target width; frames narrower than this are only converted.

    Returns
    -------
    numpy.ndarray
        ``h x width x 3`` uint8 BGR.
    """
    if rgb.shape[1] > width:
        height = max(1, math.floor(rgb.shape[0] * width / rgb.shape[1]))
        rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
