"""Synthetic forgeries on drawn faces: an ellipse "face" with a smooth gradient on a textured background and
fake landmarks on and inside that ellipse (no mediapipe)."""

from __future__ import annotations

import math
import time

import cv2
import numpy as np
import pytest

from tamperscope.media.faces import LEFT_IRIS, RIGHT_IRIS, aligned_crop
from tamperscope_train.synthesis.blending import self_blend
from tamperscope_train.synthesis.landmarks import FACE_OVAL, landmarks_in_crop
from tamperscope_train.synthesis.masks import hull_mask
from tamperscope_train.synthesis.swap import landmark_swap
from tamperscope_train.synthesis.temporal import inconsistent_clip

SIZE = 224
CENTRE = (112.0, 118.0)
AXES = (62.0, 80.0)


def face_landmarks(centre: tuple[float, float] = CENTRE, axes: tuple[float, float] = AXES, *, points: int = 478,
                   seed: int = 0) -> np.ndarray:
    """``points x 2`` landmarks: the face-oval indices on the ellipse in order, the rest scattered inside."""
    rng = np.random.default_rng(seed)
    radius = np.sqrt(rng.uniform(0.0, 0.85, points))
    angle = rng.uniform(0.0, 2 * np.pi, points)
    out = np.column_stack([centre[0] + axes[0] * radius * np.cos(angle), centre[1] + axes[1] * radius * np.sin(angle)])
    oval = list(FACE_OVAL) if points >= 478 else list(range(min(points, 36)))
    theta = np.linspace(-np.pi / 2, 3 * np.pi / 2, len(oval), endpoint=False)
    out[oval] = np.column_stack([centre[0] + axes[0] * np.cos(theta), centre[1] + axes[1] * np.sin(theta)])
    return out.astype(np.float32)


def face_crop(colour: tuple[int, int, int] = (200, 150, 120), *, centre: tuple[float, float] = CENTRE,
              axes: tuple[float, float] = AXES, stripes: int = 0, seed: int = 1) -> np.ndarray:
    """Textured background plus an ellipse face with a smooth vertical gradient (or vertical stripes)."""
    rng = np.random.default_rng(seed)
    image = cv2.GaussianBlur(rng.integers(0, 256, (SIZE, SIZE, 3)).astype(np.uint8), (0, 0), 1.5)
    ys, xs = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    inside = ((xs - centre[0]) / axes[0]) ** 2 + ((ys - centre[1]) / axes[1]) ** 2 <= 1.0
    shade = 0.75 + 0.25 * (ys - (centre[1] - axes[1])) / (2 * axes[1])
    if stripes:
        shade = shade * (0.6 + 0.4 * (np.floor((xs - centre[0]) / stripes) % 2))
    face = np.clip(np.array(colour, np.float32)[None, None, :] * shade[..., None], 0, 255).astype(np.uint8)
    image[inside] = face[inside]
    return image


def ellipse_region(centre: tuple[float, float] = CENTRE, axes: tuple[float, float] = AXES,
                   grow: float = 0.0) -> np.ndarray:
    ys, xs = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    return ((xs - centre[0]) / (axes[0] + grow)) ** 2 + ((ys - centre[1]) / (axes[1] + grow)) ** 2 <= 1.0


@pytest.mark.parametrize("points", [478, 68])
def test_hull_mask_is_soft_bounded_and_mostly_inside_the_hull(points: int) -> None:
    landmarks = face_landmarks(points=points)
    near_hull = ellipse_region(grow=0.1 * SIZE)
    for seed in range(8):
        mask = hull_mask(landmarks, SIZE, np.random.default_rng(seed))
        assert mask.shape == (SIZE, SIZE) and mask.dtype == np.float32
        assert mask.min() >= 0.0 and mask.max() == pytest.approx(1.0)
        assert mask[~near_hull].sum() <= 0.02 * mask.sum()
        assert np.count_nonzero((mask > 0) & (mask < 1)) > 0  # blurred edge
    plain = hull_mask(face_landmarks(points=68), SIZE, np.random.default_rng(0), deform=False)
    assert plain[int(CENTRE[1]), int(CENTRE[0])] == pytest.approx(1.0)
    assert (plain[~ellipse_region(grow=0.07 * SIZE)] == 0).all()


def test_hull_mask_is_reproducible_and_deformation_varies() -> None:
    landmarks = face_landmarks()
    first = hull_mask(landmarks, SIZE, np.random.default_rng(7))
    again = hull_mask(landmarks, SIZE, np.random.default_rng(7))
    other = hull_mask(landmarks, SIZE, np.random.default_rng(8))
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - other).mean() > 0.01


