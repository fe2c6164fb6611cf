"""The PDF report's typography and layout helpers: paragraph and table styles, key-value and header tables,
pictures fitted into a box, and evidence values written for people rather than as raw JSON."""

from __future__ import annotations

import io
import json
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Image, Paragraph, Table, TableStyle

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


def para(text: Any, style: ParagraphStyle = BODY) -> Paragraph:
    """A paragraph of ``text`` as it is (escaped: no markup)."""
    return Paragraph(escape(str(text)), style)


def shorten(value: Any, limit: int = 220) -> str:
    """``value`` as text (JSON unless a string), cut to ``limit`` characters with an ellipsis."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plain(value: Any, limit: int = 300) -> str:
    """Evidence for people: ``key: value; key: value`` with nested values shortened, not raw JSON."""
    if not isinstance(value, dict):
        return shorten(value, limit)
    parts = []
    for key, item in sorted(value.items()):
        if item in (None, "", [], {}):
            continue
        shown = f"{item:.3g}" if isinstance(item, float) else shorten(item, 80)
        parts.append(f"{key.replace('_', ' ')}: {shown}")
    return shorten("; ".join(parts) or "-", limit)


def kv_table(rows: list[tuple[str, Any]], style: ParagraphStyle = SMALL) -> Table:
    """A two-column table of names and (shortened) values."""
    table = Table([[para(k, SMALL), para(shorten(v, 400), style)] for k, v in rows],
                  colWidths=[38 * mm, WIDTH - 38 * mm])
    table.setStyle(KV)
    return table


def grid_table(header: list[str], rows: list[list[Any]], widths: list[float]) -> Table:
    """A ruled table with a shaded header row that repeats on every page it spans."""
    data = [[para(h, SMALL) for h in header]] + [[c if isinstance(c, Paragraph) else para(c, SMALL) for c in row]
                                                 for row in rows]
    table = Table(data, colWidths=widths, repeatRows=1)
    table.setStyle(GRID)
    return table


def picture(data: bytes, max_w: float, max_h: float) -> Image:
    """The image ``data`` scaled, aspect kept, to fit a ``max_w`` x ``max_h`` box."""
    img = Image(io.BytesIO(data))
    scale = min(max_w / img.imageWidth, max_h / img.imageHeight)
    img.drawWidth, img.drawHeight = img.imageWidth * scale, img.imageHeight * scale
    return img
