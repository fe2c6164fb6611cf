"""The PDF report's reference sections after the evidence: metadata and C2PA, per-module tables, methods and
limitations, asset identity and custody, and the appendix of versions, parameters and shown images."""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib.units import mm
from reportlab.platypus import ListFlowable, ListItem, PageBreak, Paragraph

from tamperscope.probe.rules.explain import flag_sentence
from tamperscope.report.narrative import BAND_WORDS
from tamperscope.report.pdf_images import ShownImages
from tamperscope.report.pdf_layout import H1, H2, SMALL, WIDTH, grid_table, kv_table, para, picture, plain, shorten
from tamperscope.report.plots import timeline_png


def metadata_section(report: dict[str, Any]) -> list[Any]:
    """Metadata flags (each saying whether it entered the verdict), C2PA credentials and the tools that read them."""
    out: list[Any] = [para("Metadata and provenance", H1)]
    flags = report["metadata_flags"]
    if not flags:
        out.append(para("No metadata rule raised a flag."))
    else:
        flag_rows = [[f["module_name"], flag_sentence(f["module_name"], f["evidence"]), plain(f["evidence"], 300),
                      "yes" if f["entered_verdict"] else "no"] for f in flags]
        out.append(grid_table(["rule", "what it means", "the values behind it", "entered the verdict"], flag_rows,
                              [32 * mm, 45 * mm, WIDTH - 99 * mm, 22 * mm]))
    fusion = report.get("fusion_model")
    if fusion:
        uses = ", ".join(f"{b} ({s})" for b, s in sorted(fusion["branch_stages"].items()))
        out.append(para(f"The verdict's model {fusion['model_id']} uses the branches {uses}; a flag entered the "
                        "verdict only when its stage is one of them. The others are context for the examiner.", SMALL))
    prov = report.get("provenance") or {}
    manifest = prov.get("manifest") or {}
    out.append(para("C2PA content credentials", H2))
    status = prov.get("c2pa_status") or "not checked"
    rows: list[tuple[str, Any]] = [("status", status), ("entered the verdict", "yes" if prov.get("entered_verdict")
                                                        else "no")]
    if manifest:
        rows += [("signer", manifest.get("signer") or "-"), ("signed at", manifest.get("signed_at") or "-"),
                 ("claim generator", manifest.get("claim_generator") or "-"),
                 ("actions", ", ".join(manifest.get("actions") or []) or "-"),
                 ("ingredients", ", ".join(manifest.get("ingredients") or []) or "-"),
                 ("failure codes", ", ".join(manifest.get("failure_codes") or []) or "-")]
    out.append(kv_table(rows))
    out.append(para("A valid manifest shows who signed the file and which edits they declared; it does not show "
                    "that the content is true. 'absent' means the file carries no manifest, which is the common case.",
                    SMALL))
    external = report["tools"]["external"]
    if external:
        out += [para("Tools that read the metadata", H2), kv_table(list(external.items()))]
    return out


def modules_section(report: dict[str, Any]) -> list[Any]:
    """Every module's results: the timeline of a video, whole-asset rows, and per-frame rows summarised per module."""
    out: list[Any] = [para("Per-module evidence", H1)]
    png = (timeline_png({k: v for k, v in report["timelines"].items() if k != "fusion.window"}, report["shots"])
           if report["asset"]["media_type"] == "video" else None)  # an image's "timeline" is one point
    if png is not None:
        out += [para("Every module over time", H2), picture(png, WIDTH, 70 * mm),
                para("Per-frame / per-window scores over time; dashed lines mark detected shot boundaries.", SMALL)]
    asset_level = [d for d in report["detections"] if d["window_id"] == "asset"]
    out.append(para("Whole-asset results", H2))
    out.append(grid_table(["module", "status", "score", "band", "evidence"],
                          [[d["module_name"], d["status"], "-" if d["score"] is None else f"{d['score']:.3f}",
                            BAND_WORDS.get(d["band"] or "", ""), plain(d["evidence"], 300)] for d in asset_level],
                          [40 * mm, 22 * mm, 13 * mm, 22 * mm, WIDTH - 97 * mm]))
    windowed = [m for m in report["modules_summary"] if m["rows"] > sum(d["module_name"] == m["module_name"]
                                                                        for d in asset_level)]
    if windowed:
        out.append(para("Per-frame and per-window results, summarised per module", H2))
        rows = [[m["module_name"], m["rows"], m["scored"], "-" if m["mean"] is None else f"{m['mean']:.3f}",
                 "-" if m["max"] is None else f"{m['max']:.3f}",
                 "-" if m["max_at_ms"] is None else f"{m['max_at_ms'] / 1000:.2f}",
                 ", ".join(f"{k} {v}" for k, v in m["statuses"].items())] for m in windowed]
        out.append(grid_table(["module", "rows", "scored", "mean score", "max score", "at (s)", "statuses"], rows,
                              [48 * mm, 14 * mm, 14 * mm, 20 * mm, 20 * mm, 16 * mm, WIDTH - 132 * mm]))
    return out


