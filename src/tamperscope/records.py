"""Plain typed records that travel between stages, the store and the edges; no database import.

The bottom layer of the package (with :mod:`settings` and :mod:`errors`): the metadata rules, the stages, the
runner and the queries all speak these records, so a pure module never has to import the ORM to return a score.
The enums are ``StrEnum``, so a member equals, stores and serialises as its plain string value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class AssetStatus(StrEnum):
    """Where an asset is in its life: set by intake, then by the runner."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    ANALYZING = "analyzing"
    ANALYZED = "analyzed"
    FAILED = "failed"
    LIMIT_EXCEEDED = "limit_exceeded"  # a stage went past a budget (settings.limits); the others may have run


class MediaType(StrEnum):
    """What intake found the bytes to be; stages say which of these they apply to."""

    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"


class DetectionStatus(StrEnum):
    """What a detection row says: a score, a raised flag, or an explicit non-result and why."""

    SCORED = "scored"
    FLAG = "flag"
    NOT_APPLICABLE = "not_applicable"
    INSUFFICIENT_DATA = "insufficient_data"


class Band(StrEnum):
    """The threshold policy's verdict bands (see ``docs/threshold-policy.md``)."""

    LIKELY_REAL = "likely_real"
    UNSURE = "unsure"
    LIKELY_MANIPULATED = "likely_manipulated"


@dataclass
class DetectionRecord:
    """One score (or flag, or explicit non-result) with the evidence behind it: one ``detections`` row."""

    module_name: str
    module_version: str
    window_id: str = "asset"
    score: float | None = None
    status: str = DetectionStatus.SCORED
    t_start_ms: int | None = None
    t_end_ms: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    logits: dict[str, Any] | None = None
    threshold: float | None = None
    band: str | None = None
    evidence: dict[str, Any] | None = None
    saliency_uri: str | None = None
    overlay_uri: str | None = None


@dataclass(frozen=True)
class FaceRecord:
    """One stored face on one sampled frame (an entry of ``frames.faces_json``), in frame pixels.

    ``landmarks`` are rounded ``[x, y, z]`` points (empty when the mesh failed); ``crop_uri`` is the stored
    aligned crop; ``crop_box`` the frame region it covers. The JSON forms share the landmark lists instead of
    copying them: 478 points a face make copies the bulk of an analysis's garbage-collector work.
    """

    track_id: int
    box: tuple[float, float, float, float]
    score: float
    landmarks: list[list[float]] = field(default_factory=list)
    crop_uri: str | None = None
    crop_box: tuple[float, float, float, float] | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON form stored in ``frames.faces_json``."""
        return {"track_id": self.track_id, "box": list(self.box), "score": self.score,
                "landmarks": self.landmarks, "crop_uri": self.crop_uri,
                "crop_box": None if self.crop_box is None else list(self.crop_box)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FaceRecord:
        """Read one ``faces_json`` entry; older rows may lack the optional keys."""
        box = tuple(float(v) for v in data["box"])
        crop_box = data.get("crop_box")
        return cls(track_id=int(data.get("track_id", 0)), box=box,  # type: ignore[arg-type]
                   score=float(data.get("score", 0.0)), landmarks=data.get("landmarks") or [],
                   crop_uri=data.get("crop_uri"),
                   crop_box=None if crop_box is None else tuple(float(v) for v in crop_box))  # type: ignore[arg-type]


@dataclass(frozen=True)
class FrameRecord:
    """One sampled frame as later stages read it: where it is, its size and its faces."""

    frame_id: str
    shot_id: str | None
    t_ms: int
    frame_index: int | None = None
    keyframe: bool = False
    uri: str | None = None
    width: int | None = None
    height: int | None = None
    quality_weight: float | None = None
    faces: tuple[FaceRecord, ...] = ()


@dataclass(frozen=True)
class ShotRecord:
    """One shot: its index and time span."""

    shot_id: str
    index: int
    t_start_ms: int
    t_end_ms: int


@dataclass(frozen=True)
class WindowRecord:
    """A clip window: consecutive sampled frames of one face track (``track_id``) or of one shot (None).

    ``uri`` names the stored ``N x S x S x 3`` uint8 ``.npy`` array.
    """

    window_id: str
    shot_id: str | None
    track_id: int | None
    t_start_ms: int
    t_end_ms: int
    frame_ids: tuple[str, ...]
    uri: str

    def to_row(self) -> dict[str, Any]:
        """Column values of the ``windows`` table."""
        return {"window_id": self.window_id, "shot_id": self.shot_id, "track_id": self.track_id,
                "t_start_ms": self.t_start_ms, "t_end_ms": self.t_end_ms, "frame_ids_json": list(self.frame_ids),
                "uri": self.uri}


@dataclass
class StageOutput:
    """Everything a stage wants written; shots/frames are column dicts of those tables."""

    asset_updates: dict[str, Any] = field(default_factory=dict)
    shots: list[dict[str, Any]] = field(default_factory=list)
    frames: list[dict[str, Any]] = field(default_factory=list)
    windows: list[WindowRecord] = field(default_factory=list)
    detections: list[DetectionRecord] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
