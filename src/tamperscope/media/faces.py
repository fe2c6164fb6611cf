"""Faces on sampled frames: detection, 478-point landmarks, aligned crops and IoU tracking within a shot.

Detection uses MediaPipe's BlazeFace full-range model; each detected face is cut out with a margin and run
through MediaPipe Face Mesh (with iris refinement, 478 points), whose landmarks are mapped back to frame
pixels. The aligned crop rotates the eye line horizontal and scales the landmark extent plus a margin to a
fixed size. Both models ship inside the ``mediapipe`` wheel and run on CPU.

References
----------
.. [1] V. Bazarevsky et al., "BlazeFace: Sub-millisecond neural face detection on mobile GPUs",
   arXiv:1907.05047, 2019.
.. [2] Y. Kartynnik et al., "Real-time facial surface geometry from monocular video on mobile GPUs",
   arXiv:1907.06724, 2019.
.. [3] A. Bewley et al., "Simple online and realtime tracking", ICIP 2016, doi:10.1109/ICIP.2016.7533003
   (IoU association).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

LEFT_IRIS = list(range(468, 473))
RIGHT_IRIS = list(range(473, 478))
LEFT_EYE_CORNERS = [33, 133]
RIGHT_EYE_CORNERS = [362, 263]


#: one serialised ``NormalizedLandmark`` with only x, y and z set: field tag, length 15, then tag and little-endian
#: float32 per coordinate (protobuf wire format: fields 1-3, wire type 5)
_LANDMARK_RECORD = np.dtype({"names": ["x", "y", "z"], "formats": ["<f4", "<f4", "<f4"], "offsets": [3, 8, 13],
                             "itemsize": 17})
_LANDMARK_TAGS = ((0, 0x0A), (1, 0x0F), (2, 0x0D), (7, 0x15), (12, 0x1D))


def landmark_array(landmark_list: Any) -> np.ndarray:
    """``N x 3`` float64 ``(x, y, z)`` of a MediaPipe ``NormalizedLandmarkList``, the values its attributes give.

    Read from the message's wire bytes in one NumPy view when every landmark carries exactly x, y and z (as Face
    Mesh's do), which is 50x faster than 1,434 attribute reads per face; any other layout is read attribute by
    attribute.
    """
    count = len(landmark_list.landmark)
    data = landmark_list.SerializeToString()
    if count and len(data) == count * _LANDMARK_RECORD.itemsize:
        raw = np.frombuffer(data, np.uint8).reshape(count, _LANDMARK_RECORD.itemsize)
        if all((raw[:, offset] == tag).all() for offset, tag in _LANDMARK_TAGS):
            records = np.frombuffer(data, _LANDMARK_RECORD)
            return np.stack([records["x"], records["y"], records["z"]], axis=1).astype(np.float64)
    return np.array([(p.x, p.y, p.z) for p in landmark_list.landmark], dtype=np.float64).reshape(count, 3)


@dataclass
class Face:
    """One face in one frame.

    Attributes
    ----------
    box : tuple of float
        ``(x0, y0, x1, y1)`` in frame pixels.
    score : float
        Detection confidence.
    landmarks : numpy.ndarray or None
        ``478 x 3`` float: x, y in frame pixels, z in the same pixel scale; None when the mesh failed.
    crop : numpy.ndarray or None
        Aligned ``S x S x 3`` uint8 RGB crop.
    crop_box : tuple of float or None
        Axis-aligned frame region the crop covers.
    track_id : int
        Assigned by :func:`assign_tracks`; -1 until then.
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray | None = None
    crop: np.ndarray | None = None
    crop_box: tuple[float, float, float, float] | None = None
    track_id: int = -1
    extra: dict[str, Any] = field(default_factory=dict)


def rescale(face: Face, factor: float) -> Face:
    """The face with box, landmarks (x, y and z) and crop box multiplied by ``factor`` (crop unchanged).

    Used to map faces found on a larger rendering of a frame into the normalised frame's pixels.
    """
    def scaled(box: tuple[float, float, float, float] | None) -> tuple[float, float, float, float] | None:
        return None if box is None else (box[0] * factor, box[1] * factor, box[2] * factor, box[3] * factor)

    box = scaled(face.box)
    assert box is not None
    return Face(box=box, score=face.score,
                landmarks=None if face.landmarks is None else (face.landmarks * factor).astype(np.float32),
                crop=face.crop, crop_box=scaled(face.crop_box), track_id=face.track_id)


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two ``(x0, y0, x1, y1)`` boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def assign_tracks(frames: list[list[Face]], *, first_id: int = 0, min_iou: float = 0.3,
                  max_gap: int = 2) -> int:
    """Give the faces of consecutive frames of one shot track ids by greedy IoU matching.

    Parameters
    ----------
    frames : list of list of Face
        Faces per sampled frame, in time order; ``track_id`` is set in place.
    first_id : int
        First id to hand out (ids are unique across shots when the caller chains the return value).
    min_iou : float
        Least overlap with a track's last box to continue it.
    max_gap : int
        Frames a track may go unseen before it ends.

    Returns
    -------
    int
        The next unused id.
    """
    next_id = first_id
    active: dict[int, tuple[tuple[float, ...], int]] = {}
    for position, faces in enumerate(frames):
        pairs = sorted(((iou(face.box, box), n, tid) for n, face in enumerate(faces)
                        for tid, (box, last) in active.items() if position - last <= max_gap + 1),
                       reverse=True)
        used_faces: set[int] = set()
        used_tracks: set[int] = set()
        for overlap, n, tid in pairs:
            if overlap < min_iou or n in used_faces or tid in used_tracks:
                continue
            faces[n].track_id = tid
            used_faces.add(n)
            used_tracks.add(tid)
        for n, face in enumerate(faces):
            if n not in used_faces:
                face.track_id = next_id
                next_id += 1
            active[face.track_id] = (face.box, position)
    return next_id