def test_self_blend_changes_only_inside_the_mask() -> None:
    crop, landmarks = face_crop(), face_landmarks()
    for seed in range(6):
        image, mask = self_blend(crop, landmarks, np.random.default_rng(seed))
        assert image.shape == crop.shape and image.dtype == np.uint8
        assert mask.shape == (SIZE, SIZE) and mask.dtype == np.float32
        assert mask.min() >= 0.0 and mask.max() <= 1.0 and mask.max() >= 0.25 - 1e-6
        np.testing.assert_array_equal(image[mask == 0], crop[mask == 0])
        core = mask >= 0.5 * mask.max()
        change = np.abs(image.astype(np.int16) - crop.astype(np.int16)).max(axis=2)
        assert change[core].mean() > 2.0
        # the change follows the mask: larger where the source is more opaque
        assert change[core].mean() > 3 * change[(mask > 0) & (mask < 0.1 * mask.max())].mean()


def test_self_blend_is_reproducible_for_a_seed() -> None:
    crop, landmarks = face_crop(), face_landmarks()
    a = self_blend(crop, landmarks, np.random.default_rng(3))
    b = self_blend(crop, landmarks, np.random.default_rng(3))
    c = self_blend(crop, landmarks, np.random.default_rng(4))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_self_blend_accepts_xyz_landmarks_and_rejects_bad_input() -> None:
    crop, landmarks = face_crop(), face_landmarks()
    xyz = np.column_stack([landmarks, np.zeros(len(landmarks), np.float32)])
    np.testing.assert_array_equal(self_blend(crop, xyz, np.random.default_rng(0))[0],
                                  self_blend(crop, landmarks, np.random.default_rng(0))[0])
    with pytest.raises(ValueError, match="landmarks"):
        self_blend(crop, landmarks[:2], np.random.default_rng(0))
    with pytest.raises(ValueError, match="crop"):
        self_blend(crop.astype(np.float32), landmarks, np.random.default_rng(0))
    with pytest.raises(ValueError, match="crop"):
        self_blend(crop[:, :200], landmarks, np.random.default_rng(0))


def test_landmark_swap_puts_source_texture_in_destination_geometry() -> None:
    src_centre, src_axes = (100.0, 105.0), (44.0, 56.0)  # smaller and off-centre: the warp must rescale it
    src_crop = face_crop((90, 120, 220), centre=src_centre, axes=src_axes, stripes=6, seed=2)
    src_lm = face_landmarks(src_centre, src_axes, seed=0)
    scale = np.array(AXES) / np.array(src_axes)
    dst_lm = ((src_lm - np.array(src_centre)) * scale + np.array(CENTRE)).astype(np.float32)
    dst_crop = face_crop((210, 160, 130), seed=3)
    image, mask = landmark_swap(src_crop, src_lm, dst_crop, dst_lm, np.random.default_rng(0))
    assert image.shape == dst_crop.shape and image.dtype == np.uint8 and mask.dtype == np.float32
    assert mask.min() >= 0.0 and mask.max() <= 1.0
    np.testing.assert_array_equal(image[mask == 0], dst_crop[mask == 0])
    assert mask[~ellipse_region(grow=1.5)].max() == 0.0  # never beyond the destination face
    # the destination's face is smooth; after the swap a row through its centre carries the source's stripes,
    # stretched by the destination/source scale (period 2 x 6 px x 62/44 = 16.9 px)
    row = image[int(CENTRE[1]), int(CENTRE[0] - 40):int(CENTRE[0] + 40)].astype(np.float32).mean(axis=1)
    before = dst_crop[int(CENTRE[1]), int(CENTRE[0] - 40):int(CENTRE[0] + 40)].astype(np.float32).mean(axis=1)
    assert row.std() > 5 * max(before.std(), 0.5)
    spectrum = np.abs(np.fft.rfft(row - row.mean()))
    period = len(row) / (1 + int(np.argmax(spectrum[1:])))
    assert period == pytest.approx(2 * 6 * scale[0], rel=0.15)
    # colour transfer: the swapped face takes the destination's colour, not the source's blue
    core = mask > 0.9
    assert np.abs(image[core].mean(axis=0) - dst_crop[core].mean(axis=0)).max() < 15


