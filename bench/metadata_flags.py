"""Measured metadata flags: ingest the shared ``exif``, ``c2pa`` and ``forgery`` corpora, run the metadata stage.

Usage: ``.venv/bin/python bench/metadata_flags.py [TESTDATA_DIR]`` (default ``../shared/testdata``). Runs in a
temporary TAMPERSCOPE_HOME; prints a Markdown table (file, label from MANIFEST.tsv, flags, provenance status),
the number of files per folder that ``editing_software`` attributes to each signature of ``editors.yaml`` (and
per strongest category), and a summary line checking that every file whose Software names Adobe Photoshop is
flagged.
"""

from __future__ import annotations

import csv
import sys
import tempfile
from collections import Counter
from pathlib import Path

from sqlalchemy import select

from tamperscope.errors import InputRejectedError
from tamperscope.probe.rules.signatures import load_signatures
from tamperscope.services.analysis import run_analysis
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
    folders = ("exif", "c2pa", "forgery")
    files = sorted(p for folder in folders for p in (testdata / folder).rglob("*") if p.is_file()
                   and p.name != "MANIFEST.tsv")
    rows: list[str] = []
    per_signature: Counter[tuple[str, str]] = Counter()
    per_category: Counter[tuple[str, str]] = Counter()
    totals: Counter[str] = Counter()
    photoshop_total = photoshop_flagged = 0
    with tempfile.TemporaryDirectory() as home:
        ws = Workspace.open(Settings(home=Path(home), actor="bench"))
        try:
            for path in files:
                rel = path.relative_to(testdata).as_posix()
                folder = rel.split("/", 1)[0]
                totals[folder] += 1
                try:
                    asset_id = run_analysis(ws, path, only=["metadata"]).run.asset_id
                except InputRejectedError as exc:
                    photoshop_total += "Software=Adobe Photoshop" in manifest.get(rel, "")
                    rows.append(f"| {rel} | {manifest.get(rel, '')} | rejected: {exc} | |")
                    continue
                with ws.db.session() as session:
                    asset = session.get(Asset, asset_id)
                    found = session.execute(select(Detection).where(
                        Detection.asset_id == asset_id, Detection.module_name.like("meta.%"))).scalars().all()
                    flags = sorted(d.module_name.removeprefix("meta.") for d in found)
                    for d in found:
                        if d.module_name == "meta.editing_software":
                            per_signature.update((folder, name) for name in d.evidence_json["software"])
                            per_category[(folder, d.evidence_json["category"])] += 1
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
    signatures = load_signatures()
    print(f"\nFiles per folder whose editing_software flag names each signature (editors.yaml v{signatures.version};"
          f" files: {', '.join(f'{f} {totals[f]}' for f in folders)}):\n")
    print("| signature | category | " + " | ".join(folders) + " |")
    print("|---|---|" + "---|" * len(folders))
    for sig in signatures.signatures:
        if any(per_signature[(f, sig.name)] for f in folders):
            print(f"| {sig.name} | {sig.category} | " + " | ".join(str(per_signature[(f, sig.name)]) for f in folders)
                  + " |")
    print("\n| strongest category (sets the score) | " + " | ".join(folders) + " |")
    print("|---|" + "---|" * len(folders))
    for name, category in signatures.categories.items():
        if category.flagged:
            print(f"| {name} ({category.score}) | " + " | ".join(str(per_category[(f, name)]) for f in folders) + " |")
    print("| any (files flagged) | " + " | ".join(
        str(sum(per_category[(f, c)] for c in signatures.categories)) for f in folders) + " |")
    print(f"\nSoftware=Adobe Photoshop files flagged editing_software: {photoshop_flagged}/{photoshop_total}")
    return 0 if photoshop_flagged == photoshop_total else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared/testdata"))
