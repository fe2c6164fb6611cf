"""The FastAPI application: routers per resource, one exception handler for typed errors, the web page."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from tamperscope._version import __version__
from tamperscope.api.routers import assets, audit, batches, jobs, reports
from tamperscope.errors import IntegrityError, TamperscopeError, http_status_for
from tamperscope.services.jobs import Worker
from tamperscope.settings import Settings
from tamperscope.workspace import Workspace

STATIC = Path(__file__).parent / "static"


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app on the workspace named by ``settings``.

    Every ``/api`` route requires a token; the page (``/``, ``/static``) and the OpenAPI docs are public, and
    the page asks for a token before it calls the API. Jobs are rows of the shared database; the app runs
    ``jobs.api_workers`` worker threads of its own (0: separate ``tamperscope worker`` processes run them).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ws = Workspace.open(settings)
        app.state.workspace = ws
        stop = threading.Event()
        threads = [threading.Thread(target=Worker(ws).run, args=(stop,), name=f"api-worker-{i}", daemon=True)
                   for i in range(ws.settings.jobs.api_workers)]
        for thread in threads:
            thread.start()
        yield
        stop.set()
        for thread in threads:
            await anyio.to_thread.run_sync(thread.join)
        ws.close()

    app = FastAPI(title="tamperscope", version=__version__, lifespan=lifespan,
                  description="Media forensics with evidence: upload, analyse, report, audit. Send "
                              "`Authorization: Bearer <token>` (tokens: `tamperscope token create NAME`).")

    @app.exception_handler(TamperscopeError)
    async def typed_error(request: Request, exc: TamperscopeError) -> JSONResponse:
        body: dict[str, object] = {"error": type(exc).__name__, "message": str(exc)}
        if isinstance(exc, IntegrityError):
            body["problems"] = exc.problems
        reason = getattr(exc, "reason", None)
        if reason is not None:
            body["reason"] = str(reason)
        return JSONResponse(body, status_code=http_status_for(exc))

    for module in (assets, jobs, batches, reports, audit):
        app.include_router(module.router)
    app.include_router(reports.verify_router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    return app
