"""Runs the commands of docs/deploy.md, exactly as written, against local stand-ins.

The doc's shell blocks are parsed; every ``tamperscope``/``dask``/``curl`` line there must be one of the lines
these checks run (and the other way round), and every ``TAMPERSCOPE_*`` variable it exports must be a setting.
Stand-ins: the test PostgreSQL cluster, moto's S3 server and a Dask scheduler, all on 127.0.0.1; the ports
written in the doc are swapped for free ones. A check whose feature is not in this version (batch ``analyze``,
``tamperscope worker``) is skipped, naming what is missing, so a partial build never passes as complete.
Run alone with ``pytest tests/deploy -s``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tamperscope.settings import Settings
from tests.s3server import MotoServer, free_port

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "deploy.md"
RUNNABLE = ("tamperscope ", "dask ", "curl ")
CASE = "cases/2026-11-30/"

# the documented lines, in the order the checks below run them
KEY_CREATE = "tamperscope key create"
INGEST = f"tamperscope ingest {CASE}"
ANALYZE = f"tamperscope analyze {CASE}"
VERIFY = "tamperscope verify"
SERVE = "tamperscope serve --port 8000"
DB_UPGRADE = "tamperscope db upgrade"
TOKEN = "tamperscope token create alice"
REPLICA_A = "tamperscope serve --host 0.0.0.0 --port 8000"
REPLICA_B = "tamperscope serve --host 0.0.0.0 --port 8001"
WORKER = "tamperscope worker"
UPLOAD = 'curl -sf -H "Authorization: Bearer $TOKEN" --data-binary @clip.mp4 "$API/api/assets?name=clip.mp4"'
GET_ASSET = 'curl -sf -H "Authorization: Bearer $TOKEN" "$API/api/assets/$ASSET"'
SUBMIT = 'curl -sf -X POST -H "Authorization: Bearer $TOKEN" "$API/api/assets/$ASSET/analyze"'
GET_JOB = 'curl -sf -H "Authorization: Bearer $TOKEN" "$API/api/jobs/$JOB"'
SCHEDULER = "dask scheduler --host 0.0.0.0 --port 8786 --dashboard-address :8787"
DASK_WORKER = "dask worker $DASK_SCHEDULER --nworkers 2 --nthreads 1 --memory-limit 4GiB"
CLUSTER_ANALYZE = f"tamperscope analyze {CASE} --scheduler $DASK_SCHEDULER"
CHECKED = {KEY_CREATE, INGEST, ANALYZE, VERIFY, SERVE, DB_UPGRADE, TOKEN, REPLICA_A, REPLICA_B, WORKER, UPLOAD,
           GET_ASSET, SUBMIT, GET_JOB, SCHEDULER, DASK_WORKER, CLUSTER_ANALYZE}


def _shell_lines() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", DOC.read_text(), flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def documented_commands() -> list[str]:
    return [line for line in _shell_lines() if line.startswith(RUNNABLE)]


def test_every_documented_command_is_checked() -> None:
    documented = documented_commands()
    assert set(documented) == CHECKED, {"not checked": set(documented) - CHECKED,
                                        "checked but not documented": CHECKED - set(documented)}


def test_documented_variables_are_settings() -> None:
    names = {m for line in _shell_lines() if line.startswith("export ")
             for m in re.findall(r"\bTAMPERSCOPE_[A-Z0-9_]+", line)}
    assert names, "the doc exports no TAMPERSCOPE_* variable"
    for name in sorted(names):
        model: Any = Settings
        for part in name.removeprefix("TAMPERSCOPE_").lower().split("__"):
            assert part in model.model_fields, f"{name} is not a setting"
            model = model.model_fields[part].annotation


@dataclass
class Shell:
    """Runs documented lines with bash in ``cwd``; ``ports`` maps each port written in the doc to a free one."""

    cwd: Path
    env: dict[str, str]
    ports: dict[str, int] = field(default_factory=dict)
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def _line(self, line: str) -> str:
        assert line in documented_commands(), f"not in docs/deploy.md: {line}"
        for written, port in self.ports.items():
            line = re.sub(rf"(?<=[ :]){written}\b", str(port), line)
        return line

    def run(self, line: str, timeout: float = 600) -> str:
        start = time.monotonic()
        done = subprocess.run(["bash", "-c", self._line(line)], cwd=self.cwd, env=self.env, capture_output=True,
                              text=True, timeout=timeout)
        print(f"[{time.monotonic() - start:6.1f} s] exit {done.returncode}: {line}")
        assert done.returncode == 0, f"{line}\nexit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
        return done.stdout

    def start(self, line: str) -> subprocess.Popen[bytes]:
        """A long-running command (server, worker) in its own process group, stopped by :meth:`close`."""
        process = subprocess.Popen(["bash", "-c", f"exec {self._line(line)}"], cwd=self.cwd, env=self.env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.started.append(process)
        print(f"[started pid {process.pid}] {line}")
        return process

    def close(self) -> None:
        for process in reversed(self.started):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=10)

    def has(self, *command: str, mentioning: str | None = None) -> bool:
        """Whether ``tamperscope COMMAND --help`` works (and mentions ``mentioning``) in this version."""
        done = subprocess.run(["tamperscope", *command, "--help"], cwd=self.cwd, env=self.env, capture_output=True,
                              text=True, timeout=120)
        return done.returncode == 0 and (mentioning is None or mentioning in done.stdout)


def _wait_http(url: str, process: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, f"the server for {url} exited with {process.returncode}"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"{url} did not answer within {timeout} s"
        time.sleep(0.5)


def _base_env(home: Path) -> dict[str, str]:
    """This checkout's code and commands, a fresh home, and nothing inherited that would point elsewhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAMPERSCOPE_", "AWS_", "DASK_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(REPO / "src")
    env["TAMPERSCOPE_HOME"] = str(home)
    return env


