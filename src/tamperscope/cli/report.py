"""CLI commands of reports and the HTTP API: ``report``, ``report verify``, ``serve``, ``token create``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add the ``report``, ``serve`` and ``token`` commands to ``app``."""
    from tamperscope.cli.context import State, console, workspace

    token_app = typer.Typer(no_args_is_help=True, help="API tokens.")
    app.add_typer(token_app, name="token")

    @app.command()
    def report(
        asset: Annotated[str, typer.Argument(help="asset id / SHA-256 prefix, or 'verify' followed by FILE.json")],
        file: Annotated[Path | None, typer.Argument(help="with 'verify': the JSON report to check")] = None,
        out: Annotated[Path | None, typer.Option("--out", help="also copy the JSON and PDF here")] = None,
        case: Annotated[str | None, typer.Option("--case", help="case reference, recorded and shown in the report")]
        = None,
        examiner: Annotated[str | None, typer.Option("--examiner", help="examiner's name, recorded and shown in "
                                                     "the report")] = None,
    ) -> None:
        """Write an asset's JSON + PDF report to the store, or `report verify FILE.json` (exit 4 on mismatch)."""
        from tamperscope.errors import UsageError
        from tamperscope.report.service import assign_case, verify_report_bytes, write_report

        if asset == "verify":
            if file is None or not file.is_file():
                raise UsageError("report verify needs an existing FILE.json")
            print(json.dumps(verify_report_bytes(workspace(), file.read_bytes()), sort_keys=True))
            return
        if file is not None:
            raise UsageError("report takes one asset; use --out DIR for a copy")
        ws = workspace()
        if case is not None or examiner is not None:
            assign_case(ws, asset, case=case, examiner=examiner)
        written = write_report(ws, asset, out)
        console.print(f"report {written.report_id}\n  json {written.uri_json} sha256 {written.sha256_json}\n"
                      f"  pdf  {written.uri_pdf} sha256 {written.sha256_pdf}")
        if out is not None:
            console.print(f"  files: {out / (written.asset_id + '.json')}, {out / (written.asset_id + '.pdf')}")

    @token_app.command("create")
    def token_create(name: Annotated[str, typer.Argument(help="who uses the token (the audit 'who')")]) -> None:
        """Create an API token; it is printed once and only its SHA-256 is stored."""
        from tamperscope.api.tokens import create_token

        print(create_token(workspace(), name))

    @app.command()
    def serve(
        host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    ) -> None:
        """Serve the HTTP API and the web page (uvicorn)."""
        import uvicorn

        from tamperscope.api.main import create_app

        console.print(f"web page: http://{host}:{port}/  API docs: http://{host}:{port}/docs")
        uvicorn.run(create_app(State.settings), host=host, port=port, log_level="info")
