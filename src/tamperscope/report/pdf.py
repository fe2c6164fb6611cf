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
from reportlab.platypus import Image, KeepTogether, PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from tamperscope.fusion.policy import LIKELY_MANIPULATED, LIKELY_REAL, UNSURE
from tamperscope.report.plots import timeline_png

BAND_COLOURS: dict[str, colors.Color] = {LIKELY_MANIPULATED: colors.HexColor("#b3261e"),
                                         LIKELY_REAL: colors.HexColor("#1e7b34"), UNSURE: colors.HexColor("#8a6d00")}
MAX_FRAMES = 8
_styles = getSampleStyleSheet()
BODY = ParagraphStyle("body", parent=_styles["BodyText"], fontSize=9, leading=11.5)
SMALL = ParagraphStyle("small", parent=BODY, fontSize=7.5, leading=9)
MONO = ParagraphStyle("mono", parent=SMALL, fontName="Courier", fontSize=7, leading=8.5)
H1 = ParagraphStyle("h1", parent=_styles["Heading1"], fontSize=16, spaceAfter=6, keepWithNext=1)
H2 = ParagraphStyle("h2", parent=_styles["Heading2"], fontSize=12, spaceBefore=8, spaceAfter=4,
                    keepWithNext=1)
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
        band = verdict["band"] or "no verdict"
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
                      "'likely manipulated' is a positive finding; 'unsure' means the tool abstains.", SMALL))
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
                 ("audit chain hash", report["custody"]["chain_hash"]), *_signed_head_rows(report)], MONO),
            _p("Verify with: tamperscope report verify <report.json> (recomputes the report from stored data) "
               "and tamperscope verify --anchor <anchor.json> (re-hashes every evidence row and stored object "
               "against its seal in the audit chain, and checks the chain against the anchor).", SMALL)]
    return out


def _signed_head_rows(report: dict[str, Any]) -> list[tuple[str, Any]]:
    head = report["custody"].get("signed_head")
    if not head:
        return [("signed chain head", "none (no signing key: tamperscope key create)")]
    return [("signed chain head", f"event {head['event_id']}: {head['hash']}"),
            ("Ed25519 signature", head["signature"]), ("Ed25519 public key", head["public_key"])]


def _custody(report: dict[str, Any]) -> list[Any]:
    asset = report["asset"]
    out: list[Any] = [_p("Asset identity and custody", H1),
                      _kv([("original name", asset["original_name"]), ("SHA-256", asset["sha256"]),
                           ("size (bytes)", asset["size_bytes"]), ("media type", asset["media_type"]),
                           ("MIME / container", f"{asset['mime']} / {asset['container']}"),
                           ("dimensions", f"{asset['width']} x {asset['height']}"),
                           ("duration (ms)", asset["duration_ms"]), ("uploaded by", asset["uploaded_by"]),
                           ("upload time", asset["upload_time"]), ("source", asset["source"]),
                           ("storage key", asset["storage_key"]),
                           ("trailing bytes (after the image or container)",
                            (asset.get("structure") or {}).get("trailing_bytes"))]),
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


def _score(det: dict[str, Any]) -> float:
    return -1.0 if det["score"] is None else float(det["score"])


def _frames(report: dict[str, Any], read: Callable[[str], bytes]) -> tuple[list[Any], set[str]]:
    """Frames with their strongest maps beside them; returns the flowables and the URIs shown."""
    frames = {f["frame_id"]: f for f in report["frames"]}
    by_window: dict[str, list[dict[str, Any]]] = {}
    for det in report["detections"]:
        if det["saliency_uri"] or det["overlay_uri"]:
            window = det["window_id"]
            if window == "asset" and len(frames) == 1:
                window = next(iter(frames))
            by_window.setdefault(window, []).append(det)
    if not by_window:
        return [], set()
    ranked = sorted(by_window, key=lambda w: (-max(_score(d) for d in by_window[w]), w))[:MAX_FRAMES]
    windows = sorted(ranked, key=lambda w: (frames[w]["t_ms"] if w in frames else -1, w))
    out: list[Any] = [PageBreak(), _p("Frames and the maps that explain them", H1),
                      _p(f"The {len(windows)} frames with the strongest module scores (of {len(by_window)} with maps); "
                         "beside each frame, the maps of its two highest-scoring modules (brighter or redder = more "
                         "suspicious). Every map is listed in the JSON report.", SMALL)]
    shown: set[str] = set()
    cell = (WIDTH - 4 * mm) / 3
    for window in windows:
        frame = frames.get(window)
        cells: list[tuple[Any, Any]] = []
        if frame and frame["uri"]:
            shown.add(frame["uri"])
            cells.append((_image(read(frame["uri"]), cell, 42 * mm), _p(f"frame at {frame['t_ms'] / 1000:.2f} s",
                                                                          SMALL)))
        seen: set[str] = set()
        for det in sorted(by_window[window], key=lambda d: (-_score(d), d["module_name"])):
            kind = "overlay_uri" if det["overlay_uri"] else "saliency_uri"
            if det["module_name"] in seen or len(cells) >= 3:
                continue
            seen.add(det["module_name"])
            shown.add(det[kind])
            score = "-" if det["score"] is None else f"{det['score']:.2f}"
            label = "overlay" if kind == "overlay_uri" else "heatmap"
            cells.append((_image(read(det[kind]), cell, 42 * mm), _p(f"{det['module_name']} {label} (score {score})",
                                                                       SMALL)))
        cells += [("", "")] * (3 - len(cells))
        table = Table([[c[0] for c in cells], [c[1] for c in cells]], colWidths=[cell] * 3)
        table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("ALIGN", (0, 0), (-1, -1), "CENTER")]))
        out += [KeepTogether([_p(f"window {window}", MONO), table]), Spacer(1, 3)]
    return out, shown


