"""The front door: ``analyze(path)`` ingests a file (or takes a known asset) and runs every stage."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from tamperscope.settings import Settings


@dataclass
class AnalysisSummary:
    """What one analysis produced: the asset, the stages, and the verdict when fusion ran."""

    asset_id: str
    sha256: str
    status: str
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    flags: list[dict[str, Any]] = field(default_factory=list)
    verdict: dict[str, Any] | None = None


def summarize(ws: Any, asset_id: str) -> AnalysisSummary:
    """Read back an asset's status, raised flags and verdict from the database."""
    from tamperscope.store.models import Asset, Detection, StageRun

    with ws.db.session() as session:
        asset = session.get(Asset, asset_id)
        assert asset is not None
        runs = session.execute(select(StageRun).where(StageRun.asset_id == asset_id)).scalars().all()
        flags = [
            {"module": d.module_name, "window": d.window_id, "evidence": d.evidence_json}
            for d in session.execute(
                select(Detection).where(Detection.asset_id == asset_id, Detection.status == "flag")
                .order_by(Detection.module_name, Detection.window_id)).scalars()
        ]
        verdict_row = session.execute(
            select(Detection).where(Detection.asset_id == asset_id, Detection.module_name == "fusion",
                                    Detection.window_id == "asset")).scalar_one_or_none()
        verdict = None
        if verdict_row is not None:
            evidence = verdict_row.evidence_json or {}
            verdict = {"probability": verdict_row.score, "band": verdict_row.band, "status": verdict_row.status,
                       "policy": evidence.get("policy_version"), "reason": evidence.get("reason")}
        return AnalysisSummary(
            asset_id=asset.asset_id, sha256=asset.sha256, status=asset.status,
            ran=sorted(r.stage for r in runs if r.status == "done"),
            failed={r.stage: r.error or "" for r in runs if r.status == "failed"},
            flags=flags, verdict=verdict,
        )


def format_verdict(verdict: dict[str, Any]) -> str:
    """One line for people: the band with its probability and policy, or why there is no band."""
    if verdict.get("band") is None or verdict.get("probability") is None:
        return f"no verdict ({verdict.get('status')}): {verdict.get('reason')}"
    return f"{verdict['band']} (p={verdict['probability']:.3f}, policy {verdict['policy']})"


def analyze(path_or_asset: str | Path, settings: Settings | None = None) -> AnalysisSummary:
    """Ingest ``path_or_asset`` if it is a file (else treat it as an asset id) and analyse it fully."""
    from tamperscope.custody.intake import ingest_path
    from tamperscope.pipeline.runner import analyze_asset
    from tamperscope.workspace import Workspace

    ws = Workspace.open(settings)
    try:
        path = Path(path_or_asset)
        ref = ingest_path(ws, path).asset_id if path.is_file() else str(path_or_asset)
        run = analyze_asset(ws, ref)
        summary = summarize(ws, run.asset_id)
        summary.skipped = run.skipped
        return summary
    finally:
        ws.close()
