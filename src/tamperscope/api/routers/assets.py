"""Assets: streaming upload, listing, one asset's summary, its artifacts, starting an analysis."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

import anyio
from anyio.from_thread import run as run_from_thread
from fastapi import APIRouter, Query, Request, Response

from tamperscope.api.dependencies import WorkspaceDep
from tamperscope.custody.audit import append_event
from tamperscope.custody.intake import IntakeRecord, ingest_stream
from tamperscope.errors import NotFoundError, RejectReason, UploadTooLargeError
from tamperscope.services.analysis import summarize
from tamperscope.services.jobs import submit
from tamperscope.store import jobqueue, queries

router = APIRouter(prefix="/api/assets", tags=["assets"])
MAX_NAME = 255


class _BodyReader(io.RawIOBase):
    """A blocking reader over the request's async body stream, for use from a worker thread."""

    def __init__(self, chunks: AsyncIterator[bytes], limit: int) -> None:
        self._chunks = chunks
        self._pending = b""
        self._done = False
        self._limit = limit
        self.received = 0

    def readable(self) -> bool:
        return True

    async def _next(self) -> bytes:
        try:
            return await self._chunks.__anext__()
        except StopAsyncIteration:
            return b""

    def readinto(self, buffer: Any) -> int:
        while not self._pending and not self._done:
            self._pending = run_from_thread(self._next)
            self._done = not self._pending
            self.received += len(self._pending)
            if self.received > self._limit:
                raise UploadTooLargeError(f"the upload body exceeds the limit of {self._limit} bytes")
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def record_refusal(ws: Any, record: IntakeRecord, size: int, limit: int) -> None:
    """The audit event of an upload refused as too large (no asset row: its bytes were never kept)."""
    with ws.db.session() as session:
        append_event(session, action="intake.refused", who=ws.actor,
                     details={"reason": RejectReason.TOO_LARGE.value, "bytes": size, "limit": limit,
                              "original_name": record.original_name, "source": record.source})


def display_name(name: str | None) -> str:
    """The uploaded file name as a label only: printable, no directories, bounded; never used as a path."""
    base = (name or "upload").replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in base if ch.isprintable()).strip() or "upload"
    return cleaned[:MAX_NAME]


@router.post("", status_code=201, summary="Upload a file (raw request body, streamed)")
async def upload(request: Request, ws: WorkspaceDep, name: str | None = None, source: str | None = None,
                 license: str | None = None, analyze: bool = False) -> dict[str, Any]:
    """Stream the request body into the store (hashing as it goes); ``name`` is the original file name; with
    ``analyze`` an analysis job is queued too (its row is returned as ``job``).

    A body over ``limits.api_max_upload_bytes`` (declared, or counted while streaming) is answered 413; nothing
    of it stays in the store and the refusal is an audit event.
    """
    limit = min(ws.settings.limits.api_max_upload_bytes, ws.settings.limits.max_bytes)
    declared = request.headers.get("content-length")
    record = IntakeRecord(original_name=display_name(name), source=source or f"api upload by {ws.actor}",
                          license=license)
    if declared is not None and declared.isdigit() and int(declared) > limit:
        await anyio.to_thread.run_sync(record_refusal, ws, record, int(declared), limit)
        raise UploadTooLargeError(f"an upload of {declared} bytes exceeds the limit of {limit} bytes")
    body = _BodyReader(request.stream().__aiter__(), limit)
    reader = io.BufferedReader(body, buffer_size=1 << 20)
    try:
        result = await anyio.to_thread.run_sync(ingest_stream, ws, reader, record)
    except UploadTooLargeError:
        await anyio.to_thread.run_sync(record_refusal, ws, record, body.received, limit)
        raise
    answer: dict[str, Any] = {"asset_id": result.asset_id, "sha256": result.sha256, "size": result.size,
                              "status": result.status, "duplicate": result.duplicate}
    if analyze:
        jobs = await anyio.to_thread.run_sync(lambda: submit(ws, [result.asset_id]))
        answer["job"] = jobqueue.as_dict(jobs[0])
    return answer


@router.get("", summary="List assets: search, filter, sort and page (the total is in X-Total-Count)")
def list_assets(ws: WorkspaceDep, response: Response,
                q: Annotated[str | None, Query(description="name substring, or SHA-256 / id prefix")] = None,
                media_type: Annotated[str | None, Query(description="image | video | audio")] = None,
                band: Annotated[str | None, Query(description="likely_real | unsure | likely_manipulated | none")
                                ] = None,
                uploaded_from: Annotated[datetime | None, Query(description="uploaded at or after (ISO date)")
                                         ] = None,
                uploaded_to: Annotated[datetime | None, Query(description="uploaded at or before (ISO date)")
                                       ] = None,
                sort: Annotated[str, Query(description=", ".join(queries.ASSET_SORTS))] = "upload_time",
                order: Annotated[str, Query(pattern="^(asc|desc)$")] = "desc",
                offset: Annotated[int, Query(ge=0)] = 0,
                limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
    query = queries.AssetQuery(text=q or None, media_type=media_type or None, band=band or None,
                               uploaded_from=uploaded_from, uploaded_to=uploaded_to, sort=sort,
                               descending=order == "desc", offset=offset, limit=limit)
    with ws.db.session() as session:
        hits, total = queries.search_assets(session, query)
        response.headers["X-Total-Count"] = str(total)
        return [{"asset_id": h.asset.asset_id, "sha256": h.asset.sha256, "original_name": h.asset.original_name,
                 "media_type": h.asset.media_type, "status": h.asset.status, "size_bytes": h.asset.size_bytes,
                 "upload_time": h.asset.upload_time.isoformat(), "duration_ms": h.asset.duration_ms,
                 "band": h.band, "probability": h.probability} for h in hits]


@router.get("/{ref}", summary="One asset: status, stages, flags, verdict")
def get_asset(ref: str, ws: WorkspaceDep) -> dict[str, Any]:
    return summarize(ws, ref).__dict__


@router.post("/{ref}/analyze", status_code=202, summary="Queue a background analysis (then a report)")
def analyze(ref: str, ws: WorkspaceDep, force: bool = False) -> dict[str, Any]:
    return jobqueue.as_dict(submit(ws, [ref], force=force)[0])


@router.get("/{ref}/artifact", summary="Bytes of a frame or map of this asset (only URIs the asset references)")
def artifact(ref: str, uri: str, ws: WorkspaceDep,
             frame: Annotated[str | None, Query(description="the frame whose faces hold a crop URI")] = None
             ) -> Response:
    with ws.db.session() as session:
        asset_id = queries.asset_id_of(session, ref)
        referenced = queries.references_artifact(session, asset_id, uri, frame)
    if not referenced:
        raise NotFoundError(f"asset {asset_id} has no artifact {uri!r}")
    data = ws.store.get_bytes(ws.store.key_of(uri))
    media = "image/png" if data[:8] == b"\x89PNG\r\n\x1a\n" else "image/jpeg" if data[:2] == b"\xff\xd8" else \
        "application/octet-stream"
    return Response(data, media_type=media)
