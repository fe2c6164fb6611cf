"""Synthetic talking heads with known ground truth, for the temporal tests and benchmark.

A real face photograph (scikit-image's ``astronaut``, public domain, NASA) is animated with
landmark-driven warps over its MediaPipe Face Mesh:

- the jaw and lower lip are displaced downwards (a smooth ``cv2.remap`` field anchored on the inner-lip
  and chin landmarks) by an amount following the amplitude envelope of speech synthesised with Debian's
  ``espeak-ng``, and the opened gap is painted as a dark mouth interior;
- the eyes are closed at known times by painting the eye contour with eyelid skin and a lash line,
  ramping the closure over each blink;
- the head sways slowly (a rotation homography ``K R K^-1`` about the nose tip, < 0.3 Hz), and optionally
  the face region alone gets an independent random pose per frame (``jitter_deg``), as a frame-by-frame
  face paste would;
- the audio is muxed (PyAV, i.e. FFmpeg's libraries: H.264 + AAC in MP4) shifted by a known offset,
  positive = audio later than the mouth.

This module is a fixture generator (it runs ``espeak-ng`` and writes files), not a detector core.
"""

from __future__ import annotations

import io
import subprocess
import wave
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from tamperscope.temporal.avsync import audio_envelope
from tamperscope.temporal.mesh import (
    INNER_LIP_LOWER,
    INNER_LIP_UPPER,
    LEFT_EYE_CONTOUR,
    LEFT_EYE_OUTER,
    MOUTH_CORNERS,
    NOSE_TIP,
    RIGHT_EYE_CONTOUR,
    RIGHT_EYE_OUTER,
)

AUDIO_RATE = 16000
DEFAULT_TEXT = ("Maybe people believe my brother paid both of them before the meeting. "
                "Please bring a big map, but mind the bumpy path by the pond.")


@dataclass(frozen=True)
class FaceRig:
    """A still face and its 478 landmarks, ready to animate."""

    image: np.ndarray
    landmarks: np.ndarray

    @property
    def size(self) -> tuple[int, int]:
        return self.image.shape[1], self.image.shape[0]


@dataclass(frozen=True)
class SyntheticClip:
    """A generated clip and its ground truth (times in milliseconds on the video clock)."""

    path: Path
    duration_s: float
    fps: int
    offset_ms: float
    blink_onsets_ms: tuple[float, ...]
    blink_ms: float
    jitter_deg: float
    speech_start_s: float
    mouth: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))


def detect_landmarks(rgb: np.ndarray) -> np.ndarray | None:
    """478 MediaPipe landmarks (pixels, z scaled by width) of the most prominent face in a still image."""
    import mediapipe as mp

    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True) as mesh:
        result = mesh.process(np.ascontiguousarray(rgb))
    if not result.multi_face_landmarks:
        return None
    height, width = rgb.shape[:2]
    return np.array([[p.x * width, p.y * height, p.z * width] for p in result.multi_face_landmarks[0].landmark])


