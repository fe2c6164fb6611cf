"""Write, list and verify reports: the I/O edge around :mod:`build` and :mod:`pdf`.

Reports go to the object store under ``derived/<asset>/report/`` and to the ``reports`` table; writing one
appends a ``report.written`` audit event. The report id is deterministic (asset id + JSON digest prefix).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tamperscope.custody.audit import append_event
from tamperscope.custody.seal import REPORT_SEAL_ACTION, asset_objects, seal
from tamperscope.errors import IntegrityError, UsageError
from tamperscope.report.build import CASE_ACTION, build_report, load_inputs, report_bytes, store_reader
from tamperscope.report.pdf import render_pdf
from tamperscope.store import queries
from tamperscope.store.models import Report
from tamperscope.workspace import Workspace

SCHEMA_DIR = Path(__file__).parent / "schema"


@dataclass(frozen=True)
class WrittenReport:
    report_id: str
    asset_id: str
    json_bytes: bytes
    pdf_bytes: bytes
    sha256_json: str
    sha256_pdf: str
    uri_json: str
    uri_pdf: str


def load_schema(major: int = 2) -> dict[str, Any]:
    """The published JSON Schema of report version ``major`` (2 is current; 1 validates older reports)."""
    return json.loads((SCHEMA_DIR / f"report-v{major}.schema.json").read_text(encoding="utf-8"))


def assign_case(ws: Workspace, asset_ref: str, *, case: str | None, examiner: str | None) -> bool:
    """Record the case reference and examiner of an asset as a ``case.assigned`` audit event, which the report
    reads (so ``report verify`` recomputes it from stored data); unchanged values append nothing.

    A value left ``None`` keeps the one recorded before. Returns whether an event was appended.
    """
    with ws.db.session() as session:
        asset_id = queries.find_asset(session, asset_ref).asset_id
        previous = next((e for e in reversed(queries.audit_events(session, asset_id)) if e.action == CASE_ACTION),
                        None)
        before = (previous.details_json or {}) if previous is not None else {}
        details = {"case_id": case if case is not None else before.get("case_id"),
                   "examiner": examiner if examiner is not None else before.get("examiner")}
        if details == {k: before.get(k) for k in details}:
            return False
        append_event(session, action=CASE_ACTION, who=ws.actor, asset_id=asset_id, details=details)
    return True


def render(ws: Workspace, asset_ref: str) -> tuple[dict[str, Any], bytes, bytes]:
    """Build the report dict, its JSON bytes and its PDF bytes from stored data (nothing is written)."""
    report = build_report(load_inputs(ws, asset_ref))
    json_bytes = report_bytes(report)
    pdf_bytes = render_pdf(report, hashlib.sha256(json_bytes).hexdigest(), store_reader(ws))
    return report, json_bytes, pdf_bytes


def write_report(ws: Workspace, asset_ref: str, out_dir: Path | None = None) -> WrittenReport:
    """Render, store, record and audit the report of one asset; optionally copy both files to ``out_dir``."""
    report, json_bytes, pdf_bytes = render(ws, asset_ref)
    asset_id = report["asset"]["asset_id"]
    sha_json = hashlib.sha256(json_bytes).hexdigest()
    sha_pdf = hashlib.sha256(pdf_bytes).hexdigest()
    report_id = f"{asset_id}:r{sha_json[:16]}"
    stem = f"derived/{asset_id}/report/report-{sha_json[:16]}"
    uri_json = ws.store.put_bytes(f"{stem}.json", json_bytes)
    uri_pdf = ws.store.put_bytes(f"{stem}.pdf", pdf_bytes)
    versions = {s["stage"]: s["version"] for s in report["tools"]["stages"]}
    objects = asset_objects(ws.store, asset_id, report["asset"]["storage_key"])
    with ws.db.session() as session:
        row = session.get(Report, report_id)
        if row is None:
            session.add(Report(report_id=report_id, asset_id=asset_id, uri_json=uri_json, uri_pdf=uri_pdf,
                               sha256_json=sha_json, sha256_pdf=sha_pdf,
                               created_at=datetime.fromisoformat(report["generated_at"].rstrip("Z")).replace(
                                   tzinfo=UTC), pipeline_versions_json=versions))
        append_event(session, action="report.written", who=ws.actor, asset_id=asset_id,
                     details={"report_id": report_id, "sha256_json": sha_json, "sha256_pdf": sha_pdf,
                              "uri_json": uri_json, "uri_pdf": uri_pdf})
        seal(session, who=ws.actor, asset_id=asset_id, groups=[f"reports/{asset_id}"], objects=objects,
             action=REPORT_SEAL_ACTION)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / f"{asset_id}.json").write_bytes(json_bytes)
        (out_dir / f"{asset_id}.pdf").write_bytes(pdf_bytes)
    return WrittenReport(report_id, asset_id, json_bytes, pdf_bytes, sha_json, sha_pdf, uri_json, uri_pdf)


def verify_report_bytes(ws: Workspace, data: bytes) -> dict[str, Any]:
    """Recompute the report named by ``data`` from stored data; raise :class:`IntegrityError` unless identical."""
    try:
        claimed = json.loads(data)
        asset_id = claimed["asset"]["asset_id"]
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"not a tamperscope JSON report: {exc}") from exc
    json_bytes = report_bytes(build_report(load_inputs(ws, asset_id)))  # the PDF is not needed to compare
    digest = hashlib.sha256(data).hexdigest()
    recomputed = hashlib.sha256(json_bytes).hexdigest()
    if digest != recomputed:
        problems = [f"report SHA-256 {digest} != recomputed {recomputed}"]
        fresh = json.loads(json_bytes)
        problems += [f"section {key!r} differs" for key in sorted(set(fresh) | set(claimed))
                     if fresh.get(key) != claimed.get(key)]
        raise IntegrityError(problems)
    return {"asset_id": asset_id, "sha256": digest, "ok": True}
