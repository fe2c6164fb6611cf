"""The PDF report's visual evidence: face crops beside their Grad-CAM maps and the fused timeline for a video,
every module's map for an image, and a few frames with classical-detector maps for a video."""

from __future__ import annotations

from typing import Any

from reportlab.lib.units import mm
from reportlab.platypus import KeepTogether, Spacer, Table

from tamperscope.report.pdf_images import MAP_SIDE_PX, MAX_SIDE_PX, ShownImages, downscaled, gradcam_overlay
from tamperscope.report.pdf_layout import CELLS, H1, H2, SMALL, WIDTH, para, picture
from tamperscope.report.plots import fused_timeline_png

VIDEO_FRAMES = 4  # classical-detector frames shown for a video (they saturate there; faces come first)


def face_section(report: dict[str, Any], images: ShownImages) -> list[Any]:
    """Top face crops beside their Grad-CAM maps (overlaid), strongest first, three pairs per row."""
    faces = [f for f in report.get("face_evidence") or [] if f["crop_uri"]]
    if not faces:
        return []
    out: list[Any] = [para("Face evidence", H1 if report["asset"]["media_type"] == "video" else H2),
                      para("The faces the face model scored highest, each as its aligned crop and the same crop with "
                           "its Grad-CAM map (red = regions that raised the score most). p is the frame model's "
                           "calibrated probability for that face; a video's verdict aggregates every face (top-10 % "
                           "mean and median).", SMALL)]
    cell = WIDTH / 6
    rows: list[list[Any]] = []
    captions: list[list[Any]] = []
    for face in faces:
        crop = images.raw(face["crop_uri"])
        overlay = downscaled(gradcam_overlay(crop, images.raw(face["saliency_uri"])), MAP_SIDE_PX)
        pair = [picture(downscaled(crop, MAP_SIDE_PX), cell - 2, cell - 2), picture(overlay, cell - 2, cell - 2)]
        caption = [para(f"{face['t_ms'] / 1000:.2f} s, track {face['track_id']}", SMALL),
                   para(f"p = {face['score']:.3f}", SMALL)]
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


def fused_timeline_section(report: dict[str, Any]) -> list[Any]:
    """The fused probability per clip window over the deep branches' scores (empty when there is nothing to plot)."""
    timelines = report["timelines"]
    fused = timelines.get("fusion.window") or []
    calibration = (report.get("fusion_model") or {}).get("calibration") or {}
    n, positives = calibration.get("n"), calibration.get("positives")
    base = positives / n if n and positives is not None else None
    png = fused_timeline_png(fused, {k: v for k, v in timelines.items() if k.startswith("deep.")}, report["shots"],
                             high=(report["verdict"] or {}).get("threshold"), base_rate=base)
    if png is None:
        return []
    return [para("Fused timeline", H2), picture(png, WIDTH, 80 * mm),
            para("Top: the fused probability per clip window (the verdict's model applied window by window); the "
                 "grey span is the strongest window, red spans would be windows in the 'likely manipulated' band, the "
                 "dotted line the share of manipulated videos in calibration. Bottom: the deep branches' scores. "
                 "Dashed lines are shot boundaries.", SMALL)]


def _map_uri(det: dict[str, Any]) -> tuple[str, str] | None:
    if det["overlay_uri"]:
        return det["overlay_uri"], "overlay"
    if det["saliency_uri"]:
        return det["saliency_uri"], "heatmap"
    return None


def image_maps_section(report: dict[str, Any], images: ShownImages) -> list[Any]:
    """The image, then every module's map in a compact grid (five per row), strongest first."""
    frame = report["frames"][0] if report["frames"] else None
    maps = [d for d in report["detections"] if _map_uri(d) and not d["module_name"].startswith("deep.")]
    if frame is None and not maps:
        return []
    out: list[Any] = [para("The image and every module's map", H1)]
    if frame and frame["uri"]:
        out += [picture(images.get(frame["uri"], MAX_SIDE_PX), WIDTH, 80 * mm),
                para(f"The analysed image, downscaled for this PDF (the frame the detectors saw: "
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
            row.append(picture(images.get(uri, MAP_SIDE_PX), cell - 4, cell - 4))
            score = "-" if det["score"] is None else f"{det['score']:.2f}"
            captions.append(para(f"{det['module_name'].removeprefix('forensics.')} {kind}, score {score}; "
                                 f"{images.sha(uri)}", SMALL))
        data += [row + [""] * (per_row - len(row)), captions + [""] * (per_row - len(captions))]
    if data:
        table = Table(data, colWidths=[cell] * per_row)
        table.setStyle(CELLS)
        out += [Spacer(1, 4), para("Maps (brighter or redder = more suspicious to that module; each module's method "
                                   "and failure modes are under Methods).", SMALL), table]
    return out


def video_frames_section(report: dict[str, Any], images: ShownImages) -> list[Any]:
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
    out: list[Any] = [para("Frames with classical-detector maps", H2),
                      para(f"{len(windows)} of the {len(by_window)} frames the classical detectors mapped, with their "
                           "two strongest maps. On video these detectors saturate (they light up backgrounds), so read "
                           "these as context, not as the face evidence above.", SMALL)]
    cell = WIDTH / 3
    for window in windows:
        frame = frames[window]
        cells: list[tuple[Any, Any]] = []
        if frame["uri"]:
            cells.append((picture(images.get(frame["uri"], MAP_SIDE_PX), cell - 4, 38 * mm),
                          para(f"frame at {frame['t_ms'] / 1000:.2f} s", SMALL)))
        for det in sorted(by_window[window], key=lambda d: (-_score(d), d["module_name"]))[:2]:
            uri, kind = _map_uri(det)  # type: ignore[misc]
            score = "-" if det["score"] is None else f"{det['score']:.2f}"
            cells.append((picture(images.get(uri, MAP_SIDE_PX), cell - 4, 38 * mm),
                          para(f"{det['module_name']} {kind} (score {score})", SMALL)))
        cells += [("", "")] * (3 - len(cells))
        table = Table([[c[0] for c in cells], [c[1] for c in cells]], colWidths=[cell] * 3)
        table.setStyle(CELLS)
        out += [KeepTogether([table]), Spacer(1, 3)]
    return out


def _score(det: dict[str, Any]) -> float:
    return -1.0 if det["score"] is None else float(det["score"])
