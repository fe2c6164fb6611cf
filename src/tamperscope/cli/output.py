"""What the CLI writes besides results: stage progress (a live bar on a terminal, plain lines when piped) and
the silencing of native libraries' log lines (MediaPipe, TFLite, absl, glog write to file descriptor 2 from C++).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn


@contextmanager
def native_stderr_silenced(enabled: bool = True) -> Iterator[None]:
    """Point file descriptor 2 at /dev/null while Python's ``sys.stderr`` keeps writing to the real stderr.

    C++ libraries log straight to fd 2, below Python, so only a descriptor-level redirect quiets them; Python
    messages (errors, progress, warnings) go through ``sys.stderr``, which is re-opened on a duplicate of the
    original descriptor. Under a test runner whose ``sys.stderr`` is not fd 2, only fd 2 is redirected.
    """
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    previous: TextIO = sys.stderr
    replaced = _is_fd(previous, 2)
    if replaced:
        sys.stderr = os.fdopen(saved, "w", buffering=1, encoding=previous.encoding or "utf-8",
                               errors="backslashreplace", closefd=False)
    try:
        yield
    finally:
        sys.stderr.flush()
        if replaced:
            sys.stderr = previous
        os.dup2(saved, 2)
        os.close(saved)


def _is_fd(stream: Any, fd: int) -> bool:
    try:
        return bool(stream.fileno() == fd)
    except (AttributeError, OSError, ValueError):
        return False


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
