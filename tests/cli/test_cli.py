"""The command line as a user runs it: exit codes 0/2/3/4 and JSON output. Each exit code is checked on a real
subprocess; the set-up and follow-up commands around it run through the same ``main()`` in process (``invoke``)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.cli.runner import EXE, invoke, run


@pytest.fixture
def inbox(tmp_path: Path, small_jpeg: Path, small_video: Path) -> Path:
    folder = tmp_path / "inbox" / "nested"
    folder.mkdir(parents=True)
    (folder / "photo.jpg").write_bytes(small_jpeg.read_bytes())
    (tmp_path / "inbox" / "clip.mp4").write_bytes(small_video.read_bytes())
    return tmp_path / "inbox"


def test_ingest_recurses_show_and_audit(tmp_path: Path, inbox: Path) -> None:
    home = tmp_path / "home"
    ingested = run(home, "ingest", "--json", "--label", "real", str(inbox))
    assert ingested.returncode == 0, ingested.stderr
    rows = [json.loads(line) for line in ingested.stdout.splitlines()]
    assert sorted(Path(r["path"]).name for r in rows) == ["clip.mp4", "photo.jpg"]
    photo = next(r for r in rows if r["path"].endswith("photo.jpg"))
    shown = invoke(home, "show", "--json", photo["sha256"][:12])
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert (data["asset_id"], data["media_type"], data["status"]) == (photo["asset_id"], "image", "accepted")
    assert (data["structure"]["width"], data["structure"]["trailing_bytes"]) == (640, 0)  # intake's container walk
    audit = invoke(home, "audit", "--json", photo["asset_id"])
    events = [json.loads(line) for line in audit.stdout.splitlines()]
    assert [e["action"] for e in events] == ["intake.accepted", "evidence.sealed"]
    assert events[0]["who"] == "cli-tester"


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert run(tmp_path, "show", "deadbeefdeadbeef").returncode == 2
    assert run(tmp_path, "ingest", str(tmp_path / "missing.jpg")).returncode == 2
    assert run(tmp_path, "no-such-command").returncode == 2


def test_rejected_input_exits_3_and_is_kept(tmp_path: Path) -> None:
    bogus = tmp_path / "fake.jpg"
    bogus.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 40)
    result = run(tmp_path / "home", "ingest", str(bogus))
    assert result.returncode == 3
    assert "rejected" in result.stderr
    assert list((tmp_path / "home" / "store" / "quarantine").rglob("*"))
    again = invoke(tmp_path / "home", "ingest", "--json", str(bogus))  # the same bytes again: rejected again
    assert again.returncode == 3
    shown = invoke(tmp_path / "home", "show", "--json", json.loads(again.stdout)["asset_id"])
    assert json.loads(again.stdout)["reason"] == json.loads(shown.stdout)["reject_reason"]


def test_verify_exits_4_naming_the_changed_object(tmp_path: Path, small_jpeg: Path) -> None:
    home = tmp_path / "home"
    assert invoke(home, "ingest", str(small_jpeg)).returncode == 0
    assert invoke(home, "verify").returncode == 0
    stored = next(p for p in (home / "store" / "raw").rglob("*") if p.is_file())
    os.chmod(stored, 0o644)
    stored.write_bytes(stored.read_bytes()[:-1] + b"\x00")
    result = run(home, "verify")
    assert result.returncode == 4
    assert stored.name in result.stderr.replace("\n", "")


def test_db_upgrade_is_idempotent(tmp_path: Path) -> None:
    assert run(tmp_path, "db", "upgrade").returncode == 0
    assert invoke(tmp_path, "db", "upgrade").returncode == 0


@pytest.mark.parametrize("args", [["--help"], ["show", "deadbeefdeadbeef"]])
def test_bad_setting_in_the_environment_is_a_one_line_usage_error(tmp_path: Path, args: list[str]) -> None:
    env = {**os.environ, "TAMPERSCOPE_HOME": str(tmp_path), "TAMPERSCOPE_VIDEO__SAMPLE_FPS": "abc"}
    result = subprocess.run([EXE, *args], capture_output=True, text=True, env=env, timeout=120, check=False)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "TAMPERSCOPE_VIDEO__SAMPLE_FPS" in lines[0] and "'abc'" in lines[0], result.stderr


def test_bad_setting_flag_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    result = run(tmp_path, "--workers", "0", "show", "deadbeefdeadbeef")
    assert result.returncode == 2 and "workers=0" in result.stderr and "Traceback" not in result.stderr
