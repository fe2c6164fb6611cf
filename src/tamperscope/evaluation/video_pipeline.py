"""The video evaluation's pipeline run: the manifest, and every video ingested and analysed once with the deep
models of its own fold (the stage results are cached in the evaluation workspace)."""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from tamperscope.errors import InputRejectedError
from tamperscope.evaluation.manifest import manifest_rows
from tamperscope.fusion.branches import Row
from tamperscope.fusion.timeline import WindowSpan
from tamperscope.settings import Settings

if TYPE_CHECKING:
    from tamperscope.workspace import Workspace


@dataclass(frozen=True)
class VideoItem:
    """One manifest video."""

    path: Path
    rel: str
    label: int
    family: str
    identity: str
    group: str
    fold: int
    split: str = ""
    source: str = ""


@dataclass
class VideoRecord:
    """A video after the pipeline: its rows, windows and what the run cost."""

    item: VideoItem
    asset_id: str
    rows: list[Row]
    windows: list[WindowSpan]
    seconds: float
    duration_s: float = 0.0
    ran: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def data_sources(root: Path) -> dict[str, str]:
    """``{path: source repository}`` from the data directory's ``MANIFEST.tsv`` (empty when it has none): which
    collection each file came from, so a family's fakes can also be compared with the reals of their own sources."""
    listing = root / "MANIFEST.tsv"
    if not listing.is_file():
        return {}
    with listing.open(newline="") as fh:
        return {rec["path"]: rec.get("source_repo") or "" for rec in csv.DictReader(fh, delimiter="\t")}


def read_video_manifest(manifest: Path, root: Path) -> list[VideoItem]:
    """Parse a video manifest; paths are resolved against ``root``, sources read from ``root``'s listing
    (:func:`data_sources`) unless the manifest has a ``source`` column.

    Raises
    ------
    UsageError
        If the file is missing, a column is missing, or a listed video does not exist.
    """
    items = []
    sources = data_sources(root)
    for path, rec in manifest_rows(manifest, root, {"path", "label", "fold"}, "videos"):
        label = int(rec["label"])
        items.append(VideoItem(path=path, rel=rec["path"], label=label,
                               family=rec.get("family") or ("fake" if label else "real"),
                               identity=rec.get("identity") or "", group=rec.get("group") or "",
                               fold=int(rec["fold"]), split=rec.get("split") or "",
                               source=rec.get("source") or sources.get(rec["path"], "")))
    return items


def fold_model_paths(models_dir: Path | None, fold: int) -> tuple[Path | None, Path | None]:
    """``(frame.onnx, clip.onnx)`` of ``<models_dir>/fold<fold>``; ``None`` for each file that does not exist."""
    if models_dir is None:
        return None, None
    base = models_dir / f"fold{fold}"
    frame, clip = base / "frame.onnx", base / "clip.onnx"
    return (frame if frame.is_file() else None), (clip if clip.is_file() else None)


def pipeline_stages() -> list[str]:
    """Every registered stage except ``fusion`` (fitted here, not run)."""
    from tamperscope.pipeline.registry import STAGES

    return [s for s in STAGES if s != "fusion"]


def load_rows(ws: Workspace, asset_id: str) -> tuple[list[Row], list[WindowSpan], float]:
    """An asset's detection rows (without fusion's own), clip windows and duration in seconds."""
    from tamperscope.store.models import Asset, Detection, Window

    with ws.db.session() as s:
        asset = s.get(Asset, asset_id)
        duration = (asset.duration_ms or 0) / 1000.0 if asset is not None else 0.0
        rows = [Row(d.module_name, d.window_id, d.score, d.status, d.evidence_json, d.t_start_ms, d.t_end_ms)
                for d in s.scalars(select(Detection).where(Detection.asset_id == asset_id,
                                                           Detection.stage != "fusion")
                                   .order_by(Detection.detection_id))]
        windows = [WindowSpan(w.window_id, w.t_start_ms, w.t_end_ms, w.track_id)
                   for w in s.scalars(select(Window).where(Window.asset_id == asset_id)
                                      .order_by(Window.t_start_ms, Window.window_id))]
    return rows, windows, duration


def run_pipeline(items: Sequence[VideoItem], settings: Settings, models_dir: Path | None,
                 progress: Callable[[VideoRecord, int, int], None] | None = None,
                 stages: Sequence[str] | None = None) -> tuple[list[VideoRecord], dict[str, str]]:
    """Ingest and analyse every video (all stages but fusion), fold by fold with that fold's deep models.

    Parameters
    ----------
    items
        The manifest videos.
    settings
        Settings of the evaluation workspace (its ``models`` section is replaced per fold).
    models_dir
        Directory with ``fold<k>/frame.onnx`` and ``fold<k>/clip.onnx``; ``None``: no deep models.
    progress
        Called after each video with its record, the count done and the total.
    stages
        Run only these stages (default: :func:`pipeline_stages`); the other stages' stored rows are read as they
        are, current or not. For re-scoring a workspace with new deep models: ``["deep"]``.

    Returns
    -------
    list of VideoRecord
        In manifest order, without the videos that intake rejects.
    dict
        Rejected video (manifest path) -> the typed reason.
    """
    from tamperscope.custody.intake import IntakeRecord
    from tamperscope.pipeline.registry import check_known
    from tamperscope.services.analysis import run_analysis
    from tamperscope.workspace import Workspace

    known = pipeline_stages()
    check_known(stages, known)
    run_only = list(stages) if stages else known
    records: dict[int, VideoRecord] = {}
    rejected: dict[str, str] = {}
    done = 0
    # Each fold's deep models score its videos; the deep stage's fingerprint covers the model files' bytes, so a
    # video scored by another fold's (or a retrained) model is re-run, not read from the cache.
    for fold in sorted({it.fold for it in items}):
        frame, clip = fold_model_paths(models_dir, fold)
        fold_settings = settings.model_copy(update={"models": settings.models.model_copy(
            update={"frame_path": frame, "clip_path": clip})})
        ws = Workspace.open(fold_settings)
        try:
            for n, item in enumerate(items):
                if item.fold != fold:
                    continue
                start = time.perf_counter()
                record = IntakeRecord(original_name=item.path.name, source=item.rel, label=str(item.label),
                                      subject=item.group or None)
                try:
                    run = run_analysis(ws, item.path, record=record, only=run_only).run
                except InputRejectedError as exc:  # the product rejects it: it is not evaluated, and listed
                    rejected[item.rel] = f"{exc.reason.value}: {exc.message}"
                    done += 1
                    continue
                rows, windows, duration = load_rows(ws, run.asset_id)
                records[n] = VideoRecord(item, run.asset_id, rows, windows, time.perf_counter() - start,
                                         duration, run.ran, run.failed)
                done += 1
                if progress is not None:
                    progress(records[n], done, len(items))
        finally:
            ws.close()
    return [records[n] for n in range(len(items)) if n in records], rejected
