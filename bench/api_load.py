"""Measurement: the durable job queue under load: two API replicas and two workers on one database.

Starts two ``tamperscope serve`` replicas (uvicorn on 127.0.0.1, no in-process workers) and two ``tamperscope
worker`` processes on one fresh home and database (SQLite by default; ``--postgres`` uses the test cluster on
127.0.0.1:54329, started with ``pg_ctlcluster`` when needed), then makes ``--uploads`` uploads of small generated
PNGs (each ``POST /api/assets?analyze=true``, alternating replicas) with ``--concurrency`` in flight, and waits
until every job has finished. Prints whether every upload became a job and every job finished, the p50/p95 latency
of the upload call, the wall times and the load average (the machine is shared), as text and one JSON line.

Usage (2 cores shared, so niced)::

    nice -n 10 .venv/bin/python bench/api_load.py
    nice -n 10 .venv/bin/python bench/api_load.py --postgres
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

from tamperscope.api.tokens import create_token
from tamperscope.settings import Settings
from tamperscope.workspace import Workspace

PG_PORT = 54329
PG_CLUSTER = "tamperscope_test"
CLI = "from tamperscope.cli.main import main; main()"


def png(seed: int, size: tuple[int, int] = (48, 64)) -> bytes:
    """A small noise image, distinct per seed (so every upload is a new asset)."""
    pixels = np.random.default_rng(seed).integers(0, 256, size=(*size, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def postgres_database() -> str:
    """A fresh database on the test cluster (created and started like tests/conftest.py does)."""
    import psycopg

    versions = sorted(p.name for p in Path("/usr/lib/postgresql").iterdir() if (p / "bin" / "postgres").exists())
    version = versions[-1]
    listed = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True, check=True).stdout
    if not any(line.split()[:2] == [version, PG_CLUSTER] for line in listed.splitlines()):
        subprocess.run(["pg_createcluster", version, PG_CLUSTER, "-p", str(PG_PORT), "--", "--auth-host=trust",
                        "--auth-local=trust"], check=True, capture_output=True)
    if subprocess.run(["pg_ctlcluster", version, PG_CLUSTER, "status"], capture_output=True).returncode != 0:
        subprocess.run(["pg_ctlcluster", version, PG_CLUSTER, "start", "-o", "-c listen_addresses=127.0.0.1"],
                       check=True, capture_output=True)
    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"host=127.0.0.1 port={PG_PORT} user=postgres dbname=postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"postgresql+psycopg://postgres@127.0.0.1:{PG_PORT}/{name}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-c", CLI, *args], env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_ready(url: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/openapi.json", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not start")


class LoadSampler:
    """The 1-minute load average, sampled every few seconds while the run goes on."""

    def __init__(self) -> None:
        self.samples: list[float] = [os.getloadavg()[0]]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(5.0):
            self.samples.append(os.getloadavg()[0])

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        return {"start": self.samples[0], "mean": round(sum(self.samples) / len(self.samples), 2),
                "max": max(self.samples), "end": os.getloadavg()[0]}


async def upload_all(urls: list[str], token: str, images: list[bytes], concurrency: int
                     ) -> list[dict[str, Any]]:
    """POST every image with ``analyze=true``, alternating replicas, ``concurrency`` at a time."""
    gate = asyncio.Semaphore(concurrency)
    headers = {"Authorization": f"Bearer {token}"}

    async def one(client: httpx.AsyncClient, i: int, data: bytes) -> dict[str, Any]:
        async with gate:
            begin = time.perf_counter()
            try:
                response = await client.post(f"{urls[i % len(urls)]}/api/assets", params={
                    "name": f"load{i}.png", "analyze": "true"}, content=data, headers=headers)
                status, body = response.status_code, response.json()
            except httpx.HTTPError as exc:
                status, body = 0, {"error": f"{type(exc).__name__}: {exc}"}
            return {"i": i, "status": status, "latency_s": time.perf_counter() - begin,
                    "job_id": (body.get("job") or {}).get("job_id"), "error": body.get("error")}

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=300, limits=limits) as client:
        return await asyncio.gather(*(one(client, i, data) for i, data in enumerate(images)))


def wait_jobs(url: str, token: str, job_ids: set[str], timeout_s: float) -> list[dict[str, Any]]:
    """Poll the job list until every one of ``job_ids`` is done or failed (or the timeout)."""
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + timeout_s
    while True:
        jobs = [j for j in httpx.get(f"{url}/api/jobs", params={"limit": 1000}, headers=headers, timeout=60).json()
                if j["job_id"] in job_ids]
        finished = sum(j["status"] in ("done", "failed") for j in jobs)
        print(f"  {finished}/{len(job_ids)} jobs finished", file=sys.stderr, flush=True)
        if finished == len(job_ids) or time.monotonic() > deadline:
            return jobs
        time.sleep(5.0)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--uploads", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="0: measure the uploads alone (jobs stay queued)")
    parser.add_argument("--postgres", action="store_true", help="use a fresh database on the test cluster")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for the jobs")
    parser.add_argument("--keep", type=Path, help="keep the home (logs, database) here instead of a temp dir")
    args = parser.parse_args()

    home = args.keep or Path(tempfile.mkdtemp(prefix="tamperscope-api-load-"))
    db_url = postgres_database() if args.postgres else f"sqlite:///{home / 'tamperscope.db'}"
    ws = Workspace.open(Settings(home=home, db_url=db_url, actor="bench"))
    token = create_token(ws, "loader")
    ws.close()
    env = {**os.environ, "TAMPERSCOPE_HOME": str(home), "TAMPERSCOPE_DB_URL": db_url,
           "TAMPERSCOPE_JOBS__API_WORKERS": "0"}
    ports = [free_port() for _ in range(args.replicas)]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    processes = [start(["serve", "--port", str(port)], env, home / f"replica{i}.log") for i, port in enumerate(ports)]
    processes += [start(["worker", "--poll-interval", "0.5"], env, home / f"worker{i}.log")
                  for i in range(args.workers)]
    try:
        for url in urls:
            wait_ready(url)
        images = [png(seed) for seed in range(args.uploads)]
        print(f"{args.replicas} replicas, {args.workers} workers on {db_url.split('@')[-1]}; "
              f"{args.uploads} uploads of {sum(map(len, images)) // len(images)} B, concurrency {args.concurrency}",
              file=sys.stderr, flush=True)
        load = LoadSampler()
        begin = time.monotonic()
        uploads = asyncio.run(upload_all(urls, token, images, args.concurrency))
        uploaded_s = time.monotonic() - begin
        job_ids = {u["job_id"] for u in uploads if u["job_id"]}
        jobs = wait_jobs(urls[-1], token, job_ids, args.timeout if args.workers else 0.0)
        total_s = time.monotonic() - begin
        loadavg = load.stop()
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(90)
            except subprocess.TimeoutExpired:
                process.kill()
    latencies = [u["latency_s"] for u in uploads if u["status"] == 201]
    statuses = Counter(j["status"] for j in jobs)
    result = {
        "database": "postgresql" if args.postgres else "sqlite", "uploads": args.uploads,
        "concurrency": args.concurrency, "replicas": args.replicas, "workers": args.workers,
        "upload_status": dict(Counter(u["status"] for u in uploads)),
        "upload_errors": dict(Counter(u["error"] for u in uploads if u["error"])),
        "every_upload_became_a_job": len(job_ids) == args.uploads and len(jobs) == args.uploads,
        "jobs_done": statuses.get("done", 0), "jobs_failed": statuses.get("failed", 0),
        "every_job_finished": statuses.get("done", 0) == args.uploads,
        "job_errors": dict(Counter(f"{j['error_type']}: {j['error']}" for j in jobs if j["status"] == "failed")),
        "jobs_per_worker": dict(Counter(j["claimed_by"] for j in jobs if j["status"] == "done")),
        "jobs_with_retries": sum(j["attempts"] > 1 for j in jobs),
        "upload_p50_s": round(percentile(latencies, 50), 3), "upload_p95_s": round(percentile(latencies, 95), 3),
        "upload_max_s": round(max(latencies, default=float("nan")), 3),
        "upload_phase_s": round(uploaded_s, 1), "total_wall_s": round(total_s, 1),
        "jobs_per_min": round(statuses.get("done", 0) / total_s * 60, 1), "loadavg_1m": loadavg,
        "cpus": os.cpu_count(), "home": str(home),
    }
    print(f"every upload became a job: {result['every_upload_became_a_job']} ({len(job_ids)} jobs for "
          f"{args.uploads} uploads; statuses {result['upload_status']})")
    print(f"every job finished: {result['every_job_finished']} (done {result['jobs_done']}, failed "
          f"{result['jobs_failed']}, re-tried {result['jobs_with_retries']}); per worker "
          f"{list(result['jobs_per_worker'].values())}")
    print(f"upload latency p50 {result['upload_p50_s']} s, p95 {result['upload_p95_s']} s, max "
          f"{result['upload_max_s']} s; uploads took {result['upload_phase_s']} s; total wall "
          f"{result['total_wall_s']} s ({result['jobs_per_min']} jobs/min)")
    print(f"load average (1 min) start {loadavg['start']}, mean {loadavg['mean']}, max {loadavg['max']} on "
          f"{os.cpu_count()} CPUs")
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
