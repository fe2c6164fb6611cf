"""Shot-aware sampling: shot starts, per-shot grid, minimum for short shots, key frames, bounded buffer."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest

from tamperscope.media.sampling import Sample, ShotAwareSampler, buffer_length


@dataclass
class F:
    index: int
    t_ms: int
    key: bool = False


def run(n_frames: int, fps: float, cuts: dict[int, int], *, sample_fps: float = 8.0, min_per_shot: int = 3,
        latency: int = 10, keys: frozenset[int] = frozenset()) -> tuple[list[Sample[F]], int]:
    """Feed frames; each cut in ``cuts`` (index -> frames of delay) is reported after that delay."""
    size = buffer_length(fps, sample_fps, min_per_shot, latency)
    sampler: ShotAwareSampler[F] = ShotAwareSampler(sample_fps, min_per_shot, size)
    out: list[Sample[F]] = []
    most_buffered = 0
    for i in range(n_frames):
        for cut, delay in cuts.items():
            if cut + delay == i:
                sampler.add_cut(cut)
        out += sampler.push(F(i, round(i * 1000 / fps), i in keys))
        most_buffered = max(most_buffered, len(sampler._buffer))
    for cut, delay in cuts.items():
        if cut + delay >= n_frames:
            sampler.add_cut(cut)
    out += sampler.flush()
    assert most_buffered <= size
    return out, size


def test_grid_rate_within_a_shot() -> None:
    samples, _ = run(300, 30.0, {})
    assert samples[0].frame.index == 0 and samples[0].shot_start and samples[0].keyframe
    times = [s.frame.t_ms for s in samples]
    assert len(samples) == pytest.approx(10 * 8, abs=1)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert max(gaps) <= 134 and min(gaps) >= 99  # 3 or 4 frames at 30 fps for 8 fps sampling


def test_every_shot_start_is_sampled_even_when_reported_late() -> None:
    samples, _ = run(300, 30.0, {100: 10, 200: 3})
    starts = [s.frame.index for s in samples if s.shot_start]
    assert starts == [0, 100, 200]
    after_cut = [s.frame.index for s in samples if 100 <= s.frame.index < 112]
    assert after_cut[:2] == [100, 104]  # the grid restarts at the shot start


def test_short_inserted_shot_gets_the_minimum() -> None:
    # 0.3 s shot (9 frames at 30 fps) between two long shots; 8 fps alone would give it 3 frames,
    # at 6 fps only 2, so the minimum of 4 must add frames spread over the shot.
    samples, _ = run(300, 30.0, {120: 8, 129: 8}, sample_fps=6.0, min_per_shot=4)
    inside = [s.frame.index for s in samples if 120 <= s.frame.index < 129]
    assert len(inside) == 4
    assert inside[0] == 120 and inside[-1] == 128


def test_shot_shorter_than_minimum_gives_all_frames() -> None:
    samples, _ = run(200, 30.0, {100: 5, 102: 5}, min_per_shot=3)
    assert [s.frame.index for s in samples if 100 <= s.frame.index < 102] == [100, 101]


def test_key_frames_are_sampled() -> None:
    samples, _ = run(120, 30.0, {}, keys=frozenset({0, 61}))
    keyed = [s for s in samples if s.frame.index == 61]
    assert keyed and keyed[0].keyframe


def test_buffer_is_bounded_by_rates_not_duration() -> None:
    assert buffer_length(30.0, 8.0, 3, 12) == buffer_length(30.0, 8.0, 3, 12)
    assert buffer_length(60.0, 6.0, 3, 12) > buffer_length(30.0, 6.0, 3, 12)
    _, size = run(3000, 30.0, {1000: 12})
    assert size < 40


def test_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError):
        ShotAwareSampler(0.0, 3, 10)
    with pytest.raises(ValueError):
        ShotAwareSampler(8.0, 0, 10)


def test_intra_only_streams_are_not_sampled_at_full_rate() -> None:
    samples, _ = run(250, 25.0, {}, keys=frozenset(range(250)))
    assert len(samples) == pytest.approx(10 * 8, abs=2)
