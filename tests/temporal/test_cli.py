from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tamperscope.cli.main import app
from tamperscope.media.audio import extract_audio


def test_talking_head_command_writes_a_clip_with_its_truth(tmp_path: Path) -> None:
    out = tmp_path / "head.mp4"
    result = CliRunner().invoke(app, ["talking-head", str(out), "--seconds", "2", "--offset-ms", "150",
                                      "--blinks", "500", "--width", "160", "--height", "120"])
    assert result.exit_code == 0, result.output
    truth = json.loads(result.output)
    assert truth["offset_ms"] == 150 and truth["blink_onsets_ms"] == [500.0]
    audio = extract_audio(out)
    assert audio is not None and abs(audio.duration_s - 2.0) < 0.1
    bad = CliRunner().invoke(app, ["talking-head", str(out), "--blinks", "soon"])
    assert bad.exit_code != 0
