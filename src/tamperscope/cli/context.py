"""What every command of this invocation shares: its settings, the consoles, and the workspace they open."""

from __future__ import annotations

import sys

from rich.console import Console

from tamperscope.settings import Settings
from tamperscope.workspace import Workspace

console = Console(width=None if sys.stdout.isatty() else 160)  # a pipe has no width: do not squeeze tables to 80
err_console = Console(stderr=True)


class State:
    """The settings of this invocation, built by the app callback (never at import)."""

    settings: Settings
    verbose: bool = False


def workspace() -> Workspace:
    """The workspace the invocation's settings name."""
    return Workspace.open(State.settings)
