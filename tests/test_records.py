"""Records: plain data with no database import; enums behave as their strings; faces round-trip through JSON."""

import json
import subprocess
import sys

from tamperscope.records import Band, DetectionStatus, FaceRecord, WindowRecord


def test_records_import_no_database_layer() -> None:
    code = "import sys, tamperscope.records; print(any(m.startswith('sqlalchemy') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_enums_compare_and_serialise_as_plain_strings() -> None:
    assert Band.LIKELY_REAL == "likely_real"
    assert json.dumps({"band": Band.UNSURE, "status": DetectionStatus.FLAG}) == '{"band": "unsure", "status": "flag"}'


def test_face_json_round_trip_keeps_every_field() -> None:
    face = FaceRecord(track_id=3, box=(1.0, 2.0, 30.5, 40.25), score=0.9, landmarks=[[1.0, 2.0, 0.5]],
                      crop_uri="file:///x/crop.png", crop_box=(0.0, 0.0, 32.0, 42.0))
    stored = json.loads(json.dumps(face.to_json()))
    assert FaceRecord.from_json(stored) == face
    legacy = FaceRecord.from_json({"track_id": 1, "box": [1, 2, 3, 4]})
    assert legacy.box == (1.0, 2.0, 3.0, 4.0) and legacy.crop_uri is None and legacy.landmarks == []


def test_window_row_uses_the_table_columns() -> None:
    window = WindowRecord("a:c0:0", "a:s0", 0, 0, 400, ("a:f0", "a:f1"), "file:///w.npy")
    assert window.to_row()["frame_ids_json"] == ["a:f0", "a:f1"]
    assert set(window.to_row()) == {"window_id", "shot_id", "track_id", "t_start_ms", "t_end_ms", "frame_ids_json",
                                    "uri"}
