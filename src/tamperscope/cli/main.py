"""The ``tamperscope`` command line: a thin layer that parses, calls the library, prints, and maps errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tamperscope.errors import InputRejectedError, TamperscopeError, UsageError, exit_code_for
from tamperscope.settings import Settings, load_settings
from tamperscope.workspace import Workspace

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Media forensics with evidence.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
app.add_typer(db_app, name="db")
key_app = typer.Typer(no_args_is_help=True, help="The key that signs the audit chain head.")
app.add_typer(key_app, name="key")
anchor_app = typer.Typer(no_args_is_help=True, help="Anchors: signed chain heads kept by a third party.")
app.add_typer(anchor_app, name="anchor")
quarantine_app = typer.Typer(no_args_is_help=True, help="Rejected uploads kept in quarantine.")
app.add_typer(quarantine_app, name="quarantine")
console = Console()
err_console = Console(stderr=True)


class State:
    """The settings of this invocation, built by the app callback (never at import)."""

    settings: Settings


@app.callback()
def _configure(
    home: Annotated[Path | None, typer.Option(help="data directory (TAMPERSCOPE_HOME)")] = None,
    db_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL (TAMPERSCOPE_DB_URL)")] = None,
    store_url: Annotated[str | None, typer.Option(help="fsspec URL of the store (TAMPERSCOPE_STORE_URL)")] = None,
    actor: Annotated[str | None, typer.Option(help="who acts, for the audit log (default: OS user)")] = None,
    workers: Annotated[int | None, typer.Option(help="parallel stage workers")] = None,
) -> None:
    overrides: dict[str, Any] = {k: v for k, v in {"home": home, "db_url": db_url, "store_url": store_url,
                                                   "actor": actor, "workers": workers}.items() if v is not None}
    State.settings = load_settings(**overrides)


def _workspace() -> Workspace:
    return Workspace.open(State.settings)


def _iter_inputs(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            raise UsageError(f"{path} does not exist")
    return files


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="files or directories (recursed)")],
    source: Annotated[str | None, typer.Option(help="where the material came from")] = None,
    license: Annotated[str | None, typer.Option(help="licence of the material")] = None,
    label: Annotated[str | None, typer.Option(help="ground-truth label, if known")] = None,
    subject: Annotated[str | None, typer.Option(help="identity/source group, for disjoint splits")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="print results as JSON lines")] = False,
) -> None:
    """Hash, store and validate files; rejected files are quarantined and make the exit code 3."""
    from tamperscope.custody.intake import IntakeRecord, ingest_path

    ws = _workspace()
    rejected = 0
    files = _iter_inputs(paths)
    with _progress() as progress:
        task = progress.add_task("ingest", total=len(files))
        for path in files:
            record = IntakeRecord(original_name=path.name, source=source or str(path.resolve()),
                                  license=license, label=label, subject=subject)
            try:
                result = ingest_path(ws, path, record)
                row = {"path": str(path), "asset_id": result.asset_id, "sha256": result.sha256,
                       "status": result.status, "duplicate": result.duplicate}
            except InputRejectedError as exc:
                rejected += 1
                row = {"path": str(path), "asset_id": exc.asset_id, "status": "rejected",
                       "reason": exc.reason.value, "message": exc.message}
            progress.advance(task)
            _emit(row, json_out)
    if rejected:
        raise typer.Exit(3)


def _emit(row: dict[str, Any], json_out: bool) -> None:
    if json_out:
        print(json.dumps(row, sort_keys=True))
    elif row["status"] == "rejected":
        err_console.print(f"[red]rejected[/red] {row['path']}: {row['reason']}: {row['message']}")
    else:
        dup = " (already stored)" if row.get("duplicate") else ""
        console.print(f"[green]{row['status']}[/green] {row['path']} -> asset {row['asset_id']}{dup}")


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                    TimeElapsedColumn(), console=err_console, transient=True, disable=not err_console.is_terminal)


@app.command()
def analyze(
    target: Annotated[str, typer.Argument(help="asset id / SHA-256 prefix, or a file to ingest first")],
    stage: Annotated[list[str] | None, typer.Option("--stage", help="run only these stages")] = None,
    force: Annotated[bool, typer.Option(help="re-run stages even if their results are current")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
) -> None:
    """Run every analysis stage that is not yet current; a killed run resumes where it stopped."""
    from tamperscope.services.analysis import as_target, format_verdict, run_analysis

    ws = _workspace()
    with _progress() as progress:
        tasks: dict[str, Any] = {}

        def on_progress(stage_name: str, fraction: float, message: str) -> None:
            if stage_name not in tasks:
                tasks[stage_name] = progress.add_task(stage_name, total=1.0)
            progress.update(tasks[stage_name], completed=fraction, description=f"{stage_name} {message}")

        outcome = run_analysis(ws, as_target(target), only=stage or None, force=force, progress=on_progress)
    run, summary = outcome.run, outcome.summary
    if json_out:
        print(json.dumps(summary.__dict__, sort_keys=True, default=str))
    else:
        console.print(f"asset {summary.asset_id} [bold]{summary.status}[/bold]; ran: {', '.join(run.ran) or '-'};"
                      f" current: {', '.join(run.skipped) or '-'}")
        for name, error in run.failed.items():
            status = "exceeded a budget (limit_exceeded)" if name in run.limited else "failed"
            err_console.print(f"[red]stage {name} {status}[/red]: {escape(error)}")
        if summary.verdict:
            console.print(f"verdict: {format_verdict(summary.verdict)}")
        console.print(f"{len(summary.flags)} metadata/forensic flags; details: tamperscope show {summary.asset_id}")
    if run.rejected:  # a stage refused the input with a typed reason: an input problem, not an internal error
        raise typer.Exit(3)
    if run.failed:
        raise typer.Exit(1)


@app.command()
def show(
    asset: Annotated[str, typer.Argument(help="asset id or SHA-256 prefix")],
    json_out: Annotated[bool, typer.Option("--json", help="print everything as JSON")] = False,
) -> None:
    """Show an asset: identity, status, stages, flags and scores."""
    from tamperscope.store import queries

    ws = _workspace()
    with ws.db.session() as session:
        row = queries.find_asset(session, asset)
        runs = queries.stage_runs(session, row.asset_id)
        detections = queries.detections(session, row.asset_id)
        data: dict[str, Any] = {
            "asset_id": row.asset_id, "sha256": row.sha256, "size_bytes": row.size_bytes,
            "original_name": row.original_name, "status": row.status, "reject_reason": row.reject_reason,
            "media_type": row.media_type, "container": row.container, "duration_ms": row.duration_ms,
            "width": row.width, "height": row.height, "fps": row.fps, "provenance_status": row.provenance_status,
            "structure": (row.probe_json or {}).get("structure"),
            "stages": {r.stage: {"version": r.version, "status": r.status, "error": r.error} for r in runs},
            "detections": [
                {"stage": d.stage, "module": d.module_name, "version": d.module_version, "window": d.window_id,
                 "status": d.status, "score": d.score, "band": d.band, "evidence": d.evidence_json,
                 "saliency_uri": d.saliency_uri} for d in detections
            ],
        }
    if json_out:
        print(json.dumps(data, sort_keys=True, default=str))
        return
    table = Table(title=f"asset {data['asset_id']}", show_header=False)
    for key in ("sha256", "original_name", "status", "reject_reason", "media_type", "container", "duration_ms",
                "width", "height", "fps", "provenance_status"):
        table.add_row(key, str(data[key]))
    table.add_row("trailing_bytes", str((data["structure"] or {}).get("trailing_bytes")))
    console.print(table)
    found = Table(title="detections")
    for column in ("stage", "module", "window", "status", "score", "band"):
        found.add_column(column)
    for d in data["detections"]:
        score = "" if d["score"] is None else f"{d['score']:.3f}"
        found.add_row(d["stage"], d["module"], d["window"], d["status"], score, d["band"] or "")
    console.print(found)


@app.command()
def verify(
    asset: Annotated[str | None, typer.Argument(help="only this asset's rows and objects")] = None,
    anchor: Annotated[Path | None, typer.Option(help="anchor file (from `anchor export`) the chain must extend")]
    = None,
) -> None:
    """Walk the audit chain, check its signed head and every evidence row and object against its seal;
    exit 4 naming each change, deletion and addition."""
    from tamperscope.custody.keys import parse_anchor
    from tamperscope.custody.verify import verify as run_verify

    if anchor is not None and not anchor.is_file():
        raise UsageError(f"{anchor} does not exist")
    result = run_verify(_workspace(), asset, parse_anchor(anchor.read_bytes()) if anchor else None)
    signed = "signed" if result.head_signed else "unsigned (no key: `tamperscope key create`)"
    anchored = f"; extends the anchor at event {result.anchored_at}" if result.anchored_at is not None else ""
    console.print(f"OK: {result.rows_checked} evidence rows, {result.objects_checked} objects and "
                  f"{result.events_checked} audit events verified; chain head {result.head_hash} {signed}{anchored}")


@key_app.command("create")
def key_create(force: Annotated[bool, typer.Option(help="replace an existing key")] = False) -> None:
    """Create the Ed25519 key that signs the audit chain head (kept in a file, outside the database)."""
    from tamperscope.custody.anchor import create_installation_key

    signer = create_installation_key(_workspace(), overwrite=force)
    console.print(f"key written to {State.settings.resolved_key_path}\npublic key (Ed25519): {signer.public_key}")


@anchor_app.command("export")
def anchor_export(out: Annotated[Path, typer.Argument(help="anchor file to write (give it to a third party)")]
                  ) -> None:
    """Write the signed chain head: `verify --anchor FILE` later proves the database still extends it."""
    from tamperscope.custody.anchor import export_anchor
    from tamperscope.custody.audit import canonical_json

    document = export_anchor(_workspace())
    out.write_bytes(canonical_json(document) + b"\n")
    console.print(f"anchor at event {document['event_id']} ({document['hash']}) written to {out}")


@quarantine_app.command("purge")
def quarantine_purge(
    older_than: Annotated[str | None, typer.Option(help="age such as 30d, 12h, 15m (default: "
                                                        "custody.quarantine_retention_days)")] = None,
    dry_run: Annotated[bool, typer.Option(help="list what would be purged, delete nothing")] = False,
) -> None:
    """Delete quarantined bodies older than the retention; each purge is recorded and sealed, then deleted."""
    from tamperscope.services.quarantine import parse_age, purge_quarantine

    try:
        age = parse_age(older_than) if older_than is not None else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    result = purge_quarantine(_workspace(), age, dry_run=dry_run)
    verb = "would purge" if dry_run else "purged"
    console.print(f"{verb} {len(result.purged)} quarantined bodies ({result.bytes_freed} bytes) uploaded before "
                  f"{result.cutoff.isoformat(timespec='seconds')}")
    for asset_id in result.purged:
        console.print(f"  asset {asset_id}")


@app.command()
def seal() -> None:
    """Seal all evidence as it is now (once, for data stored before seals existed); `verify` checks from here."""
    from tamperscope.custody.anchor import seal_baseline

    console.print(f"sealed the evidence of {seal_baseline(_workspace())} assets")


@app.command()
def audit(
    asset: Annotated[str, typer.Argument(help="asset id or SHA-256 prefix")],
    json_out: Annotated[bool, typer.Option("--json", help="print events as JSON lines")] = False,
) -> None:
    """List an asset's audit events in order."""
    from tamperscope.store import queries

    ws = _workspace()
    with ws.db.session() as session:
        events = queries.audit_events(session, queries.find_asset(session, asset).asset_id)
        rows: list[dict[str, Any]] = [{"event_id": e.event_id, "when": e.when, "who": e.who, "action": e.action,
                 "details": e.details_json, "hash": e.hash} for e in events]
    for row in rows:
        if json_out:
            print(json.dumps(row, sort_keys=True))
        else:
            console.print(f"{row['event_id']:>6} {row['when']} {row['who']:<12} {row['action']:<18} "
                          f"{row['hash'][:16]}")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database to the newest schema."""
    ws = Workspace.open(State.settings, upgrade=False)
    ws.db.upgrade()
    console.print(f"database at newest revision: {State.settings.resolved_db_url}")


# Each area adds its commands in its own module exposing ``register(app)``; one line here per module.
COMMAND_MODULES: list[str] = ["tamperscope.cli.media", "tamperscope.cli.forensics", "tamperscope.cli.temporal",
                              "tamperscope.cli.report", "tamperscope.cli.models", "tamperscope.cli.evaluation"]


def _register_command_modules() -> None:
    import importlib

    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(app)


_register_command_modules()


def main() -> None:
    """Entry point: run the app, mapping typed errors to exit codes in one place."""
    try:
        load_settings()  # before parsing, so even ``--help`` reports a bad TAMPERSCOPE_* variable as a usage error
        # without standalone mode, click returns the code of a raised Exit instead of exiting
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("aborted")
        sys.exit(1)
    except TamperscopeError as exc:
        err_console.print(f"[red]error[/red]: {escape(str(exc))}", soft_wrap=True)
        sys.exit(exit_code_for(exc))
    except Exception as exc:
        # typer vendors its own click: recognise its parse errors by their interface, not their class
        if callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()  # type: ignore[attr-defined]
            sys.exit(2 if exc.exit_code == 2 else 1)  # type: ignore[attr-defined]
        raise
