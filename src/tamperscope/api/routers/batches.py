"""Batches: queue many analyses in one request (stored assets, or several uploads) and follow them together."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile

from tamperscope.api.dependencies import WorkspaceDep
from tamperscope.api.routers.assets import display_name, record_refusal
from tamperscope.custody.intake import IntakeRecord, ingest_stream
from tamperscope.errors import InputRejectedError, NotFoundError, UploadTooLargeError, UsageError
from tamperscope.services.jobs import submit
from tamperscope.store import jobqueue

router = APIRouter(prefix="/api/batches", tags=["batches"])
MAX_FILES = 1000


class BatchRequest(BaseModel):
    asset_ids: list[str] = Field(min_length=1, max_length=MAX_FILES, description="asset ids or SHA-256 prefixes")
    force: bool = Field(False, description="re-run stages even if their results are current")


def _answer(batch_id: str, jobs: list[Any], **extra: Any) -> dict[str, Any]:
    return {"batch_id": batch_id, **jobqueue.aggregate(jobs), "jobs": [jobqueue.as_dict(j) for j in jobs], **extra}


@router.post("", status_code=202, summary="Queue an analysis of each listed asset, as one batch")
def submit_assets(body: BatchRequest, ws: WorkspaceDep) -> dict[str, Any]:
    """All or nothing: an unknown asset (404) or one rejected at intake (422) queues none."""
    batch_id = jobqueue.new_id()
    return _answer(batch_id, submit(ws, body.asset_ids, force=body.force, batch_id=batch_id))


@router.post("/uploads", status_code=202, summary="Upload several files (multipart, field `files`) and queue "
             "an analysis of each accepted one")
async def submit_uploads(request: Request, ws: WorkspaceDep, source: str | None = None,
                         license: str | None = None) -> dict[str, Any]:
    """Each file is ingested like a single upload; a rejected or oversized file is listed under ``rejected`` with
    its typed reason and does not stop the others. The body is bounded by ``limits.api_max_upload_bytes``."""
    limit = min(ws.settings.limits.api_max_upload_bytes, ws.settings.limits.max_bytes)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise UploadTooLargeError(f"a batch body of {declared} bytes exceeds the limit of {limit} bytes")
    async with request.form(max_files=MAX_FILES, max_fields=10) as form:
        files = [item for item in form.getlist("files") if isinstance(item, UploadFile)]
        if not files:
            raise UsageError("no files: send them as multipart form field `files`")
        asset_ids, rejected = [], []
        for upload in files:
            record = IntakeRecord(original_name=display_name(upload.filename),
                                  source=source or f"api batch upload by {ws.actor}", license=license)
            try:
                if (upload.size or 0) > limit:
                    await anyio.to_thread.run_sync(record_refusal, ws, record, upload.size or 0, limit)
                    raise UploadTooLargeError(f"{upload.size} bytes exceeds the limit of {limit} bytes")
                result = await anyio.to_thread.run_sync(ingest_stream, ws, upload.file, record)
                asset_ids.append(result.asset_id)
            except InputRejectedError as exc:
                rejected.append({"name": record.original_name, "asset_id": exc.asset_id,
                                 "error": type(exc).__name__, "reason": exc.reason.value, "message": exc.message})
    batch_id = jobqueue.new_id()
    jobs = await anyio.to_thread.run_sync(lambda: submit(ws, asset_ids, batch_id=batch_id)) if asset_ids else []
    return _answer(batch_id, jobs, rejected=rejected)


@router.get("/{batch_id}", summary="A batch's jobs and their aggregate: counts per status, mean fraction, finished")
def get_batch(batch_id: str, ws: WorkspaceDep) -> dict[str, Any]:
    jobs = jobqueue.batch(ws.db, batch_id)
    if not jobs:
        raise NotFoundError(f"no batch {batch_id!r}")
    return _answer(batch_id, jobs)
