"""The PDF evidence report (reportlab, invariant mode): findings first, then the evidence, methods and limits.

Order: summary (verdict, what it means, plain-language findings, what drove it, integrity); for videos the face
evidence (top face crops beside their Grad-CAM maps) and the fused timeline; for images every module's map in a
grid; metadata and C2PA (each flag says whether it entered the verdict); per-module tables; methods and
limitations; identity and custody; appendix (versions, parameters, the SHA-256 of every image shown and of its
full-resolution original in the store). Images are downscaled and re-encoded for the PDF (a 12 MP photo stays
a few hundred kB); the full-resolution frames and maps are referenced by SHA-256. The PDF is rendered from the
JSON report dict plus the artifact bytes it names, so it is a pure function of stored data; the creation date is
the report's ``generated_at`` and reportlab's invariant mode removes the clock and random document ids.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

import cv2
import numpy as np
from PIL import Image as PILImage
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import (
    Image,
    KeepTogether,
    ListFlowable,
    ListItem,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from tamperscope.fusion.policy import LIKELY_MANIPULATED, LIKELY_REAL, UNSURE
from tamperscope.probe.rules.explain import flag_sentence
from tamperscope.report.narrative import BAND_WORDS, band_closed
from tamperscope.report.plots import contributions_png, fused_timeline_png, timeline_png

BAND_COLOURS: dict[str, colors.Color] = {LIKELY_MANIPULATED: colors.HexColor("#b3261e"),
                                         LIKELY_REAL: colors.HexColor("#1e7b34"), UNSURE: colors.HexColor("#8a6d00")}
VIDEO_FRAMES = 4  # classical-detector frames shown for a video (they saturate there; faces come first)
MAX_SIDE_PX = 1000  # longest side of a photo or frame embedded in the PDF
MAP_SIDE_PX = 420  # longest side of an embedded map
JPEG_QUALITY = 80
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
CELLS = TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("ALIGN", (0, 0), (-1, -1), "CENTER"),
                    ("LEFTPADDING", (0, 0), (-1, -1), 1), ("RIGHTPADDING", (0, 0), (-1, -1), 1)])
WIDTH = A4[0] - 30 * mm
Reader = Callable[[str], bytes]


def _p(text: Any, style: ParagraphStyle = BODY) -> Paragraph:
    return Paragraph(escape(str(text)), style)


def _short(value: Any, limit: int = 220) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plain(value: Any, limit: int = 300) -> str:
    """Evidence for people: ``key: value; key: value`` with nested values shortened, not raw JSON."""
    if not isinstance(value, dict):
        return _short(value, limit)
    parts = []
    for key, item in sorted(value.items()):
        if item in (None, "", [], {}):
            continue
        shown = f"{item:.3g}" if isinstance(item, float) else _short(item, 80)
        parts.append(f"{key.replace('_', ' ')}: {shown}")
    return _short("; ".join(parts) or "-", limit)


def _kv(rows: list[tuple[str, Any]], style: ParagraphStyle = SMALL) -> Table:
    table = Table([[_p(k, SMALL), _p(_short(v, 400), style)] for k, v in rows], colWidths=[38 * mm, WIDTH - 38 * mm])
    table.setStyle(KV)
    return table


def _grid(header: list[str], rows: list[list[Any]], widths: list[float]) -> Table:
    data = [[_p(h, SMALL) for h in header]] + [[c if isinstance(c, Paragraph) else _p(c, SMALL) for c in row]
                                               for row in rows]
    table = Table(data, colWidths=widths, repeatRows=1)
    table.setStyle(GRID)
    return table


def downscaled(data: bytes, max_side: int) -> bytes:
    """``data`` (any image PIL reads) with its longest side at most ``max_side``, re-encoded as JPEG, which
    reportlab embeds as it is (a PNG would be stored as deflated raw pixels, several times larger)."""
    with PILImage.open(io.BytesIO(data)) as opened:
        opened.load()
        img: PILImage.Image = opened
        if img.mode not in ("RGB", "L"):
            img = img.convert("RGB")
        if max(img.size) > max_side:
            scale = max_side / max(img.size)
            img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                             PILImage.Resampling.LANCZOS)
        out = io.BytesIO()
        img.save(out, format="JPEG", quality=JPEG_QUALITY, optimize=True)
        return out.getvalue()


def _image(data: bytes, max_w: float, max_h: float) -> Image:
    img = Image(io.BytesIO(data))
    scale = min(max_w / img.imageWidth, max_h / img.imageHeight)
    img.drawWidth, img.drawHeight = img.imageWidth * scale, img.imageHeight * scale
    return img


def gradcam_overlay(crop: bytes, saliency: bytes, alpha: float = 0.45) -> bytes:
    """The face crop with its Grad-CAM map resized onto it in the JET colour map (PNG bytes)."""
    face = cv2.imdecode(np.frombuffer(crop, np.uint8), cv2.IMREAD_COLOR)
    heat = cv2.imdecode(np.frombuffer(saliency, np.uint8), cv2.IMREAD_GRAYSCALE)
    if face is None or heat is None:
        return crop
    heat = cv2.resize(heat, (face.shape[1], face.shape[0]), interpolation=cv2.INTER_LINEAR)
    blended = cv2.addWeighted(face, 1.0 - alpha, cv2.applyColorMap(heat, cv2.COLORMAP_JET), alpha, 0.0)
    ok, buf = cv2.imencode(".png", blended)
    return bytes(buf) if ok else crop


class _Images:
    """Reads artifacts, downscales them for the PDF and remembers which were shown (for the appendix); names each by
    the SHA-256 the JSON report lists for it."""

    def __init__(self, read: Reader, artifacts: list[dict[str, str]]) -> None:
        self.read = read
        self.digests = {a["uri"]: a["sha256"] for a in artifacts}
        self.shown: set[str] = set()

    def raw(self, uri: str) -> bytes:
        """The stored bytes of ``uri``, noted as shown."""
        self.shown.add(uri)
        return self.read(uri)

    def get(self, uri: str, max_side: int) -> bytes:
        """``uri`` downscaled for the PDF, noted as shown."""
        return downscaled(self.raw(uri), max_side)

    def sha(self, uri: str) -> str:
        """A caption's short form of the listed SHA-256 of ``uri`` (empty when it is not listed)."""
        digest = self.digests.get(uri)
        return f"sha256 {digest[:12]}…" if digest else ""