@pytest.fixture
def case_dir(tmp_path: Path, small_video: Path, small_jpeg: Path) -> Path:
    """A working directory with the case folder of the doc (a video and a photo) and ``clip.mp4``."""
    case = tmp_path / "work" / CASE
    case.mkdir(parents=True)
    shutil.copy(small_video, case / "interview.mp4")
    shutil.copy(small_jpeg, case / "scene.jpg")
    shutil.copy(small_video, tmp_path / "work" / "clip.mp4")
    return tmp_path / "work"


@pytest.fixture
def one_machine(tmp_path: Path, case_dir: Path) -> Iterator[Shell]:
    shell = Shell(case_dir, _base_env(tmp_path / "home"), {"8000": free_port()})
    yield shell
    shell.close()


@pytest.fixture
def team(tmp_path: Path, case_dir: Path, postgres_url: str, moto: MotoServer) -> Iterator[Shell]:
    """Section 2's settings: PostgreSQL, the bucket ``evidence`` on moto, a key file outside home."""
    env = _base_env(tmp_path / "home") | moto.env | {
        "TAMPERSCOPE_DB_URL": postgres_url, "TAMPERSCOPE_STORE_URL": "s3://evidence/newsroom",
        "AWS_REGION": "us-east-1", "TAMPERSCOPE_CUSTODY__KEY_PATH": str(tmp_path / "etc" / "custody-ed25519.pem")}
    shell = Shell(case_dir, env, {"8000": free_port(), "8001": free_port(), "8786": free_port(),
                                  "8787": free_port()})
    yield shell
    shell.close()


def _replicas(shell: Shell) -> tuple[str, str, str]:
    """Section 2's one-time set-up and both API replicas; returns (token, replica A URL, replica B URL)."""
    shell.run(DB_UPGRADE)
    shell.run(KEY_CREATE)
    token = shell.run(TOKEN).strip().splitlines()[-1]
    urls = []
    for line, written in ((REPLICA_A, "8000"), (REPLICA_B, "8001")):
        url = f"http://127.0.0.1:{shell.ports[written]}"
        _wait_http(url + "/", shell.start(line))
        urls.append(url)
    return token, urls[0], urls[1]


