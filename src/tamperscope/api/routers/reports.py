"""Reports: the JSON report content, stored JSON/PDF downloads, writing and verifying reports."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from tamperscope.api.dependencies import WorkspaceDep
from tamperscope.custody.audit import append_event
from tamperscope.errors import NotFoundError
from tamperscope.report.service import verify_report_bytes, write_report
from tamperscope.store import queries
from tamperscope.store.models import Report
from tamperscope.workspace import Workspace

router = APIRouter(prefix="/api/assets/{ref}/reports", tags=["reports"])
verify_router = APIRouter(prefix="/api/reports", tags=["reports"])


def _latest(ws: Workspace, ref: str) -> Report:
    with ws.db.session() as session:
        asset_id = queries.find_asset(session, ref).asset_id
        row = queries.latest_report(session, asset_id)
        if row is None:
            raise NotFoundError(f"asset {asset_id} has no report yet; POST to create one")
        session.expunge(row)
        return row


@router.post("", status_code=201, summary="Write (or re-write) the report from stored data")
def create(ref: str, ws: WorkspaceDep) -> dict[str, Any]:
    written = write_report(ws, ref)
    return {"report_id": written.report_id, "sha256_json": written.sha256_json, "sha256_pdf": written.sha256_pdf,
            "uri_json": written.uri_json, "uri_pdf": written.uri_pdf}


@router.get("/latest", summary="Metadata of the newest stored report")
def latest(ref: str, ws: WorkspaceDep) -> dict[str, Any]:
    row = _latest(ws, ref)
    return {"report_id": row.report_id, "sha256_json": row.sha256_json, "sha256_pdf": row.sha256_pdf,
            "uri_json": row.uri_json, "uri_pdf": row.uri_pdf}


def _download(ws: Workspace, ref: str, kind: str) -> Response:
    row = _latest(ws, ref)
    uri = row.uri_json if kind == "json" else row.uri_pdf
    if uri is None:
        raise NotFoundError(f"report {row.report_id} has no {kind} file")
    data = ws.store.get_bytes(ws.store.key_of(uri))
    with ws.db.session() as session:
        append_event(session, action="access.report_download", who=ws.actor, asset_id=row.asset_id,
                     details={"report_id": row.report_id, "format": kind})
    media = "application/json" if kind == "json" else "application/pdf"
    filename = f"tamperscope-{row.asset_id}.{kind}"
    return Response(data, media_type=media, headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@router.get("/latest.json", summary="Download the newest JSON report")
def download_json(ref: str, ws: WorkspaceDep) -> Response:
    return _download(ws, ref, "json")


@router.get("/latest.pdf", summary="Download the newest PDF report")
def download_pdf(ref: str, ws: WorkspaceDep) -> Response:
    return _download(ws, ref, "pdf")


@router.get("/latest/content", summary="The newest JSON report, parsed (for the web page)")
def content(ref: str, ws: WorkspaceDep) -> dict[str, Any]:
    row = _latest(ws, ref)
    if row.uri_json is None:
        raise NotFoundError(f"report {row.report_id} has no JSON file")
    return json.loads(ws.store.get_bytes(ws.store.key_of(row.uri_json)))


@verify_router.post("/verify", summary="Recompute a JSON report (request body) from stored data; 409 on mismatch")
async def verify(request: Request, ws: WorkspaceDep) -> dict[str, Any]:
    """Async only to read the body; rebuilding the report (database, store, hashing) runs in the threadpool."""
    body = await request.body()
    return await run_in_threadpool(verify_report_bytes, ws, body)
