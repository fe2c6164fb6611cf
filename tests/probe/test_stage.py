"""Metadata stage end to end: harvest, C2PA status and flags written as detection rows."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from tamperscope.custody.intake import ingest_path
from tamperscope.pipeline.runner import analyze_asset
from tamperscope.report.build import build_report, load_inputs
from tamperscope.store.models import Asset, Detection
from tamperscope.workspace import Workspace

C2PA_STATUS = {
    "c2pars_C.jpg": "valid", "c2pars_CA.jpg": "valid", "c2pars_XCA.jpg": "invalid", "c2pars_E-sig-CA.jpg": "invalid",
    "c2pars_no_manifest.jpg": "absent", "c2pars_sample1.png": "absent", "c2pars_video1_no_manifest.mp4": "absent",
    "c2pars_video1.mp4": "valid", "c2papy_sample1_signed.wav": "valid",
}


def _flags(ws: Workspace, path: Path) -> tuple[Asset, dict[str, Detection]]:
    asset_id = ingest_path(ws, path).asset_id
    analyze_asset(ws, asset_id, only=["metadata"])
    with ws.db.session() as session:
        asset = session.get(Asset, asset_id)
        rows = session.execute(select(Detection).where(Detection.asset_id == asset_id)).scalars().all()
        session.expunge_all()
    assert asset is not None
    return asset, {row.module_name: row for row in rows}


def test_photoshop_jpeg_is_flagged_with_its_evidence(ws: Workspace, tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0131] = "Canon", "Canon EOS 7D", "Adobe Photoshop 24.1 (Windows)"
    path = tmp_path / "edited.jpg"
    Image.new("RGB", (64, 48), (90, 120, 30)).save(path, "JPEG", exif=exif.tobytes())
    asset, flags = _flags(ws, path)
    assert "meta.editing_software" in flags
    row = flags["meta.editing_software"]
    assert row.status == "flag"
    assert row.evidence_json["tags"] == {"IFD0:Software": "Adobe Photoshop 24.1 (Windows)"}
    assert asset.provenance_status == "absent"
    assert asset.exif_json["IFD0:Make"] == "Canon" and asset.probe_json["streams"]


def test_intake_structure_findings_survive_analysis_and_are_reported(ws: Workspace, tmp_path: Path) -> None:
    """Bytes after the JPEG end marker, found at intake, are still on the asset and in the report after the
    metadata stage (which also writes ``probe_json``) ran, and ran again."""
    path = tmp_path / "trailer.jpg"
    Image.new("RGB", (64, 48), (20, 40, 200)).save(path, "JPEG")
    trailer = b"VENDOR-TRAILER" * 4
    path.write_bytes(path.read_bytes() + trailer)
    asset_id = ingest_path(ws, path).asset_id
    for force in (False, True):
        analyze_asset(ws, asset_id, only=["metadata"], force=force)
        with ws.db.session() as session:
            asset = session.get(Asset, asset_id)
            assert asset is not None and asset.probe_json is not None
            assert asset.probe_json["structure"]["trailing_bytes"] == len(trailer)
            assert asset.probe_json["streams"][0]["codec_name"] == "mjpeg"  # the harvest's ffprobe output
    report = build_report(load_inputs(ws, asset_id, read_bytes=lambda uri: b""))
    assert report["asset"]["structure"]["trailing_bytes"] == len(trailer)


def test_lavf_video_is_flagged_as_reencoded(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "v.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=3", "-f",
                    "lavfi", "-i", "sine=duration=1", "-c:v", "libx264", "-c:a", "aac", str(path)], check=True)
    _, flags = _flags(ws, path)
    assert "meta.reencode_chain" in flags
    assert "meta.av_duration_mismatch" in flags
    mismatch = flags["meta.av_duration_mismatch"].evidence_json
    assert mismatch["video_s"] - mismatch["audio_s"] > 1.5


@pytest.mark.shared
@pytest.mark.slow
def test_all_c2pa_samples_get_the_right_status(shared_dir: Path, ws: Workspace) -> None:
    got = {}
    for name in C2PA_STATUS:
        asset, flags = _flags(ws, shared_dir / "c2pa" / name)
        got[name] = asset.provenance_status
        assert ("meta.invalid_c2pa" in flags) == (C2PA_STATUS[name] == "invalid")
        if C2PA_STATUS[name] != "absent":
            assert asset.provenance_json and asset.provenance_json["store"]["manifests"]
    assert got == C2PA_STATUS
