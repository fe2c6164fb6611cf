"""The ``video`` stage: one decode pass feeding shot detection, shot-aware sampling, quality and faces.

Everything downstream (forensics, temporal, AV sync, deep models) reads what this stage writes: ``shots``
rows, ``frames`` rows (stored PNG, quality, ``faces_json``) and ``windows`` rows (clip arrays). An image is
treated as a one-frame, one-shot video.

Work per sampled frame (PNG encoding, storing, face analysis) runs on small thread pools with a bounded
number of frames in flight, overlapping with decoding; memory stays flat in the video's duration.
"""

from __future__ import annotations

import bisect
import contextlib
import gc
import hashlib
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ClassVar

import cv2
import numpy as np

from tamperscope.media.audio import AudioCollector
from tamperscope.media.faces import Face, FaceAnalyzer, assign_tracks, rescale
from tamperscope.media.frames import DecodedFrame
from tamperscope.media.image import image_frame
from tamperscope.media.orientation import upright
from tamperscope.media.png import encode_png
from tamperscope.media.quality import FrameQuality, frame_quality, mark_near_duplicates
from tamperscope.media.sampling import Sample, ShotAwareSampler, buffer_length
from tamperscope.media.session import FrameRate
from tamperscope.media.shots import Cut, ShotDetector, detection_frame
from tamperscope.media.video_reader import VideoReader
from tamperscope.media.windows import Spool, letterbox, to_npy_bytes, window_id, window_spans
from tamperscope.records import FaceRecord, MediaType, StageOutput, WindowRecord
from tamperscope.settings import VideoSettings
from tamperscope.stages.base import FRAMES_MEMO, Stage, StageContext

MAX_IN_FLIGHT = 8


def frame_id(asset_id: str, t_ms: int) -> str:
    """``<asset_id>:f<t_ms:09d>``."""
    return f"{asset_id}:f{t_ms:09d}"


def shot_id(asset_id: str, index: int) -> str:
    """``<asset_id>:s<index:04d>``."""
    return f"{asset_id}:s{index:04d}"


def decode_png(data: bytes) -> np.ndarray:
    """RGB array of PNG bytes."""
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError("PNG decoding failed")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@dataclass
class SampledFrame:
    """What is kept of a sampled frame once its pixels are stored."""

    index: int
    t_ms: int
    key: bool
    shot_start: bool
    reason: str
    width: int
    height: int
    uri: str
    sha1: str
    quality: FrameQuality
    thumb_slot: int
    faces: list[Face] = field(default_factory=list)
    crop_uris: list[str] = field(default_factory=list)
    crop_slots: list[int] = field(default_factory=list)


class _FramePipeline:
    """Stores sampled frames (and their face crops) on worker threads, a bounded number at a time."""

    def __init__(self, ctx: StageContext, video: VideoSettings, faces: FaceAnalyzer | None, spool: Spool) -> None:
        self.ctx = ctx
        self.spool = spool
        self.video = video
        self.faces = faces
        self._io = ThreadPoolExecutor(max_workers=2, thread_name_prefix="video-io")
        self._face_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="video-faces") if faces else None
        self._pending: deque[Future[SampledFrame]] = deque()
        self.done: list[SampledFrame] = []
        self._seen_t: set[int] = set()

    def _store(self, sample: Sample[DecodedFrame], faces: list[Face]) -> SampledFrame:
        frame = sample.frame
        png = encode_png(frame.rgb, self.video.png_compression)
        name = f"frames/{frame.t_ms:09d}.png"
        uri = self.ctx.ws.store.put_bytes(self.ctx.derived_key(name), png)
        crop_uris, crop_slots = [], []
        for n, face in enumerate(faces):
            assert face.crop is not None
            crop_png = encode_png(face.crop, self.video.png_compression)
            crop_uris.append(self.ctx.ws.store.put_bytes(self.ctx.derived_key(f"faces/{frame.t_ms:09d}_{n}.png"),
                                                         crop_png))
            crop_slots.append(self.spool.append(face.crop))
            face.crop = None
        thumb_slot = -1 if faces else self.spool.append(letterbox(frame.rgb, self.video.face_crop_size))
        return SampledFrame(index=frame.index, t_ms=frame.t_ms, key=frame.key, shot_start=sample.shot_start,
                            reason=sample.reason, width=frame.rgb.shape[1], height=frame.rgb.shape[0], uri=uri,
                            sha1=hashlib.sha1(png).hexdigest(), quality=frame_quality(frame.rgb),
                            thumb_slot=thumb_slot, faces=faces, crop_uris=crop_uris, crop_slots=crop_slots)

    def _detect(self, frame: DecodedFrame) -> list[Face]:
        """Faces in normalised-frame pixels, found on the larger detail rendering when there is one."""
        assert self.faces is not None
        view = frame.face_view()
        if view is frame.rgb:
            return self.faces.detect(view)
        factor = frame.rgb.shape[1] / view.shape[1]
        return [rescale(face, factor) for face in self.faces.detect(view)]

    def _work(self, sample: Sample[DecodedFrame]) -> SampledFrame:
        faces: list[Face] = []
        if self._face_pool is not None and self.faces is not None:
            faces = self._face_pool.submit(self._detect, sample.frame).result()
        sample.frame.detail = None  # release the decoded source frame
        return self._store(sample, faces)

    def submit(self, samples: Iterable[Sample[DecodedFrame]]) -> None:
        for sample in samples:
            if sample.frame.t_ms in self._seen_t:
                continue
            self._seen_t.add(sample.frame.t_ms)
            self._pending.append(self._io.submit(self._work, sample))
            while len(self._pending) > MAX_IN_FLIGHT:
                self.done.append(self._pending.popleft().result())

    def finish(self) -> list[SampledFrame]:
        while self._pending:
            self.done.append(self._pending.popleft().result())
        return sorted(self.done, key=lambda s: s.index)

    def close(self) -> None:
        for future in self._pending:
            future.cancel()
        self._io.shutdown(wait=True)
        if self._face_pool is not None:
            self._face_pool.shutdown(wait=True)


