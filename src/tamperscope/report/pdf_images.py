"""Images for the PDF report: artifacts downscaled and re-encoded so the PDF stays small, Grad-CAM maps laid
over their face crops, and the record of which stored images the document shows (listed in its appendix)."""

from __future__ import annotations

import io
from collections.abc import Callable

import cv2
import numpy as np
from PIL import Image as PILImage

MAX_SIDE_PX = 1000  # longest side of a photo or frame embedded in the PDF
MAP_SIDE_PX = 420  # longest side of an embedded map
JPEG_QUALITY = 80
Reader = Callable[[str], bytes]


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


class ShownImages:
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
