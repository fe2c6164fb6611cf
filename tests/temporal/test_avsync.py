from __future__ import annotations

import numpy as np
import pytest

from tamperscope.media.audio import extract_audio
from tamperscope.samples.talking_head import AUDIO_RATE, synthesise_speech
from tamperscope.temporal.avsync import (
    CHANCE_MARGIN,
    audio_envelope,
    audio_features,
    band_envelope,
    estimate_offset,
    mouth_opening,
    offset_score,
    speech_segments,
    sync_score,
)
from tamperscope.temporal.bilabial import Phone, bilabial_check
from tamperscope.temporal.mesh import OUTER_LIP_PAIRS
from tamperscope.temporal.phones import recognise_phones


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
    closed, outer = mouth_opening(lm)[0], mouth_opening(lm, OUTER_LIP_PAIRS)[0]
    lm[0, [14, 87, 317, 17, 84, 314], 1] += 20.0  # the lower lip drops, inner and outer contour alike
    assert mouth_opening(lm)[0] > closed + 0.1
    assert mouth_opening(lm, OUTER_LIP_PAIRS)[0] > outer + 0.1


def test_band_envelope_follows_the_formant_band_only() -> None:
    rate = 16000
    t = np.arange(2 * rate) / rate
    low = 0.5 * np.sin(2 * np.pi * 200 * t) * (t < 1.0)  # voicing fundamental, first second
    high = 0.5 * np.sin(2 * np.pi * 2000 * t) * (t >= 1.0)  # formant-band energy, second second
    env_t, env = band_envelope(low + high, rate)
    assert np.median(env[env_t > 1.1]) > 20 * np.median(env[(env_t > 0.1) & (env_t < 0.9)])


def _speech_like_lips(speech: np.ndarray, frame_t_s: np.ndarray, shift_s: float, seed: int) -> np.ndarray:
    """Lip height as real faces give it: a sluggish, compressed copy of the envelope, shifted by ``shift_s``
    (video leads audio when positive), plus landmark noise and a slow drift of pose (peak r 0.3-0.5)."""
    rng = np.random.default_rng(seed)
    env_t, env = audio_envelope(speech, AUDIO_RATE)
    sluggish = np.convolve(env, np.ones(12) / 12, mode="same") ** 0.5
    lips = np.interp(frame_t_s + shift_s, env_t, sluggish, left=0.0, right=0.0)
    lips = lips / max(float(lips.max()), 1e-9)
    drift = 0.3 * np.sin(2 * np.pi * frame_t_s / 7.0)
    return 0.2 + 0.3 * lips + drift + 0.12 * rng.normal(size=len(frame_t_s))


@pytest.mark.parametrize("offset_ms", [-300, 0, 200])
def test_speech_with_a_loosely_coupled_mouth_gets_a_confident_offset(offset_ms: int) -> None:
    """The cause of zero confidence on real videos: lips follow the envelope only loosely (r 0.3-0.7), so the old
    z-score gate never opened. The SyncNet margin over its chance level does, at the right offset."""
    speech = synthesise_speech("Maybe people believe my brother paid both of them. " * 2)
    audio = np.concatenate([np.zeros(AUDIO_RATE // 2), speech])
    features = audio_features(audio, AUDIO_RATE)
    assert features.speech_s > 3.0
    frame_t = np.arange(0.0, len(audio) / AUDIO_RATE, 0.04)
    lips = _speech_like_lips(audio, frame_t, offset_ms / 1000.0, seed=3)
    result = estimate_offset(frame_t, lips, features.t_s, features.sync_envelope, max_lag_s=1.0, min_overlap_s=2.0)
    assert result is not None
    assert result.offset_ms == pytest.approx(offset_ms, abs=40)
    assert 0.0 < result.peak_corr < 0.9
    assert result.reliable and result.confidence > result.chance > 0.0
    assert sync_score(result) == offset_score(result.offset_ms)


def test_chance_level_holds_for_unrelated_lips() -> None:
    """Lips of one utterance against the audio of another: at most a few of 20 exceed the chance level."""
    speech = synthesise_speech("Maybe people believe my brother paid both of them. " * 2)
    other = synthesise_speech("The quick brown fox jumps over the lazy dog while seven zebras watch. " * 2)
    features = audio_features(other, AUDIO_RATE)
    frame_t = np.arange(0.0, min(len(speech), len(other)) / AUDIO_RATE, 0.04)
    results = [estimate_offset(frame_t, _speech_like_lips(speech, frame_t, 0.0, seed), features.t_s,
                               features.sync_envelope, max_lag_s=1.0, min_overlap_s=2.0) for seed in range(20)]
    assert all(r is not None for r in results)
    assert sum(r.reliable for r in results if r is not None) <= 2
    assert all(sync_score(r) is None for r in results if r is not None and not r.reliable)
    # The chance level is the margin over sqrt(seconds of overlap).
    first = results[0]
    assert first is not None and first.chance == pytest.approx(CHANCE_MARGIN / np.sqrt(len(frame_t) * 0.04), rel=0.1)


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
    features = audio_features(audio.samples, audio.rate, audio.start_s)
    result = estimate_offset(track.t_ms / 1000.0, mouth_opening(track.landmarks, OUTER_LIP_PAIRS), features.t_s,
                             features.sync_envelope, max_lag_s=1.0)
    assert result is not None
    assert result.offset_ms == pytest.approx(offset_ms, abs=40)
    assert result.confidence > 0.5 and result.reliable


def test_extract_audio_of_a_file_without_audio(tmp_path) -> None:
    import subprocess

    path = tmp_path / "silent.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=160x120:duration=1",
                    "-c:v", "libx264", str(path)], check=True)
    assert extract_audio(path) is None