@dataclass
class DecodeResult:
    """Output of the single decode pass."""

    samples: list[SampledFrame]
    spool: Spool
    cuts: list[Cut]
    frame_times: array[int]
    fps: float
    frames_decoded: int
    decode_error: str | None = None


def decode_and_sample(ctx: StageContext, is_image: bool, spool: Spool,
                      report: Callable[[float, str], None] | None = None) -> DecodeResult:
    """Decode the asset once and return the stored samples, the cuts and every frame's time.

    The same pass leaves in the media session what later stages would otherwise decode again: every frame at
    the dense landmark pass's size and the audio track (when ``temporal`` / ``avsync`` are to run).

    Parameters
    ----------
    ctx : StageContext
        Gives the store, settings, derived keys and the media session.
    is_image : bool
        Read as a still image (the session's one decode of it).
    spool : Spool
        Receives the window thumbnails and face crops.
    report : callable, optional
        Progress callback ``(fraction, message)``.
    """
    video = ctx.settings.video
    analyzer = FaceAnalyzer(crop_size=video.face_crop_size, crop_margin=video.face_crop_margin,
                            min_score=video.face_min_score, max_faces=video.max_faces,
                            tiles=video.face_tiles) if video.faces else None
    pipeline = _FramePipeline(ctx, video, analyzer, spool)
    detail_long_side = video.face_detect_long_side if video.faces else 0
    times: array[int] = array("q")
    try:
        if is_image:
            image = ctx.media.image(ctx.decode_limits())
            frame = image_frame(upright(image.rgb, image.orientation), long_side=video.long_side,
                                detail_long_side=detail_long_side)
            times.append(0)
            pipeline.submit([Sample(frame=frame, shot_start=True, reason="shot_start")])
            return DecodeResult(samples=pipeline.finish(), spool=spool, cuts=[], frame_times=times, fps=1.0,
                                frames_decoded=1)
        temporal = ctx.settings.temporal
        audio = AudioCollector if "avsync" in ctx.media.wants else None
        with VideoReader(ctx.media.path(), long_side=video.long_side, detail_long_side=detail_long_side,
                         second_long_side=temporal.long_side, audio=audio, limits=ctx.decode_limits()) as reader:
            fps = reader.info.fps
            expected = (reader.info.duration_ms or 0) * min(fps, temporal.max_fps) / 1000
            cache = ctx.media.dense_cache(temporal.long_side, ctx.settings.limits.frame_cache_mb << 20,
                                          round(expected))
            rate = FrameRate(temporal.max_fps)  # only the frames the dense pass takes
            detector = ShotDetector(fps, detectors=tuple(video.shot_detectors),
                                    content_threshold=video.content_threshold,
                                    adaptive_threshold=video.adaptive_threshold,
                                    fade_threshold=video.fade_threshold,
                                    min_scene_len=max(1, round(video.min_shot_s * fps)))
            sampler: ShotAwareSampler[DecodedFrame] = ShotAwareSampler(
                video.sample_fps, video.min_frames_per_shot,
                buffer_length(fps, video.sample_fps, video.min_frames_per_shot, detector.max_latency))
            duration = reader.info.duration_ms or 0
            for frame in reader:
                times.append(frame.t_ms)
                if cache is not None and cache.accepting and frame.second is not None and rate.take(frame.t_ms):
                    cache.append(frame.t_ms, frame.second())
                frame.second = None
                for cut in detector.push(frame.index, detection_frame(frame.rgb)):
                    sampler.add_cut(cut.index)
                pipeline.submit(sampler.push(frame))
                if report is not None and duration and frame.index % 100 == 0:
                    report(0.9 * frame.t_ms / duration, "decoding")
            for cut in detector.finish():
                sampler.add_cut(cut.index)
            pipeline.submit(sampler.flush())
            if reader.decode_error is None:
                if cache is not None:
                    cache.finish(min(fps, temporal.max_fps))
                if audio is not None:
                    ctx.media.set_audio(reader.audio.finish() if reader.audio is not None else None)
            return DecodeResult(samples=pipeline.finish(), spool=spool, cuts=list(detector.cuts), frame_times=times,
                                fps=fps, frames_decoded=len(times), decode_error=reader.decode_error)
    finally:
        pipeline.close()
        if analyzer is not None:
            analyzer.close()


