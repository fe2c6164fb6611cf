"""The ``tamperscope`` command line: a thin layer that parses, calls the library, prints, and maps errors."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from tamperscope.cli.context import State, console, err_console, workspace
from tamperscope.cli.output import StageProgress
from tamperscope.errors import (
    InputRejectedError,
    TamperscopeError,
    UsageError,
    exit_code_for,
)
from tamperscope.nativelog import native_stderr_silenced
from tamperscope.redact import install_log_redaction, mask_secrets, mask_url
from tamperscope.settings import load_settings
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


@app.callback()
def _configure(
    ctx: typer.Context,
    home: Annotated[Path | None, typer.Option(help="data directory (TAMPERSCOPE_HOME)")] = None,
    db_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL (TAMPERSCOPE_DB_URL)")] = None,
    store_url: Annotated[str | None, typer.Option(help="fsspec URL of the store (TAMPERSCOPE_STORE_URL)")] = None,
    actor: Annotated[str | None, typer.Option(help="who acts, for the audit log (default: OS user)")] = None,
    workers: Annotated[int | None, typer.Option(help="parallel stage workers")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="show native libraries' log lines (MediaPipe, "
                                          "TFLite, absl), hidden by default")] = False,
) -> None:
    install_log_redaction()
    ctx.with_resource(native_stderr_silenced(not verbose))
    State.verbose = verbose
    overrides: dict[str, Any] = {k: v for k, v in {"home": home, "db_url": db_url, "store_url": store_url,
                                                   "actor": actor, "workers": workers}.items() if v is not None}
    State.settings = load_settings(**overrides)




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
    from tamperscope.services.batch import collect_files

    ws = workspace()
    rejected = 0
    files = collect_files(paths)
    with StageProgress(err_console) as progress:
        for done, path in enumerate(files):
            progress.update("ingest", done / max(len(files), 1), f"{done}/{len(files)} {path.name}")
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
            _emit(row, json_out)
        progress.update("ingest", 1.0, f"{len(files)}/{len(files)} files")
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


@app.command()
def analyze(
    targets: Annotated[list[str], typer.Argument(help="asset id / SHA-256 prefix, or files and folders to ingest "
                                                 "first (several, or a folder: a batch on Dask)")],
    stage: Annotated[list[str] | None, typer.Option("--stage", help="run only these stages")] = None,
    force: Annotated[bool, typer.Option(help="re-run stages even if their results are current")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="print the summary as JSON (a batch: one line a file)")]
    = False,
    case: Annotated[str | None, typer.Option("--case", help="case reference, recorded for the report")] = None,
    examiner: Annotated[str | None, typer.Option("--examiner", help="examiner's name, recorded for the report")]
    = None,
    scheduler: Annotated[str | None, typer.Option(help="batch: a running Dask scheduler, tcp://HOST:PORT "
                                                  "(TAMPERSCOPE_BATCH__SCHEDULER); default a local cluster")] = None,
    cluster_workers: Annotated[int | None, typer.Option(help="batch: local cluster worker processes "
                                                        "(TAMPERSCOPE_BATCH__WORKERS; default the CPU cores)")]
    = None,
) -> None:
    """Run every analysis stage that is not yet current; a killed run resumes where it stopped. Several files or a
    folder are analysed in parallel on Dask, each file a task graph of its stages; re-running the same command skips
    what is done."""
    from tamperscope.report.service import assign_case
    from tamperscope.services.analysis import as_target, format_verdict, run_analysis

    if len(targets) > 1 or Path(targets[0]).is_dir():
        from tamperscope.cli.batch import analyze_files
        from tamperscope.services.batch import collect_files

        updates: dict[str, Any] = {k: v for k, v in {"scheduler": scheduler, "workers": cluster_workers}.items()
                                   if v is not None}
        updates["quiet_native_logs"] = not State.verbose
        settings = State.settings.model_copy(update={"batch": State.settings.batch.model_copy(update=updates)})
        assign = (functools.partial(assign_case, workspace(), case=case, examiner=examiner)
                  if case is not None or examiner is not None else None)  # recorded per analysed asset
        code = analyze_files(settings, collect_files([Path(t) for t in targets]), only=stage or None, force=force,
                             json_out=json_out, console=console, err_console=err_console, on_asset=assign)
        if code:
            raise typer.Exit(code)
        return
    target = targets[0]
    ws = workspace()
    resolved = as_target(target)
    with StageProgress(err_console) as progress:
        outcome = run_analysis(ws, resolved, only=stage or None, force=force, progress=progress.update)
    if case is not None or examiner is not None:
        assign_case(ws, outcome.summary.asset_id, case=case, examiner=examiner)
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
    result = run_verify(workspace(), asset, parse_anchor(anchor.read_bytes()) if anchor else None)
    signed = "signed" if result.head_signed else "unsigned (no key: `tamperscope key create`)"
    anchored = f"; extends the anchor at event {result.anchored_at}" if result.anchored_at is not None else ""
    console.print(f"OK: {result.rows_checked} evidence rows, {result.objects_checked} objects and "
                  f"{result.events_checked} audit events verified; chain head {result.head_hash} {signed}{anchored}",
                  soft_wrap=True)  # one line, whatever the width: scripts read it


@key_app.command("create")
def key_create(force: Annotated[bool, typer.Option(help="replace an existing key")] = False) -> None:
    """Create the Ed25519 key that signs the audit chain head (kept in a file, outside the database)."""
    from tamperscope.custody.anchor import create_installation_key

    signer = create_installation_key(workspace(), overwrite=force)
    console.print(f"key written to {State.settings.resolved_key_path}\npublic key (Ed25519): {signer.public_key}")


@anchor_app.command("export")
def anchor_export(out: Annotated[Path, typer.Argument(help="anchor file to write (give it to a third party)")]
                  ) -> None:
    """Write the signed chain head: `verify --anchor FILE` later proves the database still extends it."""
    from tamperscope.custody.anchor import export_anchor
    from tamperscope.custody.audit import canonical_json

    document = export_anchor(workspace())
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
    result = purge_quarantine(workspace(), age, dry_run=dry_run)
    verb = "would purge" if dry_run else "purged"
    console.print(f"{verb} {len(result.purged)} quarantined bodies ({result.bytes_freed} bytes) uploaded before "
                  f"{result.cutoff.isoformat(timespec='seconds')}")
    for asset_id in result.purged:
        console.print(f"  asset {asset_id}")


@app.command()
def seal() -> None:
    """Seal all evidence as it is now (once, for data stored before seals existed); `verify` checks from here."""
    from tamperscope.custody.anchor import seal_baseline

    console.print(f"sealed the evidence of {seal_baseline(workspace())} assets")


@app.command()
def audit(
    asset: Annotated[str, typer.Argument(help="asset id or SHA-256 prefix")],
    json_out: Annotated[bool, typer.Option("--json", help="print events as JSON lines")] = False,
) -> None:
    """List an asset's audit events in order."""
    from tamperscope.store import queries

    ws = workspace()
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
    console.print(f"database at newest revision: {mask_url(State.settings.resolved_db_url)}")


# Each area adds its commands in its own module exposing ``register(app)``; one line here per module.
COMMAND_MODULES: list[str] = ["tamperscope.cli.assets", "tamperscope.cli.media", "tamperscope.cli.forensics",
                              "tamperscope.cli.temporal", "tamperscope.cli.report", "tamperscope.cli.models",
                              "tamperscope.cli.evaluation", "tamperscope.cli.jobs"]


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
        err_console.print(f"[red]error[/red]: {escape(mask_secrets(str(exc)))}", soft_wrap=True)
        sys.exit(exit_code_for(exc))
    except Exception as exc:
        # typer vendors its own click: recognise its parse errors by their interface, not their class
        if callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()  # type: ignore[attr-defined]
            sys.exit(2 if exc.exit_code == 2 else 1)  # type: ignore[attr-defined]
        raise
