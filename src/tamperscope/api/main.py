"""The FastAPI application: routers per resource, one exception handler for typed errors, the web page."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from tamperscope._version import __version__
from tamperscope.api.routers import assets, audit, batches, case, jobs, reports
from tamperscope.errors import IntegrityError, TamperscopeError, http_status_for
from tamperscope.redact import install_log_redaction, mask_secrets
from tamperscope.services.jobs import Worker
from tamperscope.settings import Settings
from tamperscope.workspace import Workspace

STATIC = Path(__file__).parent / "static"


def docs_assets() -> Path | None:
    """Swagger UI 5 and ReDoc 2 files from the ``fastapi-offline`` package (MIT; Swagger UI Apache-2.0, ReDoc
    MIT), or None when it is not installed."""
    try:
        import fastapi_offline
    except ImportError:
        return None
    path = Path(fastapi_offline.__file__).parent / "static"
    return path if (path / "swagger-ui-bundle.js").is_file() and (path / "redoc.standalone.js").is_file() else None


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app on the workspace named by ``settings``.

    Every ``/api`` route requires a token; the page (``/``, ``/static``) and the OpenAPI docs are public, and
    the page asks for a token before it calls the API. ``/docs`` (Swagger UI) and ``/redoc`` are served from the
    installed ``fastapi-offline`` package's files, never from a CDN (both are off if it is missing). Jobs are rows
    of the shared database; the app runs ``jobs.api_workers`` worker threads of its own (0: separate
    ``tamperscope worker`` processes run them).
    """

    install_log_redaction()

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

    app = FastAPI(title="tamperscope", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Media forensics with evidence: upload, analyse, report, audit. Send "
                              "`Authorization: Bearer <token>` (tokens: `tamperscope token create NAME`).")

    @app.exception_handler(TamperscopeError)
    async def typed_error(request: Request, exc: TamperscopeError) -> JSONResponse:
        body: dict[str, object] = {"error": type(exc).__name__, "message": mask_secrets(str(exc))}
        if isinstance(exc, IntegrityError):
            body["problems"] = exc.problems
        reason = getattr(exc, "reason", None)
        if reason is not None:
            body["reason"] = str(reason)
        return JSONResponse(body, status_code=http_status_for(exc))

    for module in (assets, case, jobs, batches, reports, audit):
        app.include_router(module.router)
    app.include_router(reports.verify_router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    docs = docs_assets()
    if docs is not None:
        # FastAPI's default /docs and /redoc load their scripts from a CDN; these are packaged files, so both work
        # offline (and ReDoc without Google Fonts).
        app.mount("/docs-static", StaticFiles(directory=docs), name="docs-static")

        @app.get("/docs", include_in_schema=False)
        def swagger() -> HTMLResponse:
            return get_swagger_ui_html(openapi_url="/openapi.json", title="tamperscope API",
                                       swagger_js_url="/docs-static/swagger-ui-bundle.js",
                                       swagger_css_url="/docs-static/swagger-ui.css",
                                       swagger_favicon_url="/docs-static/favicon.png")

        @app.get("/redoc", include_in_schema=False)
        def redoc() -> HTMLResponse:
            return get_redoc_html(openapi_url="/openapi.json", title="tamperscope API",
                                  redoc_js_url="/docs-static/redoc.standalone.js",
                                  redoc_favicon_url="/docs-static/favicon.png", with_google_fonts=False)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    return app