def _round_box(box: Iterable[float]) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = (round(float(v), 2) for v in box)
    return x0, y0, x1, y1


def _round_points(points: np.ndarray) -> list[list[float]]:
    """Landmarks as nested lists rounded to 3 decimals, vectorised (7x faster than ``round`` per value; the
    same numbers for float32 landmarks)."""
    return np.round(np.asarray(points, dtype=np.float64), 3).tolist()


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector (as it was before, afterwards): the rows of a 60 s face video hold
    230,000 acyclic landmark lists, over which it would make 3 full passes (0.46 CPU-s) that free nothing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def build_rows(ctx: StageContext, result: DecodeResult) -> StageOutput:
    """Turn the decode pass into shots, frames (with faces) and windows rows, storing clip arrays.

    Samples are re-assigned to shots by frame index; a shot left without any sample (a fade cut reported after
    its frames had left the look-back buffer) is merged into the shot before it.
    """
    video = ctx.settings.video
    asset_id = ctx.asset.asset_id
    samples = result.samples
    sample_indices = [s.index for s in samples]
    cuts = sorted(result.cuts, key=lambda c: c.index)
    kept: list[Cut] = []
    merged = 0
    bounds = [0] + [c.index for c in cuts] + [result.frames_decoded]
    for n, cut in enumerate(cuts):
        lo = bisect.bisect_left(sample_indices, cut.index)
        hi = bisect.bisect_left(sample_indices, bounds[n + 2])
        if hi > lo and cut.index < result.frames_decoded:
            kept.append(cut)
        else:
            merged += 1
    starts = [0] + [c.index for c in kept]
    times = result.frame_times
    last_t = times[-1] if times else 0
    frame_ms = 0 if ctx.asset.media_type == MediaType.IMAGE else round(1000.0 / result.fps)
    shots: list[dict[str, Any]] = []
    for n, start in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else result.frames_decoded
        opener = kept[n - 1] if n else None
        shots.append({
            "shot_id": shot_id(asset_id, n), "index": n, "t_start_ms": int(times[start]) if times else 0,
            "t_end_ms": int(times[end]) if end < len(times) else int(last_t + frame_ms),
            "frame_start": start, "frame_end": end - 1,
            "detector": opener.detector if opener else "start",
            "confidence": round(opener.confidence, 4) if opener else 1.0,
        })

    by_shot: dict[int, list[SampledFrame]] = {}
    for sample in samples:
        by_shot.setdefault(bisect.bisect_right(starts, sample.index) - 1, []).append(sample)

    frames: list[dict[str, Any]] = []
    windows: list[WindowRecord] = []
    next_track = 0
    for shot_index, members in sorted(by_shot.items()):
        sid = shot_id(asset_id, shot_index)
        ids = [frame_id(asset_id, s.t_ms) for s in members]
        duplicates = mark_near_duplicates(ids, [s.quality.phash for s in members], video.near_duplicate_phash)
        next_track = assign_tracks([s.faces for s in members], first_id=next_track)
        for position, (sample, fid, dup) in enumerate(zip(members, ids, duplicates, strict=True)):
            faces_json = [FaceRecord(
                track_id=face.track_id, box=_round_box(face.box), score=face.score,
                landmarks=_round_points(face.landmarks) if face.landmarks is not None else [],
                crop_uri=uri, crop_box=_round_box(face.crop_box or face.box),
            ).to_json() for face, uri in zip(sample.faces, sample.crop_uris, strict=True)]
            weight = sample.quality.weight * (0.25 if dup else 1.0)
            frames.append({
                "frame_id": fid, "shot_id": sid, "t_ms": sample.t_ms, "frame_index": sample.index,
                "keyframe": sample.key or position == 0, "uri": sample.uri, "width": sample.width,
                "height": sample.height, "sha1": sample.sha1, "phash": sample.quality.phash,
                "blur": sample.quality.blur, "luminance": sample.quality.luminance, "near_duplicate_of": dup,
                "quality_weight": round(weight, 6), "faces_json": faces_json,
            })
        windows += _shot_windows(ctx, result.spool, sid, shot_index, members, ids)
    summary = {
        "frames_decoded": result.frames_decoded, "fps": round(result.fps, 4), "shots": len(shots),
        "frames_sampled": len(frames), "cuts_merged_without_samples": merged,
        "cuts_by_detector": {d: sum(1 for c in kept if c.detector == d) for d in sorted({c.detector for c in kept})},
        "faces": sum(len(f["faces_json"]) for f in frames), "tracks": next_track, "windows": len(windows),
        "decode_error": result.decode_error,
    }
    return StageOutput(shots=shots, frames=frames, windows=windows, summary=summary)


