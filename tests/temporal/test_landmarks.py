from __future__ import annotations

import numpy as np
import pytest

from tamperscope.temporal.landmarks import (
    analyze_landmarks,
    landmark_acceleration,
    run_intervals,
    score_acceleration,
    similarity_fit,
    stabilise,
)


def _moving(base: np.ndarray, n: int = 60) -> np.ndarray:
    """The same face under a smooth camera pan, zoom and roll."""
    frames = []
    for k in range(n):
        angle = np.radians(10 * np.sin(k / 15))
        scale = 1.0 + 0.3 * np.sin(k / 20)
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        frames.append(scale * base[:, :2] @ rot.T + np.array([5.0 * k, 2.0 * k]))
    return np.stack(frames)


def _times(n: int, fps: float = 30.0) -> np.ndarray:
    """Frame times in whole milliseconds, as the decoder gives them."""
    return np.round(np.arange(n) * 1000.0 / fps)


def _deforming(fps: float, *, seconds: float = 4.0, flicker: float = 0.0,
               seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Aligned shapes (inter-ocular units) of 40 points moving smoothly at 0.5-2 Hz, plus optional flicker."""
    rng = np.random.default_rng(seed)
    t = _times(round(seconds * fps), fps)
    base, amp = rng.normal(size=(40, 2)), rng.uniform(0.01, 0.05, size=(40, 2))
    freq, phase = rng.uniform(0.5, 2.0, size=(40, 2)), rng.uniform(0, 2 * np.pi, size=(40, 2))
    shapes = base + amp * np.sin(2 * np.pi * freq * t[:, None, None] / 1000.0 + phase)
    noise = np.random.default_rng(seed + 1).normal(0, flicker, shapes.shape) if flicker else 0.0
    return shapes + noise, t


def test_similarity_fit_inverts_a_similarity() -> None:
    rng = np.random.default_rng(0)
    src = rng.normal(size=(30, 2))
    rot = np.array([[0.6, -0.8], [0.8, 0.6]])
    dst = 2.5 * src @ rot.T + np.array([3.0, -1.0])
    scale, rotation, shift = similarity_fit(src, dst)
    assert scale == pytest.approx(2.5) and np.allclose(rotation, rot) and np.allclose(shift, [3.0, -1.0])


def test_camera_motion_is_removed(rig) -> None:
    moving = _moving(rig.landmarks)
    aligned = stabilise(moving)
    assert np.nanmax(np.abs(aligned - aligned[0])) < 1e-6
    assert analyze_landmarks(moving, _times(len(moving))).median_acceleration < 1e-6


def test_landmark_flicker_scores_higher_than_a_moving_camera(rig) -> None:
    moving = _moving(rig.landmarks)
    iod = np.linalg.norm(rig.landmarks[263, :2] - rig.landmarks[33, :2])
    flicker = moving + np.random.default_rng(0).normal(0, 0.03 * iod, moving.shape)
    calm, shaky = analyze_landmarks(moving, _times(60)), analyze_landmarks(flicker, _times(60))
    assert calm.score == pytest.approx(0.0)
    assert shaky.score is not None and shaky.score > 0.9


def test_nan_frames_do_not_break_the_series(rig) -> None:
    moving = _moving(rig.landmarks)
    moving[10] = np.nan
    result = analyze_landmarks(moving, _times(len(moving)))
    assert np.isnan(result.acceleration[9:12]).all()
    assert result.score == pytest.approx(0.0)


def test_injected_face_jitter_scores_higher_in_video(make_clip, landmarks_of) -> None:
    calm_track = landmarks_of(make_clip(duration_s=4.0).path)
    shaky_track = landmarks_of(make_clip(duration_s=4.0, jitter_deg=2.0).path)
    base = analyze_landmarks(calm_track.landmarks, calm_track.t_ms)
    shaky = analyze_landmarks(shaky_track.landmarks, shaky_track.t_ms)
    assert shaky.median_acceleration > 2 * base.median_acceleration


def test_score_acceleration_of_a_window() -> None:
    accel = np.concatenate([np.full(50, 0.005), np.full(50, 0.05)])
    assert score_acceleration(accel[:50]).score == pytest.approx(0.0)
    assert score_acceleration(accel[50:]).score == pytest.approx(1.0)
    assert score_acceleration(accel[:5]).score is None


def test_smooth_motion_gives_the_same_acceleration_at_15_and_30_fps() -> None:
    at_30, at_15 = (np.nanmedian(landmark_acceleration(*_deforming(fps))) for fps in (30.0, 15.0))
    assert at_30 > 0.001  # the shapes do move
    assert at_15 == pytest.approx(at_30, rel=0.05)
    # Per frame step (the old unit) the 15 fps value would be four times larger.
    shapes, _ = _deforming(15.0)
    per_step = np.nanmedian(np.linalg.norm(shapes[2:] - 2 * shapes[1:-1] + shapes[:-2], axis=-1).mean(axis=1))
    assert per_step == pytest.approx(4 * at_15, rel=0.05)


@pytest.mark.parametrize("fps", [15.0, 30.0])
def test_flicker_scores_higher_than_smooth_motion_at_either_rate(fps: float) -> None:
    smooth = score_acceleration(landmark_acceleration(*_deforming(fps)))
    flicker = score_acceleration(landmark_acceleration(*_deforming(fps, flicker=0.03)))
    assert flicker.median_acceleration > 2 * smooth.median_acceleration
    assert smooth.score == pytest.approx(0.0)
    assert flicker.score is not None and flicker.score > 0.2


def test_30_fps_acceleration_is_the_per_frame_second_difference() -> None:
    shapes, t = _deforming(30.0, flicker=0.01)
    per_frame = np.linalg.norm(shapes[2:] - 2 * shapes[1:-1] + shapes[:-2], axis=-1).mean(axis=1)
    assert np.allclose(landmark_acceleration(shapes, t)[1:-1], per_frame, rtol=1e-3)


def test_run_intervals_follow_each_run_of_defined_frames() -> None:
    t = np.concatenate([_times(10, 30.0), 1000 + _times(10, 15.0)])
    defined = np.ones(len(t), bool)
    defined[10] = defined[15] = False  # a gap between the runs and a lost face inside the second
    out = run_intervals(t, defined)
    assert out[:10] == pytest.approx(np.full(10, 1000 / 30), rel=1e-3)
    assert np.isnan(out[[10, 15]]).all()
    assert out[11:15] == pytest.approx(np.full(4, 1000 / 15), rel=1e-3)
    assert out[16:] == pytest.approx(np.full(4, 1000 / 15), rel=1e-3)
