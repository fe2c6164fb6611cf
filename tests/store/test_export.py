"""Parquet export: every table written with the model's schema; JSON columns as JSON text."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tamperscope.errors import UsageError
from tamperscope.store.export import EXPORT_TABLES, export_parquet, table_schema
from tamperscope.store.models import Frame, Window
from tamperscope.workspace import Workspace
from tests.store.test_qa import add_analysis, add_asset


def test_exports_all_tables(any_ws: Workspace, tmp_path: Path) -> None:
    with any_ws.db.session() as session:
        add_asset(session, "a1", label="fake", subject="p1")
        add_analysis(session, "a1", [(0, 1000), (1000, 2000)], [(0, 0), (1, 1000)])
        session.flush()
        frame = session.get(Frame, "a1:f000000000")
        assert frame is not None
        frame.faces_json = [{"track_id": 0, "box": [1.0, 2.0, 3.0, 4.0]}]
        session.add(Window(window_id="a1:c0:0", asset_id="a1", shot_id="a1:s0000", track_id=0, t_start_ms=0,
                           t_end_ms=0, frame_ids_json=["a1:f000000000"], uri="store://x.npy"))
    counts = export_parquet(any_ws.db, tmp_path / "out")
    assert counts == {"assets": 1, "shots": 2, "frames": 2, "detections": 0, "windows": 1}
    for name in EXPORT_TABLES:
        table = pq.read_table(tmp_path / "out" / f"{name}.parquet")
        assert table.schema.names == table_schema(EXPORT_TABLES[name]).names
    frames = pq.read_table(tmp_path / "out" / "frames.parquet").to_pylist()
    assert frames[0]["frame_id"] == "a1:f000000000" and frames[0]["t_ms"] == 0
    assert json.loads(frames[0]["faces_json"])[0]["box"] == [1.0, 2.0, 3.0, 4.0]
    assets = pq.read_table(tmp_path / "out" / "assets.parquet")
    assert assets.schema.field("upload_time").type == pa.timestamp("us", tz="UTC")
    assert assets.column("label").to_pylist() == ["fake"]


def test_unknown_table_is_a_usage_error(ws: Workspace, tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        export_parquet(ws.db, tmp_path, ["nope"])
