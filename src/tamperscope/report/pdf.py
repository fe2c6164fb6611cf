"""The PDF evidence report (reportlab, invariant mode): summary, custody, metadata, frames, timelines, modules.

The PDF is rendered from the JSON report dict plus the artifact bytes it names, so it is a pure function of
stored data; the creation date is the report's ``generated_at`` and reportlab's invariant mode removes the
clock and random document ids.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Image, PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from tamperscope.report.plots import timeline_png

BAND_COLOURS = {"likely_manipulated": colors.HexColor("#b3261e"), "likely_authentic": colors.HexColor("#1e7b34"),
                "inconclusive": colors.HexColor("#8a6d00")}
MAX_FRAMES = 12
MAX_DETECTION_ROWS = 60
_styles = getSampleStyleSheet()
BODY = ParagraphStyle("body", parent=_styles["BodyText"], fontSize=9, leading=11.5)
SMALL = ParagraphStyle("small", parent=BODY, fontSize=7.5, leading=9)
MONO = ParagraphStyle("mono", parent=SMALL, fontName="Courier", fontSize=7, leading=8.5)
H1 = ParagraphStyle("h1", parent=_styles["Heading1"], fontSize=16, spaceAfter=6)
H2 = ParagraphStyle("h2", parent=_styles["Heading2"], fontSize=12, spaceBefore=8, spaceAfter=4)
BIG = ParagraphStyle("big", parent=BODY, fontSize=20, leading=24, spaceAfter=6)
GRID = TableStyle([("GRID", (0, 0), (-1, -1), 0.3, colors.grey), ("VALIGN", (0, 0), (-1, -1), "TOP"),
                   ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8e8e8")),
                   ("FONTSIZE", (0, 0), (-1, -1), 7.5), ("LEFTPADDING", (0, 0), (-1, -1), 3),
                   ("RIGHTPADDING", (0, 0), (-1, -1), 3)])
KV = TableStyle([("GRID", (0, 0), (-1, -1), 0.3, colors.grey), ("VALIGN", (0, 0), (-1, -1), "TOP"),
                 ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#f0f0f0"))])
WIDTH = A4[0] - 30 * mm


def _p(text: Any, style: ParagraphStyle = BODY) -> Paragraph:
    return Paragraph(escape(str(text)), style)


def _short(value: Any, limit: int = 220) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _kv(rows: list[tuple[str, Any]], style: ParagraphStyle = SMALL) -> Table:
    table = Table([[_p(k, SMALL), _p(_short(v, 400), style)] for k, v in rows], colWidths=[38 * mm, WIDTH - 38 * mm])
    table.setStyle(KV)
    return table


def _grid(header: list[str], rows: list[list[Any]], widths: list[float]) -> Table:
    data = [[_p(h, SMALL) for h in header]] + [[_p(c, SMALL) for c in row] for row in rows]
    table = Table(data, colWidths=widths, repeatRows=1)
    table.setStyle(GRID)
    return table


def _image(data: bytes, max_w: float, max_h: float) -> Image:
    img = Image(io.BytesIO(data))
    scale = min(max_w / img.imageWidth, max_h / img.imageHeight)
    img.drawWidth, img.drawHeight = img.imageWidth * scale, img.imageHeight * scale
    return img


def _summary(report: dict[str, Any], json_sha256: str) -> list[Any]:
    asset, verdict = report["asset"], report["verdict"]
    out: list[Any] = [_p("tamperscope evidence report", H1),
                      _p(f"{asset['original_name']}  ·  asset {asset['asset_id']}  ·  data as of "
                         f"{report['generated_at']}", BODY), Spacer(1, 6)]
    if verdict is not None:
        band = verdict["band"] or "unknown"
        colour = BAND_COLOURS.get(band, colors.black).hexval()[2:]
        prob = verdict["probability"]
        out.append(Paragraph(f'<font color="#{colour}"><b>{escape(band.replace("_", " "))}</b></font>'
                             f"  p = {prob:.3f}" if prob is not None else band, BIG))
        out.append(_p(verdict["meaning"]))
        out.append(Spacer(1, 4))
        out.append(_kv([("probability of manipulation", f"{prob:.4f}" if prob is not None else "-"),
                        ("band", band), ("decision threshold", verdict["threshold"]),
                        ("threshold policy", verdict["policy_version"]), ("fusion model", verdict["model_id"])]))
        out.append(_p("The probability is calibrated by the fusion model; the policy maps it to a band. Only "
                      "'likely manipulated' is a positive finding; 'inconclusive' means the tool abstains.", SMALL))
    else:
        out.append(_p("No verdict: the fusion stage has not run for this asset. The detections below are "
                      "individual module scores and flags, not a calibrated decision.", BIG))
    flags = report["metadata_flags"]
    scored = [d for d in report["detections"] if d["status"] == "scored"]
    out += [Spacer(1, 8), _p("At a glance", H2),
            _kv([("metadata / forensic flags", len(flags)), ("scored detections", len(scored)),
                 ("modules", ", ".join(sorted({m["module_name"] for m in report["tools"]["modules"]})) or "-"),
                 ("shots / frames", f"{len(report['shots'])} / {len(report['frames'])}")]),
            Spacer(1, 8), _p("Integrity", H2),
            _kv([("asset SHA-256", asset["sha256"]), ("JSON report SHA-256", json_sha256),
                 ("audit chain hash", report["custody"]["chain_hash"])], MONO),
            _p("Verify with: tamperscope report verify <report.json> (recomputes the report from stored data) "
               "and tamperscope verify (re-hashes stored bytes and the audit chain).", SMALL)]
    return out


def _custody(report: dict[str, Any]) -> list[Any]:
    asset = report["asset"]
    out: list[Any] = [_p("Asset identity and custody", H1),
                      _kv([("original name", asset["original_name"]), ("SHA-256", asset["sha256"]),
                           ("size (bytes)", asset["size_bytes"]), ("media type", asset["media_type"]),
                           ("MIME / container", f"{asset['mime']} / {asset['container']}"),
                           ("dimensions", f"{asset['width']} x {asset['height']}"),
                           ("duration (ms)", asset["duration_ms"]), ("uploaded by", asset["uploaded_by"]),
                           ("upload time", asset["upload_time"]), ("source", asset["source"]),
                           ("storage key", asset["storage_key"])]),
                      _p("Audit events", H2)]
    rows = [[e["event_id"], e["when"][:19], e["who"], e["action"], e["hash"][:16] + "…"]
            for e in report["custody"]["events"]]
    out.append(_grid(["#", "when (UTC)", "who", "action", "hash"], rows,
                     [10 * mm, 36 * mm, 30 * mm, 50 * mm, WIDTH - 126 * mm]))
    return out


def _metadata(report: dict[str, Any]) -> list[Any]:
    out: list[Any] = [_p("Metadata flags", H1)]
    if not report["metadata_flags"]:
        out.append(_p("No metadata rule raised a flag."))
    else:
        out.append(_grid(["rule", "window", "evidence"],
                         [[f["module_name"], f["window_id"], _short(f["evidence"], 400)]
                          for f in report["metadata_flags"]], [45 * mm, 25 * mm, WIDTH - 70 * mm]))
    external = report["tools"]["external"]
    if external:
        out += [_p("Tools that read the metadata", H2), _kv(list(external.items()))]
    return out


def _frames(report: dict[str, Any], read: Callable[[str], bytes]) -> list[Any]:
    by_window: dict[str, list[dict[str, Any]]] = {}
    for det in report["detections"]:
        if det["saliency_uri"] or det["overlay_uri"]:
            by_window.setdefault(det["window_id"], []).append(det)
    frames = {f["frame_id"]: f for f in report["frames"]}
    windows = sorted(by_window, key=lambda w: (frames[w]["t_ms"] if w in frames else -1, w))[:MAX_FRAMES]
    if not windows:
        return []
    out: list[Any] = [PageBreak(), _p("Frames and the maps that explain them", H1),
                      _p("Each row shows a frame and, beside it, the heatmaps / overlays the modules produced for "
                         "it (brighter or redder = more suspicious).", SMALL)]
    cell = (WIDTH - 4 * mm) / 3
    for window in windows:
        frame = frames.get(window) or (report["frames"][0] if window == "asset" and len(frames) == 1 else None)
        cells: list[tuple[Any, Any]] = []
        if frame and frame["uri"]:
            cells.append((_image(read(frame["uri"]), cell, 45 * mm), _p(f"frame at {frame['t_ms'] / 1000:.2f} s",
                                                                          SMALL)))
        for det in by_window[window]:
            score = "-" if det["score"] is None else f"{det['score']:.2f}"
            for kind in ("overlay_uri", "saliency_uri"):
                if det[kind]:
                    cells.append((_image(read(det[kind]), cell, 45 * mm),
                                  _p(f"{det['module_name']} {kind.split('_')[0]} (score {score})", SMALL)))
        cells += [("", "")] * (-len(cells) % 3)
        data: list[list[Any]] = []
        for start in range(0, len(cells), 3):
            row = cells[start:start + 3]
            data += [[c[0] for c in row], [c[1] for c in row]]
        table = Table(data, colWidths=[cell] * 3)
        table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("ALIGN", (0, 0), (-1, -1), "CENTER")]))
        out += [_p(f"window {window}", MONO), table, Spacer(1, 4)]
    return out


def _timelines(report: dict[str, Any]) -> list[Any]:
    png = timeline_png(report["timelines"], report["shots"])
    if png is None:
        return []
    return [_p("Timelines", H2), _image(png, WIDTH, 70 * mm),
            _p("Per-frame / per-window scores over time; dashed lines mark detected shot boundaries.", SMALL)]


def _modules(report: dict[str, Any]) -> list[Any]:
    out: list[Any] = [PageBreak(), _p("Per-module evidence", H1)]
    timeline = _timelines(report)
    out += timeline
    asset_level = [d for d in report["detections"] if d["window_id"] == "asset"]
    windowed = [d for d in report["detections"] if d["window_id"] != "asset"]
    out.append(_p("Whole-asset results", H2))
    out.append(_grid(["module", "status", "score", "band", "evidence"],
                     [[d["module_name"], d["status"], "-" if d["score"] is None else f"{d['score']:.3f}",
                       d["band"] or "", _short(d["evidence"], 300)] for d in asset_level],
                     [40 * mm, 20 * mm, 13 * mm, 22 * mm, WIDTH - 95 * mm]))
    if windowed:
        out.append(_p(f"Window results ({len(windowed)}; first {min(len(windowed), MAX_DETECTION_ROWS)} shown, all "
                      "in the JSON report)", H2))
        out.append(_grid(["module", "window", "time (ms)", "status", "score"],
                         [[d["module_name"], d["window_id"].split(":", 1)[-1], f"{d['t_start_ms']}-{d['t_end_ms']}",
                           d["status"], "-" if d["score"] is None else f"{d['score']:.3f}"]
                          for d in windowed[:MAX_DETECTION_ROWS]],
                         [45 * mm, 40 * mm, 35 * mm, 25 * mm, WIDTH - 145 * mm]))
    return out


def _appendix(report: dict[str, Any]) -> list[Any]:
    tools = report["tools"]
    out: list[Any] = [PageBreak(), _p("Appendix: versions and parameters", H1),
                      _kv([("tamperscope", tools["tamperscope"]), ("schema", report["schema_version"])]),
                      _p("Stages", H2),
                      _grid(["stage", "version", "status", "parameters"],
                            [[s["stage"], s["version"], s["status"], _short(s["params"], 500)]
                             for s in tools["stages"]], [25 * mm, 25 * mm, 15 * mm, WIDTH - 65 * mm]),
                      _p("Modules", H2),
                      _grid(["module", "version", "stage"],
                            [[m["module_name"], m["module_version"], m["stage"]] for m in tools["modules"]],
                            [70 * mm, 60 * mm, WIDTH - 130 * mm]),
                      _p("Python packages", H2), _kv(list(tools["python_packages"].items()))]
    if report["artifacts"]:
        out += [_p("Artifacts", H2), _grid(["URI", "SHA-256"],
                                           [[a["uri"], a["sha256"]] for a in report["artifacts"]],
                                           [WIDTH - 95 * mm, 95 * mm])]
    return out


def render_pdf(report: dict[str, Any], json_sha256: str, read: Callable[[str], bytes]) -> bytes:
    """Render the PDF bytes of ``report``; ``read`` returns the bytes of a ``store://`` URI."""
    buf = io.BytesIO()
    asset = report["asset"]
    doc = SimpleDocTemplate(buf, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm, topMargin=15 * mm,
                            bottomMargin=15 * mm, invariant=1, title=f"tamperscope report {asset['asset_id']}",
                            author="tamperscope", subject=f"JSON report SHA-256 {json_sha256}",
                            creator="tamperscope", keywords=[json_sha256, asset["sha256"]])
    created = datetime.fromisoformat(report["generated_at"].rstrip("Z"))

    def decorate(canvas: Any, document: Any) -> None:
        canvas._doc._timeStamp.YMDhms = tuple(created.timetuple())[:6]
        canvas.saveState()
        canvas.setFont("Helvetica", 7)
        canvas.setFillColor(colors.grey)
        canvas.drawString(15 * mm, 8 * mm, f"asset {asset['sha256']}  ·  JSON report {json_sha256[:16]}…")
        canvas.drawRightString(A4[0] - 15 * mm, 8 * mm, f"page {document.page}")
        canvas.restoreState()

    story = [*_summary(report, json_sha256), PageBreak(), *_custody(report), Spacer(1, 8), *_metadata(report),
             *_frames(report, read), *_modules(report), *_appendix(report)]
    doc.build(story, onFirstPage=decorate, onLaterPages=decorate)
    return buf.getvalue()
