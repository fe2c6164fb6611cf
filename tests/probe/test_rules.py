"""Metadata rules: each rule fires on the tag pattern it names and stays silent on a clean record."""

from __future__ import annotations

from typing import Any

import pytest

from tamperscope.probe.rules import RULES, MetaInput, evaluate

CLEAN_EXIF: dict[str, Any] = {
    "File:FileType": "JPEG", "File:ImageWidth": 4000, "File:ImageHeight": 3000, "IFD0:Make": "Canon",
    "IFD0:Model": "Canon EOS 7D", "ExifIFD:DateTimeOriginal": "2020:05:01 10:00:00",
    "IFD0:ModifyDate": "2020:05:01 10:00:00", "Canon:FirmwareVersion": "1.0", "GPS:GPSLatitude": 48.1,
    "GPS:GPSLongitude": 11.5, "GPS:GPSDateStamp": "2020:05:01",
}
CLEAN_PROBE: dict[str, Any] = {
    "format": {"tags": {"creation_time": "2020-05-01T10:00:05.000000Z"}},
    "streams": [
        {"index": 0, "codec_type": "video", "time_base": "1/12800", "r_frame_rate": "25/1",
         "avg_frame_rate": "25/1", "duration": "10.0", "nb_frames": "250"},
        {"index": 1, "codec_type": "audio", "time_base": "1/44100", "duration": "10.02"},
    ],
    "packets": [{"stream_index": 0, "pts": i * 512, "dts": i * 512} for i in range(20)],
}


def _names(data: MetaInput) -> set[str]:
    return {record.module_name.removeprefix("meta.") for record in evaluate(data)}


def test_registry_holds_at_least_twelve_rules() -> None:
    assert len(RULES) >= 12


def test_a_clean_camera_file_raises_nothing() -> None:
    assert _names(MetaInput(exif=CLEAN_EXIF, ffprobe=CLEAN_PROBE, thumbnail_size=(160, 120))) == set()


@pytest.mark.parametrize(("changes", "rule"), [
    ({"IFD0:Software": "Adobe Photoshop CS6 (Windows)"}, "editing_software"),
    ({"XMP-xmp:CreatorTool": "GIMP 2.10"}, "editing_software"),
    ({"IFD0:Make": None, "IFD0:Model": None, "ExifIFD:DateTimeOriginal": None}, "camera_without_exif"),
    ({"IFD0:ModifyDate": "2021:01:01 09:00:00"}, "datetime_mismatch"),
    ({"Canon:FirmwareVersion": None, "Nikon:Quality": "FINE"}, "makernote_mismatch"),
    ({"GPS:GPSLatitude": 123.0}, "gps_inconsistent"),
    ({"GPS:GPSDateStamp": "2019:01:01"}, "gps_inconsistent"),
    ({"XMP-xmpMM:HistoryAction": ["created", "saved"]}, "edit_history"),
])
def test_exif_rules_fire_on_their_pattern(changes: dict[str, Any], rule: str) -> None:
    exif = {k: v for k, v in {**CLEAN_EXIF, **changes}.items() if v is not None}
    records = [r for r in evaluate(MetaInput(exif=exif)) if r.module_name == f"meta.{rule}"]
    assert len(records) == 1
    assert records[0].status == "flag" and 0 < (records[0].score or 0) <= 1
    assert records[0].evidence and records[0].evidence["tool"]


def test_thumbnail_with_another_aspect_ratio_is_flagged() -> None:
    records = evaluate(MetaInput(exif=CLEAN_EXIF, thumbnail_size=(160, 160)))
    assert [r.module_name for r in records] == ["meta.thumbnail_mismatch"]
    assert records[0].evidence["thumbnail"] == [160, 160]
    assert _names(MetaInput(exif=CLEAN_EXIF, thumbnail_size=(120, 160))) == set()  # rotated, same shape


def _probe(**changes: Any) -> dict[str, Any]:
    probe = {**CLEAN_PROBE, "streams": [dict(s) for s in CLEAN_PROBE["streams"]]}
    for key, value in changes.items():
        if key == "packets":
            probe["packets"] = value
        elif key == "tags":
            probe["format"] = {"tags": value}
        else:
            index, field = key.split("__")
            probe["streams"][int(index[1:])][field] = value
    return probe


@pytest.mark.parametrize(("probe", "rule"), [
    (_probe(packets=[{"stream_index": 0, "pts": p, "dts": p} for p in (0, 512, 1024, 512, 1536)]),
     "nonmonotonic_timestamps"),
    (_probe(s0__avg_frame_rate="2997/125"), "odd_timebase"),
    (_probe(s0__time_base="1/777"), "odd_timebase"),
    (_probe(s1__duration="7.5"), "av_duration_mismatch"),
    (_probe(tags={"creation_time": "2022-03-04T10:00:00Z"}), "exif_container_time"),
    (_probe(tags={"encoder": "Lavf60.16.100"}), "reencode_chain"),
    (_probe(s0__tags={"encoder": "HandBrake 1.6.1 2023012300"}), "reencode_chain"),
])
def test_container_rules_fire_on_their_pattern(probe: dict[str, Any], rule: str) -> None:
    assert _names(MetaInput(exif=CLEAN_EXIF, ffprobe=probe)) == {rule}


def test_container_time_allows_a_whole_hour_zone_offset() -> None:
    probe = _probe(tags={"creation_time": "2020-05-01T08:00:30Z"})
    assert _names(MetaInput(exif=CLEAN_EXIF, ffprobe=probe)) == set()


def test_invalid_c2pa_only_on_invalid_status() -> None:
    invalid = {"status": "invalid", "failure_codes": ["assertion.dataHash.mismatch"], "validation_state": "Invalid"}
    records = evaluate(MetaInput(provenance=invalid))
    assert [r.module_name for r in records] == ["meta.invalid_c2pa"]
    assert records[0].evidence["failure_codes"] == ["assertion.dataHash.mismatch"]
    assert evaluate(MetaInput(provenance={"status": "valid"})) == []
    assert evaluate(MetaInput(provenance={"status": "absent"})) == []


def test_missing_or_garbled_tool_output_never_raises() -> None:
    garbled = MetaInput(exif={"IFD0:ModifyDate": 5, "GPS:GPSLatitude": "north", "File:ImageWidth": "x"},
                        ffprobe={"streams": [{"codec_type": "video", "time_base": "a/b"}], "packets": [{}]},
                        thumbnail_size=(0, 0))
    assert evaluate(garbled) == []
    assert evaluate(MetaInput()) == []
