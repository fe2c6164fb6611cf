from __future__ import annotations

import cv2
import numpy as np
import pytest

from tamperscope.temporal.head_pose import (
    MODEL_POINTS,
    WHOLE,
    analyze_head_pose,
    euler_angles,
    high_frequency_rms,
    score_pose_series,
    solve_pose,
)


def _project(yaw: float, pitch: float, roll: float, size: tuple[int, int] = (640, 480)) -> np.ndarray:
    """478 x 2 landmarks holding the model points seen under a known pose (others at the nose tip)."""
    rx = cv2.Rodrigues(np.array([np.radians(pitch), 0.0, 0.0]))[0]
    ry = cv2.Rodrigues(np.array([0.0, np.radians(yaw), 0.0]))[0]
    rz = cv2.Rodrigues(np.array([0.0, 0.0, np.radians(roll)]))[0]
    rotation = rz @ ry @ rx
    camera = np.array([[size[0], 0, size[0] / 2], [0, size[0], size[1] / 2], [0, 0, 1.0]])
    model = np.array([MODEL_POINTS[i] for i in WHOLE])
    image, _ = cv2.projectPoints(model, cv2.Rodrigues(rotation)[0], np.array([0.0, 0.0, 600.0]), camera, None)
    points = np.tile(image.reshape(-1, 2)[0], (478, 1))
    points[list(WHOLE)] = image.reshape(-1, 2)
    return points


@pytest.mark.parametrize("pose", [(0.0, 0.0, 0.0), (20.0, -10.0, 5.0), (-30.0, 15.0, -10.0)])
def test_solve_pose_recovers_a_known_pose(pose: tuple[float, float, float]) -> None:
    points = _project(*pose)
    rvec, _ = solve_pose(points, WHOLE, (640, 480))
    assert np.allclose(euler_angles(cv2.Rodrigues(rvec)[0]), pose, atol=0.5)


def test_high_frequency_rms_ignores_slow_motion_and_sees_noise() -> None:
    t = np.arange(200) / 25.0
    slow = 10 * np.sin(2 * np.pi * 0.2 * t)
    noisy = slow + np.random.default_rng(0).normal(0, 2.0, len(t))
    assert high_frequency_rms(slow, 11) < 0.1
    assert high_frequency_rms(noisy, 11) == pytest.approx(2.0, rel=0.25)


def test_smooth_turn_scores_low_and_jittery_pose_high() -> None:
    t = np.arange(100) * 40.0
    yaw = 25 * np.sin(2 * np.pi * t / 4000)
    smooth = np.stack([_project(y, 0.0, 0.0) for y in yaw])
    rng = np.random.default_rng(1)
    shaky = np.stack([_project(y + rng.normal(0, 4), rng.normal(0, 4), 0.0) for y in yaw])
    calm, jittery = analyze_head_pose(smooth, t, (640, 480)), analyze_head_pose(shaky, t, (640, 480))
    assert calm.jitter_deg < 0.3 and calm.score == pytest.approx(0.0)
    assert jittery.jitter_deg > 2.5 and jittery.score is not None and jittery.score > 0.4
    assert np.nanmax(np.abs(calm.angles[:, 0])) == pytest.approx(25, abs=1)


def test_too_few_frames_gives_no_score() -> None:
    lm = np.full((5, 478, 2), np.nan)
    assert analyze_head_pose(lm, np.arange(5) * 40.0, (640, 480)).score is None


def test_injected_pose_jitter_scores_higher_in_video(make_clip, landmarks_of) -> None:
    base = make_clip(duration_s=4.0)
    shaky = make_clip(duration_s=4.0, jitter_deg=2.0)
    scores = []
    for clip in (base, shaky):
        track = landmarks_of(clip.path)
        scores.append(analyze_head_pose(track.landmarks, track.t_ms, (track.width, track.height)))
    assert scores[1].jitter_deg > 2 * scores[0].jitter_deg
    assert scores[1].score > scores[0].score


def test_window_of_a_series_is_scored_without_re_solving() -> None:
    t = np.arange(100) * 40.0
    rng = np.random.default_rng(2)
    shaky = np.stack([_project(rng.normal(0, 4), rng.normal(0, 4), 0.0) for _ in t])
    full = analyze_head_pose(shaky, t, (640, 480))
    window = score_pose_series(full.angles[20:70], full.inconsistency[20:70], t[20:70])
    assert window.score is not None and window.jitter_deg == pytest.approx(full.jitter_deg, rel=0.3)
    assert score_pose_series(full.angles[:5], full.inconsistency[:5], t[:5]).score is None