def _timelines(report: dict[str, Any]) -> list[Any]:
    png = timeline_png(report["timelines"], report["shots"])
    if png is None:
        return []
    return [_p("Timelines", H2), _image(png, WIDTH, 70 * mm),
            _p("Per-frame / per-window scores over time; dashed lines mark detected shot boundaries.", SMALL)]


def _modules(report: dict[str, Any]) -> list[Any]:
    out: list[Any] = [Spacer(1, 10), _p("Per-module evidence", H1)]
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
        out.append(_p(f"Per-window results ({len(windowed)} rows, summarised per module)", H2))
        out.append(_grid(["module", "windows", "scored", "mean score", "max score", "at (s)", "statuses"],
                         _window_summary(windowed),
                         [48 * mm, 16 * mm, 16 * mm, 20 * mm, 20 * mm, 16 * mm, WIDTH - 136 * mm]))
    return out


def _window_summary(windowed: list[dict[str, Any]]) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for name in sorted({d["module_name"] for d in windowed}):
        dets = [d for d in windowed if d["module_name"] == name]
        scored = [d for d in dets if d["score"] is not None]
        statuses = ", ".join(f"{s} {sum(d['status'] == s for d in dets)}" for s in sorted({d["status"] for d in dets}))
        if scored:
            top = max(scored, key=lambda d: (d["score"], -(d["t_start_ms"] or 0)))
            mean = sum(d["score"] for d in scored) / len(scored)
            rows.append([name, len(dets), len(scored), f"{mean:.3f}", f"{top['score']:.3f}",
                         f"{(top['t_start_ms'] or 0) / 1000:.2f}", statuses])
        else:
            rows.append([name, len(dets), 0, "-", "-", "-", statuses])
    return rows


def _appendix(report: dict[str, Any], shown: set[str]) -> list[Any]:
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
    listed = [a for a in report["artifacts"] if a["uri"] in shown]
    if listed:
        out += [_p(f"Images shown in this document ({len(listed)} of {len(report['artifacts'])} artifacts; all are "
                   "in the JSON report)", H2),
                _grid(["URI", "SHA-256"], [[a["uri"], a["sha256"]] for a in listed], [WIDTH - 95 * mm, 95 * mm])]
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

    frames, shown = _frames(report, read)
    story = [*_summary(report, json_sha256), PageBreak(), *_custody(report), Spacer(1, 8), *_metadata(report),
             *frames, *_modules(report), *_appendix(report, shown)]
    doc.build(story, onFirstPage=decorate, onLaterPages=decorate)
    return buf.getvalue()