def test_landmark_swap_onto_itself_is_nearly_identity_and_validates() -> None:
    crop, landmarks = face_crop(), face_landmarks()
    image, mask = landmark_swap(crop, landmarks, crop, landmarks, np.random.default_rng(1))
    assert mask.max() > 0.5
    assert np.abs(image.astype(np.int16) - crop.astype(np.int16))[mask > 0].mean() < 2.0
    with pytest.raises(ValueError, match="src_lm"):
        landmark_swap(crop, landmarks[:100], crop, landmarks, np.random.default_rng(0))
    with pytest.raises(ValueError, match="differ"):
        landmark_swap(crop[:200, :200], landmarks, crop, landmarks, np.random.default_rng(0))


def test_inconsistent_clip_flickers_where_a_consistent_blend_would_not() -> None:
    frames = np.stack([face_crop()] * 8)
    landmarks = np.stack([face_landmarks()] * 8)
    consistent = np.stack([self_blend(frame, lm, np.random.default_rng(5))[1] for frame, lm in
                           zip(frames, landmarks, strict=True)])
    assert np.abs(np.diff(consistent, axis=0)).max() == 0.0
    for seed in range(6):
        clip, masks = inconsistent_clip(frames, landmarks, np.random.default_rng(seed))
        assert clip.shape == frames.shape and clip.dtype == np.uint8
        assert masks.shape == (8, SIZE, SIZE) and masks.dtype == np.float32
        assert masks.min() >= 0.0 and masks.max() <= 1.0
        for frame, image, mask in zip(frames, clip, masks, strict=True):
            np.testing.assert_array_equal(image[mask == 0], frame[mask == 0])
        assert np.abs(np.diff(masks, axis=0)).mean() > 1e-3
        assert np.abs(np.diff(clip.astype(np.float32), axis=0)).mean() > 0.05
    again = inconsistent_clip(frames, landmarks, np.random.default_rng(2))
    np.testing.assert_array_equal(again[0], inconsistent_clip(frames, landmarks, np.random.default_rng(2))[0])
    with pytest.raises(ValueError, match="landmarks"):
        inconsistent_clip(frames, landmarks[:4], np.random.default_rng(0))


def test_landmarks_in_crop_match_the_aligned_crop_geometry() -> None:
    frame_lm = face_landmarks((0.0, 0.0), (70.0, 90.0), seed=4).astype(np.float64)
    frame_lm[LEFT_IRIS] = (-28.0, -15.0)
    frame_lm[RIGHT_IRIS] = (28.0, -15.0)
    turn = math.radians(17.0)
    rotation = np.array([[math.cos(turn), -math.sin(turn)], [math.sin(turn), math.cos(turn)]])
    frame_lm = frame_lm @ rotation.T + np.array([410.0, 260.0])
    size, margin = 224, 0.2
    crop_lm = landmarks_in_crop(frame_lm, size=size, margin=margin)
    left, right = crop_lm[LEFT_IRIS].mean(axis=0), crop_lm[RIGHT_IRIS].mean(axis=0)
    assert left[1] == pytest.approx(right[1], abs=0.05)  # eye line horizontal
    extent = float((frame_lm.max(axis=0) - frame_lm.min(axis=0)).max())
    assert np.linalg.norm(right - left) == pytest.approx(56.0 * size / (extent * (1 + 2 * margin)), rel=1e-3)
    # a frame drawn with dots at two landmarks shows them where the mapped landmarks say
    frame = np.zeros((600, 800, 3), np.uint8)
    for index in (FACE_OVAL[0], FACE_OVAL[9]):
        cv2.circle(frame, tuple(int(v) for v in np.round(frame_lm[index])), 3, (255, 255, 255), -1)
    crop, _ = aligned_crop(frame, frame_lm, size=size, margin=margin)
    for index in (FACE_OVAL[0], FACE_OVAL[9]):
        x, y = np.round(crop_lm[index]).astype(int)
        assert crop[y, x].max() > 128


def test_timing_on_224_px_crops(capsys: pytest.CaptureFixture[str]) -> None:
    crop, landmarks = face_crop(), face_landmarks()
    other = face_crop((150, 110, 90), seed=5)
    rng = np.random.default_rng(0)
    timings = {}
    for name, call in (("self_blend", lambda: self_blend(crop, landmarks, rng)),
                       ("landmark_swap", lambda: landmark_swap(other, landmarks, crop, landmarks, rng))):
        call()
        start = time.perf_counter()
        for _ in range(10):
            image, _ = call()
        timings[name] = (time.perf_counter() - start) / 10 * 1000
        assert image.shape == (SIZE, SIZE, 3)
    with capsys.disabled():
        print(" ".join(f"{name} {ms:.1f} ms" for name, ms in timings.items()), end=" ")
