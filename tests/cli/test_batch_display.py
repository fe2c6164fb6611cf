"""The batch display: live counts of done / running / failed files, plain lines when not on a terminal, a table."""

from __future__ import annotations

import io

from rich.console import Console

from tamperscope.cli.batch import BatchDisplay, outcome_text, result_table
from tamperscope.services.batch import BatchEvent, BatchResult
from tamperscope.services.batch_tasks import FileResult

VERDICT = {"probability": 0.91, "band": "likely_manipulated", "status": "scored", "policy": "video-v3/p90"}
RESULTS = [FileResult(path="a.mp4", status="analyzed", asset_id="aaaa", verdict=VERDICT, seconds=12.0),
           FileResult(path="b.mp4", status="rejected", asset_id="bbbb", error_type="InputRejectedError",
                      reason="truncated", exit_code=3, seconds=0.1),
           FileResult(path="c.jpg", status="current", asset_id="cccc")]


def _feed(display: BatchDisplay) -> list[dict[str, int]]:
    seen = []
    with display:
        display(BatchEvent(kind="cluster", path="http://127.0.0.1:8787/status", worker="2 workers"))
        for result in RESULTS:
            display(BatchEvent(kind="started", path=result.path, worker="1@host"))
        seen.append(dict(display.progress.tasks[0].fields))
        for result in RESULTS:
            display(BatchEvent(kind="finished", path=result.path, result=result))
            seen.append(dict(display.progress.tasks[0].fields))
    return seen


def test_terminal_display_counts_running_done_and_failed_files() -> None:
    out = io.StringIO()
    display = BatchDisplay(3, Console(file=out, force_terminal=True, width=120))
    seen = _feed(display)
    assert seen == [{"done": 0, "running": 3, "failed": 0}, {"done": 1, "running": 2, "failed": 0},
                    {"done": 1, "running": 1, "failed": 1}, {"done": 2, "running": 0, "failed": 1}]
    assert display.progress.tasks[0].completed == 3
    assert "dashboard http://127.0.0.1:8787/status" in out.getvalue()
    assert "[3/3]" not in out.getvalue()  # no plain lines on a terminal


def test_plain_lines_when_not_a_terminal_and_a_final_table() -> None:
    out = io.StringIO()
    _feed(BatchDisplay(3, Console(file=out, force_terminal=False, width=200)))
    lines = out.getvalue().splitlines()
    assert "started a.mp4 on 1@host" in lines
    assert "[2/3] rejected b.mp4: InputRejectedError: truncated (0.1 s)" in lines
    assert "[3/3] current c.jpg: already analysed: skipped (0.0 s)" in lines

    table = io.StringIO()
    Console(file=table, width=200).print(result_table(BatchResult(RESULTS, 60.0, 2)))
    text = table.getvalue()
    assert "3 files on 2 workers in 60.0 s (3.0 files/min)" in text
    assert outcome_text(RESULTS[0]) in text and "InputRejectedError: truncated" in text
