"""The README's exit-code promise at the edges: tiny camera images analyse (exit 0, a real process), a typed
rejection raised inside ``analyze`` (here a budget the decoded image exceeds) exits 3, not 1 (through the same
``main()`` in process; tests/cli/test_cli.py checks exit 3 of a real process)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from PIL import Image

from tests.cli.runner import invoke

EXE = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "tamperscope")


def _run(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "TAMPERSCOPE_HOME": str(home), "TAMPERSCOPE_ACTOR": "cli-tester", **env}
    return subprocess.run([EXE, *args], capture_output=True, text=True, env=full, timeout=600, check=False)


def test_8x8_camera_image_exits_0_and_a_budget_inside_analyze_exits_3(tmp_path: Path) -> None:
    tiny = tmp_path / "tiny.jpg"
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Canon", "Canon EOS 5D"  # Make, Model: a camera sample
    Image.new("RGB", (8, 8), (120, 80, 40)).save(tiny, exif=exif, quality=90)
    home = tmp_path / "home"
    first = _run(home, "analyze", "--json", str(tiny))
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert summary["status"] == "analyzed" and not summary["failed"]

    again = invoke(home, "analyze", "--force", "--json", summary["asset_id"], TAMPERSCOPE_LIMITS__MAX_PIXELS="10")
    assert again.returncode == 3, again.stderr
    limited = json.loads(again.stdout)
    assert limited["status"] == "limit_exceeded" and "pixels budget" in limited["failed"]["video"]
    assert "8x8" in limited["failed"]["video"] and str(home) not in again.stdout  # no store path in messages
