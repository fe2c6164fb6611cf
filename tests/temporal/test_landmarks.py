from __future__ import annotations

import numpy as np
import pytest

from tamperscope.temporal.landmarks import analyze_landmarks, score_acceleration, similarity_fit, stabilise


def _moving(base: np.ndarray, n: int = 60) -> np.ndarray:
    """The same face under a smooth camera pan, zoom and roll."""
    frames = []
    for k in range(n):
        angle = np.radians(10 * np.sin(k / 15))
        scale = 1.0 + 0.3 * np.sin(k / 20)
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        frames.append(scale * base[:, :2] @ rot.T + np.array([5.0 * k, 2.0 * k]))
    return np.stack(frames)


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
    assert analyze_landmarks(moving).median_acceleration < 1e-6


def test_landmark_flicker_scores_higher_than_a_moving_camera(rig) -> None:
    moving = _moving(rig.landmarks)
    iod = np.linalg.norm(rig.landmarks[263, :2] - rig.landmarks[33, :2])
    flicker = moving + np.random.default_rng(0).normal(0, 0.03 * iod, moving.shape)
    calm, shaky = analyze_landmarks(moving), analyze_landmarks(flicker)
    assert calm.score == pytest.approx(0.0)
    assert shaky.score is not None and shaky.score > 0.9


def test_nan_frames_do_not_break_the_series(rig) -> None:
    moving = _moving(rig.landmarks)
    moving[10] = np.nan
    result = analyze_landmarks(moving)
    assert np.isnan(result.acceleration[9:12]).all()
    assert result.score == pytest.approx(0.0)


def test_injected_face_jitter_scores_higher_in_video(make_clip, landmarks_of) -> None:
    base = analyze_landmarks(landmarks_of(make_clip(duration_s=4.0).path).landmarks)
    shaky = analyze_landmarks(landmarks_of(make_clip(duration_s=4.0, jitter_deg=2.0).path).landmarks)
    assert shaky.median_acceleration > 2 * base.median_acceleration


def test_score_acceleration_of_a_window() -> None:
    accel = np.concatenate([np.full(50, 0.005), np.full(50, 0.05)])
    assert score_acceleration(accel[:50]).score == pytest.approx(0.0)
    assert score_acceleration(accel[50:]).score == pytest.approx(1.0)
    assert score_acceleration(accel[:5]).score is None
