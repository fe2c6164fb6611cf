"""Video evaluation commands: ``video-manifest`` (the pooled identity-disjoint manifest) and ``eval-video`` (every
branch alone and fused, leave-one-fold-out, ships video-v3)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add the video evaluation command to the CLI."""
    from tamperscope.cli.context import State, console, err_console

    @app.command("video-manifest")
    def video_manifest(
        shared: Annotated[Path, typer.Option(help="the shared test data folder (holds MANIFEST.tsv)")],
        out: Annotated[Path, typer.Option(help="CSV to write: path,label,family,identity,group,fold,split")],
        folds: int = 5, seed: int = 0,
    ) -> None:
        """Pool the development videos and the training corpus into one identity-disjoint fold manifest."""
        from collections import Counter

        from tamperscope.evaluation.pool import write_pool_manifest

        dev = Path(__file__).resolve().parents[1] / "evaluation" / "manifests" / "shared_video.csv"
        rows = write_pool_manifest(shared / "MANIFEST.tsv", dev, out, folds=folds, seed=seed)
        counts = Counter((r["fold"], r["label"]) for r in rows)
        console.print(f"wrote {out}: {len(rows)} videos, {len({r['group'] for r in rows})} identity groups; per fold "
                      + ", ".join(f"{k}: {counts[(str(k), '0')]} real / {counts[(str(k), '1')]} fake"
                                  for k in range(folds)))

    @app.command("eval-video")
    def eval_video(
        data: Annotated[Path, typer.Option(help="directory the manifest paths are relative to")],
        manifest: Annotated[Path, typer.Option(help="CSV: path,label,family,identity,group,fold")],
        out: Annotated[Path, typer.Option(help="directory for metrics.md/.json/.csv, videos.csv, windows.csv")],
        models_dir: Annotated[Path | None, typer.Option(
            help="per-fold deep models: <dir>/fold<k>/frame.onnx and clip.onnx")] = None,
        workspace: Annotated[Path | None, typer.Option(
            help="evaluation workspace holding the cached stage results (default: <out>/workspace)")] = None,
        target_precision: Annotated[float, typer.Option(help="precision each confident band must reach")] = 0.9,
        calibration: Annotated[str, typer.Option(help="temperature or platt")] = "temperature",
        c: Annotated[float, typer.Option(help="inverse L2 regularisation of the fusion regressions")] = 1.0,
        forensics_frames: Annotated[int, typer.Option(
            help="frames per video the classical forensics stage analyses (runtime)")] = 8,
        write_artifact: Annotated[bool, typer.Option(
            help="write the shipped fusion/artifacts/video-v3.json")] = True,
        stage: Annotated[list[str] | None, typer.Option(
            help="run only this stage (repeatable; e.g. deep to re-score with new fold models); the other stages' "
                 "stored rows are read as they are")] = None,
    ) -> None:
        """Ingest and analyse every manifest video once (cached), then cross-validate each branch and the fusion."""
        from tamperscope.errors import UsageError
        from tamperscope.evaluation.video import evaluate_videos
        from tamperscope.evaluation.video_pipeline import VideoRecord
        from tamperscope.fusion.model import ARTIFACTS, CALIBRATIONS

        if calibration not in CALIBRATIONS:
            raise UsageError(f"--calibration must be one of {', '.join(CALIBRATIONS)}")

        home = workspace or out / "workspace"
        settings = State.settings.model_copy(update={
            "home": home, "db_url": None, "store_url": None,
            "forensics": State.settings.forensics.model_copy(update={"max_frames_per_video": forensics_frames})})

        def on_video(record: VideoRecord, done: int, total: int) -> None:
            status = f"ran {','.join(record.ran)}" if record.ran else "cached"
            failed = f" FAILED {record.failed}" if record.failed else ""
            err_console.print(f"[{done}/{total}] {record.item.rel}: {record.seconds:.1f} s, {status}{failed}")

        evaluate_videos(data, manifest, out, settings=settings, models_dir=models_dir,
                        artifact_dir=ARTIFACTS if write_artifact else None, target_precision=target_precision,
                        c=c, calibration=calibration, progress=on_video, stages=stage)
        console.print((out / "metrics.md").read_text())