def _verdict_block(report: dict[str, Any]) -> list[Any]:
    verdict = report["verdict"]
    if verdict is None:
        return [_p("No verdict: the fusion stage has not run for this asset. The detections below are individual "
                   "module scores and flags, not a calibrated decision.", BIG)]
    band = verdict["band"]
    prob = verdict["probability"]
    if band is None or prob is None:
        return [_p("No calibrated verdict", BIG), _p((verdict.get("evidence") or {}).get("reason") or "")]
    colour = BAND_COLOURS.get(band, colors.black).hexval()[2:]
    calibration = (report.get("fusion_model") or {}).get("calibration") or {}
    high = verdict["threshold"]
    threshold = "closed (no threshold reached the target precision)" if band_closed(high) else high
    out: list[Any] = [Paragraph(f'<font color="#{colour}"><b>{escape(BAND_WORDS.get(band, band))}</b></font>'
                                f"  p = {prob:.3f}", BIG),
                      _kv([("probability of manipulation", f"{prob:.4f} (calibrated)"),
                           ("band", BAND_WORDS.get(band, band)), ("'likely manipulated' threshold", threshold),
                           ("threshold policy", verdict["policy_version"]),
                           ("fusion model", f"{verdict['model_id']} (branches used: "
                                            f"{', '.join((report.get('fusion_model') or {}).get('branches') or [])})"),
                           ("model's out-of-fold AUC", f"{calibration.get('auc')} on {calibration.get('n')} cases, "
                                                       f"{calibration.get('positives')} manipulated")])]
    png = contributions_png((verdict.get("evidence") or {}).get("contributions") or {})
    if png is not None:
        out += [Spacer(1, 4), _p("What moved p: each feature's signed contribution to the fused logit.", SMALL),
                _image(png, WIDTH * 0.7, 40 * mm)]
    return out


