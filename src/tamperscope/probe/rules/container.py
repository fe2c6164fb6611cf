"""Container rules from ffprobe: creation times, packet timestamps, time bases and stream durations."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from tamperscope.probe.rules.base import MetaInput, Rule, first, flag, parse_time
from tamperscope.records import DetectionRecord

MAX_TIME_GAP_S = 120.0
COMMON_TIMEBASES = {Fraction(1, d) for d in (1000, 90000, 48000, 44100, 32000, 22050, 16000, 8000, 600, 1001)}
MAX_AV_GAP_S = 0.5


def _streams(data: MetaInput) -> list[dict[str, Any]]:
    return list((data.ffprobe or {}).get("streams") or [])


def exif_container_time(data: MetaInput) -> list[DetectionRecord]:
    """Flag an EXIF/QuickTime capture date that disagrees with the container's creation_time by minutes."""
    container = ((data.ffprobe or {}).get("format", {}).get("tags") or {}).get("creation_time")
    exif = first(data.exif, "ExifIFD:DateTimeOriginal", "Keys:CreationDate", "QuickTime:CreateDate")
    t_container, t_exif = parse_time(container), parse_time(exif[1]) if exif else None
    if t_container is None or t_exif is None:
        return []
    gap = (t_container - t_exif).total_seconds()
    # QuickTime dates are UTC while EXIF is local: allow whole-hour zone offsets up to 14 h.
    residual = min(abs(gap - h * 3600) for h in range(-14, 15))
    if residual <= MAX_TIME_GAP_S:
        return []
    return flag("exif_container_time", 0.4, "ffprobe+exiftool", container_creation_time=container,
                exif={exif[0]: exif[1]} if exif else {}, gap_s=gap)


def nonmonotonic_timestamps(data: MetaInput) -> list[DetectionRecord]:
    """Flag DTS that go backwards or PTS repeated within a stream (splices, edited packet streams)."""
    last_dts: dict[int, int] = {}
    seen_pts: dict[int, set[int]] = {}
    problems: list[dict[str, Any]] = []
    for packet in (data.ffprobe or {}).get("packets") or []:
        index = packet.get("stream_index")
        dts, pts = packet.get("dts"), packet.get("pts")
        if not isinstance(index, int):
            continue
        if isinstance(dts, int):
            if index in last_dts and dts < last_dts[index]:
                problems.append({"stream": index, "kind": "dts_backwards", "dts": dts, "previous": last_dts[index]})
            last_dts[index] = dts
        if isinstance(pts, int):
            if pts in seen_pts.setdefault(index, set()):
                problems.append({"stream": index, "kind": "pts_repeated", "pts": pts})
            seen_pts[index].add(pts)
    if not problems:
        return []
    return flag("nonmonotonic_timestamps", 0.6, "ffprobe", count=len(problems), first=problems[:10])


def odd_timebase(data: MetaInput) -> list[DetectionRecord]:
    """Flag a video stream with variable frame rate (r_frame_rate != avg_frame_rate) or an unusual time base."""
    hits: list[dict[str, Any]] = []
    for stream in _streams(data):
        if stream.get("codec_type") != "video" or stream.get("disposition", {}).get("attached_pic"):
            continue
        try:
            tb = Fraction(str(stream.get("time_base", "0/1")))
            r_rate = Fraction(str(stream.get("r_frame_rate", "0/1")))
            avg = Fraction(str(stream.get("avg_frame_rate", "0/1")))
        except (ValueError, ZeroDivisionError):
            continue
        reasons = []
        if r_rate and avg and abs(float(r_rate - avg)) / float(r_rate) > 0.01:
            reasons.append("variable frame rate")
        if tb and tb not in COMMON_TIMEBASES and not (r_rate and (1 / tb) % r_rate == 0):
            reasons.append("unusual time base")
        if reasons and int(stream.get("nb_frames") or 2) > 1:
            hits.append({"stream": stream.get("index"), "time_base": stream.get("time_base"),
                         "r_frame_rate": stream.get("r_frame_rate"), "avg_frame_rate": stream.get("avg_frame_rate"),
                         "reasons": reasons})
    if not hits:
        return []
    return flag("odd_timebase", 0.2, "ffprobe", streams=hits)


def av_duration_mismatch(data: MetaInput) -> list[DetectionRecord]:
    """Flag audio and video streams whose durations differ by more than half a second (dubbed or spliced)."""
    durations: dict[str, float] = {}
    for stream in _streams(data):
        kind = stream.get("codec_type")
        if kind in ("audio", "video") and kind not in durations and not stream.get("disposition", {}).get(
                "attached_pic"):
            try:
                durations[kind] = float(stream["duration"])
            except (KeyError, TypeError, ValueError):
                continue
    if len(durations) < 2 or abs(durations["audio"] - durations["video"]) <= MAX_AV_GAP_S:
        return []
    return flag("av_duration_mismatch", 0.4, "ffprobe", audio_s=durations["audio"], video_s=durations["video"])


RULES: dict[str, Rule] = {
    "exif_container_time": exif_container_time, "nonmonotonic_timestamps": nonmonotonic_timestamps,
    "odd_timebase": odd_timebase, "av_duration_mismatch": av_duration_mismatch,
}
