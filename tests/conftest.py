"""Shared fixtures: isolated workspaces on SQLite and on a PostgreSQL cluster the tests start themselves,
generated media (ffmpeg lavfi), and the path to the third-party corpus (skipped cleanly when absent)."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tamperscope.settings import Settings
from tamperscope.workspace import Workspace
from tests.s3server import MotoServer, start_moto

os.environ.setdefault("HF_HUB_OFFLINE", "1")
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "testdata"
PG_CLUSTER = "tamperscope_test"
PG_PORT = 54329


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The third-party test corpus beside the checkout; tests that need it skip when it is absent."""
    if not (SHARED / "MANIFEST.tsv").is_file():
        pytest.skip("../shared/testdata is not present")
    return SHARED


def _pg_version() -> str | None:
    base = Path("/usr/lib/postgresql")
    versions = sorted((p.name for p in base.iterdir() if (p / "bin" / "postgres").exists()),
                      key=lambda v: [int(x) for x in v.split(".") if x.isdigit()]) if base.is_dir() else []
    return versions[-1] if versions else None


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A throw-away PostgreSQL cluster on 127.0.0.1:54329, created and started with Debian's tools."""
    version = _pg_version()
    if version is None or shutil.which("pg_ctlcluster") is None:
        pytest.fail("PostgreSQL is not installed: run `make test`, which installs it")
    listed = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True, check=True).stdout
    if not any(line.split()[:2] == [version, PG_CLUSTER] for line in listed.splitlines()):
        subprocess.run(["pg_createcluster", version, PG_CLUSTER, "-p", str(PG_PORT), "--",
                        "--auth-host=trust", "--auth-local=trust"], check=True, capture_output=True)
    status = subprocess.run(["pg_ctlcluster", version, PG_CLUSTER, "status"], capture_output=True)
    if status.returncode != 0:
        subprocess.run(["pg_ctlcluster", version, PG_CLUSTER, "start", "-o", "-c listen_addresses=127.0.0.1"],
                       check=True, capture_output=True)
    yield f"postgresql+psycopg://postgres@127.0.0.1:{PG_PORT}"


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database on the test cluster, dropped afterwards."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    dsn = f"host=127.0.0.1 port={PG_PORT} user=postgres dbname=postgres"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield f"{postgres_server}/{name}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", actor="tester")


@pytest.fixture
def ws(settings: Settings) -> Iterator[Workspace]:
    """A SQLite workspace in a temporary home."""
    workspace = Workspace.open(settings)
    yield workspace
    workspace.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """Settings for the same test on SQLite and on a fresh PostgreSQL database."""
    if request.param == "postgres":
        return settings.model_copy(update={"db_url": request.getfixturevalue("postgres_url")})
    return settings


@pytest.fixture
def any_ws(any_settings: Settings) -> Iterator[Workspace]:
    """The same test on SQLite and on PostgreSQL."""
    workspace = Workspace.open(any_settings)
    yield workspace
    workspace.close()


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def small_video(media_dir: Path) -> Path:
    """2 s of 320x240 H.264 at 25 fps with a 440 Hz AAC tone."""
    out = media_dir / "small.mp4"
    if not out.exists():
        ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=2", "-f", "lavfi", "-i",
               "sine=frequency=440:duration=2", "-shortest", "-c:v", "libx264", "-pix_fmt", "yuv420p",
               "-c:a", "aac", str(out))
    return out


@pytest.fixture(scope="session")
def small_jpeg(media_dir: Path) -> Path:
    """A 640x480 JPEG rendered from an ffmpeg test pattern."""
    out = media_dir / "small.jpg"
    if not out.exists():
        ffmpeg("-f", "lavfi", "-i", "testsrc2=size=640x480", "-frames:v", "1", "-q:v", "3", str(out))
    return out


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """One moto S3 server for the session (each start costs about a second of CPU); ``moto`` empties it per test."""
    server = start_moto()
    yield server
    server.stop()


@pytest.fixture
def moto(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """moto's S3 server on 127.0.0.1, emptied, with the bucket ``evidence``; the standard AWS variables point clients
    at it. A test that stops the server starts its own with ``start_moto``."""
    assert moto_server.process.poll() is None, "the shared moto server was stopped by a test"
    moto_server.reset()
    for key, value in moto_server.env.items():
        monkeypatch.setenv(key, value)
    moto_server.client().create_bucket(Bucket="evidence")
    return moto_server