def _square_affine(center: tuple[float, float], side: float, size: int, angle_deg: float = 0.0) -> np.ndarray:
    """Affine map sending a square of ``side`` around ``center`` (rotated by ``angle_deg``) to ``size`` px."""
    matrix = cv2.getRotationMatrix2D(center, angle_deg, size / side)
    matrix[0, 2] += size / 2.0 - center[0]
    matrix[1, 2] += size / 2.0 - center[1]
    return matrix


def aligned_crop_affine(landmarks: np.ndarray, *, size: int, margin: float) -> tuple[
        np.ndarray, tuple[float, float, float, float]]:
    """The affine map of :func:`aligned_crop` (frame pixels -> crop pixels) and the frame box it covers.

    Parameters
    ----------
    landmarks : numpy.ndarray
        ``478 x 3`` landmarks in frame pixels.
    size : int
        Output side in pixels.
    margin : float
        Extra border as a fraction of the landmark extent on each side.

    Returns
    -------
    matrix : numpy.ndarray
        ``2 x 3`` affine matrix (apply to landmarks to get crop coordinates).
    crop_box : tuple of float
        Axis-aligned frame box of the (unrotated) region.
    """
    left = landmarks[LEFT_IRIS, :2].mean(axis=0) if len(landmarks) >= 478 else landmarks[LEFT_EYE_CORNERS, :2].mean(0)
    right = landmarks[RIGHT_IRIS, :2].mean(axis=0) if len(landmarks) >= 478 \
        else landmarks[RIGHT_EYE_CORNERS, :2].mean(0)
    # MediaPipe's "left" eye is the subject's right, on the image left.
    angle = math.degrees(math.atan2(right[1] - left[1], right[0] - left[0]))
    x0, y0 = landmarks[:, 0].min(), landmarks[:, 1].min()
    x1, y1 = landmarks[:, 0].max(), landmarks[:, 1].max()
    center = (float((x0 + x1) / 2), float((y0 + y1) / 2))
    side = float(max(x1 - x0, y1 - y0) * (1.0 + 2.0 * margin))
    side = max(side, 2.0)
    half = side / 2.0
    return _square_affine(center, side, size, angle), (center[0] - half, center[1] - half, center[0] + half,
                                                       center[1] + half)


