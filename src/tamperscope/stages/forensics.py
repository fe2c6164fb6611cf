"""The ``forensics`` pipeline stage: every detector on the image (or on a video's keyframes and sampled frames).

Images are analysed at full resolution from the stored original (the raw bytes are the JPEG context); videos
use the frames the ``video`` stage stored (keyframes first, then an even spread over shots, capped at
``settings.forensics.max_frames_per_video``). Each (detector, window) gives one detection whose map is stored
as a heatmap PNG (``saliency_uri``) and as an overlay on the analysed image (``overlay_uri``).

Detectors see an image's stored pixel grid, where its JPEG blocks and quantisation tables live; maps and overlays
are then turned upright by the EXIF orientation (:func:`~tamperscope.media.orientation.upright`, as the frames are), so
they line up with the frame shown beside them. Coordinates inside the evidence stay in the stored grid; the
evidence names ``exif_orientation`` whenever it is not 1.

Memory: detectors run one after the other and each map is written and dropped before the next detector starts;
the local detectors work in tiles, and maps of images with more than
:data:`~tamperscope.forensics.base.MAP_MAX_PIXELS` pixels are stored scaled down to that many, with ``map_scale``
(map pixels per image pixel along a side) in the evidence. A 49 MP image takes about 0.3 GB beside its decoded pixels.
"""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar

import cv2
import numpy as np
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import load_only

from tamperscope.forensics import iter_analyze
from tamperscope.forensics.base import MAP_MAX_PIXELS, evenly_spread, map_shape
from tamperscope.forensics.registry import DETECTORS, load_detector
from tamperscope.media.limits import DecodeLimits
from tamperscope.media.orientation import upright
from tamperscope.media.png import encode_png
from tamperscope.records import DetectionRecord, MediaType, StageOutput
from tamperscope.settings import Settings
from tamperscope.stages.base import Stage, StageContext
from tamperscope.store.models import Frame

#: memory the nine detectors take on one image beyond its decoded pixels, reserved before they start: per image
#: pixel (the luma and the block statistics), a fixed part (a tile's work, one map and its overlay at most
#: MAP_MAX_PIXELS) and, for a JPEG, per pixel for jpeg_dq's planes: the decoder's luma, the calibrated
#: re-compression's and the copy of one being read (the calibration re-encodes the decoded pixels, no second decode)
FORENSICS_BYTES_PER_PIXEL = 4
FORENSICS_FIXED_BYTES = 192 << 20
FORENSICS_JPEG_BYTES_PER_PIXEL = 3


#: detector parameters for video frames, which the ``video`` stage stores already scaled (512 px long side): the
#: keypoint copy-move test runs at the frame's own size instead of up-scaling it to 768 px. On one frame of every
#: other real pooled video with a synthetic clone (``bench/copymove_video.py``) that finds as many clones (44 % vs
#: 45 %, AUC 0.717 vs 0.720, the same 6 % of pristine frames firing) for half the CPU (143 vs 308 ms a frame).
VIDEO_FRAME_PARAMS: dict[str, dict[str, Any]] = {"copymove_keypoint": {"min_side": 0}}

#: rows of a map coloured or blended at a time, so the blend weights stay a few MiB
STRIP_ROWS = 256


def _strips(rows: int) -> list[slice]:
    return [slice(start, start + STRIP_ROWS) for start in range(0, rows, STRIP_ROWS)]


def _jet(heat: np.ndarray) -> np.ndarray:
    """A [0, 1] map as 8-bit JET colours, RGB (computed in strips of rows)."""
    out = np.empty((*heat.shape, 3), np.uint8)
    for rows in _strips(heat.shape[0]):
        level = np.clip(heat[rows] * 255.0 + 0.5, 0, 255).astype(np.uint8)
        out[rows] = cv2.applyColorMap(level, cv2.COLORMAP_JET)[:, :, ::-1]
    return out


def map_pngs(image: np.ndarray, heat: np.ndarray, alpha: float = 0.5) -> tuple[bytes, bytes]:
    """A [0, 1] map as a JET colour PNG, and the same colours blended over the RGB image (of the map's size),
    weighted by ``alpha`` times the heat, as a PNG.

    The colours are computed once for both; the blend runs in 8 bits (``cv2.blendLinear``, per-pixel weights) in
    strips of rows, 2x faster than float32 arithmetic and within one grey level of it. Both PNGs use the
    deterministic ISA-L encoder (3x faster than libpng level 3).
    """
    jet = _jet(heat)
    blended = np.empty(image.shape, np.uint8)
    for rows in _strips(heat.shape[0]):
        weight = (alpha * heat[rows]).astype(np.float32)
        blended[rows] = cv2.blendLinear(image[rows], jet[rows], 1.0 - weight, weight)
    return encode_png(jet, 1), encode_png(blended, 1)


def map_background(image: np.ndarray) -> np.ndarray:
    """``image`` at the size of its detectors' maps (at most ``MAP_MAX_PIXELS``; area averaging when smaller), for
    the overlays."""
    height, width = map_shape(image.shape, MAP_MAX_PIXELS)
    if (height, width) == image.shape[:2]:
        return image
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def pick_frames(frames: list[Frame], cap: int) -> list[Frame]:
    """Keyframes first, then the remaining frames spread evenly over time, at most ``cap`` in time order."""
    keys = [f for f in frames if f.keyframe]
    rest = [f for f in frames if not f.keyframe]
    chosen = keys[:cap]
    room = cap - len(chosen)
    if room > 0 and rest:
        chosen += [rest[i] for i in evenly_spread(len(rest), room)]
    return sorted(chosen, key=lambda f: f.t_ms)


