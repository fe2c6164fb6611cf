"""The case page's data: one asset's whole case view, and the comparison of two assets."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import APIRouter

from tamperscope.api.case import build_case, load_case
from tamperscope.api.dependencies import WorkspaceDep
from tamperscope.media.quality import phash_distance
from tamperscope.store import queries

router = APIRouter(prefix="/api", tags=["case"])

#: ExifTool tags that describe the copy on disk, not the content: left out of the metadata diff.
VOLATILE_TAGS = ("SourceFile", "System:", "File:FileName", "File:Directory", "File:FileModifyDate",
                 "File:FileAccessDate", "File:FileInodeChangeDate", "File:FilePermissions", "ExifTool:")
PHASH_METHOD = ("imagehash.phash: 64-bit DCT perceptual hash of the frame's 32x32 grey thumbnail, stored per "
                "sampled frame by the video stage (images: their one frame); Hamming distance, 0 = same picture, "
                "<= 10 near-duplicate")
MAX_DIFF_ROWS = 400


@router.get("/assets/{ref}/case", summary="Everything the case page shows for one asset, in one response")
def case(ref: str, ws: WorkspaceDep) -> dict[str, Any]:
    return build_case(load_case(ws, ref))


def metadata_diff(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The tags whose values differ (or that only one side has), sorted by tag; copy-on-disk tags left out."""
    a, b = a or {}, b or {}
    keys = sorted(k for k in set(a) | set(b) if not k.startswith(VOLATILE_TAGS))
    return [{"tag": k, "a": a.get(k), "b": b.get(k)} for k in keys if a.get(k) != b.get(k)]


def phash_comparison(a: Sequence[str], b: Sequence[str]) -> dict[str, Any]:
    """Hamming distances between the frame pHashes of two assets: for each frame of ``a`` its best match in
    ``b``; one number for two images, the median and minimum of the best matches for videos."""
    if not a or not b:
        return {"distance": None, "method": PHASH_METHOD, "note": "no sampled frames with a pHash on one side"}
    best = [min(phash_distance(x, y) for y in b) for x in a]
    return {"distance": int(statistics.median(best)), "min_distance": min(best), "frames_a": len(a),
            "frames_b": len(b), "near_duplicates": sum(d <= 10 for d in best), "method": PHASH_METHOD}


@router.get("/compare", summary="Compare two assets: metadata diff, pHash distance, both case views' maps")
def compare(a: str, b: str, ws: WorkspaceDep) -> dict[str, Any]:
    left, right = load_case(ws, a), load_case(ws, b)
    with ws.db.session() as session:
        hashes = [queries.frame_phashes(session, x.asset.asset_id) for x in (left, right)]
    diff = metadata_diff(left.asset.exif_json, right.asset.exif_json)
    views = [build_case(left), build_case(right)]
    keys = ("asset", "verdict", "maps", "image", "provenance")
    sides = [{**{k: v[k] for k in keys}, "frames": [f for f in v["frames"] if f["frame_id"] in v["maps"]]}
             for v in views]
    return {"a": sides[0], "b": sides[1],
            "phash": phash_comparison(*hashes), "metadata_diff": diff[:MAX_DIFF_ROWS],
            "metadata_diff_total": len(diff)}
