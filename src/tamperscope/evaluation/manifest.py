"""The checks every evaluation manifest shares: the file exists, required columns are filled, listed files exist."""

from __future__ import annotations

import csv
from pathlib import Path

from tamperscope.errors import UsageError


def manifest_rows(manifest: Path, root: Path, required: set[str], noun: str) -> list[tuple[Path, dict[str, str]]]:
    """Each row of a manifest CSV with its ``path`` resolved against ``root``.

    Raises
    ------
    UsageError
        If the file is missing, a row leaves a ``required`` column empty, a listed file does not exist, or the
        manifest lists no rows (``noun`` names them in the message).
    """
    if not manifest.is_file():
        raise UsageError(f"manifest {manifest} does not exist")
    rows = []
    with manifest.open(newline="") as fh:
        for rec in csv.DictReader(fh):
            missing = required - {k for k, v in rec.items() if v not in (None, "")}
            if missing:
                raise UsageError(f"{manifest}: row {rec} lacks {', '.join(sorted(missing))}")
            path = root / rec["path"]
            if not path.is_file():
                raise UsageError(f"{manifest}: {path} does not exist")
            rows.append((path, rec))
    if not rows:
        raise UsageError(f"{manifest} lists no {noun}")
    return rows
