"""GPS rules: coordinates out of range, a reference without a value, or a GPS date far from the capture date."""

from __future__ import annotations

from typing import Any

from tamperscope.probe.rules.base import MetaInput, Rule, first, flag, parse_time, tags
from tamperscope.records import DetectionRecord

MAX_GPS_DATE_GAP_S = 2 * 86400.0


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def gps_inconsistent(data: MetaInput) -> list[DetectionRecord]:
    """Flag impossible GPS: latitude/longitude out of range, half a coordinate, (0, 0), or a GPS date far off."""
    gps = tags(data.exif, groups=("GPS",))
    if not gps:
        return []
    problems: list[str] = []
    lat, lon = _number(gps.get("GPS:GPSLatitude")), _number(gps.get("GPS:GPSLongitude"))
    if (lat is None) != (lon is None):
        problems.append("only one of latitude/longitude")
    if lat is not None and not -90 <= lat <= 90:
        problems.append("latitude out of range")
    if lon is not None and not -180 <= lon <= 180:
        problems.append("longitude out of range")
    if lat == 0 and lon == 0:
        problems.append("null island (0, 0)")
    gps_date = parse_time(gps.get("GPS:GPSDateStamp"))
    original = first(data.exif, "ExifIFD:DateTimeOriginal")
    capture = parse_time(original[1]) if original else None
    if gps_date and capture and abs((capture - gps_date).total_seconds()) > MAX_GPS_DATE_GAP_S:
        problems.append("GPS date far from DateTimeOriginal")
    if not problems:
        return []
    return flag("gps_inconsistent", 0.4, "exiftool", problems=problems,
                tags={**gps, **({original[0]: original[1]} if original else {})})


RULES: dict[str, Rule] = {"gps_inconsistent": gps_inconsistent}
