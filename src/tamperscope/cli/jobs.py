"""CLI command of the job queue: ``worker`` runs queued API jobs until stopped."""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Annotated, Any

import typer


def register(app: typer.Typer) -> None:
    """Add the ``worker`` command to ``app``."""
    from tamperscope.cli.context import State, err_console, workspace

    @app.command()
    def worker(
        poll_interval: Annotated[float | None, typer.Option(help="seconds between looks at an empty queue "
                                                                 "(TAMPERSCOPE_JOBS__POLL_INTERVAL_S)")] = None,
        drain: Annotated[bool, typer.Option(help="exit once the queue is empty instead of waiting for jobs")]
        = False,
    ) -> None:
        """Claim and run queued analysis jobs from the shared database, one at a time, until SIGTERM or Ctrl-C.

        On the first signal the running job gets `jobs.stop_grace_s` to finish, then it goes back to the queue
        (a second signal hands it back at once); the next worker resumes it from its last committed stage.
        """
        from tamperscope.redact import mask_url
        from tamperscope.services.jobs import Worker

        if poll_interval is not None:
            jobs = State.settings.jobs.model_copy(update={"poll_interval_s": poll_interval})
            State.settings = State.settings.model_copy(update={"jobs": jobs})
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
        ws = workspace()
        runner = Worker(ws)
        stop, hurry = threading.Event(), threading.Event()

        def on_signal(signum: int, _frame: Any) -> None:
            (hurry if stop.is_set() else stop).set()
            err_console.print(f"{signal.Signals(signum).name}: stopping worker {runner.worker_id}")

        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, on_signal)
        err_console.print(f"worker {runner.worker_id} on {mask_url(State.settings.resolved_db_url)}")
        try:
            handed_back = runner.run(stop, hurry, until_empty=drain)
        finally:
            ws.close()
        if handed_back:  # end now: the abandoned run's stage threads would otherwise hold up the exit
            os._exit(0)
