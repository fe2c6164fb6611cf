"""What the CLI writes besides results: stage progress (a live bar on a terminal, plain lines when piped)."""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn


def plain_line(phase: str, fraction: float, message: str, elapsed_s: float) -> str:
    """One progress line for logs and pipes: percentage, phase (stage) name, message, elapsed seconds."""
    text = f"[{fraction * 100:5.1f}%] {phase}"
    if message:
        text += f": {message}"
    return f"{text} ({elapsed_s:.1f} s)"


class StageProgress:
    """Per-phase progress: a live Rich bar per phase on a terminal, else one plain line per step on stderr.

    Plain lines are written when a phase starts or finishes, when its message changes, or when it advances by
    ``step`` since its last line, so a piped or logged run shows where it is without flooding the log.
    """

    def __init__(self, console: Console, *, live: bool | None = None, step: float = 0.1) -> None:
        self.console = console
        self.live = console.is_terminal if live is None else live
        self.step = step
        self._bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                             TimeElapsedColumn(), console=console, transient=True) if self.live else None
        self._tasks: dict[str, TaskID] = {}
        self._last: dict[str, tuple[float, str]] = {}
        self._start = time.monotonic()

    def __enter__(self) -> StageProgress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.stop()

    def update(self, phase: str, fraction: float, message: str = "") -> None:
        """Report ``phase`` at ``fraction`` (0-1) with a short message; the signature of a progress callback."""
        fraction = min(max(float(fraction), 0.0), 1.0)
        if self._bar is not None:
            if phase not in self._tasks:
                self._tasks[phase] = self._bar.add_task(phase, total=1.0)
            self._bar.update(self._tasks[phase], completed=fraction, description=f"{phase} {message}".strip())
            return
        last = self._last.get(phase)
        if last is not None and last[1] == message and fraction - last[0] < self.step and fraction < 1.0:
            return
        if last is not None and last == (fraction, message):
            return
        self._last[phase] = (fraction, message)
        self.console.print(plain_line(phase, fraction, message, time.monotonic() - self._start),
                           markup=False, highlight=False, soft_wrap=True)