def _summary(report: dict[str, Any], json_sha256: str) -> list[Any]:
    asset, case = report["asset"], report.get("case") or {}
    out: list[Any] = [_p("tamperscope evidence report", H1),
                      _p(f"{asset['original_name']}  ·  asset {asset['asset_id']}  ·  {asset['media_type']}  ·  data "
                         f"as of {report['generated_at']}", BODY)]
    if case:
        out.append(_p(f"Case {case.get('case_id') or '-'}  ·  examiner {case.get('examiner') or '-'}  ·  recorded "
                      f"{str(case.get('assigned_at'))[:19]} by {case.get('assigned_by')}", BODY))
    out += [Spacer(1, 6), *_verdict_block(report), _p("Findings", H2),
            ListFlowable([ListItem(_p(f), leftIndent=10) for f in report["summary"]["findings"]],
                         bulletType="bullet", start="•", leftIndent=10),
            _p("Only 'likely manipulated' is a positive finding; 'unsure' means the tool abstains. Methods, measured "
               "accuracy and limitations are at the end of this report.", SMALL),
            _p("Integrity", H2),
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


def _faces(report: dict[str, Any], images: _Images) -> list[Any]:
    """Top face crops beside their Grad-CAM maps (overlaid), strongest first, three pairs per row."""
    faces = [f for f in report.get("face_evidence") or [] if f["crop_uri"]]
    if not faces:
        return []
    out: list[Any] = [_p("Face evidence", H1 if report["asset"]["media_type"] == "video" else H2),
                      _p("The faces the face model scored highest, each as its aligned crop and the same crop with its "
                         "Grad-CAM map (red = regions that raised the score most). p is the frame model's calibrated "
                         "probability for that face; a video's verdict aggregates every face (top-10 % mean and "
                         "median).", SMALL)]
    cell = WIDTH / 6
    rows: list[list[Any]] = []
    captions: list[list[Any]] = []
    for face in faces:
        crop = images.raw(face["crop_uri"])
        overlay = downscaled(gradcam_overlay(crop, images.raw(face["saliency_uri"])), MAP_SIDE_PX)
        pair = [_image(downscaled(crop, MAP_SIDE_PX), cell - 2, cell - 2), _image(overlay, cell - 2,
                                                                                               cell - 2)]
        caption = [_p(f"{face['t_ms'] / 1000:.2f} s, track {face['track_id']}", SMALL),
                   _p(f"p = {face['score']:.3f}", SMALL)]
        if not rows or len(rows[-1]) >= 6:
            rows.append([])
            captions.append([])
        rows[-1] += pair
        captions[-1] += caption
    data: list[list[Any]] = []
    for row, caption in zip(rows, captions, strict=True):
        data += [row + [""] * (6 - len(row)), caption + [""] * (6 - len(caption))]
    table = Table(data, colWidths=[cell] * 6)
    table.setStyle(CELLS)
    return [*out, table]


def _fused_timeline(report: dict[str, Any]) -> list[Any]:
    timelines = report["timelines"]
    fused = timelines.get("fusion.window") or []
    calibration = (report.get("fusion_model") or {}).get("calibration") or {}
    n, positives = calibration.get("n"), calibration.get("positives")
    base = positives / n if n and positives is not None else None
    png = fused_timeline_png(fused, {k: v for k, v in timelines.items() if k.startswith("deep.")}, report["shots"],
                             high=(report["verdict"] or {}).get("threshold"), base_rate=base)
    if png is None:
        return []
    return [_p("Fused timeline", H2), _image(png, WIDTH, 80 * mm),
            _p("Top: the fused probability per clip window (the verdict's model applied window by window); the grey "
               "span is the strongest window, red spans would be windows in the 'likely manipulated' band, the dotted "
               "line the share of manipulated videos in calibration. Bottom: the deep branches' scores. Dashed lines "
               "are shot boundaries.", SMALL)]


def _map_uri(det: dict[str, Any]) -> tuple[str, str] | None:
    if det["overlay_uri"]:
        return det["overlay_uri"], "overlay"
    if det["saliency_uri"]:
        return det["saliency_uri"], "heatmap"
    return None


def _image_maps(report: dict[str, Any], images: _Images) -> list[Any]:
    """The image, then every module's map in a compact grid (five per row), strongest first."""
    frame = report["frames"][0] if report["frames"] else None
    maps = [d for d in report["detections"] if _map_uri(d) and not d["module_name"].startswith("deep.")]
    if frame is None and not maps:
        return []
    out: list[Any] = [_p("The image and every module's map", H1)]
    if frame and frame["uri"]:
        out += [_image(images.get(frame["uri"], MAX_SIDE_PX), WIDTH, 80 * mm),
                _p(f"The analysed image, downscaled for this PDF (the frame the detectors saw: "
                   f"{images.sha(frame['uri'])}; the original file: sha256 {report['asset']['sha256'][:12]}…, both "
                   "in the evidence store).", SMALL)]
    maps.sort(key=lambda d: (-_score(d), d["module_name"]))
    per_row = 5
    cell = WIDTH / per_row
    data: list[list[Any]] = []
    for start in range(0, len(maps), per_row):
        row, captions = [], []
        for det in maps[start:start + per_row]:
            uri, kind = _map_uri(det)  # type: ignore[misc]
            row.append(_image(images.get(uri, MAP_SIDE_PX), cell - 4, cell - 4))
            score = "-" if det["score"] is None else f"{det['score']:.2f}"
            captions.append(_p(f"{det['module_name'].removeprefix('forensics.')} {kind}, score {score}; "
                               f"{images.sha(uri)}", SMALL))
        data += [row + [""] * (per_row - len(row)), captions + [""] * (per_row - len(captions))]
    if data:
        table = Table(data, colWidths=[cell] * per_row)
        table.setStyle(CELLS)
        out += [Spacer(1, 4), _p("Maps (brighter or redder = more suspicious to that module; each module's method and "
                                 "failure modes are under Methods).", SMALL), table]
    return out


def _video_frames(report: dict[str, Any], images: _Images) -> list[Any]:
    """A few frames with the strongest classical-detector maps (secondary evidence on video)."""
    frames = {f["frame_id"]: f for f in report["frames"]}
    by_window: dict[str, list[dict[str, Any]]] = {}
    for det in report["detections"]:
        if _map_uri(det) and det["window_id"] in frames and not det["module_name"].startswith("deep."):
            by_window.setdefault(det["window_id"], []).append(det)
    if not by_window:
        return []
    ranked = sorted(by_window, key=lambda w: (-max(_score(d) for d in by_window[w]), w))[:VIDEO_FRAMES]
    windows = sorted(ranked, key=lambda w: (frames[w]["t_ms"], w))
    out: list[Any] = [_p("Frames with classical-detector maps", H2),
                      _p(f"{len(windows)} of the {len(by_window)} frames the classical detectors mapped, with their "
                         "two strongest maps. On video these detectors saturate (they light up backgrounds), so read "
                         "these as context, not as the face evidence above.", SMALL)]
    cell = WIDTH / 3
    for window in windows:
        frame = frames[window]
        cells: list[tuple[Any, Any]] = []
        if frame["uri"]:
            cells.append((_image(images.get(frame["uri"], MAP_SIDE_PX), cell - 4, 38 * mm),
                          _p(f"frame at {frame['t_ms'] / 1000:.2f} s", SMALL)))
        for det in sorted(by_window[window], key=lambda d: (-_score(d), d["module_name"]))[:2]:
            uri, kind = _map_uri(det)  # type: ignore[misc]
            score = "-" if det["score"] is None else f"{det['score']:.2f}"
            cells.append((_image(images.get(uri, MAP_SIDE_PX), cell - 4, 38 * mm),
                          _p(f"{det['module_name']} {kind} (score {score})", SMALL)))
        cells += [("", "")] * (3 - len(cells))
        table = Table([[c[0] for c in cells], [c[1] for c in cells]], colWidths=[cell] * 3)
        table.setStyle(CELLS)
        out += [KeepTogether([table]), Spacer(1, 3)]
    return out


def _score(det: dict[str, Any]) -> float:
    return -1.0 if det["score"] is None else float(det["score"])


def _metadata(report: dict[str, Any]) -> list[Any]:
    out: list[Any] = [_p("Metadata and provenance", H1)]
    flags = report["metadata_flags"]
    if not flags:
        out.append(_p("No metadata rule raised a flag."))
    else:
        flag_rows = [[f["module_name"], flag_sentence(f["module_name"], f["evidence"]), plain(f["evidence"], 300),
                      "yes" if f["entered_verdict"] else "no"] for f in flags]
        out.append(_grid(["rule", "what it means", "the values behind it", "entered the verdict"], flag_rows,
                         [32 * mm, 45 * mm, WIDTH - 99 * mm, 22 * mm]))
    fusion = report.get("fusion_model")
    if fusion:
        uses = ", ".join(f"{b} ({s})" for b, s in sorted(fusion["branch_stages"].items()))
        out.append(_p(f"The verdict's model {fusion['model_id']} uses the branches {uses}; a flag entered the verdict "
                      "only when its stage is one of them. The others are context for the examiner.", SMALL))
    prov = report.get("provenance") or {}
    manifest = prov.get("manifest") or {}
    out.append(_p("C2PA content credentials", H2))
    status = prov.get("c2pa_status") or "not checked"
    rows: list[tuple[str, Any]] = [("status", status), ("entered the verdict", "yes" if prov.get("entered_verdict")
                                                        else "no")]
    if manifest:
        rows += [("signer", manifest.get("signer") or "-"), ("signed at", manifest.get("signed_at") or "-"),
                 ("claim generator", manifest.get("claim_generator") or "-"),
                 ("actions", ", ".join(manifest.get("actions") or []) or "-"),
                 ("ingredients", ", ".join(manifest.get("ingredients") or []) or "-"),
                 ("failure codes", ", ".join(manifest.get("failure_codes") or []) or "-")]
    out.append(_kv(rows))
    out.append(_p("A valid manifest shows who signed the file and which edits they declared; it does not show that "
                  "the content is true. 'absent' means the file carries no manifest, which is the common case.", SMALL))
    external = report["tools"]["external"]
    if external:
        out += [_p("Tools that read the metadata", H2), _kv(list(external.items()))]
    return out


def _modules(report: dict[str, Any]) -> list[Any]:
    out: list[Any] = [_p("Per-module evidence", H1)]
    png = (timeline_png({k: v for k, v in report["timelines"].items() if k != "fusion.window"}, report["shots"])
           if report["asset"]["media_type"] == "video" else None)  # an image's "timeline" is one point
    if png is not None:
        out += [_p("Every module over time", H2), _image(png, WIDTH, 70 * mm),
                _p("Per-frame / per-window scores over time; dashed lines mark detected shot boundaries.", SMALL)]
    asset_level = [d for d in report["detections"] if d["window_id"] == "asset"]
    out.append(_p("Whole-asset results", H2))
    out.append(_grid(["module", "status", "score", "band", "evidence"],
                     [[d["module_name"], d["status"], "-" if d["score"] is None else f"{d['score']:.3f}",
                       BAND_WORDS.get(d["band"] or "", ""), plain(d["evidence"], 300)] for d in asset_level],
                     [40 * mm, 22 * mm, 13 * mm, 22 * mm, WIDTH - 97 * mm]))
    windowed = [m for m in report["modules_summary"] if m["rows"] > sum(d["module_name"] == m["module_name"]
                                                                        for d in asset_level)]
    if windowed:
        out.append(_p("Per-frame and per-window results, summarised per module", H2))
        rows = [[m["module_name"], m["rows"], m["scored"], "-" if m["mean"] is None else f"{m['mean']:.3f}",
                 "-" if m["max"] is None else f"{m['max']:.3f}",
                 "-" if m["max_at_ms"] is None else f"{m['max_at_ms'] / 1000:.2f}",
                 ", ".join(f"{k} {v}" for k, v in m["statuses"].items())] for m in windowed]
        out.append(_grid(["module", "rows", "scored", "mean score", "max score", "at (s)", "statuses"], rows,
                         [48 * mm, 14 * mm, 14 * mm, 20 * mm, 20 * mm, 16 * mm, WIDTH - 132 * mm]))
    return out


def _methods(report: dict[str, Any]) -> list[Any]:
    out: list[Any] = [PageBreak(), _p("Methods", H1),
                      _p("What each family of modules that ran on this file does, how accurate it measured on labelled "
                         "data (figures from the project's model card and threshold-policy documents), when it is "
                         "known to fail, and whether it fed the verdict.", SMALL)]
    rows = [[Paragraph(f"<b>{escape(m['family'])}</b><br/>{escape(', '.join(m['modules']))}", SMALL), m["what"],
             m["measured"], m["fails_when"], "yes" if m["in_verdict"] else "no"] for m in report["methods"]]
    out.append(_grid(["module", "what it does", "measured", "known failure modes", "in verdict"], rows,
                     [30 * mm, 42 * mm, 45 * mm, WIDTH - 133 * mm, 16 * mm]))
    out += [_p("Limitations", H1),
            ListFlowable([ListItem(_p(text), leftIndent=10) for text in report["limitations"]], bulletType="bullet",
                         start="•", leftIndent=10)]
    return out


def _custody(report: dict[str, Any]) -> list[Any]:
    asset = report["asset"]
    out: list[Any] = [PageBreak(), _p("Asset identity and custody", H1),
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


def _appendix(report: dict[str, Any], images: _Images) -> list[Any]:
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
    listed = [(uri, images.digests[uri]) for uri in sorted(images.shown) if uri in images.digests]
    if listed:
        out += [_p(f"Images shown in this document ({len(listed)} of {len(report['artifacts'])} artifacts)", H2),
                _p("Shown downscaled; the full-resolution originals are in the evidence store under these URIs, "
                   "with these SHA-256 digests (every artifact is listed in the JSON report).", SMALL),
                _grid(["store URI", "SHA-256 of the full-resolution original"], [[u, d] for u, d in listed],
                      [WIDTH - 95 * mm, 95 * mm])]
    return out


def render_pdf(report: dict[str, Any], json_sha256: str, read: Reader) -> bytes:
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
        case = (report.get("case") or {}).get("case_id")
        prefix = f"case {case}  ·  " if case else ""
        canvas.drawString(15 * mm, 8 * mm, f"{prefix}asset {asset['sha256']}  ·  JSON report {json_sha256[:16]}…")
        canvas.drawRightString(A4[0] - 15 * mm, 8 * mm, f"page {document.page}")
        canvas.restoreState()

    images = _Images(read, report["artifacts"])
    if asset["media_type"] == "video":
        evidence = [*_faces(report, images), *_fused_timeline(report), *_video_frames(report, images)]
    else:
        evidence = [*_image_maps(report, images), *_faces(report, images)]
    story = [*_summary(report, json_sha256)]
    if evidence:
        story += [PageBreak(), *evidence]
    story += [PageBreak(), *_metadata(report), Spacer(1, 8), *_modules(report), *_methods(report),
              *_custody(report), *_appendix(report, images)]
    doc.build(story, onFirstPage=decorate, onLaterPages=decorate)
    return buf.getvalue()
