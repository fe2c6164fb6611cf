"""Temporal commands: ``talking-head`` writes a synthetic clip with known offset, blinks and pose jitter."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from tamperscope.errors import UsageError


def _parse_times(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(item) for item in text.split(",") if item.strip())
    except ValueError as exc:
        raise UsageError(f"--blinks expects comma-separated milliseconds; got {text!r}") from exc


def register(app: typer.Typer) -> None:
    """Add the temporal commands to the CLI."""
    from tamperscope.cli.context import console

    @app.command("talking-head")
    def talking_head_command(
        out: Annotated[Path, typer.Argument(help="output .mp4")],
        seconds: Annotated[float, typer.Option(help="clip length")] = 12.0,
        offset_ms: Annotated[float, typer.Option(help="audio delay vs the mouth (positive = audio lags)")] = 0.0,
        blinks: Annotated[str, typer.Option(help="blink onsets in ms, comma-separated")] = "1000,4200,7500",
        jitter_deg: Annotated[float, typer.Option(help="per-frame random pose of the face region")] = 0.0,
        width: Annotated[int, typer.Option(help="frame width")] = 480,
        height: Annotated[int, typer.Option(help="frame height")] = 360,
    ) -> None:
        """Animate scikit-image's astronaut speaking espeak-ng audio, with known ground truth (printed as JSON)."""
        from tamperscope.samples.talking_head import talking_head

        if seconds <= 1.0:
            raise UsageError("--seconds must exceed 1")
        clip = talking_head(out, duration_s=seconds, size=(width, height), offset_ms=offset_ms,
                            blink_onsets_ms=_parse_times(blinks), jitter_deg=jitter_deg)
        console.print(json.dumps({"path": str(clip.path), "duration_s": clip.duration_s, "fps": clip.fps,
                                  "offset_ms": clip.offset_ms, "blink_onsets_ms": list(clip.blink_onsets_ms),
                                  "blink_ms": clip.blink_ms, "jitter_deg": clip.jitter_deg}))
