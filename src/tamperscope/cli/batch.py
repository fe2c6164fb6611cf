"""``analyze`` over several files or folders: the progress display and final table of a Dask batch.

The batch itself is :func:`tamperscope.services.batch.run_batch`; this module only shows it: a Rich progress bar
(done / running / failed, ETA) on a terminal, one plain line per event otherwise, then a table of every file.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from tamperscope.services.analysis import format_verdict
from tamperscope.services.batch import BatchEvent, BatchResult, run_batch
from tamperscope.services.batch_tasks import FileResult
from tamperscope.settings import Settings


def outcome_text(result: FileResult) -> str:
    """The verdict of an analysed file, or the typed reason a file was rejected or failed."""
    if result.status in ("rejected", "failed"):
        return f"{result.error_type}: {result.reason}"
    if result.status == "current":
        return "already analysed: skipped"
    if result.verdict and result.verdict.get("band") is None:
        return f"no verdict ({result.verdict.get('status')})"
    return format_verdict(result.verdict) if result.verdict else "-"


class BatchDisplay:
    """Follows batch events (from two threads) and shows them: a live bar on a terminal, plain lines otherwise."""

    def __init__(self, total: int, console: Console) -> None:
        self.total = total
        self.console = console
        self.plain = not console.is_terminal
        self.running: set[str] = set()
        self.finished = {"done": 0, "failed": 0}
        self.lock = threading.Lock()
        self.progress = Progress(
            TextColumn("analyze"), BarColumn(), MofNCompleteColumn(),
            TextColumn("[green]{task.fields[done]} done[/] [cyan]{task.fields[running]} running[/] "
                       "[red]{task.fields[failed]} failed[/]"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console, disable=self.plain)
        self.task = self.progress.add_task("analyze", total=total, done=0, running=0, failed=0)

    def __enter__(self) -> BatchDisplay:
        self.progress.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.progress.stop()

    def __call__(self, event: BatchEvent) -> None:
        with self.lock:
            if event.kind == "cluster":
                note = f" ({event.note})" if event.note else ""
                self.console.print(f"Dask cluster: {event.worker}; dashboard {event.path}{note}", highlight=False)
            elif event.kind == "started":
                self.running.add(event.path)
                if self.plain:
                    self.console.print(f"started {event.path} on {event.worker}", highlight=False)
            elif event.kind == "finished" and event.result is not None:
                self.running.discard(event.path)
                failed = event.result.status in ("rejected", "failed")
                self.finished["failed" if failed else "done"] += 1
                if self.plain:
                    count = sum(self.finished.values())
                    self.console.print(f"[{count}/{self.total}] {event.result.status} {event.path}: "
                                       f"{outcome_text(event.result)} ({event.result.seconds:.1f} s)",
                                       highlight=False, markup=False)
                self.progress.advance(self.task)
            self.progress.update(self.task, running=len(self.running), done=self.finished["done"],
                                 failed=self.finished["failed"])


def result_table(batch: BatchResult) -> Table:
    """One row per file: its asset, what became of it and why, and its time."""
    minutes = batch.seconds / 60
    table = Table(title=f"{len(batch.results)} files on {batch.workers} workers in {batch.seconds:.1f} s "
                        f"({len(batch.results) / minutes if minutes else 0:.1f} files/min)")
    for column in ("file", "asset", "status", "verdict / reason", "s"):
        table.add_column(column, overflow="fold")
    styles = {"analyzed": "green", "current": "dim", "rejected": "yellow", "failed": "red"}
    for result in batch.results:
        table.add_row(escape(result.path), result.asset_id or "-",
                      f"[{styles[result.status]}]{result.status}[/]", escape(outcome_text(result)),
                      f"{result.seconds:.1f}")
    return table


def analyze_files(settings: Settings, files: list[Path], *, only: list[str] | None, force: bool,
                  json_out: bool, console: Console, err_console: Console,
                  on_asset: Callable[[str], object] | None = None) -> int:
    """Run the batch over ``files`` with the progress display on ``err_console``; call ``on_asset`` with each
    analysed (or already current) asset's id; print the table (or JSON lines) on ``console``; return the exit
    code."""
    with BatchDisplay(len(files), err_console) as display:
        batch = run_batch(settings, files, only=only, force=force, on_event=display)
    if on_asset is not None:
        for result in batch.results:
            if result.asset_id is not None and result.status in ("analyzed", "current"):
                on_asset(result.asset_id)
    if json_out:
        for result in batch.results:
            print(json.dumps(asdict(result), sort_keys=True, default=str))
    else:
        console.print(result_table(batch))
        counts = ", ".join(f"{batch.count(s)} {s}" for s in ("analyzed", "current", "rejected", "failed"))
        console.print(counts, highlight=False, markup=False)
    return batch.exit_code
