"""Export tables to Parquet (pyarrow), streamed in batches so memory stays flat in the table size.

Column types follow the SQLAlchemy models; JSON columns are written as JSON text (``*_json`` names), which
keeps the schema fixed whatever the documents hold.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, Integer, String, Text, select
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.sql.type_api import TypeEngine

from tamperscope.errors import UsageError
from tamperscope.store.db import Database
from tamperscope.store.models import Asset, Detection, Frame, Shot, Window

EXPORT_TABLES: dict[str, type[DeclarativeBase]] = {
    "assets": Asset, "shots": Shot, "frames": Frame, "detections": Detection, "windows": Window,
}
BATCH_ROWS = 5000


def arrow_type(column_type: TypeEngine[Any]) -> pa.DataType:
    """The Arrow type a SQLAlchemy column type is exported as."""
    if isinstance(column_type, JSON):
        return pa.string()
    if isinstance(column_type, BigInteger):
        return pa.int64()
    if isinstance(column_type, Integer):
        return pa.int64()
    if isinstance(column_type, Float):
        return pa.float64()
    if isinstance(column_type, Boolean):
        return pa.bool_()
    if isinstance(column_type, DateTime):
        return pa.timestamp("us", tz="UTC")
    if isinstance(column_type, String | Text):
        return pa.string()
    raise TypeError(f"no Arrow type for {column_type!r}")


def table_schema(model: type[DeclarativeBase]) -> pa.Schema:
    """Arrow schema of a model's table."""
    table = model.__table__
    return pa.schema([pa.field(c.name, arrow_type(c.type), nullable=bool(c.nullable) or c.primary_key)
                      for c in table.columns])  # type: ignore[attr-defined]


def _batches(db: Database, model: type[DeclarativeBase]) -> Iterator[list[dict[str, Any]]]:
    table = model.__table__
    columns = list(table.columns)  # type: ignore[attr-defined]
    json_columns = {c.name for c in columns if isinstance(c.type, JSON)}
    order = [c for c in columns if c.primary_key]
    with db.session() as session:
        result = session.execute(select(*columns).order_by(*order).execution_options(yield_per=BATCH_ROWS))
        for partition in result.partitions():
            rows = []
            for row in partition:
                record = dict(row._mapping)
                for name in json_columns:
                    if record[name] is not None:
                        record[name] = json.dumps(record[name], sort_keys=True, separators=(",", ":"))
                rows.append(record)
            yield rows


def export_parquet(db: Database, out_dir: Path, tables: list[str] | None = None) -> dict[str, int]:
    """Write each table to ``out_dir/<table>.parquet``.

    Parameters
    ----------
    db : Database
        Source database.
    out_dir : Path
        Output directory (created).
    tables : list of str, optional
        Subset of :data:`EXPORT_TABLES`; all by default.

    Returns
    -------
    dict of str to int
        Rows written per table.
    """
    names = tables or list(EXPORT_TABLES)
    unknown = set(names) - set(EXPORT_TABLES)
    if unknown:
        raise UsageError(f"unknown tables {sorted(unknown)}; known: {', '.join(EXPORT_TABLES)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    for name in names:
        model = EXPORT_TABLES[name]
        schema = table_schema(model)
        target = out_dir / f"{name}.parquet"
        tmp = target.with_suffix(".parquet.tmp")
        written = 0
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            for rows in _batches(db, model):
                writer.write_table(pa.Table.from_pylist(rows, schema=schema))
                written += len(rows)
        tmp.replace(target)
        counts[name] = written
    return counts
