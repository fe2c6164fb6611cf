"""EXIF rules: missing EXIF on camera-like files, date disagreement, thumbnail mismatch, maker notes, edit history."""

from __future__ import annotations

from tamperscope.probe.rules.base import MetaInput, Rule, first, flag, parse_time, tags
from tamperscope.records import DetectionRecord

CAMERA_TYPES = {"JPEG", "HEIC", "HEIF", "CR2", "CR3", "NEF", "ARW", "DNG", "ORF", "RW2", "RAF", "PEF"}
MAKERNOTE_GROUPS = {
    "canon": ("Canon", "CanonCustom", "CanonRaw", "CanonVRD"), "nikon": ("Nikon", "NikonCustom", "NikonScan"),
    "sony": ("Sony",), "olympus": ("Olympus",), "om digital": ("Olympus",), "fujifilm": ("FujiFilm",),
    "pentax": ("Pentax",), "ricoh": ("Ricoh", "Pentax"), "panasonic": ("Panasonic",), "samsung": ("Samsung",),
    "apple": ("Apple",), "leica": ("Leica", "Panasonic"), "casio": ("Casio",), "kodak": ("Kodak",),
}
MAX_DATE_GAP_S = 60.0
ASPECT_TOLERANCE = 0.03


def camera_without_exif(data: MetaInput) -> list[DetectionRecord]:
    """Flag a camera-format file (JPEG/HEIC/raw) that carries no EXIF camera tags at all (stripped or re-saved)."""
    file_type = (data.exif or {}).get("File:FileType")
    if file_type not in CAMERA_TYPES:
        return []
    camera = tags(data.exif, groups=("IFD0", "ExifIFD"), names=("Make", "Model", "DateTimeOriginal", "ExposureTime"))
    if camera:
        return []
    return flag("camera_without_exif", 0.3, "exiftool", file_type=file_type)


def datetime_mismatch(data: MetaInput) -> list[DetectionRecord]:
    """Flag a ModifyDate later than DateTimeOriginal by more than a minute (the file was re-saved after capture)."""
    original = first(data.exif, "ExifIFD:DateTimeOriginal", "XMP-exif:DateTimeOriginal")
    modified = first(data.exif, "IFD0:ModifyDate", "XMP-xmp:ModifyDate")
    if not original or not modified:
        return []
    t_orig, t_mod = parse_time(original[1]), parse_time(modified[1])
    if t_orig is None or t_mod is None:
        return []
    gap = (t_mod - t_orig).total_seconds()
    if abs(gap) <= MAX_DATE_GAP_S:
        return []
    return flag("datetime_mismatch", 0.4 if gap > 0 else 0.6, "exiftool", tags=dict([original, modified]), gap_s=gap)


def thumbnail_mismatch(data: MetaInput) -> list[DetectionRecord]:
    """Flag an EXIF thumbnail whose aspect ratio differs from the main image (crop after capture)."""
    if data.thumbnail_size is None:
        return []
    width = first(data.exif, "File:ImageWidth", "ExifIFD:ExifImageWidth")
    height = first(data.exif, "File:ImageHeight", "ExifIFD:ExifImageHeight")
    if not width or not height or not all(isinstance(v[1], int | float) and v[1] > 0 for v in (width, height)):
        return []
    tw, th = data.thumbnail_size
    if tw <= 0 or th <= 0:
        return []
    main_ratio = width[1] / height[1]
    ratios = (tw / th, th / tw)  # thumbnail may be stored unrotated
    rel = min(abs(r - main_ratio) / main_ratio for r in ratios)
    if rel <= ASPECT_TOLERANCE:
        return []
    return flag("thumbnail_mismatch", 0.5, "exiftool", thumbnail=[tw, th], image=[width[1], height[1]],
                relative_aspect_difference=round(rel, 4))


def makernote_mismatch(data: MetaInput) -> list[DetectionRecord]:
    """Flag maker notes of one vendor under a Make of another, or a known Make whose maker notes are gone."""
    make = first(data.exif, "IFD0:Make")
    if not make:
        return []
    groups_present = {key.partition(":")[0] for key in (data.exif or {})}
    vendor = next((v for v in MAKERNOTE_GROUPS if v in str(make[1]).lower()), None)
    foreign = sorted(g for v, gs in MAKERNOTE_GROUPS.items() if v != vendor for g in gs if g in groups_present)
    own = [g for g in MAKERNOTE_GROUPS.get(vendor or "", ()) if g in groups_present]
    if vendor and foreign and not own:
        return flag("makernote_mismatch", 0.6, "exiftool", make=make[1], makernote_groups=foreign)
    return []


def edit_history(data: MetaInput) -> list[DetectionRecord]:
    """Flag XMP media-management history that records a save, derivation or conversion of the file."""
    hits = tags(data.exif, groups=("XMP-xmpMM",), names=("HistoryAction", "DerivedFromDocumentID",
                                                         "DerivedFromInstanceID"))
    actions = hits.get("XMP-xmpMM:HistoryAction")
    values = actions if isinstance(actions, list) else [actions] if actions else []
    if not any(str(v) in ("saved", "derived", "converted", "edited", "cropped") for v in values) and not any(
        k.startswith("XMP-xmpMM:DerivedFrom") for k in hits
    ):
        return []
    return flag("edit_history", 0.4, "exiftool", tags=hits)


RULES: dict[str, Rule] = {
    "camera_without_exif": camera_without_exif, "datetime_mismatch": datetime_mismatch,
    "thumbnail_mismatch": thumbnail_mismatch, "makernote_mismatch": makernote_mismatch, "edit_history": edit_history,
}
