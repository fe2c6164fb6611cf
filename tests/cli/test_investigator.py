"""The CLI as an investigator uses it: progress when piped, quiet native libraries, `list`, a verdict-first
`show`, one distinct error per mistake, and no secret in any message."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tamperscope.errors import AmbiguousPrefixError, PrefixTooShortError, UnknownAssetError, exit_code_for
from tamperscope.redact import install_log_redaction, mask_secrets
from tamperscope.store import queries
from tamperscope.store.models import Asset
from tamperscope.workspace import Workspace
from tests.cli.runner import invoke, run

PROGRESS = re.compile(r"^\[\s*(\d+\.\d)%\] (\w+)")
NATIVE = ("W0000", "absl::", "XNNPACK", "inference_feedback_manager")


@pytest.mark.slow
def test_piped_analyze_prints_progress_lines_without_native_noise_and_show_leads_with_the_verdict(
        tmp_path: Path, small_jpeg: Path) -> None:
    home = tmp_path / "home"
    quiet = run(home, "analyze", str(small_jpeg))
    assert quiet.returncode == 0, quiet.stderr
    lines = [PROGRESS.match(line) for line in quiet.stderr.splitlines()]
    assert all(lines), quiet.stderr  # every stderr line is a progress line: nothing else leaks
    phases = {m.group(2) for m in lines if m}
    assert {"ingest", "video", "forensics", "fusion"} <= phases
    assert any(m.group(1) == "100.0" and m.group(2) == "fusion" for m in lines if m)
    loud = run(home, "--verbose", "analyze", "--force", str(small_jpeg))
    assert loud.returncode == 0
    assert any(marker in loud.stderr for marker in NATIVE), loud.stderr  # the same run shows them when asked

    asset_id = json.loads(invoke(home, "list", "--json").stdout)["asset_id"]
    shown = invoke(home, "show", asset_id[:10])
    assert shown.returncode == 0, shown.stderr
    first = shown.stdout.splitlines()[0]
    data = json.loads(invoke(home, "show", "--json", asset_id).stdout)
    verdict = data["verdict"]
    assert first.startswith(verdict["band"].replace("_", " ")) and f"p = {verdict['probability']:.3f}" in first
    assert "per module" in shown.stdout and "every detection row" not in shown.stdout
    assert shown.stdout.count("\n") < len(data["detections"]) + 30
    everything = invoke(home, "show", "--all", asset_id)
    assert "every detection row" in everything.stdout


def test_native_stderr_is_silenced_at_the_descriptor_level() -> None:
    code = ("import os, sys\nfrom tamperscope.nativelog import native_stderr_silenced\n"
            "with native_stderr_silenced(sys.argv[1] == '1'):\n"
            "    os.write(2, b'native line\\n')\n    print('python line', file=sys.stderr)\n")
    for enabled, native_shown in (("1", False), ("0", True)):
        result = subprocess.run([sys.executable, "-c", code, enabled], capture_output=True, text=True, check=True,
                                env={**os.environ})
        assert "python line" in result.stderr
        assert ("native line" in result.stderr) is native_shown


def test_list_filters_by_name_hash_media_band_and_date(tmp_path: Path, small_jpeg: Path, small_video: Path) -> None:
    home = tmp_path / "home"
    rows = [json.loads(x) for x in invoke(home, "ingest", "--json", str(small_jpeg), str(small_video)
                                          ).stdout.split("\n") if x]
    photo = next(r for r in rows if r["path"].endswith(".jpg"))

    def listed(*args: str) -> list[dict[str, object]]:
        result = invoke(home, "list", "--json", *args)
        assert result.returncode == 0, result.stderr
        return [json.loads(line) for line in result.stdout.splitlines()]

    assert {r["asset_id"] for r in listed()} == {r["asset_id"] for r in rows}
    assert [r["asset_id"] for r in listed("--name", "SMALL.J")] == [photo["asset_id"]]
    assert [r["asset_id"] for r in listed("--hash", photo["sha256"][:6])] == [photo["asset_id"]]
    assert [r["media_type"] for r in listed("--media", "video")] == ["video"]
    assert len(listed("--band", "none")) == 2 and listed("--band", "unsure") == []
    today = datetime.now(UTC).date()
    assert len(listed("--since", today.isoformat())) == 2
    assert listed("--until", "2000-01-01") == [] and listed("--since", "2999-01-01") == []
    assert len(listed("--limit", "1")) == 1
    table = invoke(home, "list")
    assert photo["asset_id"] in table.stdout and "small.jpg" in table.stdout
    bad = invoke(home, "list", "--band", "maybe")
    assert bad.returncode == 2 and "unknown band" in bad.stderr
    assert invoke(home, "list", "--since", "yesterday").returncode == 2


@pytest.mark.parametrize(("args", "message"), [
    (["analyze", "missing.jpg"], "no such file: missing.jpg"),
    (["ingest", "missing.jpg"], "no such file: missing.jpg"),
    (["show", "deadbeefdeadbeef"], "no asset with id or SHA-256 prefix 'deadbeefdeadbeef'"),
    (["show", "abc"], "give at least 8 hex digits"),
])
def test_each_mistake_has_its_own_message_and_exit_2(tmp_path: Path, args: list[str], message: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """In process; tests/cli/test_cli.py::test_usage_errors_exit_2 checks exit 2 of the real process."""
    monkeypatch.chdir(tmp_path)
    result = invoke(tmp_path / "home", *args)
    assert result.returncode == 2
    assert message in " ".join(result.stderr.split()) and "Traceback" not in result.stderr


def _asset(sha256: str) -> Asset:
    return Asset(asset_id=sha256[:16], sha256=sha256, size_bytes=1, original_name="x", upload_time=datetime.now(UTC),
                 uploaded_by="t", storage_key=f"raw/{sha256}", status="accepted")


def test_an_ambiguous_prefix_names_the_digits_needed(ws: Workspace) -> None:
    first, second = "abcdef012345" + "0" * 52, "abcdef012399" + "1" * 52
    with ws.db.session() as session:
        session.add_all([_asset(first), _asset(second)])
    with ws.db.session() as session:
        with pytest.raises(AmbiguousPrefixError) as ambiguous:
            queries.find_asset(session, "abcdef01")
        assert ambiguous.value.needed == 11 and "at least 11 hex digits" in str(ambiguous.value)
        assert queries.find_asset(session, first[:11]).sha256 == first
        with pytest.raises(PrefixTooShortError):
            queries.find_asset(session, "abcd")
        with pytest.raises(UnknownAssetError):
            queries.find_asset(session, "ffffffffff")
    assert exit_code_for(ambiguous.value) == 2


def test_secrets_are_masked_in_urls_queries_tokens_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    text = ("postgresql+psycopg://ts:p%40ss-w0rd@db.example:5432/ts and s3://AKIA:SECRETKEY@bucket/x "
            "https://h/x?token=abc123&keep=1 token tsk_0123456789abcdef")
    masked = mask_secrets(text)
    for secret in ("p%40ss-w0rd", "SECRETKEY", "abc123", "tsk_0123456789abcdef"):
        assert secret not in masked
    assert "postgresql+psycopg://ts:***@db.example:5432/ts" in masked and "keep=1" in masked
    assert mask_secrets("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"
    install_log_redaction()
    with caplog.at_level(logging.INFO):
        logging.getLogger("tamperscope.test").info("connecting to %s", "postgresql://u:hunter2@h/db")
    assert "hunter2" not in caplog.text and "postgresql://u:***@h/db" in caplog.text


def test_db_upgrade_masks_the_password(tmp_path: Path, postgres_url: str) -> None:
    with_password = postgres_url.replace("postgres@", "postgres:s3cret-pw@")  # trust auth ignores it
    result = run(tmp_path, "--db-url", with_password, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert "s3cret-pw" not in result.stdout + result.stderr and "postgres:***@" in result.stdout
