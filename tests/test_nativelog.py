"""A batch worker process silences native log lines on file descriptor 2 for its lifetime, not Python's."""

from __future__ import annotations

import subprocess
import sys

CODE = """
import os, sys
from tamperscope.nativelog import silence_native_stderr_for_process
silence_native_stderr_for_process()
silence_native_stderr_for_process()  # a second task in the same worker: no second redirect
os.write(2, b"native log line\\n")
print("python message", file=sys.stderr)
"""


def test_a_worker_process_keeps_python_stderr_and_drops_native_lines() -> None:
    result = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=60, check=True)
    assert "python message" in result.stderr
    assert "native log line" not in result.stderr
