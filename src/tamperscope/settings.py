"""One typed settings object for the whole product.

Every value can be set by an environment variable (``TAMPERSCOPE_<NAME>``, nested sections with ``__``,
e.g. ``TAMPERSCOPE_VIDEO__SAMPLE_FPS=10``) or overridden by a CLI flag; code receives a :class:`Settings`
explicitly and never reads the environment itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from tamperscope.errors import UsageError

ENV_PREFIX = "TAMPERSCOPE_"


class LimitSettings(BaseModel):
    """Limits enforced before any decoding (decompression bombs, hostile files)."""

    max_bytes: int = Field(8 * 1024**3, description="largest accepted file in bytes")
    api_max_upload_bytes: int = Field(4 * 1024**3, gt=0, description="largest API upload body in bytes; a larger "
                                      "one is answered 413 before its body is stored")
    max_pixels: int = Field(50_000_000, gt=0, description="decoded-pixel budget of one image, width x height; "
                            "checked on the declared size at intake and on the decoder's size during analysis")
    max_frame_pixels: int = Field(8192 * 4320, gt=0, description="decoded-pixel budget of one video frame (8K), "
                                  "checked at intake (declared) and on every decoded frame")
    max_duration_s: float = Field(2 * 3600.0, gt=0, description="duration budget of one video or audio file, "
                                  "checked at intake (declared) and on the decoded timestamps")
    stage_timeout_s: float = Field(3600.0, gt=0, description="wall-clock budget of one analysis stage")
    stage_grace_s: float = Field(60.0, ge=0, description="a stage still running this long past its wall-clock "
                                 "budget is stuck where the budget cannot be checked (a native call): the "
                                 "watchdog records it limit_exceeded and ends the process (exit 3)")
    stage_memory_bytes: int = Field(8 * 1024**3, gt=0, description="memory ceiling (resident set of the analysing "
                                    "process) while a stage runs")
    frame_cache_mb: int = Field(2048, ge=0, description="most MiB of frames the video stage's decode pass keeps "
                                "(raw, in a temp file) for the dense landmark pass; beyond it that pass decodes "
                                "the file again (0: always). Does not change results")
    max_streams: int = Field(16, description="most streams a container may hold")
    tool_timeout_s: float = Field(60.0, description="timeout for each external tool run")
    tool_max_output_bytes: int = Field(64 * 1024**2, description="largest output kept from one tool run")
    probe_max_packets: int = Field(5000, description="packets read by ffprobe for timestamp checks")


class CustodySettings(BaseModel):
    """Database concurrency, analysis leases and the key that signs the audit chain head."""

    busy_timeout_s: float = Field(30.0, gt=0, description="SQLite: how long a writer waits for the write lock")
    busy_retries: int = Field(5, ge=0, description="SQLite: retries after a busy timeout before giving up")
    lease_ttl_s: float = Field(60.0, ge=5.0, description="an analysis lease expires this long after its last "
                               "renewal (renewed every third of it while the run lives)")
    lease_wait_s: float = Field(0.0, ge=0.0, description="how long `analyze` waits for another run of the same "
                                "asset to finish before giving up with exit 5")
    quarantine_retention_days: float = Field(90.0, ge=0.0, description="rejected uploads are kept this long; "
                                             "`tamperscope quarantine purge` deletes older bodies")
    key_path: Path | None = Field(None, description="Ed25519 private key (PEM) that signs the chain head; "
                                  "default home/keys/custody-ed25519.pem; keep it off the database host if you can")


class StoreSettings(BaseModel):
    """The object store's client (S3 and S3-compatible servers): where it is and how long a call may take.

    Credentials are never settings: the AWS client reads them itself (``AWS_ACCESS_KEY_ID``,
    ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_PROFILE``, instance roles), as it reads
    ``AWS_ENDPOINT_URL``/``AWS_ENDPOINT_URL_S3`` and ``AWS_REGION``/``AWS_DEFAULT_REGION`` when the two
    settings below are unset. A call's worst case is about
    ``attempts x (connect_timeout_s + read_timeout_s)`` plus back-off; then it fails with a typed error.
    """

    endpoint_url: str | None = Field(None, description="S3 endpoint (MinIO, Ceph, moto...); default: "
                                     "AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, else AWS itself")
    region: str | None = Field(None, description="S3 region; default AWS_REGION / AWS_DEFAULT_REGION")
    connect_timeout_s: float = Field(5.0, gt=0, description="seconds to open a connection to the store")
    read_timeout_s: float = Field(30.0, gt=0, description="seconds a store call may wait for a reply")
    attempts: int = Field(3, ge=1, le=10, description="tries of one store call (network errors, throttling, 5xx)")
    block_size: int = Field(8 * 1024**2, ge=5 * 1024**2, description="bytes per multipart-upload part (S3's "
                            "minimum is 5 MiB); an upload holds about one part in memory")


class JobSettings(BaseModel):
    """The durable job queue: API replicas enqueue, workers (`tamperscope worker` or the API's own) claim."""

    api_workers: int = Field(1, ge=0, description="worker threads the API server runs itself (0: only separate "
                             "`tamperscope worker` processes run jobs)")
    poll_interval_s: float = Field(1.0, gt=0, description="how often an idle worker looks for a queued job")
    lease_s: float = Field(60.0, ge=3.0, description="a running job is re-queued this long after its worker's "
                           "last heartbeat (sent every third of it)")
    max_attempts: int = Field(3, ge=1, description="claims of one job before it fails for good")
    progress_interval_s: float = Field(1.0, ge=0.0, description="least time between progress writes of a job")
    stop_grace_s: float = Field(60.0, ge=0.0, description="on SIGTERM a worker finishes its job for this long, "
                                "then hands it back to the queue and exits")


class VideoSettings(BaseModel):
    """Decoding, shot detection and shot-aware frame sampling."""

    sample_fps: float = Field(8.0, ge=6.0, le=12.0, description="sampled frames per second within a shot")
    min_frames_per_shot: int = Field(3, ge=1, description="frames sampled even from very short shots")
    long_side: int = Field(512, ge=64, description="long side of normalised frames in pixels")
    near_duplicate_phash: int = Field(4, ge=0, description="pHash Hamming distance marking a near-duplicate")
    faces: bool = Field(True, description="run face detection, tracking and crops")
    face_crop_size: int = Field(224, description="side of aligned face crops in pixels")
    clip_length: int = Field(16, ge=16, le=32, description="frames per clip window")
    shot_detectors: tuple[str, ...] = Field(("content", "adaptive", "threshold"),
                                            description="PySceneDetect detectors: content, adaptive, threshold")
    content_threshold: float = Field(27.0, gt=0, description="ContentDetector threshold")
    adaptive_threshold: float = Field(3.0, gt=0, description="AdaptiveDetector ratio threshold")
    fade_threshold: int = Field(12, ge=0, le=255, description="ThresholdDetector mean-intensity threshold")
    min_shot_s: float = Field(0.25, gt=0, description="shortest shot the cut detectors report, in seconds")
    face_crop_margin: float = Field(0.2, ge=0.0, le=1.0, description="aligned crop margin, fraction of the face")
    face_min_score: float = Field(0.5, ge=0.0, le=1.0, description="face detection confidence threshold")
    max_faces: int = Field(4, ge=1, description="most faces kept per frame")
    face_tiles: bool = Field(True, description="search overlapping tiles when a frame shows no face (small faces)")
    face_detect_long_side: int = Field(1280, ge=0, description="long side faces are detected at (0: the "
                                       "normalised frame); larger finds small faces, results map to frame pixels")
    png_compression: int = Field(1, ge=0, le=3, description="deflate effort (ISA-L 0-3) of stored PNG frames")


class ForensicsSettings(BaseModel):
    """Classical image forensics."""

    max_frames_per_video: int = Field(8, description="keyframes/sampled frames analysed per video (the video "
                                                    "evaluation of video-v2 used 8)")


class TemporalSettings(BaseModel):
    """Blinks, head pose, landmark stability and audio-video sync (``temporal`` and ``avsync`` stages)."""

    long_side: int = Field(640, ge=160, description="long side of frames decoded for the dense landmark pass")
    max_fps: float = Field(30.0, ge=8.0, description="landmark frames per second in the dense pass (at most; "
                           "every second frame from 15: halves Face Mesh, keeps AV offsets, but silences the "
                           "landmark-flicker cue and weakens blink flicker and pose jitter, see docs/temporal.md)")
    range_pad_ms: int = Field(2000, ge=0, description="padding around sampled face times for the dense pass")
    max_dense_s: float = Field(600.0, ge=10.0, description="most seconds of video in the dense pass (evenly "
                               "spaced 10 s chunks beyond)")
    min_face_s: float = Field(10.0, ge=1.0, description="face time needed for a blink-rate score")
    blink_drop: float = Field(0.3, gt=0.0, lt=1.0, description="relative eye-aspect-ratio drop marking a blink")
    max_offset_s: float = Field(1.0, ge=1.0, description="audio-video offset search window, +- seconds")
    sync_chance_margin: float = Field(1.1, gt=0.0, description="an offset is scored when its confidence (peak minus "
                                      "median correlation) exceeds this / sqrt(seconds of overlap), about the "
                                      "97th percentile of unrelated mouth/audio pairs")
    min_bilabials: int = Field(10, ge=1, description="bilabial phones needed for a mismatch score")


class BatchSettings(BaseModel):
    """Batch analysis on Dask (``analyze`` with several files or a folder): a local cluster or a given scheduler."""

    scheduler: str | None = Field(None, description="address of a running Dask scheduler (tcp://HOST:PORT); "
                                  "default: start a local cluster. Its workers must reach the same database, "
                                  "store and input paths")
    workers: int | None = Field(None, ge=1, description="local cluster: worker processes (default: CPU cores)")
    threads_per_worker: int = Field(1, ge=1, description="Dask threads per worker; also the worker's stage, ONNX "
                                    "Runtime, OpenCV, video decoder and BLAS/OpenMP threads, so a worker uses "
                                    "about this many cores")
    processes: bool = Field(True, description="local cluster: workers are processes (False: threads of this one)")
    memory_limit: str = Field("auto", description="local cluster: memory per worker before Dask restarts it "
                              "(e.g. 4GiB; auto: the machine's memory shared evenly)")
    dashboard_address: str = Field(":0", description="local cluster: where the Dask dashboard listens "
                                   "(:0 a free port; needs bokeh to be served)")
    worker_profiler: bool = Field(False, description="local cluster: Dask's statistical profiler (the dashboard's "
                                  "Profile tab) samples each worker's stack every 10 ms; it costs about 4 % CPU "
                                  "per file and the wall time of 2 workers on 2 cores about 9 %, so it is off")
    retries: int = Field(1, ge=0, description="re-runs of each task of a file's graph after an unexpected error; "
                         "a worker that dies is replaced and its running task re-run by Dask in any case")
    lease_wait_s: float = Field(600.0, ge=0.0, description="how long a file waits for another live run of the "
                                "same asset (a duplicate file in the batch, another user) before it fails as busy")
    quiet_native_logs: bool = Field(True, description="workers point file descriptor 2 at /dev/null, so native "
                                    "libraries' log lines (MediaPipe, TFLite) do not flood the console "
                                    "(`tamperscope --verbose` keeps them)")


#: the frame and clip models trained by the project and shipped in the package (see ``docs/model-card.md``)
SHIPPED_MODELS = Path(__file__).parent / "models" / "weights"


def _shipped(name: str) -> Path | None:
    path = SHIPPED_MODELS / name
    return path if path.is_file() else None


class ModelSettings(BaseModel):
    """Deep detectors: ONNX files, each with a ``<stem>.yaml`` sidecar (see ``models/runtime.py``).

    Defaults are the shipped models; an empty value (``TAMPERSCOPE_MODELS__FRAME_PATH=``) switches a model off.
    """

    frame_path: Path | None = Field(default_factory=lambda: _shipped("frame.onnx"),
                                    description="frame model .onnx (per face crop); None: deep.frame not run")
    clip_path: Path | None = Field(default_factory=lambda: _shipped("clip.onnx"),
                                   description="clip model .onnx (per window); None: deep.clip not run")
    threads: int = Field(2, ge=1, description="ONNX Runtime intra-op threads")
    max_frames: int = Field(256, ge=1, description="most frames scored per asset by the frame model")

    @field_validator("frame_path", "clip_path", mode="before")
    @classmethod
    def _empty_is_off(cls, value: object) -> object:
        return None if value == "" else value


class Settings(BaseSettings):
    """All configuration of one tamperscope installation."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="ignore")

    home: Path = Field(default_factory=lambda: Path("~/.local/share/tamperscope").expanduser())
    db_url: str | None = Field(None, description="SQLAlchemy URL; default a SQLite file in home")
    store_url: str | None = Field(None, description="fsspec URL of the object store; default home/store")
    actor: str | None = Field(None, description="who acts, for the audit log; default the OS user")
    workers: int = Field(2, ge=1, description="parallel workers for independent stages")
    limits: LimitSettings = Field(default_factory=LimitSettings)
    custody: CustodySettings = Field(default_factory=CustodySettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    jobs: JobSettings = Field(default_factory=JobSettings)
    video: VideoSettings = Field(default_factory=VideoSettings)
    forensics: ForensicsSettings = Field(default_factory=ForensicsSettings)
    temporal: TemporalSettings = Field(default_factory=TemporalSettings)
    models: ModelSettings = Field(default_factory=ModelSettings)
    batch: BatchSettings = Field(default_factory=BatchSettings)

    @property
    def resolved_db_url(self) -> str:
        return self.db_url or f"sqlite:///{self.home / 'tamperscope.db'}"

    @property
    def resolved_store_url(self) -> str:
        return self.store_url or str(self.home / "store")

    @property
    def resolved_key_path(self) -> Path:
        return self.custody.key_path or self.home / "keys" / "custody-ed25519.pem"


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment plus ``overrides``; an invalid value is a :class:`UsageError` naming it.

    Edges call this (not ``Settings()``) so a bad ``TAMPERSCOPE_*`` variable is a one-line usage error.
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            path = [str(part) for part in error["loc"] if isinstance(part, str)]
            name = ".".join(path) if path and path[0] in overrides else ENV_PREFIX + "__".join(path).upper()
            problems.append(f"{name}={error['input']!r}: {error['msg']}")
        raise UsageError("invalid setting " + "; ".join(problems)) from None
    except SettingsError as exc:
        raise UsageError(f"invalid setting: {exc}") from None
