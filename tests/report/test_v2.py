"""Report v2: findings, flags that say whether they entered the verdict, case fields, no machine paths, every
module's map, face evidence for videos, and a PDF whose size does not grow with the image's resolution."""

from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
from PIL import Image

from tamperscope.fusion.branches import BRANCHES
from tamperscope.fusion.model import load_model
from tamperscope.report.build import build_report, load_inputs, report_bytes
from tamperscope.report.narrative import (
    METHODS,
    band_closed,
    similar_cases,
    strip_machine_paths,
    verdict_sentence,
)
from tamperscope.report.pdf import render_pdf
from tamperscope.report.pdf_images import downscaled
from tamperscope.report.service import assign_case, load_schema, verify_report_bytes, write_report
from tamperscope.workspace import Workspace

ABSOLUTE_PATH = re.compile(r"(^|[\s'\"(=])/[^\s/]+/")


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _pdf_text(path: Path) -> str:
    """The PDF's text in content order (cell by cell, so a caption stays in one piece)."""
    return subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True, text=True).stdout


def test_v2_report_is_schema_valid_and_leads_with_findings(analysed: tuple[Workspace, str]) -> None:
    ws, asset_id = analysed
    report = json.loads(report_bytes(build_report(load_inputs(ws, asset_id))))
    jsonschema.Draft202012Validator.check_schema(load_schema())
    jsonschema.validate(report, load_schema())
    assert report["schema_version"].startswith("2.")
    findings = report["summary"]["findings"]
    band = report["verdict"]["band"]
    assert band.split("_")[-1] in findings[0].lower()  # the first finding reads the verdict
    assert f"p = {report['verdict']['probability']:.2f}" in findings[0]
    modules = {d["module_name"] for d in report["detections"]}
    assert {m for entry in report["methods"] for m in entry["modules"]} == {
        m for m in modules if any(m.startswith(method.prefixes) for method in METHODS)}
    assert report["limitations"]
    assert load_schema(1)["$id"].endswith("report-v1.schema.json")  # old reports stay checkable


def test_flags_say_whether_they_entered_the_verdict(analysed: tuple[Workspace, str]) -> None:
    ws, asset_id = analysed
    report = build_report(load_inputs(ws, asset_id))
    model = load_model(report["verdict"]["model_id"])
    assert report["fusion_model"]["branches"] == list(model.branches)
    present = set(report["verdict"]["evidence"]["branches_present"])
    used_stages = {BRANCHES[b].stage for b in model.branches if b in present}
    assert report["metadata_flags"], "the edited copy should raise a metadata flag"
    for flag in report["metadata_flags"]:
        assert flag["entered_verdict"] is (flag["stage"] in used_stages)
    assert report["provenance"]["entered_verdict"] is ("metadata" in used_stages)
    for method in report["methods"]:
        stages = {d["stage"] for d in report["detections"] if d["module_name"] in method["modules"]}
        assert method["in_verdict"] is bool(stages & used_stages)


def test_no_machine_paths_in_the_report(analysed: tuple[Workspace, str]) -> None:
    ws, asset_id = analysed
    report = build_report(load_inputs(ws, asset_id))
    strings = _strings(report)
    home = str(ws.settings.home)
    assert not [s for s in strings if home in s or ABSOLUTE_PATH.search(s)]
    deep = next(s for s in report["tools"]["stages"] if s["stage"] == "deep")
    if deep["params"].get("frame_path"):  # the model is named by its file, not where it was kept
        assert deep["params"]["frame_path"] == "frame.onnx"


def test_strip_machine_paths_keeps_uris_and_names() -> None:
    value = {"a": "/home/x/models/frame.onnx", "b": ["store://derived/ab/map.png", "image/jpeg"],
             "c": "failed to read /tmp/work/in.jpg: truncated", "d": 3}
    assert strip_machine_paths(value) == {"a": "frame.onnx", "b": ["store://derived/ab/map.png", "image/jpeg"],
                                          "c": "failed to read in.jpg: truncated", "d": 3}


def test_verdict_reading_quotes_similar_cases_only_when_there_are_enough() -> None:
    calibration = {"high": 1.000000001, "low": 0.0, "target_precision": 0.9,
                   "reliability": [{"lo": 0.0, "hi": 0.5, "n": 40, "manipulated_share": 0.25},
                                   {"lo": 0.5, "hi": 1.0, "n": 2, "manipulated_share": 1.0}]}
    assert band_closed(calibration["high"]) and not band_closed(0.8)
    assert similar_cases(0.3, calibration) == (0.25, 40, 0.0, 0.5)
    assert similar_cases(1.0, calibration) == (1.0, 2, 0.5, 1.0)
    text = verdict_sentence("unsure", 0.3, {"policy_version": "x/p90"}, calibration)
    assert "both bands closed" in text and "Of the 40" in text and "25 %" in text
    assert "too few" in verdict_sentence("unsure", 0.7, {"policy_version": "x/p90"}, calibration)
    opened = {**calibration, "high": 0.62, "reliability": [{"lo": 0.6, "hi": 0.7, "n": 19, "manipulated_share": 0.74}]}
    confident = verdict_sentence("likely_manipulated", 0.66, {"policy_version": "x/p90"}, opened)
    assert confident.startswith("Likely manipulated: p reached the threshold where x/p90")
    assert "optimistic" in confident and "Of the 19" in confident and "74 %" in confident
    assert "unsure" in verdict_sentence("unsure", 0.5, {"policy_version": "x/p90"}, opened).lower()
    assert "both bands closed" not in verdict_sentence("unsure", 0.5, {"policy_version": "x/p90"}, opened)


