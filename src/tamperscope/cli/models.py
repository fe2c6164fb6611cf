"""Deep-model command ``model-check``: load an ONNX detector with its YAML sidecar and run it once.

Training lives in the separate ``tamperscope_train`` package (command ``tamperscope-train``, the ``train`` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add the deep-model commands to the CLI."""
    from tamperscope.cli.context import console

    @app.command("model-check")
    def model_check(
        model: Annotated[Path, typer.Argument(help="detector .onnx with a <stem>.yaml sidecar next to it")],
    ) -> None:
        """Validate a user checkpoint: spec, inputs/outputs and one forward pass on a grey input.

        Use it in analysis with ``TAMPERSCOPE_MODELS__FRAME_PATH`` / ``TAMPERSCOPE_MODELS__CLIP_PATH``.
        """
        import numpy as np

        from tamperscope.models.runtime import FrameModel, load_model

        detector = load_model(model)
        size = detector.spec.input_size
        if isinstance(detector, FrameModel):
            pred = detector.predict(np.full((1, size, size, 3), 128, np.uint8))
        elif detector.spec.input == "embeddings":
            dim = detector.spec.embedding_dim or 1
            pred = detector.predict(np.zeros((1, detector.spec.clip_length, dim), np.float32))
        else:
            pred = detector.predict(np.full((1, detector.spec.clip_length, size, size, 3), 128, np.uint8))
        console.print(f"{detector.kind} model {model.name}: {detector.spec.model_dump_json()}")
        console.print(f"outputs {detector.output_names}; grey-input score {pred.scores[0]:.4f}")
