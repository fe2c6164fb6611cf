from __future__ import annotations

import numpy as np
import pytest

from tamperscope.temporal.audio import extract_audio
from tamperscope.temporal.avsync import (
    Phone,
    audio_envelope,
    bilabial_check,
    estimate_offset,
    mouth_opening,
    offset_score,
    speech_segments,
)
from tamperscope.temporal.phones import recognise_phones
from tamperscope.temporal.synthetic import AUDIO_RATE, synthesise_speech


def test_envelope_and_speech_segments_of_bursts() -> None:
    rate = 16000
    t = np.arange(4 * rate) / rate
    x = 0.001 * np.random.default_rng(0).normal(size=len(t))
    burst = (t > 1.0) & (t < 2.0)
    x[burst] += 0.5 * np.sin(2 * np.pi * 200 * t[burst])
    env_t, env = audio_envelope(x, rate)
    assert len(env) == pytest.approx(400, abs=3)
    segments = speech_segments(env_t, env)
    assert len(segments) == 1
    assert segments[0][0] == pytest.approx(1.0, abs=0.03) and segments[0][1] == pytest.approx(2.0, abs=0.03)
    assert speech_segments(env_t, np.full(len(env), 0.01)) == []


@pytest.mark.parametrize("offset_ms", [-700.0, -120.0, 0.0, 260.0, 900.0])
def test_offset_of_shifted_signals(offset_ms: float) -> None:
    rng = np.random.default_rng(1)
    env_t = np.arange(0, 8, 0.01)
    env = np.convolve(rng.random(len(env_t)) ** 4, np.ones(12) / 12, mode="same")
    video_t = np.arange(0, 8, 0.04)
    mouth = np.interp(video_t + offset_ms / 1000.0, env_t, env)
    result = estimate_offset(video_t, mouth, env_t, env, max_lag_s=1.0)
    assert result is not None
    assert result.offset_ms == pytest.approx(offset_ms, abs=15)
    assert result.confidence > 0.7
    unrelated = estimate_offset(video_t, rng.random(len(video_t)), env_t, env, max_lag_s=1.0)
    assert unrelated is not None and unrelated.confidence < 0.3


def test_offset_beyond_the_search_window_has_no_confidence() -> None:
    env_t = np.arange(0, 8, 0.01)
    env = np.convolve(np.random.default_rng(2).random(len(env_t)) ** 4, np.ones(12) / 12, mode="same")
    video_t = np.arange(0, 8, 0.04)
    just_beyond = estimate_offset(video_t, np.interp(video_t + 1.05, env_t, env), env_t, env, max_lag_s=1.0)
    assert just_beyond is not None and just_beyond.offset_ms > 980 and just_beyond.confidence == 0.0
    far = estimate_offset(video_t, np.interp(video_t + 1.5, env_t, env), env_t, env, max_lag_s=1.0)
    assert far is not None and far.confidence < 0.3


def test_offset_score_follows_bt1359_acceptability() -> None:
    assert offset_score(0.0) == 0.0 and offset_score(150.0) == 0.0 and offset_score(-80.0) == 0.0
    assert offset_score(500.0) == 1.0 and offset_score(-400.0) == 1.0
    assert 0 < offset_score(250.0) < 1


def test_bilabial_check_counts_open_mouths() -> None:
    t = np.arange(0, 3, 0.04)
    mouth = np.full(len(t), 0.3)
    mouth[(t > 0.95) & (t < 1.1)] = 0.0  # lips closed around 1.0 s only
    phones = [Phone("M", 1.0, 1.08), Phone("AA", 1.1, 1.3), Phone("B", 2.0, 2.06), Phone("P", 2.5, 2.55)]
    result = bilabial_check(phones, t, mouth, threshold=0.1)
    assert (result.n_bilabials, result.n_mismatch) == (3, 2)
    # With the audio 1 s late, the /b/ at 2.0 s (audio) falls on the closed lips at 1.0 s (video).
    shifted = bilabial_check([phones[2]], t, mouth, threshold=0.1, offset_s=1.0)
    assert (shifted.n_bilabials, shifted.n_mismatch) == (1, 0)
    assert bilabial_check(phones, t, mouth, threshold=0.1, span=(1.9, 3.0)).n_bilabials == 2


def test_mouth_opening_of_the_rig(rig) -> None:
    lm = rig.landmarks[None].copy()
    closed = mouth_opening(lm)[0]
    lm[0, [14, 87, 317], 1] += 20.0
    assert mouth_opening(lm)[0] > closed + 0.1


def test_pocketsphinx_gives_timed_phones_inside_speech() -> None:
    speech = synthesise_speech("Maybe people believe my brother paid both of them.")
    padded = np.concatenate([np.zeros(AUDIO_RATE), speech, np.zeros(AUDIO_RATE)])
    phones = recognise_phones(padded)
    assert len(phones) >= 10
    inside = [p for p in phones if 0.9 <= p.start_s <= 1.1 + len(speech) / AUDIO_RATE]
    assert len(inside) >= 0.9 * len(phones)
    assert all(p.end_s > p.start_s for p in phones)


@pytest.mark.parametrize("offset_ms", [0, 200, -200, 500, -500])
def test_video_offset_within_40_ms(offset_ms: int, make_clip, landmarks_of) -> None:
    clip = make_clip(duration_s=5.0, offset_ms=float(offset_ms))
    track = landmarks_of(clip.path)
    audio = extract_audio(clip.path)
    assert audio is not None
    env_t, env = audio_envelope(audio.samples, audio.rate)
    result = estimate_offset(track.t_ms / 1000.0, mouth_opening(track.landmarks), env_t + audio.start_s, env,
                             max_lag_s=1.0)
    assert result is not None
    assert result.offset_ms == pytest.approx(offset_ms, abs=40)
    assert result.confidence > 0.5


def test_extract_audio_of_a_file_without_audio(tmp_path) -> None:
    import subprocess

    path = tmp_path / "silent.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=160x120:duration=1",
                    "-c:v", "libx264", str(path)], check=True)
    assert extract_audio(path) is None