def test_case_and_examiner_are_recorded_and_reported(analysed: tuple[Workspace, str], tmp_path: Path) -> None:
    ws, asset_id = analysed
    assert assign_case(ws, asset_id, case="CASE-2026-017", examiner="A. Examiner") is True
    assert assign_case(ws, asset_id, case="CASE-2026-017", examiner=None) is False  # unchanged: no new event
    written = write_report(ws, asset_id, tmp_path)
    report = json.loads(written.json_bytes)
    assert (report["case"]["case_id"], report["case"]["examiner"]) == ("CASE-2026-017", "A. Examiner")
    assert report["case"]["assigned_by"] == ws.actor
    assert verify_report_bytes(ws, written.json_bytes)["ok"] is True  # recomputed from the audit event
    text = _pdf_text(tmp_path / f"{asset_id}.pdf")
    assert "CASE-2026-017" in text and "A. Examiner" in text


def test_pdf_shows_every_modules_map(analysed: tuple[Workspace, str], tmp_path: Path) -> None:
    ws, asset_id = analysed
    written = write_report(ws, asset_id, tmp_path)
    report = json.loads(written.json_bytes)
    text = re.sub(r"\s+", "", _pdf_text(tmp_path / f"{asset_id}.pdf"))  # captions wrap inside their cells
    mapped = {d["module_name"] for d in report["detections"]
              if (d["overlay_uri"] or d["saliency_uri"]) and not d["module_name"].startswith("deep.")}
    assert len(mapped) > 2
    for module in mapped:
        assert re.search(rf"{re.escape(module.removeprefix('forensics.'))}(overlay|heatmap)", text), module


def _noise_image(width: int, height: int, fmt: str) -> bytes:
    """Smooth noise; a PNG is stored uncompressed (the largest such file, and the quickest to write and read)."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
    img = Image.fromarray(pixels).resize((width, height), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    img.save(buf, format=fmt, **({"quality": 92} if fmt == "JPEG" else {"compress_level": 0}))
    return buf.getvalue()


@pytest.mark.slow  # renders the PDF twice with every image at 12 MP: 9 s, the fast tier's longest case
def test_pdf_of_a_12_megapixel_image_stays_under_5_mb(analysed: tuple[Workspace, str]) -> None:
    """Every frame and map of the analysed image replaced by 12 MP bytes: the PDF embeds downscaled copies."""
    ws, asset_id = analysed
    report = build_report(load_inputs(ws, asset_id))
    big = _noise_image(4000, 3000, "PNG")
    uris = {a["uri"] for a in report["artifacts"]}
    assert len(big) * len(uris) > 5_000_000  # embedding them as they are could not fit
    pdf = render_pdf(report, "0" * 64, lambda uri: big)
    assert pdf.startswith(b"%PDF") and len(pdf) <= 5_000_000
    assert pdf == render_pdf(report, "0" * 64, lambda uri: big)  # still deterministic


def test_downscaled_bounds_the_longest_side() -> None:
    small = downscaled(_noise_image(4000, 3000, "JPEG"), 1000)
    with Image.open(io.BytesIO(small)) as img:
        assert img.size == (1000, 750) and img.format == "JPEG"
    assert downscaled(_noise_image(400, 300, "PNG"), 1000) == downscaled(_noise_image(400, 300, "PNG"), 1000)


@pytest.mark.slow
def test_video_report_shows_face_crops_and_the_fused_timeline(tmp_path: Path) -> None:
    from tamperscope.custody.intake import ingest_path
    from tamperscope.pipeline.runner import analyze_asset
    from tamperscope.samples.talking_head import astronaut_rig, talking_head
    from tamperscope.settings import Settings

    clip = talking_head(tmp_path / "face.mp4", rig=astronaut_rig(256, 256), duration_s=4.0).path
    ws = Workspace.open(Settings(home=tmp_path / "home", actor="reporter"))
    try:
        asset_id = ingest_path(ws, clip).asset_id
        analyze_asset(ws, asset_id)
        first = write_report(ws, asset_id, tmp_path / "a")
        second = write_report(ws, asset_id, tmp_path / "b")
        artifacts = {a["uri"]: a["sha256"] for a in json.loads(first.json_bytes)["artifacts"]}
        for uri, digest in artifacts.items():
            assert hashlib.sha256(ws.store.get_bytes(ws.store.key_of(uri))).hexdigest() == digest
    finally:
        ws.close()
    assert first.pdf_bytes == second.pdf_bytes
    report = json.loads(first.json_bytes)
    faces = report["face_evidence"]
    assert faces and all(f["crop_uri"] in artifacts and f["saliency_uri"] in artifacts for f in faces)
    assert [f["score"] for f in faces] == sorted((f["score"] for f in faces), reverse=True)
    text = _pdf_text(tmp_path / "a" / f"{asset_id}.pdf")
    assert "Face evidence" in text
    if any(p["score"] is not None for p in report["timelines"].get("fusion.window", [])):
        assert "Fused timeline" in text


def test_the_fusion_method_quotes_the_shipped_models_cross_validated_auc() -> None:
    text = next(m for m in METHODS if m.prefixes == ("fusion",)).measured
    for model_id in ("image-v2", "video-v3"):  # a refit that changes the figure must change the report's words
        assert f"{model_id}: AUC {load_model(model_id).metrics['cv']['auc']:.3f} out of fold" in text