def methods_section(report: dict[str, Any]) -> list[Any]:
    """What each family of modules does, its measured accuracy and failure modes; then the limitations."""
    out: list[Any] = [PageBreak(), para("Methods", H1),
                      para("What each family of modules that ran on this file does, how accurate it measured on "
                           "labelled data (figures from the project's model card and threshold-policy documents), when "
                           "it is known to fail, and whether it fed the verdict.", SMALL)]
    rows = [[Paragraph(f"<b>{escape(m['family'])}</b><br/>{escape(', '.join(m['modules']))}", SMALL), m["what"],
             m["measured"], m["fails_when"], "yes" if m["in_verdict"] else "no"] for m in report["methods"]]
    out.append(grid_table(["module", "what it does", "measured", "known failure modes", "in verdict"], rows,
                          [30 * mm, 42 * mm, 45 * mm, WIDTH - 133 * mm, 16 * mm]))
    out += [para("Limitations", H1),
            ListFlowable([ListItem(para(text), leftIndent=10) for text in report["limitations"]], bulletType="bullet",
                         start="•", leftIndent=10)]
    return out


def custody_section(report: dict[str, Any]) -> list[Any]:
    """The asset's identity (hash, size, format, upload) and its audit events."""
    asset = report["asset"]
    out: list[Any] = [PageBreak(), para("Asset identity and custody", H1),
                      kv_table([("original name", asset["original_name"]), ("SHA-256", asset["sha256"]),
                                ("size (bytes)", asset["size_bytes"]), ("media type", asset["media_type"]),
                                ("MIME / container", f"{asset['mime']} / {asset['container']}"),
                                ("dimensions", f"{asset['width']} x {asset['height']}"),
                                ("duration (ms)", asset["duration_ms"]), ("uploaded by", asset["uploaded_by"]),
                                ("upload time", asset["upload_time"]), ("source", asset["source"]),
                                ("storage key", asset["storage_key"]),
                                ("trailing bytes (after the image or container)",
                                 (asset.get("structure") or {}).get("trailing_bytes"))]),
                      para("Audit events", H2)]
    rows = [[e["event_id"], e["when"][:19], e["who"], e["action"], e["hash"][:16] + "…"]
            for e in report["custody"]["events"]]
    out.append(grid_table(["#", "when (UTC)", "who", "action", "hash"], rows,
                          [10 * mm, 36 * mm, 30 * mm, 50 * mm, WIDTH - 126 * mm]))
    return out


def appendix_section(report: dict[str, Any], images: ShownImages) -> list[Any]:
    """Versions and parameters of every stage, module and package, and the digests of the images shown."""
    tools = report["tools"]
    out: list[Any] = [PageBreak(), para("Appendix: versions and parameters", H1),
                      kv_table([("tamperscope", tools["tamperscope"]), ("schema", report["schema_version"])]),
                      para("Stages", H2),
                      grid_table(["stage", "version", "status", "parameters"],
                                 [[s["stage"], s["version"], s["status"], shorten(s["params"], 500)]
                                  for s in tools["stages"]], [25 * mm, 25 * mm, 15 * mm, WIDTH - 65 * mm]),
                      para("Modules", H2),
                      grid_table(["module", "version", "stage"],
                                 [[m["module_name"], m["module_version"], m["stage"]] for m in tools["modules"]],
                                 [70 * mm, 60 * mm, WIDTH - 130 * mm]),
                      para("Python packages", H2), kv_table(list(tools["python_packages"].items()))]
    listed = [(uri, images.digests[uri]) for uri in sorted(images.shown) if uri in images.digests]
    if listed:
        out += [para(f"Images shown in this document ({len(listed)} of {len(report['artifacts'])} artifacts)", H2),
                para("Shown downscaled; the full-resolution originals are in the evidence store under these URIs, "
                     "with these SHA-256 digests (every artifact is listed in the JSON report).", SMALL),
                grid_table(["store URI", "SHA-256 of the full-resolution original"], [[u, d] for u, d in listed],
                           [WIDTH - 95 * mm, 95 * mm])]
    return out