def aligned_crop(rgb: np.ndarray, landmarks: np.ndarray, *, size: int, margin: float) -> tuple[
        np.ndarray, tuple[float, float, float, float]]:
    """Cut a face out with the eye line horizontal and the landmark extent plus margin filling ``size``.

    Parameters
    ----------
    rgb : numpy.ndarray
        The frame.
    landmarks : numpy.ndarray
        ``478 x 3`` landmarks in frame pixels.
    size : int
        Output side in pixels.
    margin : float
        Extra border as a fraction of the landmark extent on each side.

    Returns
    -------
    crop : numpy.ndarray
        ``size x size x 3`` uint8.
    crop_box : tuple of float
        Axis-aligned frame box of the (unrotated) region.
    """
    matrix, crop_box = aligned_crop_affine(landmarks, size=size, margin=margin)
    crop = cv2.warpAffine(rgb, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return crop, crop_box


def box_crop(rgb: np.ndarray, box: tuple[float, float, float, float], *, size: int, margin: float) -> tuple[
        np.ndarray, tuple[float, float, float, float]]:
    """Unrotated square crop around a detection box (used when the mesh finds no landmarks).

    Parameters
    ----------
    rgb : numpy.ndarray
        The frame.
    box : tuple of float
        ``(x0, y0, x1, y1)`` in frame pixels.
    size : int
        Output side in pixels.
    margin : float
        Extra border as a fraction of the box on each side.

    Returns
    -------
    crop : numpy.ndarray
        ``size x size x 3`` uint8.
    crop_box : tuple of float
        Frame box of the crop.
    """
    center = ((box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0)
    side = max(box[2] - box[0], box[3] - box[1], 2.0) * (1.0 + 2.0 * margin)
    crop = cv2.warpAffine(rgb, _square_affine(center, side, size), (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT)
    half = side / 2.0
    return crop, (center[0] - half, center[1] - half, center[0] + half, center[1] + half)


class FaceAnalyzer:
    """MediaPipe face detection plus face mesh on crops; not thread-safe (one per thread).

    Parameters
    ----------
    crop_size : int
        Side of aligned crops.
    crop_margin : float
        Margin of aligned crops, fraction of the landmark extent.
    min_score : float
        Detection confidence threshold.
    max_faces : int
        Most faces kept per frame (highest scores).
    tiles : bool
        Search overlapping tiles when the whole frame shows no face (finds small, distant faces).
    """

    MESH_INPUT = 256
    MIN_TILE = 192

    def __init__(self, *, crop_size: int = 224, crop_margin: float = 0.2, min_score: float = 0.5,
                 max_faces: int = 4, tiles: bool = True) -> None:
        import mediapipe as mp

        self.tiles = tiles
        self.crop_size = crop_size
        self.crop_margin = crop_margin
        self.max_faces = max_faces
        self._detector = mp.solutions.face_detection.FaceDetection(model_selection=1,
                                                                   min_detection_confidence=min_score)
        self._mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1,
                                                     refine_landmarks=True, min_detection_confidence=0.3)

    def close(self) -> None:
        self._detector.close()
        self._mesh.close()

    def __enter__(self) -> FaceAnalyzer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _boxes(self, rgb: np.ndarray, x_off: int = 0, y_off: int = 0) -> list[tuple[float, tuple[float, ...]]]:
        """Detector boxes ``(score, (x0, y0, x1, y1))`` in the coordinates of the frame ``rgb`` was cut from."""
        height, width = rgb.shape[:2]
        result = self._detector.process(np.ascontiguousarray(rgb))
        out: list[tuple[float, tuple[float, ...]]] = []
        for detection in result.detections or []:
            rel = detection.location_data.relative_bounding_box
            x0, y0 = max(0.0, rel.xmin * width), max(0.0, rel.ymin * height)
            x1 = min(float(width), (rel.xmin + rel.width) * width)
            y1 = min(float(height), (rel.ymin + rel.height) * height)
            if x1 - x0 >= 4 and y1 - y0 >= 4:
                out.append((float(detection.score[0]), (x0 + x_off, y0 + y_off, x1 + x_off, y1 + y_off)))
        return out

    def _tiled_boxes(self, rgb: np.ndarray) -> list[tuple[float, tuple[float, ...]]]:
        """Boxes from overlapping square tiles of half the short side: BlazeFace sees the whole input at
        192 px, so a face a few percent of the frame wide only becomes detectable in a tile."""
        height, width = rgb.shape[:2]
        side = max(self.MIN_TILE, min(height, width) // 2)
        if side >= min(height, width):
            return []
        stride = max(1, (3 * side) // 4)
        xs = sorted({*range(0, width - side, stride), width - side})
        ys = sorted({*range(0, height - side, stride), height - side})
        found = [box for y in ys for x in xs for box in self._boxes(rgb[y:y + side, x:x + side], x, y)]
        kept: list[tuple[float, tuple[float, ...]]] = []
        for score, box in sorted(found, key=lambda item: -item[0]):  # non-maximum suppression
            if all(iou(box, other) < 0.3 for _, other in kept):
                kept.append((score, box))
        return kept

    def detect(self, rgb: np.ndarray) -> list[Face]:
        """Faces in an RGB frame, with landmarks and aligned crops where the mesh succeeds.

        The whole frame is searched first; when it shows no face and ``tiles`` is on, overlapping tiles are.
        """
        boxes = self._boxes(rgb)
        if not boxes and self.tiles:
            boxes = self._tiled_boxes(rgb)
        faces: list[Face] = []
        for score, (x0, y0, x1, y1) in sorted(boxes, key=lambda item: -item[0])[: self.max_faces]:
            face = Face(box=(round(x0, 2), round(y0, 2), round(x1, 2), round(y1, 2)), score=round(score, 4))
            face.landmarks = self._landmarks(rgb, face.box)
            if face.landmarks is not None:
                face.crop, face.crop_box = aligned_crop(rgb, face.landmarks, size=self.crop_size,
                                                        margin=self.crop_margin)
            else:
                face.crop, face.crop_box = box_crop(rgb, face.box, size=self.crop_size, margin=self.crop_margin)
            faces.append(face)
        return faces

    def _landmarks(self, rgb: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray | None:
        center = ((box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0)
        side = max(box[2] - box[0], box[3] - box[1]) * 1.8
        size = self.MESH_INPUT
        matrix = _square_affine(center, side, size)
        patch = cv2.warpAffine(rgb, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        result = self._mesh.process(patch)
        if not result.multi_face_landmarks:
            return None
        points = landmark_array(result.multi_face_landmarks[0])
        scale = side / size
        out = np.empty(points.shape, dtype=np.float32)
        out[:, 0] = center[0] - side / 2.0 + points[:, 0] * size * scale
        out[:, 1] = center[1] - side / 2.0 + points[:, 1] * size * scale
        out[:, 2] = points[:, 2] * side
        return out
