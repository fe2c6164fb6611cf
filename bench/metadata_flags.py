"""Measured metadata flags: ingest the shared ``exif`` and ``c2pa`` corpora, run the metadata stage, print a table.

Usage: ``.venv/bin/python bench/metadata_flags.py [TESTDATA_DIR]`` (default ``../shared/testdata``). Runs in a
temporary TAMPERSCOPE_HOME; prints a Markdown table (file, label from MANIFEST.tsv, flags, provenance status)
and a summary line checking that every file whose Software names Adobe Photoshop is flagged.
"""

from __future__ import annotations

import csv
import sys
import tempfile
from pathlib import Path

from sqlalchemy import select

from tamperscope.custody.intake import ingest_path
from tamperscope.errors import InputRejectedError
from tamperscope.pipeline.runner import analyze_asset
from tamperscope.settings import Settings
from tamperscope.store.models import Asset, Detection
from tamperscope.workspace import Workspace


def labels(testdata: Path) -> dict[str, str]:
    """Map ``<folder>/<file>`` to its MANIFEST.tsv label (last column)."""
    out: dict[str, str] = {}
    with open(testdata / "MANIFEST.tsv", newline="") as handle:
        for row in csv.reader(handle, delimiter="\t"):
            if row and not row[0].startswith("#") and len(row) > 1:
                out[row[0]] = row[-1]
    return out


def main(testdata: Path) -> int:
    """Run the measurement and print the table; exit 1 when a Photoshop file goes unflagged."""
    manifest = labels(testdata)
    files = sorted(p for folder in ("exif", "c2pa") for p in (testdata / folder).iterdir() if p.is_file()
                   and p.name != "MANIFEST.tsv")
    rows: list[str] = []
    photoshop_total = photoshop_flagged = 0
    with tempfile.TemporaryDirectory() as home:
        ws = Workspace.open(Settings(home=Path(home), actor="bench"))
        try:
            for path in files:
                rel = f"{path.parent.name}/{path.name}"
                try:
                    asset_id = ingest_path(ws, path).asset_id
                    analyze_asset(ws, asset_id, only=["metadata"])
                except InputRejectedError as exc:
                    photoshop_total += "Software=Adobe Photoshop" in manifest.get(rel, "")
                    rows.append(f"| {rel} | {manifest.get(rel, '')} | rejected: {exc} | |")
                    continue
                with ws.db.session() as session:
                    asset = session.get(Asset, asset_id)
                    flags = sorted(d.module_name.removeprefix("meta.") for d in session.execute(
                        select(Detection).where(Detection.asset_id == asset_id,
                                                Detection.module_name.like("meta.%"))).scalars())
                    software = str((asset.exif_json or {}).get("IFD0:Software", "")) if asset else ""
                    status = asset.provenance_status if asset else None
                label = manifest.get(rel, "").replace("|", "/")
                if "photoshop" in software.lower() or "Software=Adobe Photoshop" in label:
                    photoshop_total += 1
                    photoshop_flagged += "editing_software" in flags
                rows.append(f"| {rel} | {label} | {', '.join(flags) or '-'} | {status or '-'} |")
        finally:
            ws.close()
    print("| file | label (MANIFEST.tsv) | flags raised | provenance |")
    print("|---|---|---|---|")
    print("\n".join(rows))
    print(f"\nSoftware=Adobe Photoshop files flagged editing_software: {photoshop_flagged}/{photoshop_total}")
    return 0 if photoshop_flagged == photoshop_total else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared/testdata"))
