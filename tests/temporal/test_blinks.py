from __future__ import annotations

import numpy as np
import pytest

from tamperscope.temporal.blinks import BlinkEvent, analyze_blinks, detect_blinks, eye_aspect_ratio, score_blinks


def _series(onsets_ms: list[float], *, seconds: float = 20.0, fps: float = 25.0, blink_ms: float = 200.0,
            seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(0, seconds * 1000, 1000 / fps)
    ear = 0.3 + rng.normal(0, 0.005, len(t))
    for onset in onsets_ms:
        phase = (t - onset) / blink_ms
        inside = (phase >= 0) & (phase <= 1)
        ear[inside] -= 0.2 * np.sin(np.pi * phase[inside])
    return ear, t


def test_eye_aspect_ratio_of_an_open_and_a_closed_eye(rig) -> None:
    lm = rig.landmarks[None].copy()
    open_ear = eye_aspect_ratio(lm)[0]
    assert 0.15 < open_ear < 0.5
    closed = lm.copy()
    for upper, lower in ((160, 144), (158, 153), (385, 380), (387, 373)):
        closed[0, upper, :2] = closed[0, lower, :2]
    assert eye_aspect_ratio(closed)[0] == pytest.approx(0.0, abs=1e-9)
    assert np.isnan(eye_aspect_ratio(np.full((1, 478, 3), np.nan))[0])


def test_detect_blinks_finds_onsets_and_half_amplitude_durations() -> None:
    onsets = [1000.0, 4300.0, 7100.0, 12000.0, 15500.0]
    ear, t = _series(onsets)
    events = detect_blinks(ear, t)
    assert len(events) == len(onsets)
    for event, onset in zip(events, onsets, strict=True):
        # A 200 ms half-sine dip is below half depth from 1/6 to 5/6 of its length (33..167 ms).
        assert event.onset_ms == pytest.approx(onset + 33, abs=15)
        assert event.duration_ms == pytest.approx(133, abs=20)


@pytest.mark.parametrize(("fps", "blink_ms"), [(15.0, 100.0), (15.0, 200.0), (15.0, 300.0), (12.5, 150.0),
                                              (12.5, 300.0)])
def test_blinks_are_found_at_a_reduced_dense_rate(fps: float, blink_ms: float) -> None:
    # 15 fps: the default dense rate on 30 fps video; 12.5 fps: what it takes from 25 fps video.
    onsets = [1000.0 + 3000.0 * k + 137.0 * k % 500 for k in range(6)]
    ear, t = _series(onsets, fps=fps, blink_ms=blink_ms)
    events = detect_blinks(ear, t)
    assert len(events) == len(onsets)
    for event, onset in zip(events, onsets, strict=True):
        # Half-amplitude span of a half-sine dip: 1/6 to 5/6 of its length, measured to within a frame.
        assert event.onset_ms == pytest.approx(onset + blink_ms / 6, abs=1000 / fps)
        assert event.duration_ms == pytest.approx(blink_ms * 2 / 3, abs=1000 / fps)


def test_long_closures_are_not_blinks() -> None:
    ear, t = _series([2000.0], blink_ms=2500.0)
    assert detect_blinks(ear, t) == []


def test_scores_follow_documented_ranges() -> None:
    normal = [BlinkEvent(float(o), 150.0, 0.1) for o in np.cumsum(np.random.default_rng(1).exponential(3500, 17))]
    ok = score_blinks(normal, 60.0)
    assert ok.status == "scored" and ok.score is not None and ok.score < 0.2
    assert 10 < ok.rate_per_min < 25
    never = score_blinks([], 60.0)
    assert never.score is not None and never.score > 0.99
    metronome = [BlinkEvent(1000.0 + 3000.0 * k, 150.0, 0.1) for k in range(20)]
    assert score_blinks(metronome, 60.0).components["regularity"] == pytest.approx(1.0)
    slow = [BlinkEvent(1000.0 + 5000.0 * k + 700 * (k % 3), 900.0, 0.1) for k in range(10)]
    assert score_blinks(slow, 60.0).components["duration"] == pytest.approx(1.0)


def test_short_face_time_is_insufficient_data(rig) -> None:
    t = np.arange(100) * 40.0  # 4 s of a still face
    result = analyze_blinks(np.repeat(rig.landmarks[None], len(t), axis=0), t, min_face_s=10.0)
    assert result.status == "insufficient_data" and result.score is None
    assert result.face_time_s == pytest.approx(4.0)
    assert analyze_blinks(np.repeat(rig.landmarks[None], len(t), axis=0), t, min_face_s=3.0).status == "scored"


def test_inserted_blinks_are_found_in_video_with_f1_at_least_0_9(make_clip, landmarks_of) -> None:
    truth = (600.0, 1900.0, 2800.0, 4500.0, 5300.0, 7000.0, 8600.0, 9400.0)
    clip = make_clip(duration_s=10.0, blink_onsets_ms=truth, blink_ms=250.0, seed=3)
    track = landmarks_of(clip.path)
    result = analyze_blinks(track.landmarks, track.t_ms, min_face_s=5.0)
    found = [e.onset_ms for e in result.events]
    matched, used = 0, set()
    for onset in truth:
        hits = [i for i, f in enumerate(found) if abs(f - onset) <= 150 and i not in used]
        if hits:
            used.add(hits[0])
            matched += 1
    precision = matched / max(len(found), 1)
    recall = matched / len(truth)
    f1 = 2 * precision * recall / max(precision + recall, 1e-9)
    assert f1 >= 0.9, (found, truth)
    assert result.status == "scored"
