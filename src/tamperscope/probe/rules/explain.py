"""Plain sentences for raised metadata flags: what the rule saw, with the tag values behind it.

Pure functions of a flag's ``module_name`` and evidence (as the rules in this package write them), so the web
page and any report say the same thing about the same flag.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Evidence = Mapping[str, Any]


def _gap(seconds: Any) -> str:
    try:
        s = abs(float(seconds))
    except (TypeError, ValueError):
        return "an unknown time"
    for unit, size in (("days", 86400.0), ("hours", 3600.0), ("minutes", 60.0)):
        if s >= size:
            return f"{s / size:.1f} {unit}"
    return f"{s:.0f} seconds"


def _editing_software(e: Evidence) -> str:
    names = ", ".join(e.get("software") or []) or "an editor"
    return (f"The file's tags name editing or processing software ({names}, category {e.get('category')}): "
            "it was opened and saved by that program after capture.")


def _reencode_chain(e: Evidence) -> str:
    return "Container or stream tags name an encoder, so the file was re-encoded after capture."


def _camera_without_exif(e: Evidence) -> str:
    return (f"A {e.get('file_type')} file, a camera format, carries no camera EXIF tags at all (no make, model, "
            "capture date or exposure): they were stripped or the file was re-saved by software.")


def _datetime_mismatch(e: Evidence) -> str:
    gap = e.get("gap_s")
    later = isinstance(gap, int | float) and gap > 0
    return (f"The modification date is {_gap(gap)} {'after' if later else 'before'} the capture date"
            + ("" if later else " (a modification before capture is not possible for an untouched file)") + ".")


def _thumbnail_mismatch(e: Evidence) -> str:
    return (f"The embedded EXIF thumbnail ({'x'.join(map(str, e.get('thumbnail') or []))}) has another shape than "
            f"the image ({'x'.join(map(str, e.get('image') or []))}): the image was cropped or replaced after the "
            "camera wrote the thumbnail.")


def _makernote_mismatch(e: Evidence) -> str:
    return (f"The camera make is {e.get('make')!s} but the maker notes are those of another vendor "
            f"({', '.join(e.get('makernote_groups') or [])}).")


def _edit_history(e: Evidence) -> str:
    return "The XMP history records that the file was saved, derived or converted by software."


def _gps_inconsistent(e: Evidence) -> str:
    return f"The GPS tags are impossible or inconsistent: {', '.join(e.get('problems') or [])}."


def _exif_container_time(e: Evidence) -> str:
    return (f"The container's creation time ({e.get('container_creation_time')}) differs from the capture date "
            f"in the tags by {_gap(e.get('gap_s'))} (time zones allowed for).")


def _nonmonotonic_timestamps(e: Evidence) -> str:
    return (f"{e.get('count')} packet timestamp(s) go backwards or repeat within a stream, as splicing or "
            "packet-level editing leaves them.")


def _odd_timebase(e: Evidence) -> str:
    reasons = sorted({r for s in e.get("streams") or [] for r in s.get("reasons", [])})
    return f"The video stream has {' and '.join(reasons) or 'an odd timing'}, common after re-encoding by editors."


def _av_duration_mismatch(e: Evidence) -> str:
    return (f"The audio lasts {e.get('audio_s')} s and the video {e.get('video_s')} s: the tracks were cut or "
            "dubbed separately.")


def _invalid_c2pa(e: Evidence) -> str:
    codes = ", ".join(e.get("failure_codes") or []) or "no code given"
    return f"A C2PA manifest is present but does not validate ({codes}): the content or the signature changed " \
        "after signing."


SENTENCES: dict[str, Callable[[Evidence], str]] = {
    "meta.editing_software": _editing_software, "meta.reencode_chain": _reencode_chain,
    "meta.camera_without_exif": _camera_without_exif, "meta.datetime_mismatch": _datetime_mismatch,
    "meta.thumbnail_mismatch": _thumbnail_mismatch, "meta.makernote_mismatch": _makernote_mismatch,
    "meta.edit_history": _edit_history, "meta.gps_inconsistent": _gps_inconsistent,
    "meta.exif_container_time": _exif_container_time, "meta.nonmonotonic_timestamps": _nonmonotonic_timestamps,
    "meta.odd_timebase": _odd_timebase, "meta.av_duration_mismatch": _av_duration_mismatch,
    "meta.invalid_c2pa": _invalid_c2pa,
}


def flag_sentence(module_name: str, evidence: Evidence | None) -> str:
    """One plain sentence for a raised flag; unknown modules get a generic sentence naming the module."""
    explain = SENTENCES.get(module_name)
    if explain is None:
        return f"The check {module_name} raised a flag."
    return explain(evidence or {})


def flag_values(evidence: Evidence | None) -> dict[str, Any]:
    """The tag values behind a flag: the ``tags`` the rule quoted, else its other evidence fields."""
    e = dict(evidence or {})
    if isinstance(e.get("tags"), Mapping) and e["tags"]:
        return dict(e["tags"])
    return {k: v for k, v in e.items() if k not in ("tool", "matches", "signatures_version")}
