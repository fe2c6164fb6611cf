"""Analyse media files in a fresh workspace and print every result as JSON, to compare two versions of the code.

Per asset: each detection (stage, module, window, status, score, band, evidence without timings, SHA-256 of its
heat-map and overlay PNGs), each stage's summary without timings, and the stored frames' SHA-1s. Run it once per
checkout on the same files and diff the outputs; timings (``*_s`` keys) are left out because they always differ.

Usage: ``PYTHONPATH=<checkout>/src .venv/bin/python bench/results_digest.py OUT.json FILE...``; with no files,
the demo's media (``make demo``) are generated into ``OUT.json``'s folder first.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from sqlalchemy import select

from tamperscope.samples import demo as samples
from tamperscope.samples.talking_head import astronaut_rig, talking_head
from tamperscope.services.analysis import run_analysis
from tamperscope.settings import Settings
from tamperscope.store import queries
from tamperscope.store.models import Asset, Frame
from tamperscope.workspace import Workspace


def untimed(value: Any) -> Any:
    """``value`` without timing keys (``*_s`` wall times and ``traceback``), recursively."""
    if isinstance(value, dict):
        return {k: untimed(v) for k, v in value.items() if not (k.endswith("_s") and isinstance(v, float))
                and k != "traceback"}
    if isinstance(value, list):
        return [untimed(v) for v in value]
    return value


def digest(ws: Workspace, asset_id: str) -> dict[str, Any]:
    def artifact(uri: str | None) -> str | None:
        return hashlib.sha256(ws.store.get_bytes(ws.store.key_of(uri))).hexdigest() if uri else None

    with ws.db.read_session() as s:
        asset = s.get(Asset, asset_id)
        assert asset is not None
        detections = [{"stage": d.stage, "module": d.module_name, "window": d.window_id, "status": d.status,
                       "score": d.score, "band": d.band, "evidence": untimed(d.evidence_json),
                       "saliency": artifact(d.saliency_uri), "overlay": artifact(d.overlay_uri)}
                      for d in queries.detections(s, asset_id)]  # ordered by stage, module, window
        runs = {r.stage: {"status": r.status, "summary": untimed(r.summary_json)}
                for r in queries.stage_runs(s, asset_id)}
        frames = [f.sha1 for f in s.scalars(select(Frame).where(Frame.asset_id == asset_id).order_by(Frame.t_ms))]
        probe = asset.probe_json
    return {"detections": detections, "runs": runs, "frames": frames, "probe_json": probe}


def demo_media(folder: Path) -> list[Path]:
    """The demo's four inputs (generated once; reused when present)."""
    folder.mkdir(parents=True, exist_ok=True)
    video, photo = folder / "two_shots.mp4", folder / "camera.jpg"
    edited, face = folder / "camera_edited.jpg", folder / "talking_head.mp4"
    if not video.exists():
        samples.video_with_cut(video)
    if not photo.exists():
        samples.camera_like_jpeg(photo)
    if not edited.exists():
        samples.edited_copy(photo, edited)
    if not face.exists():
        talking_head(face, rig=astronaut_rig(320, 320), duration_s=6.0)
    return [video, photo, edited, face]


def main() -> int:
    out = Path(sys.argv[1])
    files = [Path(a) for a in sys.argv[2:]] or demo_media(out.parent / "demo-media")
    result = {}
    with tempfile.TemporaryDirectory(prefix="tamperscope-digest-") as tmp:
        ws = Workspace.open(Settings(home=Path(tmp), actor="digest"))
        try:
            for path in files:
                run = run_analysis(ws, path).run
                asset_id = run.asset_id
                result[path.name] = {"failed": run.failed, **digest(ws, asset_id)}
                print(f"{path.name}: ran {run.ran}, failed {run.failed}", flush=True)
        finally:
            ws.close()
    out.write_text(json.dumps(result, indent=1, sort_keys=True, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