@pytest.mark.slow
def test_one_machine(one_machine: Shell) -> None:
    one_machine.run(KEY_CREATE)
    out = one_machine.run(INGEST)
    assert out.count("accepted") == 2, out
    one_machine.run(VERIFY)
    _wait_http(f"http://127.0.0.1:{one_machine.ports['8000']}/", one_machine.start(SERVE))


@pytest.mark.slow
def test_one_machine_batch_analysis(one_machine: Shell) -> None:
    if not one_machine.has("analyze", mentioning="--scheduler"):
        pytest.skip("`tamperscope analyze PATH...` (batch on Dask, issue 16 part 1) is not in this version")
    one_machine.run(KEY_CREATE)
    one_machine.run(ANALYZE, timeout=1800)
    one_machine.run(ANALYZE, timeout=600)  # re-running resumes: everything is done already
    one_machine.run(VERIFY)


@pytest.mark.slow
@pytest.mark.postgres
def test_team_api_replicas_share_postgres_and_s3(team: Shell, moto: MotoServer) -> None:
    token, replica_a, replica_b = _replicas(team)
    team.env |= {"TOKEN": token, "API": replica_a}
    uploaded = json.loads(team.run(UPLOAD))
    assert uploaded["status"] == "accepted"
    team.env |= {"API": replica_b, "ASSET": uploaded["asset_id"]}
    assert json.loads(team.run(GET_ASSET))["asset_id"] == uploaded["asset_id"]
    keys = [o["Key"] for o in moto.client().list_objects_v2(Bucket="evidence").get("Contents", [])]
    assert any(k.startswith("newsroom/raw/sha256/") and k.endswith(uploaded["sha256"]) for k in keys), keys
    team.run(VERIFY)


@pytest.mark.slow
@pytest.mark.postgres
def test_team_jobs_run_on_workers(team: Shell) -> None:
    if not team.has("worker"):
        pytest.skip("`tamperscope worker` (the durable job queue, issue 16 part 2) is not in this version")
    token, replica_a, replica_b = _replicas(team)
    team.start(WORKER)
    team.env |= {"TOKEN": token, "API": replica_a}
    asset = json.loads(team.run(UPLOAD))["asset_id"]
    team.env |= {"ASSET": asset}
    job = json.loads(team.run(SUBMIT))["job_id"]
    team.env |= {"API": replica_b, "JOB": job}  # another replica knows the job: the queue is in the database
    deadline = time.monotonic() + 1800
    while (state := json.loads(team.run(GET_JOB)))["status"] not in ("done", "failed"):
        assert time.monotonic() < deadline, state
        time.sleep(5)
    assert state["status"] == "done", state
    team.run(VERIFY)


@pytest.mark.slow
@pytest.mark.postgres
def test_cluster(team: Shell) -> None:
    """Section 3 with section 2's settings: the scheduler, two worker processes, then a batch through them."""
    from distributed import Client

    team.run(DB_UPGRADE)
    team.run(KEY_CREATE)
    address = f"tcp://127.0.0.1:{team.ports['8786']}"
    team.env["DASK_SCHEDULER"] = address
    team.start(SCHEDULER)
    team.start(DASK_WORKER)
    with Client(address, timeout=60) as client:
        client.wait_for_workers(2, timeout=180)
        workers = client.scheduler_info()["workers"].values()
        assert [w["nthreads"] for w in workers] == [1, 1]
        assert all(w["memory_limit"] == 4 * 1024**3 for w in workers)
    if not team.has("analyze", mentioning="--scheduler"):
        pytest.skip("scheduler and workers run; `tamperscope analyze PATH... --scheduler` (issue 16 part 1) is not "
                    "in this version")
    team.run(CLUSTER_ANALYZE, timeout=1800)
    team.run(VERIFY)
