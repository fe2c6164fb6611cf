from __future__ import annotations

import io
import itertools
import threading
import time
import zipfile
from collections.abc import Iterator

import numpy as np
import pytest

from tamperscope.media.session import FrameCache, FrameRate
from tamperscope.media.video_reader import VideoReader
from tamperscope.temporal.dense import (
    DenseTrack,
    GuidePath,
    dense_landmarks,
    limit_ranges,
    merge_ranges,
    prefetch,
)
from tamperscope.temporal.tracks import chain_tracks, span_mask, with_gaps


def test_merge_ranges_pads_and_joins() -> None:
    assert merge_ranges([0, 125, 250, 5000, 5125], pad_ms=100) == [(0, 350), (4900, 5225)]


def test_guide_path_interpolates_centres_with_a_steady_side() -> None:
    guides = [(0, (0.0, 0.0, 10.0, 10.0)), (1000, (10.0, 0.0, 20.0, 10.0))]
    assert GuidePath.of(guides).at(500) == pytest.approx((10.0, 5.0, 18.0))
    assert GuidePath.of(guides).at(5000)[0] == pytest.approx(15.0)
    assert GuidePath.of(guides, 2.0).at(500) == pytest.approx((20.0, 10.0, 36.0))


def test_guide_path_equals_scaling_and_interpolating_the_boxes_per_frame() -> None:
    rng = np.random.default_rng(5)
    corners = rng.uniform(0, 400, (40, 2))
    guides = [(int(t), (float(x), float(y), float(x + w), float(y + h)))
              for t, (x, y), w, h in zip(np.arange(40) * 125, corners, rng.uniform(40, 90, 40),
                                         rng.uniform(40, 90, 40), strict=True)]
    factor = 640 / 512
    path = GuidePath.of(guides, factor)
    scaled = [(t, tuple(v * factor for v in b)) for t, b in guides]
    times = np.array([t for t, _ in scaled], dtype=np.float64)
    boxes = np.array([b for _, b in scaled], dtype=np.float64)
    side = 1.8 * float(np.median(np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])))
    for t_ms in range(-100, 5200, 33):
        expected = (float(np.interp(t_ms, times, (boxes[:, 0] + boxes[:, 2]) / 2)),
                    float(np.interp(t_ms, times, (boxes[:, 1] + boxes[:, 3]) / 2)), side)
        assert path.at(t_ms) == expected  # exactly: the patches Face Mesh sees are unchanged


def test_with_gaps_separates_ranges() -> None:
    track = DenseTrack(np.array([0, 40, 80, 1000, 1040]), np.zeros((5, 478, 3), np.float32), 64, 64, 25.0)
    t, lm = with_gaps(track, [(0, 100), (900, 1100)])
    assert len(t) == 6 and np.isnan(lm[3]).all() and not np.isnan(lm[[0, 1, 2, 4, 5]]).any()
    assert span_mask(np.array([0.0, 400.0, 600.0, 2000.0]), 500, 500).tolist() == [True, True, True, False]


def test_round_trip_bytes() -> None:
    track = DenseTrack(np.array([0, 40]), np.ones((2, 478, 3), np.float32), 320, 240, 25.0, 0.5, 1.5)
    data = track.to_bytes()
    back = DenseTrack.from_bytes(data)
    assert back.width == 320 and back.fps == 25.0 and np.array_equal(back.landmarks, track.landmarks)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:  # stored, not deflated: float landmarks hardly compress
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_STORED}


def test_guided_pass_matches_the_whole_frame_pass(make_clip, landmarks_of) -> None:
    clip = make_clip(duration_s=4.0)
    whole = landmarks_of(clip.path)
    lm = whole.landmarks
    boxes = [(int(t), (float(p[:, 0].min()), float(p[:, 1].min()), float(p[:, 0].max()), float(p[:, 1].max())))
             for t, p in zip(whole.t_ms[::3], lm[::3], strict=True)]
    guided = dense_landmarks(clip.path, [(1000, 3000)], long_side=256, guides=boxes, guide_size=(256, 256))
    inside = (whole.t_ms >= 1000) & (whole.t_ms <= 3000)
    assert np.array_equal(guided.t_ms, whole.t_ms[inside])
    assert np.isfinite(guided.landmarks).all()
    iod = np.linalg.norm(lm[0, 263, :2] - lm[0, 33, :2])
    error = np.linalg.norm(guided.landmarks[:, :, :2] - lm[inside, :, :2], axis=-1)
    assert np.median(error) < 0.05 * iod


def test_chain_tracks_joins_fragments_of_one_face_and_not_a_second_face() -> None:
    box = (100.0, 100.0, 130.0, 130.0)
    elsewhere = (300.0, 100.0, 330.0, 130.0)
    tracks = {
        0: [(2600, box)],
        1: [(4600, box), (4800, (102.0, 101.0, 132.0, 131.0))],
        3: [(7500 + 125 * k, box) for k in range(8)],
        5: [(7600, elsewhere), (7700, elsewhere)],  # a second person, overlapping in time
        6: [(9200, elsewhere)],  # far from the main face
    }
    assert chain_tracks(tracks) == [3, 1, 0]


def test_limit_ranges_keeps_evenly_spaced_chunks() -> None:
    short = [(0, 5000), (8000, 20000)]
    assert limit_ranges(short, 60_000) == short
    long = [(0, 3_600_000)]
    kept = limit_ranges(long, 600_000)
    assert len(kept) == 60 and sum(b - a for a, b in kept) == 600_000
    assert kept[0] == (0, 10_000) and kept[-1] == (3_590_000, 3_600_000)


def test_prefetch_keeps_order_and_bounds_read_ahead() -> None:
    produced: list[int] = []

    def numbers() -> Iterator[int]:
        for n in range(50):
            produced.append(n)
            yield n

    items = prefetch(numbers(), depth=4)
    assert next(items) == 0
    time.sleep(0.2)
    assert len(produced) <= 1 + 4 + 1  # the consumed item, a full buffer, and one waiting to be put
    assert [0, *items] == list(range(50))


def test_prefetch_reraises_the_producer_error_and_stops_on_close() -> None:
    def failing() -> Iterator[int]:
        yield 1
        raise ValueError("bad frame")

    items = prefetch(failing(), depth=2)
    assert next(items) == 1
    with pytest.raises(ValueError, match="bad frame"):
        next(items)

    endless = prefetch(itertools.count(), depth=2)
    assert next(endless) == 0
    endless.close()  # joins the producer thread; a hang here fails the test by timeout
    assert not any(t.name == "dense-decode" and t.is_alive() for t in threading.enumerate())


def test_frames_cached_by_the_decode_pass_give_the_landmarks_of_an_own_decode(make_clip) -> None:
    clip = make_clip(duration_s=3.0)
    max_fps = 12.0  # below the clip's rate: both paths must take the same frames
    rate, cache = FrameRate(max_fps), FrameCache(max_bytes=1 << 30)
    with VideoReader(clip.path, long_side=64, second_long_side=256) as reader:
        for frame in reader:
            if frame.second is not None and rate.take(frame.t_ms):
                cache.append(frame.t_ms, frame.second())
        cache.finish(min(reader.info.fps, max_fps))
    own = dense_landmarks(clip.path, [(500, 2500)], long_side=256, max_fps=max_fps)
    cached = dense_landmarks(clip.path, [(500, 2500)], long_side=256, max_fps=max_fps, cache=cache)
    cache.close()
    assert len(own.t_ms) > 10 and np.array_equal(own.t_ms, cached.t_ms) and own.fps == cached.fps
    assert np.array_equal(own.landmarks, cached.landmarks, equal_nan=True)