@dataclass(frozen=True)
class _Window:
    """One analysed image: its window id, stored pixels, JPEG bytes (images only), time, EXIF orientation and the
    detector parameters that differ from the defaults."""

    window_id: str
    image: np.ndarray
    jpeg: bytes | None = None
    t_ms: int | None = None
    orientation: int = 1
    params: dict[str, dict[str, Any]] | None = None


class ForensicsStage(Stage):
    """Classical image forensics on images and on video frames."""

    name: ClassVar[str] = "forensics"
    # 1.1: maps and overlays of EXIF-rotated images upright, like the frames; 1.2: maps of images longer than
    # MAP_MAX_PIXELS pixels stored scaled down to that many (map_scale in the evidence); 1.3: overlays blended in
    # 8 bits (pixels within one grey level of 1.2's), and video frames analysed with
    # VIDEO_FRAME_PARAMS
    version: ClassVar[str] = "1.3"
    requires: ClassVar[tuple[str, ...]] = ("video",)
    order: ClassVar[int] = 30
    media_types: ClassVar[frozenset[str] | None] = frozenset({MediaType.IMAGE, MediaType.VIDEO})

    def params(self, settings: Settings) -> dict[str, Any]:
        return {"detectors": {n: load_detector(n).version for n in DETECTORS},
                "max_frames_per_video": settings.forensics.max_frames_per_video,
                "video_frame_params": VIDEO_FRAME_PARAMS}

    def run(self, ctx: StageContext) -> StageOutput:
        out = StageOutput()
        if ctx.asset.media_type == MediaType.IMAGE:
            limits = DecodeLimits(max_pixels=ctx.settings.limits.max_pixels, reserve=lambda n: ctx.reserve_memory(
                n + FORENSICS_FIXED_BYTES, "forensics at full resolution"))
            image = ctx.media.image(limits, FORENSICS_BYTES_PER_PIXEL)
            if image.jpeg is not None:
                ctx.reserve_memory(image.rgb.shape[0] * image.rgb.shape[1] * (
                    FORENSICS_BYTES_PER_PIXEL + FORENSICS_JPEG_BYTES_PER_PIXEL) + FORENSICS_FIXED_BYTES,
                    "forensics of a JPEG at full resolution")
            jobs = [_Window("asset", image.rgb, image.jpeg, orientation=image.orientation)]
        else:
            with ctx.read_session() as s:  # without faces_json: decoding its landmarks costs more than the query
                frames = list(s.scalars(select(Frame).options(load_only(Frame.frame_id, Frame.t_ms, Frame.uri,
                                                                        Frame.keyframe))
                                        .where(Frame.asset_id == ctx.asset.asset_id, Frame.uri.is_not(None))
                                        .order_by(Frame.t_ms)))
                for f in frames:
                    s.expunge(f)
            jobs = []
            for f in pick_frames(frames, ctx.settings.forensics.max_frames_per_video):
                png = ctx.ws.store.get_bytes(ctx.ws.store.key_of(f.uri or ""))
                with Image.open(io.BytesIO(png)) as img:
                    jobs.append(_Window(f.frame_id, np.asarray(img.convert("RGB")), t_ms=f.t_ms,
                                        params=VIDEO_FRAME_PARAMS))

        def analyse(job: _Window) -> list[DetectionRecord]:
            tag = job.window_id.rsplit(":", 1)[-1]
            shown = upright(map_background(job.image), job.orientation)
            noted: dict[str, Any] = {"exif_orientation": job.orientation} if job.orientation != 1 else {}
            bounded = map_shape(job.image.shape, MAP_MAX_PIXELS)
            if bounded != job.image.shape[:2]:  # map pixels per image pixel
                noted["map_scale"] = round(bounded[1] / job.image.shape[1], 6)
            records = []
            for name, result in iter_analyze(job.image, jpeg_bytes=job.jpeg, between=ctx.check_budget,
                                             params=job.params, map_max_pixels=MAP_MAX_PIXELS):
                ctx.check_budget()  # two map-sized PNGs per detector: a unit of work of their own
                heat_png, overlay_png = map_pngs(shown, upright(result.map, job.orientation))
                saliency = ctx.ws.store.put_bytes(ctx.derived_key(f"{tag}/{name}_heat.png"), heat_png)
                overlay = ctx.ws.store.put_bytes(ctx.derived_key(f"{tag}/{name}_overlay.png"), overlay_png)
                applicable = result.evidence.get("applicable", True)
                records.append(DetectionRecord(
                    module_name=f"forensics.{name}", module_version=result.version, window_id=job.window_id,
                    score=float(result.score) if applicable else None,
                    status="scored" if applicable else "not_applicable", t_start_ms=job.t_ms, t_end_ms=job.t_ms,
                    params=result.params,
                    evidence={**result.evidence, **noted}, saliency_uri=saliency, overlay_uri=overlay))
                del heat_png, overlay_png, result  # the map is stored: dropped before the next detector runs
            return records

        # Frames on ``workers`` threads (OpenCV and NumPy release the GIL), rows in frame order.
        with ThreadPoolExecutor(max_workers=max(1, min(ctx.settings.workers, len(jobs))),
                                thread_name_prefix="forensics") as pool:
            for n, records in enumerate(pool.map(analyse, jobs)):
                ctx.report((n + 1) / len(jobs), f"window {jobs[n].window_id}")
                out.detections += records
        out.summary = {"windows": len(jobs), "detections": len(out.detections)}
        return out
