"""Data QA: declared expectations on the tables (pandera), every failure listed.

Expectations:

- assets: video/audio duration > 0; video fps in a sane range;
- every asset the ``video`` stage analysed has at least one shot, every shot at least one frame;
- shot and frame timestamps lie inside the asset's duration (plus one frame of slack);
- splits: labels balanced per split (each label's share within ``max_label_skew`` of its overall share) and
  no subject shared between splits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors
from sqlalchemy import select

from tamperscope.store.db import Database
from tamperscope.store.models import Asset, Frame, Shot, StageRun

FPS_RANGE = (1.0, 240.0)
SLACK_MS = 100


@dataclass(frozen=True)
class Failure:
    """One failed expectation with the offending keys."""

    table: str
    check: str
    cases: list[str]

    def __str__(self) -> str:
        shown = ", ".join(self.cases[:5]) + (f" (+{len(self.cases) - 5} more)" if len(self.cases) > 5 else "")
        return f"{self.table}: {self.check}: {shown}"


def _frame(rows: Sequence[Any], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame([tuple(r) for r in rows], columns=columns)


def load_tables(db: Database) -> dict[str, pd.DataFrame]:
    """The columns QA needs, as DataFrames (assets, analysed videos' shots and frames)."""
    with db.session() as session:
        assets = _frame(session.execute(select(
            Asset.asset_id, Asset.media_type, Asset.duration_ms, Asset.fps, Asset.label, Asset.subject, Asset.split)
            .where(Asset.status != "rejected")).all(),
            ["asset_id", "media_type", "duration_ms", "fps", "label", "subject", "split"])
        analysed = _frame(session.execute(select(StageRun.asset_id).where(
            StageRun.stage == "video", StageRun.status == "done")).all(), ["asset_id"])
        shots = _frame(session.execute(select(Shot.shot_id, Shot.asset_id, Shot.t_start_ms, Shot.t_end_ms)).all(),
                       ["shot_id", "asset_id", "t_start_ms", "t_end_ms"])
        frames = _frame(session.execute(select(Frame.frame_id, Frame.asset_id, Frame.shot_id, Frame.t_ms)).all(),
                        ["frame_id", "asset_id", "shot_id", "t_ms"])
    return {"assets": assets, "analysed": analysed, "shots": shots, "frames": frames}


def _errors(schema: pa.DataFrameSchema, df: pd.DataFrame, table: str, key: str) -> list[Failure]:
    try:
        schema.validate(df, lazy=True)
    except SchemaErrors as exc:
        out: list[Failure] = []
        cases = exc.failure_cases.copy()
        frame_level = cases["schema_context"] == "DataFrameSchema"
        cases["label"] = cases["check"].astype(str)
        cases.loc[~frame_level, "label"] = cases["column"].astype(str) + " " + cases["check"].astype(str)
        for label, group in cases.groupby("label", sort=True):
            keys = [str(df.iloc[int(i)][key]) if pd.notna(i) and key in df else str(v)
                    for i, v in zip(group["index"], group["failure_case"], strict=True)]
            out.append(Failure(table, str(label), sorted(set(keys))))
        return out
    return []


def run_qa(db: Database, *, max_label_skew: float = 0.2) -> list[Failure]:
    """Run every expectation; an empty list means the tables pass.

    Parameters
    ----------
    db : Database
        The database to check.
    max_label_skew : float
        Largest allowed difference between a label's share in one split and its overall share.

    Returns
    -------
    list of Failure
    """
    tables = load_tables(db)
    assets = tables["assets"].reset_index(drop=True)
    failures: list[Failure] = []

    timed = assets[assets["media_type"].isin(["video", "audio"])].reset_index(drop=True)
    failures += _errors(pa.DataFrameSchema({
        "duration_ms": pa.Column(float, pa.Check.gt(0, error="duration > 0"), coerce=True),
    }, name="assets"), timed, "assets", "asset_id")
    videos = assets[assets["media_type"] == "video"].reset_index(drop=True)
    failures += _errors(pa.DataFrameSchema({
        "fps": pa.Column(float, pa.Check.in_range(*FPS_RANGE, error=f"fps in {FPS_RANGE}"), coerce=True),
    }, name="assets"), videos, "assets", "asset_id")

    analysed = assets[assets["asset_id"].isin(tables["analysed"]["asset_id"])
                      & assets["media_type"].isin(["video", "image"])]
    shot_counts = tables["shots"].groupby("asset_id").size()
    per_asset = pd.DataFrame({"asset_id": analysed["asset_id"].to_numpy(),
                              "shots": analysed["asset_id"].map(shot_counts).fillna(0).astype(int).to_numpy()})
    failures += _errors(pa.DataFrameSchema({"shots": pa.Column(int, pa.Check.ge(1, error=">= 1 shot per video"))},
                                           name="shots"), per_asset, "shots", "asset_id")
    shots = tables["shots"][tables["shots"]["asset_id"].isin(analysed["asset_id"])].reset_index(drop=True)
    frame_counts = tables["frames"].groupby("shot_id").size()
    per_shot = pd.DataFrame({"shot_id": shots["shot_id"],
                             "frames": shots["shot_id"].map(frame_counts).fillna(0).astype(int)})
    failures += _errors(pa.DataFrameSchema({"frames": pa.Column(int, pa.Check.ge(1, error=">= 1 frame per shot"))},
                                           name="frames"), per_shot, "frames", "shot_id")

    limits = assets.set_index("asset_id")
    limit = (limits["duration_ms"].astype(float) + SLACK_MS
             + (1000.0 / limits["fps"].astype(float)).where(limits["fps"].astype(float) > 0, 0.0))
    for table, key, columns in (("shots", "shot_id", ["t_start_ms", "t_end_ms"]), ("frames", "frame_id", ["t_ms"])):
        df = tables[table]
        df = df[df["asset_id"].map(limits["media_type"]) == "video"].copy()
        df["limit_ms"] = df["asset_id"].map(limit)
        df = df[df["limit_ms"].notna()].reset_index(drop=True)
        checks = {c: pa.Column(float, pa.Check.ge(0, error=f"{c} >= 0"), coerce=True) for c in columns}
        failures += _errors(pa.DataFrameSchema(checks, checks=[pa.Check(
            lambda d, cols=columns: (d[cols].max(axis=1) <= d["limit_ms"]),
            error="timestamps inside duration")], name=table), df, table, key)

    failures += split_failures(assets, max_label_skew=max_label_skew)
    return failures


def split_failures(assets: pd.DataFrame, *, max_label_skew: float = 0.2) -> list[Failure]:
    """Label balance per split and subject disjointness, for assets that have a split.

    Parameters
    ----------
    assets : pandas.DataFrame
        Columns ``asset_id``, ``label``, ``subject``, ``split``.
    max_label_skew : float
        See :func:`run_qa`.

    Returns
    -------
    list of Failure
    """
    split = assets[assets["split"].notna()]
    if split.empty:
        return []
    failures: list[Failure] = []
    subjects = split[split["subject"].notna()].groupby("subject")["split"].nunique().rename("splits").reset_index()
    failures += _errors(pa.DataFrameSchema({
        "splits": pa.Column(int, pa.Check.le(1, error="subject in one split only")),
    }, name="splits"), subjects, "splits", "subject")
    labelled = split[split["label"].notna()]
    if labelled["label"].nunique() > 1:
        overall = labelled["label"].value_counts(normalize=True)
        shares = (labelled.groupby("split")["label"].value_counts(normalize=True).unstack(fill_value=0.0)
                  .reindex(columns=overall.index, fill_value=0.0))
        skew = (shares - overall).abs().max(axis=1).rename("skew").reset_index()
        failures += _errors(pa.DataFrameSchema({
            "skew": pa.Column(float, pa.Check.le(max_label_skew, error=f"label share skew <= {max_label_skew}")),
        }, name="splits"), skew, "splits", "split")
    return failures
