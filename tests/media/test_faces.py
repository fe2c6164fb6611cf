"""Faces: MediaPipe detection and 478 landmarks on a real photo, aligned crops, IoU tracking."""

from __future__ import annotations

import math
from collections.abc import Iterator

import cv2
import numpy as np
import pytest
from mediapipe.framework.formats import landmark_pb2
from skimage import data

from tamperscope.media.faces import (
    LEFT_IRIS,
    RIGHT_IRIS,
    Face,
    FaceAnalyzer,
    aligned_crop,
    assign_tracks,
    iou,
    landmark_array,
    rescale,
)


@pytest.fixture(scope="module")
def analyzer() -> Iterator[FaceAnalyzer]:
    with FaceAnalyzer(crop_size=112, crop_margin=0.2) as face_analyzer:
        yield face_analyzer


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return np.ascontiguousarray(data.astronaut())  # 512 x 512, one face near the top left


def test_finds_the_face_with_landmarks(analyzer: FaceAnalyzer, photo: np.ndarray) -> None:
    faces = analyzer.detect(photo)
    assert len(faces) == 1
    face = faces[0]
    x0, y0, x1, y1 = face.box
    assert 140 < (x0 + x1) / 2 < 240 and 40 < (y0 + y1) / 2 < 160
    assert face.landmarks is not None and face.landmarks.shape == (478, 3)
    inside = ((face.landmarks[:, 0] > x0 - 20) & (face.landmarks[:, 0] < x1 + 20)
              & (face.landmarks[:, 1] > y0 - 30) & (face.landmarks[:, 1] < y1 + 20))
    assert inside.mean() > 0.95
    left, right = face.landmarks[LEFT_IRIS, :2].mean(0), face.landmarks[RIGHT_IRIS, :2].mean(0)
    assert left[0] < right[0]  # MediaPipe's "left" iris is on the image left
    assert abs(left[1] - right[1]) < 10
    assert face.crop is not None and face.crop.shape == (112, 112, 3)


def test_landmarks_follow_a_rotated_face(analyzer: FaceAnalyzer, photo: np.ndarray) -> None:
    center = (190.0, 100.0)
    turned = cv2.warpAffine(photo, cv2.getRotationMatrix2D(center, 20, 1.0), (512, 512))
    faces = analyzer.detect(turned)
    assert faces and faces[0].landmarks is not None
    left, right = faces[0].landmarks[LEFT_IRIS, :2].mean(0), faces[0].landmarks[RIGHT_IRIS, :2].mean(0)
    angle = math.degrees(math.atan2(right[1] - left[1], right[0] - left[0]))
    assert angle == pytest.approx(-20, abs=6)  # counter-clockwise turn lifts the right eye


def test_aligned_crop_levels_the_eyes(analyzer: FaceAnalyzer, photo: np.ndarray) -> None:
    turned = cv2.warpAffine(photo, cv2.getRotationMatrix2D((190.0, 100.0), 20, 1.0), (512, 512))
    face = analyzer.detect(turned)[0]
    assert face.landmarks is not None
    crop, box = aligned_crop(turned, face.landmarks, size=160, margin=0.2)
    recrop = analyzer.detect(cv2.copyMakeBorder(crop, 80, 80, 80, 80, cv2.BORDER_CONSTANT))
    assert recrop and recrop[0].landmarks is not None
    left, right = recrop[0].landmarks[LEFT_IRIS, :2].mean(0), recrop[0].landmarks[RIGHT_IRIS, :2].mean(0)
    assert abs(math.degrees(math.atan2(right[1] - left[1], right[0] - left[0]))) < 5
    assert box[2] - box[0] == pytest.approx(box[3] - box[1])


def test_no_face_in_a_test_pattern(analyzer: FaceAnalyzer) -> None:
    assert analyzer.detect(np.full((256, 256, 3), 128, np.uint8)) == []


def test_iou() -> None:
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(1 / 3)
    assert iou((0, 0, 1, 1), (2, 2, 3, 3)) == 0.0


def test_tracks_follow_overlapping_boxes() -> None:
    def face(x: float) -> Face:
        return Face(box=(x, 0.0, x + 10.0, 10.0), score=0.9)

    frames = [[face(0), face(100)], [face(101), face(2)], [face(4)], [], [face(103), face(6)], [face(300)]]
    next_id = assign_tracks(frames, first_id=5)
    ids = [[f.track_id for f in faces] for faces in frames]
    assert ids[0] == [5, 6]
    assert ids[1] == [6, 5] and ids[2] == [5]
    assert ids[4] == [6, 5]  # one missing frame does not end a track
    assert ids[5] == [7] and next_id == 8


def test_tiles_find_a_small_distant_face(photo: np.ndarray) -> None:
    small = cv2.resize(photo[:256, 64:320], (64, 64), interpolation=cv2.INTER_AREA)  # face about 30 px wide
    canvas = np.full((720, 1280, 3), 90, np.uint8)
    canvas[300:364, 900:964] = small
    with FaceAnalyzer(tiles=False) as whole, FaceAnalyzer(tiles=True) as tiled:
        assert whole.detect(canvas) == []
        faces = tiled.detect(canvas)
    assert len(faces) == 1
    x0, y0, x1, y1 = faces[0].box
    assert 900 <= (x0 + x1) / 2 <= 964 and 300 <= (y0 + y1) / 2 <= 364


def test_rescale_maps_to_smaller_frame() -> None:
    face = Face(box=(10.0, 20.0, 30.0, 40.0), score=0.9, landmarks=np.ones((478, 3), np.float32) * 10,
                crop_box=(0.0, 0.0, 50.0, 50.0))
    half = rescale(face, 0.5)
    assert half.box == (5.0, 10.0, 15.0, 20.0) and half.crop_box == (0.0, 0.0, 25.0, 25.0)
    assert half.landmarks is not None and float(half.landmarks[0, 2]) == 5.0


def _by_attribute(landmark_list: landmark_pb2.NormalizedLandmarkList) -> np.ndarray:
    return np.array([(p.x, p.y, p.z) for p in landmark_list.landmark], dtype=np.float64)


def test_landmark_array_equals_the_attribute_values() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(0.5, 0.4, (478, 3)).astype(np.float32)
    values[5] = 0.0  # explicitly set zeros are still on the wire (proto2)
    plain = landmark_pb2.NormalizedLandmarkList()
    for x, y, z in values:
        plain.landmark.add(x=x, y=y, z=z)
    fast = landmark_array(plain)
    assert fast.dtype == np.float64 and fast.shape == (478, 3)
    assert np.array_equal(fast, _by_attribute(plain)) and np.array_equal(fast, values.astype(np.float64))
    plain.landmark[7].visibility = 0.9  # another layout: read attribute by attribute, same values
    assert np.array_equal(landmark_array(plain), _by_attribute(plain))
    assert landmark_array(landmark_pb2.NormalizedLandmarkList()).shape == (0, 3)


def test_landmark_array_of_a_face_mesh_result(photo: np.ndarray) -> None:
    import mediapipe as mp

    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True) as mesh:
        result = mesh.process(np.ascontiguousarray(photo))
    assert result.multi_face_landmarks
    found = result.multi_face_landmarks[0]
    assert np.array_equal(landmark_array(found), _by_attribute(found))
