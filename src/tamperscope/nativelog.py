"""Native libraries' log lines (MediaPipe, TFLite, absl, glog write to file descriptor 2 from C++): silenced
below Python, for the CLI (for one invocation) and for batch worker processes (for their lifetime)."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

_silencing = threading.Lock()
_silenced_pid: int | None = None  # the process whose fd 2 is silenced for good (a forked child is not)


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
    previous: TextIO = sys.stderr
    saved, replaced = _silence_fd2()
    try:
        yield
    finally:
        sys.stderr.flush()
        if replaced:
            sys.stderr = previous
        os.dup2(saved, 2)
        os.close(saved)


def _silence_fd2() -> tuple[int, bool]:
    """Redirect fd 2 to /dev/null; return a duplicate of the old fd 2 and whether ``sys.stderr`` moved onto it."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    replaced = _is_fd(sys.stderr, 2)
    if replaced:
        sys.stderr = os.fdopen(saved, "w", buffering=1, encoding=sys.stderr.encoding or "utf-8",
                               errors="backslashreplace", closefd=False)
    return saved, replaced


def _is_fd(stream: Any, fd: int) -> bool:
    try:
        return bool(stream.fileno() == fd)
    except (AttributeError, OSError, ValueError):
        return False


def silence_native_stderr_for_process() -> None:
    """Point fd 2 at /dev/null for the rest of this process (once), keeping Python's ``sys.stderr`` on the real
    stream: a batch worker process runs analyses for its whole life, so there is no end to restore it at."""
    global _silenced_pid
    with _silencing:  # a worker's task threads may all arrive at once
        if _silenced_pid == os.getpid():
            return
        _silenced_pid = os.getpid()
        _silence_fd2()  # never restored: the worker's fd 2 stays silenced
