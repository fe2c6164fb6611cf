"""Forensics commands: ``eval`` (detector metrics over a manifest), ``synth-bench``, ``fusion-train`` (image-v1)
and ``eval-image`` (cross-validates and ships the image fusion ``image-v2``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add the forensics commands to the CLI."""
    from tamperscope.cli.context import State, console, err_console

    @app.command("eval-image")
    def eval_image(
        data: Annotated[Path, typer.Option(help="directory the manifest paths are relative to")],
        manifest: Annotated[Path, typer.Option(help="CSV: path,label,kind,source,group,fold")],
        out: Annotated[Path, typer.Option(help="directory for metrics.md/.json and images.csv")],
        synth: Annotated[Path | None, typer.Option(
            help="a synth-bench directory whose images join the training folds")] = None,
        workspace: Annotated[Path | None, typer.Option(
            help="evaluation workspace holding the cached stage results (default: <out>/workspace)")] = None,
        target_precision: Annotated[float, typer.Option(help="precision each confident band must reach")] = 0.9,
        calibration: Annotated[str, typer.Option(help="temperature or platt")] = "temperature",
        c: Annotated[float, typer.Option(help="inverse L2 regularisation of the fusion regressions")] = 1.0,
        write_artifact: Annotated[bool, typer.Option(
            help="write the shipped fusion/artifacts/image-v2.json")] = True,
    ) -> None:
        """Analyse every manifest image once (cached), cross-validate the image fusion, ship image-v2."""
        from tamperscope.errors import UsageError
        from tamperscope.evaluation.image import evaluate_images
        from tamperscope.evaluation.image_pipeline import ImageRecord
        from tamperscope.fusion.model import ARTIFACTS, CALIBRATIONS

        if calibration not in CALIBRATIONS:
            raise UsageError(f"--calibration must be one of {', '.join(CALIBRATIONS)}")
        settings = State.settings.model_copy(update={"home": workspace or out / "workspace", "db_url": None,
                                                     "store_url": None})

        def on_image(record: ImageRecord, done: int, total: int) -> None:
            status = f"ran {','.join(record.ran)}" if record.ran else "cached"
            failed = f" FAILED {record.failed}" if record.failed else ""
            err_console.print(f"[{done}/{total}] {record.item.rel}: {record.seconds:.1f} s, {status}{failed}")

        evaluate_images(data, manifest, out, settings=settings, synth_dir=synth,
                        artifact_dir=ARTIFACTS if write_artifact else None, target_precision=target_precision,
                        c=c, calibration=calibration, progress=on_image)
        console.print((out / "metrics.md").read_text())

    @app.command("eval")
    def eval_(
        data_dir: Annotated[Path, typer.Argument(help="directory the manifest paths are relative to")],
        manifest: Annotated[Path, typer.Option(help="CSV: path,label[,mask,mask_polarity,kind,split,source]")],
        out: Annotated[Path, typer.Option(help="directory for metrics.md, metrics.json, scores.csv")],
        detector: Annotated[list[str] | None, typer.Option(help="only these detectors")] = None,
        fixed_threshold: Annotated[float, typer.Option(help="map threshold for the fixed pixel metrics")] = 0.5,
    ) -> None:
        """Image AUC and pixel F1/IoU/MCC of every forensic detector, as Markdown and JSON tables."""
        from tamperscope.evaluation.harness import evaluate

        evaluate(data_dir, manifest, out, names=detector or None, fixed_threshold=fixed_threshold)
        console.print((out / "metrics.md").read_text())

    @app.command("synth-bench")
    def synth_bench(
        out: Annotated[Path, typer.Argument(help="output directory (images, masks, manifest.csv)")],
        seed: Annotated[int, typer.Option(help="generator seed")] = 0,
        size: Annotated[int, typer.Option(help="crop side in pixels")] = 384,
        crops: Annotated[int, typer.Option(help="crops per source photograph")] = 3,
        extra: Annotated[Path | None, typer.Option(help="directory of extra pristine JPEGs")] = None,
    ) -> None:
        """Generate the seeded synthetic forgery benchmark with exact masks."""
        import numpy as np
        from PIL import Image

        from tamperscope.samples.forgeries import generate

        extra_sources = {}
        for path in sorted(extra.glob("*.jpg")) if extra else []:
            with Image.open(path) as img:
                if min(img.size) >= size:
                    extra_sources[path.stem] = np.asarray(img.convert("RGB"))
        manifest = generate(out, seed=seed, size=size, crops_per_source=crops, extra_sources=extra_sources)
        console.print(f"wrote {manifest}")

    @app.command("fusion-train")
    def fusion_train(
        scores: Annotated[Path, typer.Argument(help="scores.csv written by `tamperscope eval` on the benchmark")],
        model_id: Annotated[str, typer.Option(help="artifact name")] = "image-v1",
        target_precision: Annotated[float, typer.Option(help="precision each confident band must reach")] = 0.9,
        out_dir: Annotated[Path | None, typer.Option(help="artifact directory (default: the package's)")] = None,
        benchmark: Annotated[str, typer.Option(help="how the scored benchmark was made (stored in the artifact)")] = (
            "tamperscope synth-bench --seed 0 --size 384 --crops 3 (scikit-image sources); tamperscope eval"),
    ) -> None:
        """Fit, calibrate and threshold the fusion model; write its JSON artifact."""
        from tamperscope.fusion.model import ARTIFACTS
        from tamperscope.fusion.train import train_image_model

        model = train_image_model(scores, model_id=model_id, target_precision=target_precision,
                                  out_dir=out_dir or ARTIFACTS, training={"benchmark": benchmark})
        console.print({k: {m: v for m, v in d.items() if m != "reliability"} for k, d in model.metrics.items()})
        console.print(model.policy)