def _shot_windows(ctx: StageContext, spool: Spool, sid: str, shot_index: int, members: list[SampledFrame],
                  ids: list[str]) -> list[WindowRecord]:
    """Windows of one shot: per face track, or over the shot's frames when it has no face."""
    video = ctx.settings.video
    store = ctx.ws.store
    asset_id = ctx.asset.asset_id
    tracks: dict[int, list[tuple[int, int]]] = {}
    for position, sample in enumerate(members):
        for face, slot in zip(sample.faces, sample.crop_slots, strict=True):
            tracks.setdefault(face.track_id, []).append((position, slot))
    runs: list[tuple[str, int | None, list[int], list[int]]] = []
    if tracks:
        for track, items in sorted(tracks.items()):
            runs.append((str(track), track, [p for p, _ in items], [slot for _, slot in items]))
    else:
        runs.append((f"s{shot_index}", None, list(range(len(members))), [s.thumb_slot for s in members]))
    rows: list[WindowRecord] = []
    for label, track_id, positions, slots in runs:
        for n, (start, stop) in enumerate(window_spans(len(positions), video.clip_length)):
            images = [spool.read(slot) for slot in slots[start:stop]]
            wid = window_id(asset_id, label, n)
            uri = store.put_bytes(ctx.derived_key(f"clips/c{label}_{n}.npy"), to_npy_bytes(np.stack(images)))
            chosen = positions[start:stop]
            rows.append(WindowRecord(window_id=wid, shot_id=sid, track_id=track_id,
                                     t_start_ms=members[chosen[0]].t_ms, t_end_ms=members[chosen[-1]].t_ms,
                                     frame_ids=tuple(ids[p] for p in chosen), uri=uri))
    return rows


class VideoStage(Stage):
    """Shots, sampled frames, faces and clip windows for every video and image."""

    name: ClassVar[str] = "video"
    version: ClassVar[str] = "0.3.0"
    order: ClassVar[int] = 20
    owns_tables: ClassVar[tuple[str, ...]] = ("shots", "frames")
    media_types: ClassVar[frozenset[str] | None] = frozenset({MediaType.VIDEO, MediaType.IMAGE})
    settings_section: ClassVar[str | None] = "video"

    def run(self, ctx: StageContext) -> StageOutput:
        ctx.media.forget(FRAMES_MEMO)  # this run rewrites the frames
        spool = Spool((ctx.settings.video.face_crop_size, ctx.settings.video.face_crop_size, 3))
        try:
            result = decode_and_sample(ctx, ctx.asset.media_type == MediaType.IMAGE, spool, report=ctx.report)
            ctx.report(0.92, "shots, tracks and windows")
            with collector_paused():
                return build_rows(ctx, result)
        finally:
            spool.close()
