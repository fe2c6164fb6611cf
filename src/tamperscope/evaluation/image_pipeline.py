"""The image evaluation's pipeline run: the real-image manifest, the synthetic images of a ``synth-bench``
directory, and every image ingested and analysed once (the stage results are cached in the evaluation workspace)."""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from tamperscope.errors import UsageError
from tamperscope.evaluation.manifest import manifest_rows
from tamperscope.fusion.branches import Row
from tamperscope.settings import Settings

if TYPE_CHECKING:
    from tamperscope.workspace import Workspace

STAGES = ["metadata", "video", "forensics"]
PROCESSED = "processed"


@dataclass(frozen=True)
class ImageItem:
    """One image: real (from the manifest) or synthetic (from a ``synth-bench`` manifest)."""

    path: Path
    rel: str
    label: int
    kind: str
    group: str
    fold: int
    synthetic: bool = False
    source: str = ""

    @property
    def fitted(self) -> bool:
        """Real, not processed: a sample of the cross-validation."""
        return not self.synthetic and self.kind != PROCESSED


@dataclass
class ImageRecord:
    """An image after the pipeline: its detection rows and what the run cost."""

    item: ImageItem
    asset_id: str
    rows: list[Row]
    seconds: float
    ran: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def read_image_manifest(manifest: Path, root: Path) -> list[ImageItem]:
    """Parse the real-image manifest; paths are resolved against ``root``.

    Raises
    ------
    UsageError
        If the file or a column is missing, a listed image does not exist, or a group spans two folds.
    """
    items = [ImageItem(path, rec["path"], int(rec["label"]), rec["kind"], rec["group"], int(rec["fold"]),
                       source=rec.get("source") or "")
             for path, rec in manifest_rows(manifest, root, {"path", "label", "kind", "group", "fold"}, "images")]
    folds_of: dict[str, set[int]] = {}
    for it in items:
        folds_of.setdefault(it.group, set()).add(it.fold)
    split = sorted(g for g, f in folds_of.items() if len(f) > 1)
    if split:
        raise UsageError(f"{manifest}: groups in several folds: {', '.join(split)}")
    return items


def synthetic_items(synth_dir: Path, folds: Sequence[int]) -> list[ImageItem]:
    """The images of a ``synth-bench`` directory, grouped by source photograph; source ``i`` (sorted) in fold
    ``folds[i % len(folds)]``, so every crop and forgery of one photograph lies in one fold."""
    manifest = synth_dir / "manifest.csv"
    if not manifest.is_file():
        raise UsageError(f"{manifest} does not exist (run `tamperscope synth-bench {synth_dir}`)")
    with manifest.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    sources = sorted({r["source"] for r in rows})
    fold_of = {s: folds[i % len(folds)] for i, s in enumerate(sources)}
    return [ImageItem(synth_dir / r["path"], f"synthetic/{r['path']}", int(r["label"]), r["kind"],
                      f"synthetic-{r['source']}", fold_of[r["source"]], synthetic=True) for r in rows]


def load_image_rows(ws: Workspace, asset_id: str) -> list[Row]:
    """An asset's detection rows (without fusion's own) plus the context rows the fusion stage adds."""
    from tamperscope.stages.fusion import context_rows
    from tamperscope.store.models import Detection

    with ws.db.session() as s:
        rows = [Row(d.module_name, d.window_id, d.score, d.status, d.evidence_json, d.t_start_ms, d.t_end_ms)
                for d in s.scalars(select(Detection).where(Detection.asset_id == asset_id, Detection.stage != "fusion")
                                   .order_by(Detection.detection_id))]
        return rows + context_rows(s, asset_id)


def run_pipeline(items: Sequence[ImageItem], settings: Settings,
                 progress: Callable[[ImageRecord, int, int], None] | None = None) -> list[ImageRecord]:
    """Ingest every image and run the metadata and forensics stages (cached in the workspace)."""
    from tamperscope.custody.intake import IntakeRecord
    from tamperscope.services.analysis import run_analysis
    from tamperscope.workspace import Workspace

    records = []
    ws = Workspace.open(settings)
    try:
        for n, item in enumerate(items):
            start = time.perf_counter()
            record = IntakeRecord(original_name=item.path.name, source=item.rel, label=str(item.label),
                                  subject=item.group)
            run = run_analysis(ws, item.path, record=record, only=STAGES).run
            records.append(ImageRecord(item, run.asset_id, load_image_rows(ws, run.asset_id),
                                       time.perf_counter() - start, run.ran, run.failed))
            if progress is not None:
                progress(records[-1], n + 1, len(items))
    finally:
        ws.close()
    return records
