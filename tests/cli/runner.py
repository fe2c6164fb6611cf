"""Two ways to run the command line in tests. ``run`` starts the installed ``tamperscope`` script in a subprocess:
the entry point, exit status and file descriptors exactly as a user gets them. ``invoke`` calls the same ``main()``
in this process (argument parsing, settings from the environment, output, exit-code mapping) without the second
of CPU each interpreter start and import costs; tests that check what only a real process shows keep ``run``."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from unittest import mock

from tamperscope.workspace import Workspace

EXE = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "tamperscope")


def _env(home: Path) -> dict[str, str]:
    return {"TAMPERSCOPE_HOME": str(home), "TAMPERSCOPE_ACTOR": "cli-tester"}


def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``tamperscope ARGS`` in a subprocess on the workspace at ``home``."""
    return subprocess.run([EXE, *args], capture_output=True, text=True, env={**os.environ, **_env(home)},
                          timeout=300, check=False)


def invoke(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``tamperscope ARGS`` through ``main()`` in this process (``env``: extra variables for it), with its stdout,
    stderr and exit status captured; every workspace the command opens is closed afterwards, as a process exit would."""
    from tamperscope.cli.main import main

    opened: list[Workspace] = []
    real_open = Workspace.open

    def tracked_open(*a: Any, **kw: Any) -> Workspace:
        workspace = real_open(*a, **kw)
        opened.append(workspace)
        return workspace

    out, err = io.StringIO(), io.StringIO()
    code: object = 0
    with (mock.patch.dict(os.environ, {**_env(home), **env}), mock.patch.object(sys, "argv", ["tamperscope", *args]),
          mock.patch.object(Workspace, "open", tracked_open), contextlib.redirect_stdout(out),
          contextlib.redirect_stderr(err)):
        try:
            main()
        except SystemExit as exc:
            code = exc.code
        finally:
            for workspace in opened:
                workspace.close()
    returncode = code if isinstance(code, int) else (0 if code is None else 1)
    return subprocess.CompletedProcess(["tamperscope", *args], returncode, out.getvalue(), err.getvalue())
