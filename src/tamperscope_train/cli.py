"""The ``tamperscope-train`` command line: lay out training data, train the frame and clip detectors, cross-validate.

Needs the ``train`` extra (torch); ``layout`` works without it. Errors map to exit codes as in ``tamperscope``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from tamperscope.errors import TamperscopeError, UsageError, exit_code_for
from tamperscope_train.config import ClipConfig, FrameConfig

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Train tamperscope's deep detectors on CPU (the `train` extra: pip install -e '.\\[train]').")
console = Console()

DataOption = Annotated[Path, typer.Option("--data", help="folder with real/ (and fake/) media, or FaceForensics++ "
                                                       "original_sequences/ + manipulated_sequences/")]
ExcludeOption = Annotated[list[str] | None, typer.Option(
    "--exclude", help="identity (real/<identity>/ folder or FF++ number) left out of training; repeatable")]
CacheOption = Annotated[Path | None, typer.Option(help="face-crop cache (default DATA/.tamperscope-cache)")]
AugmentOption = Annotated[str, typer.Option(help="basic (flip, JPEG 60-95), strong (+ resolution loss, blur, "
                                                 "colour, JPEG 30-95) or heavy (more of each, JPEG 20-95, "
                                                 "sometimes twice)")]
MaskWeightOption = Annotated[float, typer.Option(help="weight of the auxiliary blend-mask loss (0: off)")]
TuneOption = Annotated[int, typer.Option(help="fine-tune the trunk's last N blocks with the head (0: frozen trunk)")]


@contextmanager
def _train_extra() -> Iterator[None]:
    """Wraps the import of a training module: a missing torch (an optional extra) becomes a usage error."""
    try:
        yield
    except ImportError as exc:
        raise UsageError(f"training needs the `train` extra (pip install -e '.[train]'): {exc}") from exc


@app.command("layout")
def train_layout(manifest: Annotated[Path, typer.Option(help="CSV with path, label and group columns")],
                 root: Annotated[Path, typer.Option(help="folder the manifest's paths are relative to")],
                 out: Annotated[Path, typer.Option(help="training folder to create (symlinks)")],
                 fake_family: Annotated[list[str] | None, typer.Option(
                     help="also link fakes of this family as OUT/fake/<group>/; repeatable")] = None) -> None:
    """Link a manifest's real media (and fakes of chosen families) by identity group as a training folder."""
    from tamperscope_train.dataset import link_layout

    count = link_layout(manifest, root, out, fake_families=tuple(fake_family or ()))
    console.print(f"linked {count} media under {out}")


@app.command("frame")
def train_frame(data: DataOption, out: Annotated[Path, typer.Option(help="output folder")],
                exclude: ExcludeOption = None, seed: int = 0, epochs: int = 6, per_track: int = 48,
                input_size: int = 160, cut: int = 12, augment: AugmentOption = "strong",
                mask_weight: MaskWeightOption = 0.5, tune: TuneOption = 0, cache: CacheOption = None) -> None:
    """Fine-tune EfficientNet-Lite0 on real faces vs self-blends and swaps; export frame.onnx + yaml + json."""
    with _train_extra():
        from tamperscope_train.frame_model import train_frame as train
    cfg = FrameConfig(seed=seed, epochs=epochs, per_track=per_track, input_size=input_size, cut=cut,
                      augment=augment, mask_weight=mask_weight, tune=tune, exclude=tuple(exclude or ()))
    result = train(data, out, cfg, cache=cache, say=console.print)
    console.print(f"wrote {result.onnx}, {result.spec}, {result.manifest}")


@app.command("clip")
def train_clip(data: DataOption, out: Annotated[Path, typer.Option(help="output folder")],
               frame_model: Annotated[Path, typer.Option(help="frame.onnx whose embeddings the clip model reads")],
               exclude: ExcludeOption = None, seed: int = 0, epochs: int = 30, cache: CacheOption = None) -> None:
    """Train the temporal head on real face runs vs temporally inconsistent blends; export clip.onnx."""
    with _train_extra():
        from tamperscope_train.clip_model import train_clip as train
    cfg = ClipConfig(seed=seed, epochs=epochs, exclude=tuple(exclude or ()))
    result = train(data, frame_model, out, cfg, cache=cache, say=console.print)
    console.print(f"wrote {result.onnx}, {result.spec}, {result.manifest}")


@app.command("cv")
def train_cv(data: DataOption, out: Annotated[Path, typer.Option(help="writes OUT/fold<k>/{frame,clip}.onnx")],
             manifest: Annotated[Path, typer.Option(help="CSV with group and fold columns (identity groups)")],
             seed: int = 0, epochs: int = 6, per_track: int = 48, input_size: int = 160, cut: int = 12,
             augment: AugmentOption = "strong", mask_weight: MaskWeightOption = 0.5, tune: TuneOption = 0,
             clip: Annotated[bool, typer.Option(help="also train the clip models")] = True,
             final: Annotated[Path | None, typer.Option(
                 help="also train the models on every identity into this folder, from the same banks")] = None,
             cache: CacheOption = None) -> None:
    """One frame + clip model per fold, each trained without the identity groups of its fold."""
    import csv

    with _train_extra():
        from tamperscope_train.cross_validation import train_cv as train
    with manifest.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    held_out = {fold: tuple(sorted({r["group"] for r in rows if r["fold"] == fold}))
                for fold in sorted({r["fold"] for r in rows})}
    frame_cfg = FrameConfig(seed=seed, epochs=epochs, per_track=per_track, input_size=input_size, cut=cut,
                            augment=augment, mask_weight=mask_weight, tune=tune)
    train(data, out, held_out, frame_cfg=frame_cfg, clip_cfg=ClipConfig(seed=seed) if clip else None, cache=cache,
          final=final, say=console.print)


def main() -> None:
    """Entry point: run the app, mapping typed errors to exit codes."""
    try:
        app()
    except TamperscopeError as exc:
        Console(stderr=True).print(f"[red]error[/red]: {escape(str(exc))}", soft_wrap=True)
        sys.exit(exit_code_for(exc))
