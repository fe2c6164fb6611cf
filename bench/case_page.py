"""Load time of the case page for analysed assets: the API calls the page makes and DOMContentLoaded -> rendered.

Usage: ``.venv/bin/python bench/case_page.py --home <workspace> ASSET_ID [ASSET_ID ...] [--runs 5]
[--screenshots DIR]``. The workspace must hold the analysed assets (e.g. ``tamperscope --home W analyze
video.mp4`` on a 60 s video). The script starts the API on 127.0.0.1 with a fresh token, opens
``/#/case/<id>`` in headless Chromium (the token in sessionStorage, as the page keeps it), waits until the page
marks itself rendered (verdict, timeline, face strip, scrubber frame and map viewer images decoded) and prints
per run: the ``/case`` call, every API call's time, and DOMContentLoaded -> rendered. The first run is a cold
cache (Python imports, SQLite pages); the goal is rendered < 1 s. Timing the same calls with httpx gives the
server-side share.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from tamperscope.api.main import create_app
from tamperscope.api.tokens import create_token
from tamperscope.settings import Settings
from tamperscope.workspace import Workspace


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def chromium(profile: Path):  # type: ignore[no-untyped-def]
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or ""
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,2200",
                 "--disable-background-networking", "--no-first-run", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver") or ""), options=options)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assets", nargs="+")
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--screenshots", type=Path)
    args = parser.parse_args()
    settings = Settings(home=args.home, actor="bench-case-page")
    ws = Workspace.open(settings)
    try:
        token = create_token(ws, f"bench-{int(time.time() * 1000)}")
    finally:
        ws.close()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        driver = chromium(Path(tmp) / "chrome")
        try:
            driver.get(base + "/")
            driver.execute_script("sessionStorage.setItem('tamperscope-token', arguments[0])", token)
            for asset in args.assets:
                server_ms = []
                with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as client:
                    for _ in range(args.runs):
                        start = time.perf_counter()
                        client.get(f"/api/assets/{asset}/case").raise_for_status()
                        server_ms.append(round(1000 * (time.perf_counter() - start), 1))
                runs = []
                for run in range(args.runs):
                    driver.get(f"{base}/#/case/{asset}")
                    driver.refresh()
                    deadline = time.monotonic() + 60
                    while driver.execute_script("return document.body.dataset.rendered") != asset:
                        if time.monotonic() > deadline:
                            raise SystemExit(f"{asset}: page did not render in 60 s")
                        time.sleep(0.02)
                    timing = driver.execute_script("return window.tamperscopeTimings")
                    runs.append(timing)
                    if run == 0 and args.screenshots:
                        args.screenshots.mkdir(parents=True, exist_ok=True)
                        driver.save_screenshot(str(args.screenshots / f"case-{asset}.png"))
                rendered = [r["case"]["since_dom_content_loaded_ms"] for r in runs]
                results[asset] = {
                    "frames": runs[0]["case"]["frames"], "windows": runs[0]["case"]["windows"],
                    "faces": runs[0]["case"]["faces"],
                    "case_api_httpx_ms": server_ms, "case_api_in_page_ms": [r["case"]["api_ms"] for r in runs],
                    "dom_content_loaded_to_rendered_ms": rendered,
                    "median_rendered_ms": statistics.median(rendered),
                    "api_calls_last_run": runs[-1]["api"]}
        finally:
            driver.quit()
            server.should_exit = True
    json.dump(results, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