def astronaut_rig(width: int = 256, height: int = 256, *, face_fraction: float = 0.45) -> FaceRig:
    """Crop scikit-image's astronaut around her face to ``width x height`` and find its landmarks.

    Parameters
    ----------
    width, height : int
        Output frame size.
    face_fraction : float
        Face height (forehead to chin) as a fraction of the frame height.
    """
    from skimage import data

    source = np.asarray(data.astronaut())
    found = detect_landmarks(source)
    if found is None:
        raise RuntimeError("MediaPipe found no face in the astronaut image")
    face_h = float(found[:, 1].max() - found[:, 1].min())
    crop_h = face_h / face_fraction
    crop_w = crop_h * width / height
    scale = min(1.0, source.shape[1] / crop_w, source.shape[0] / crop_h)
    crop_w, crop_h = crop_w * scale, crop_h * scale
    cx, cy = found[:, 0].mean(), found[:, 1].mean()
    x0 = float(np.clip(cx - crop_w / 2, 0, source.shape[1] - crop_w))
    y0 = float(np.clip(cy - crop_h / 2, 0, source.shape[0] - crop_h))
    affine = np.array([[width / crop_w, 0, -x0 * width / crop_w], [0, height / crop_h, -y0 * height / crop_h]])
    image = cv2.warpAffine(source, affine, (width, height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    landmarks = detect_landmarks(image)
    if landmarks is None:
        raise RuntimeError("MediaPipe found no face in the cropped astronaut image")
    return FaceRig(image=image, landmarks=landmarks)


def synthesise_speech(text: str = DEFAULT_TEXT, *, words_per_minute: int = 150) -> np.ndarray:
    """Speech from ``espeak-ng`` as 16 kHz mono float32 in [-1, 1]."""
    from scipy.signal import resample_poly

    wav = subprocess.run(["espeak-ng", "--stdout", "-s", str(words_per_minute), text], check=True,
                         capture_output=True).stdout
    with wave.open(io.BytesIO(wav)) as reader:
        rate = reader.getframerate()
        raw = np.frombuffer(reader.readframes(reader.getnframes()), dtype=np.int16)
    return resample_poly(raw.astype(np.float64) / 32768.0, AUDIO_RATE, rate).astype(np.float32)


def mouth_drive(speech: np.ndarray, frame_t_s: np.ndarray, speech_start_s: float) -> np.ndarray:
    """Mouth opening in [0, 1] per frame: the smoothed speech envelope placed at ``speech_start_s``."""
    t, rms = audio_envelope(speech, AUDIO_RATE)
    smooth = np.convolve(rms, np.ones(5) / 5, mode="same")
    level = smooth / max(float(np.percentile(smooth, 95)), 1e-9)
    return np.clip(np.interp(frame_t_s - speech_start_s, t, level, left=0.0, right=0.0), 0.0, 1.0)


class _Animator:
    """Precomputed warp fields and masks of one rig."""

    def __init__(self, rig: FaceRig) -> None:
        self.rig = rig
        lm = rig.landmarks[:, :2]
        width, height = rig.size
        self.iod = float(np.linalg.norm(lm[LEFT_EYE_OUTER] - lm[RIGHT_EYE_OUTER]))
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        self.xs, self.ys = xs, ys
        lip_y = float(lm[list(INNER_LIP_LOWER), 1].mean())
        chin_y = float(lm[152, 1])
        left, right = sorted(float(lm[i, 0]) for i in MOUTH_CORNERS)
        width_m = right - left
        vertical = np.clip((ys - lip_y) / 1.5, 0, 1) * np.clip(1 - (ys - chin_y) / (0.8 * (chin_y - lip_y)), 0, 1)
        centre = (left + right) / 2.0

        def profile(x: np.ndarray) -> np.ndarray:
            return np.exp(-0.5 * ((x - centre) / (0.45 * width_m)) ** 2)

        self.jaw = (vertical * profile(xs)).astype(np.float32)
        self.max_open = 0.2 * self.iod
        self.upper = lm[list(INNER_LIP_UPPER)].astype(np.float32)
        self.lower = lm[list(INNER_LIP_LOWER)].astype(np.float32)
        self.lower_weight = profile(self.lower[:, 0]).astype(np.float32)
        self.closed_eyes, self.eye_mask = self._closed_eyes()
        self.nose = lm[NOSE_TIP].astype(np.float64)
        hull = cv2.convexHull(lm.astype(np.float32)).astype(np.int32)
        face = np.zeros((height, width), np.float32)
        cv2.fillConvexPoly(face, hull, 1.0)
        self.face_mask = cv2.GaussianBlur(face, (0, 0), 0.05 * self.iod)[..., None]

    def _closed_eyes(self) -> tuple[np.ndarray, np.ndarray]:
        image = self.rig.image.copy()
        lm = self.rig.landmarks[:, :2]
        mask = np.zeros(image.shape[:2], np.float32)
        for contour in (RIGHT_EYE_CONTOUR, LEFT_EYE_CONTOUR):
            pts = lm[list(contour)]
            eye_h = float(pts[:, 1].max() - pts[:, 1].min())
            # Eyelid skin: the band just below the lower lid (above is the brow and lash shadow).
            below = pts + np.array([0.0, 1.2 * eye_h + 2])
            band = np.zeros(image.shape[:2], np.uint8)
            cv2.fillPoly(band, [below.astype(np.int32)], 1)
            skin = np.median(self.rig.image[band.astype(bool)], axis=0)
            poly = pts.astype(np.int32)
            cv2.fillPoly(image, [poly], skin.tolist())
            lower = pts[1:9]  # outer corner along the lower lid to the inner corner
            cv2.polylines(image, [(lower - np.array([0.0, 0.25 * eye_h])).astype(np.int32)], False,
                          (skin * 0.45).tolist(), max(1, round(0.12 * eye_h)), cv2.LINE_AA)
            cv2.fillPoly(mask, [poly], 1.0)
        soft = cv2.GaussianBlur(cv2.dilate(mask, np.ones((5, 5), np.uint8)), (0, 0), 1.5)
        return image, np.asarray(soft, np.float32)[..., None]

    def frame(self, mouth: float, eyes: float, face_pose: np.ndarray | None, head_pose: np.ndarray) -> np.ndarray:
        base = self.rig.image
        if eyes > 0:
            alpha = self.eye_mask * float(eyes)
            base = (base * (1 - alpha) + self.closed_eyes * alpha).astype(np.uint8)
        d = float(mouth) * self.max_open
        if d > 0.2:
            base = cv2.remap(base, self.xs, self.ys - d * self.jaw, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            lowered = self.lower.copy()
            lowered[:, 1] += d * self.lower_weight
            gap = np.concatenate([self.upper, lowered[::-1]])
            cv2.fillPoly(base, [np.round(gap * 4).astype(np.int32)], (70, 22, 28), cv2.LINE_AA, shift=2)
        width, height = self.rig.size
        if face_pose is not None:
            moved = cv2.warpPerspective(base, self._homography(face_pose), (width, height),
                                        flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            base = (base * (1 - self.face_mask) + moved * self.face_mask).astype(np.uint8)
        return cv2.warpPerspective(base, self._homography(head_pose), (width, height), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REFLECT)

    def _homography(self, angles_deg: np.ndarray) -> np.ndarray:
        yaw, pitch, roll = np.radians(angles_deg)
        rx = cv2.Rodrigues(np.array([pitch, 0.0, 0.0]))[0]
        ry = cv2.Rodrigues(np.array([0.0, yaw, 0.0]))[0]
        rz = cv2.Rodrigues(np.array([0.0, 0.0, roll]))[0]
        f = float(self.rig.size[0])
        k = np.array([[f, 0, self.nose[0]], [0, f, self.nose[1]], [0, 0, 1.0]])
        return k @ (rz @ ry @ rx) @ np.linalg.inv(k)


def blink_profile(frame_t_ms: np.ndarray, onsets_ms: tuple[float, ...], blink_ms: float) -> np.ndarray:
    """Eye closure in [0, 1] per frame: a raised-cosine pulse of length ``blink_ms`` at each onset."""
    closure = np.zeros(len(frame_t_ms))
    for onset in onsets_ms:
        phase = (frame_t_ms - onset) / blink_ms
        inside = (phase >= 0) & (phase <= 1)
        closure[inside] = np.maximum(closure[inside], np.sin(np.pi * phase[inside]) ** 0.5)
    return closure


def talking_head(path: Path, *, duration_s: float = 4.0, fps: int = 25, size: tuple[int, int] = (256, 256),
                 offset_ms: float = 0.0, blink_onsets_ms: tuple[float, ...] = (), blink_ms: float = 200.0,
                 jitter_deg: float = 0.0, sway_deg: float = 3.0, speech_start_s: float = 0.5,
                 text: str = DEFAULT_TEXT, seed: int = 0, rig: FaceRig | None = None) -> SyntheticClip:
    """Write an MP4 talking head with known mouth/audio offset, blinks and pose jitter.

    Parameters
    ----------
    path : Path
        Output ``.mp4``.
    duration_s, fps, size
        Clip length, frame rate and ``(width, height)``.
    offset_ms : float
        Audio delay relative to the mouth (positive = audio lags video).
    blink_onsets_ms : tuple of float
        Blink onsets on the video clock.
    blink_ms : float
        Duration of each blink (closure pulse length).
    jitter_deg : float
        Standard deviation of the independent per-frame pose of the face region (0 = none).
    sway_deg : float
        Amplitude of the slow whole-head sway.
    speech_start_s : float
        When speech starts on the video clock (the text is repeated to fill the clip).
    text : str
        Text spoken by ``espeak-ng``.
    seed : int
        Seed of the jitter.
    rig : FaceRig, optional
        A prepared rig (default :func:`astronaut_rig` at ``size``).

    Returns
    -------
    SyntheticClip
    """
    rig = rig or astronaut_rig(*size)
    animator = _Animator(rig)
    n = round(duration_s * fps)
    t_s = np.arange(n) / fps
    speech = synthesise_speech(text)
    need = duration_s - speech_start_s
    while len(speech) / AUDIO_RATE < need:
        speech = np.concatenate([speech, np.zeros(AUDIO_RATE // 4, np.float32), speech])
    speech = speech[: max(1, round(need * AUDIO_RATE))]
    mouth = mouth_drive(speech, t_s, speech_start_s)
    eyes = blink_profile(t_s * 1000.0, blink_onsets_ms, blink_ms)
    rng = np.random.default_rng(seed)
    sway = sway_deg * np.stack([np.sin(2 * np.pi * 0.23 * t_s), 0.6 * np.sin(2 * np.pi * 0.17 * t_s + 1.0),
                                0.5 * np.sin(2 * np.pi * 0.29 * t_s + 2.0)], axis=1)
    audio = np.zeros(round(duration_s * AUDIO_RATE), np.float32)
    start = round((speech_start_s + offset_ms / 1000.0) * AUDIO_RATE)
    lo, hi = max(0, start), min(len(audio), start + len(speech))
    if hi > lo:
        audio[lo:hi] = speech[lo - start : hi - start]
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        vstream = container.add_stream("libx264", rate=fps, options={"crf": "18", "preset": "veryfast"})
        vstream.width, vstream.height, vstream.pix_fmt = size[0], size[1], "yuv420p"
        astream = container.add_stream("aac", rate=AUDIO_RATE, layout="mono")
        for i in range(n):
            pose = rng.normal(0.0, jitter_deg, 3) if jitter_deg > 0 else None
            rgb = animator.frame(mouth[i], eyes[i], pose, sway[i])
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            container.mux(vstream.encode(frame))
        container.mux(vstream.encode(None))
        chunk = 1024
        for i in range(0, len(audio), chunk):
            block = audio[i : i + chunk]
            aframe = av.AudioFrame.from_ndarray(block[None, :], format="flt", layout="mono")
            aframe.sample_rate, aframe.pts, aframe.time_base = AUDIO_RATE, i, Fraction(1, AUDIO_RATE)
            container.mux(astream.encode(aframe))
        container.mux(astream.encode(None))
    return SyntheticClip(path=path, duration_s=duration_s, fps=fps, offset_ms=offset_ms,
                         blink_onsets_ms=tuple(blink_onsets_ms), blink_ms=blink_ms, jitter_deg=jitter_deg,
                         speech_start_s=speech_start_s, mouth=mouth)
