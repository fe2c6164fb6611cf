"""Media-table commands: ``export --parquet DIR``, ``qa`` and ``split``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from tamperscope.errors import IntegrityError, UsageError


def _parse_fractions(text: str) -> dict[str, float]:
    try:
        pairs = [item.split("=", 1) for item in text.split(",") if item]
        return {name.strip(): float(value) for name, value in pairs}
    except ValueError as exc:
        raise UsageError(f"--fractions expects name=share,...; got {text!r}") from exc


def register(app: typer.Typer) -> None:
    """Add the media-table commands to the CLI."""
    from tamperscope.cli.context import console, err_console, workspace

    @app.command()
    def export(
        parquet: Annotated[Path, typer.Option("--parquet", help="directory for <table>.parquet files")],
        table: Annotated[list[str] | None, typer.Option("--table", help="only these tables")] = None,
    ) -> None:
        """Export assets, shots, frames, detections and windows as Parquet."""
        from tamperscope.store.export import export_parquet

        counts = export_parquet(workspace().db, parquet, table or None)
        for name, rows in counts.items():
            console.print(f"{name}: {rows} rows -> {parquet / (name + '.parquet')}")

    @app.command()
    def qa(
        max_label_skew: Annotated[float, typer.Option(help="largest label-share difference per split")] = 0.2,
        json_out: Annotated[bool, typer.Option("--json", help="print failures as JSON")] = False,
    ) -> None:
        """Check the tables against declared expectations; exit 4 and list every failure."""
        from tamperscope.store.qa import run_qa

        failures = run_qa(workspace().db, max_label_skew=max_label_skew)
        if json_out:
            print(json.dumps([f.__dict__ for f in failures], sort_keys=True))
        else:
            for failure in failures:
                err_console.print(f"[red]FAIL[/red] {failure}")
            if not failures:
                console.print("all expectations hold")
        if failures:
            raise IntegrityError([str(f) for f in failures])

    @app.command()
    def split(
        fractions: Annotated[str, typer.Option(help="split=share,...")] = "train=0.7,val=0.15,test=0.15",
        seed: Annotated[int, typer.Option(help="shuffle seed")] = 0,
    ) -> None:
        """Assign subject-disjoint train/val/test splits to every asset."""
        from tamperscope.store.splits import split_assets

        ws = workspace()
        with ws.db.session() as session:
            counts = split_assets(session, _parse_fractions(fractions), seed)
        console.print(", ".join(f"{name}: {n}" for name, n in sorted(counts.items())) or "no assets")
