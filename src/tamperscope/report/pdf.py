"""The PDF evidence report (reportlab, invariant mode): findings first, then the evidence, methods and limits.

Order: summary (verdict, what it means, plain-language findings, what drove it, integrity); for videos the face
evidence (top face crops beside their Grad-CAM maps) and the fused timeline; for images every module's map in a
grid; metadata and C2PA (each flag says whether it entered the verdict); per-module tables; methods and
limitations; identity and custody; appendix (versions, parameters, the SHA-256 of every image shown and of its
full-resolution original in the store). Images are downscaled and re-encoded for the PDF (a 12 MP photo stays
a few hundred kB); the full-resolution frames and maps are referenced by SHA-256. The PDF is rendered from the
JSON report dict plus the artifact bytes it names, so it is a pure function of stored data; the creation date is
the report's ``generated_at`` and reportlab's invariant mode removes the clock and random document ids.

The sections are built in :mod:`~tamperscope.report.pdf_summary` (first page), :mod:`~tamperscope.report.pdf_evidence`
(maps, faces, timeline) and :mod:`~tamperscope.report.pdf_details` (metadata to appendix), with the styles of
:mod:`~tamperscope.report.pdf_layout` and the images of :mod:`~tamperscope.report.pdf_images`.
"""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.platypus import PageBreak, SimpleDocTemplate, Spacer

from tamperscope.report.pdf_details import (
    appendix_section,
    custody_section,
    metadata_section,
    methods_section,
    modules_section,
)
from tamperscope.report.pdf_evidence import (
    face_section,
    fused_timeline_section,
    image_maps_section,
    video_frames_section,
)
from tamperscope.report.pdf_images import Reader, ShownImages
from tamperscope.report.pdf_summary import summary_section


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

    images = ShownImages(read, report["artifacts"])
    if asset["media_type"] == "video":
        evidence = [*face_section(report, images), *fused_timeline_section(report),
                    *video_frames_section(report, images)]
    else:
        evidence = [*image_maps_section(report, images), *face_section(report, images)]
    story = [*summary_section(report, json_sha256)]
    if evidence:
        story += [PageBreak(), *evidence]
    story += [PageBreak(), *metadata_section(report), Spacer(1, 8), *modules_section(report), *methods_section(report),
              *custody_section(report), *appendix_section(report, images)]
    doc.build(story, onFirstPage=decorate, onLaterPages=decorate)
    return buf.getvalue()
