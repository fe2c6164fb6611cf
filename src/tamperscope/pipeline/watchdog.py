"""The hard bound on a stage run: a watchdog that ends the process when a stage outlives its budget plus a grace.

Budgets are checked cooperatively (:class:`~tamperscope.stages.base.StageBudget`), so a stage stuck inside one
native call (a decoder, ONNX Runtime, MediaPipe) that never returns is never stopped by them. A Python thread
cannot interrupt native code, and neither can an exception or a signal handler (both run only between bytecodes
of the main thread), so leaving the process is the only hard bound: when a guarded stage has not returned
``stage_timeout_s + stage_grace_s`` after it started, the watchdog, from its own timer thread and its own
database transactions, records the stage ``limit_exceeded`` (the rows and audit event of a cooperative time
limit), runs the hooks registered with :func:`before_exit` (a job worker fails its job there), releases the
analysis lease, flushes the logs and calls :func:`os._exit` with the exit code of :class:`LimitExceededError`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from tamperscope.errors import LimitExceededError, exit_code_for

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Overrun:
    """A stage that outlived its wall-clock budget and the grace after it."""

    stage: str
    asset_id: str
    timeout_s: float
    grace_s: float
    elapsed_s: float

    def error(self) -> LimitExceededError:
        """The typed result: a ``time`` limit naming the stage and its budget."""
        return LimitExceededError("time", f"stage {self.stage} did not return within its {self.timeout_s:g} s "
                                          f"budget plus {self.grace_s:g} s grace ({self.elapsed_s:.1f} s): stuck "
                                          "where the budget cannot be checked (a native call); the process was ended")


Recorder = Callable[[Overrun], None]
ExitHook = Callable[[Overrun], None]

# Taken by the first watchdog that fires and never released: the process ends with it held, so a second overrun,
# a stage that returns late (see Watchdog.guard) and hook changes all wait for the end instead of racing it.
_ending = threading.Lock()
_hooks: list[ExitHook] = []
_hooks_lock = threading.Lock()


@contextlib.contextmanager
def before_exit(hook: ExitHook) -> Iterator[None]:
    """Run ``hook`` (from the watchdog's thread) if a watchdog ends this process while the block runs."""
    with _hooks_lock:
        _hooks.append(hook)
    try:
        yield
    finally:
        with _hooks_lock:
            _hooks.remove(hook)


class Watchdog:
    """Guards the stage runs of one analysis (of ``asset_id``): ``record`` writes an overrun's outcome (rows, audit
    events, the asset's status, the lease) before the process ends; a stage may run ``timeout_s + grace_s``."""

    def __init__(self, record: Recorder, asset_id: str, timeout_s: float, grace_s: float) -> None:
        self.record = record
        self.asset_id, self.timeout_s, self.grace_s = asset_id, timeout_s, grace_s
        self._armed: set[object] = set()

    @contextlib.contextmanager
    def guard(self, stage: str) -> Iterator[None]:
        """Arm the watchdog for the block (one stage run); a block that returns in time disarms it. A stage that
        returns after the watchdog fired blocks here until the process ends, so its output is never committed."""
        token = object()
        started = time.monotonic()
        timer = threading.Timer(self.timeout_s + self.grace_s, self._fire, args=(token, stage, started))
        timer.name, timer.daemon = f"watchdog-{stage}", True
        self._armed.add(token)
        timer.start()
        try:
            yield
        finally:
            with _ending:
                self._armed.discard(token)
                timer.cancel()

    def _fire(self, token: object, stage: str, started: float) -> None:
        _ending.acquire()  # never released: the process ends below
        if token not in self._armed:  # the stage returned while the timer was waking up
            _ending.release()
            return
        overrun = Overrun(stage=stage, asset_id=self.asset_id, timeout_s=self.timeout_s, grace_s=self.grace_s,
                          elapsed_s=time.monotonic() - started)
        error = overrun.error()
        with contextlib.suppress(Exception):
            sys.stderr.write(f"\nerror: {error}\n")
            sys.stderr.flush()
        if logging.getLogger().hasHandlers():  # a worker's log, beside the line on stderr
            log.critical("watchdog: %s", error)
        try:
            self.record(overrun)
        except Exception:  # the next run recovers the asset from the lease of this dead process
            log.exception("watchdog: recording the overrun of stage %s failed", stage)
        with _hooks_lock:
            hooks = list(_hooks)
        for hook in hooks:
            try:
                hook(overrun)
            except Exception:
                log.exception("watchdog: exit hook %r failed", hook)
        end_process(exit_code_for(error))


def end_process(code: int) -> None:
    """Flush the logs and the standard streams and leave at once: the stuck thread would hold up a normal exit."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


__all__ = ["Overrun", "Watchdog", "before_exit", "end_process"]
