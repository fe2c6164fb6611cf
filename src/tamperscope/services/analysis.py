"""The analysis service: ingest -> analyze -> summarise -> report, the one sequence every edge calls.

The CLI, the API jobs and the demo call :func:`run_analysis` with an open workspace; library users call the
front door :func:`analyze`, which opens one. Progress goes to one callback ``(phase, fraction, message)``: the
phases are ``ingest``, each stage's name (from the runner), and ``report``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tamperscope.custody.intake import IntakeRecord, IntakeResult, ingest_path
from tamperscope.errors import IsDirectoryError, PathNotFoundError
from tamperscope.pipeline.runner import RunResult, analyze_asset
from tamperscope.report.service import WrittenReport, write_report
from tamperscope.settings import Settings
from tamperscope.stages.base import ProgressCallback
from tamperscope.store import queries
from tamperscope.workspace import Workspace


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


@dataclass
class AnalysisOutcome:
    """One pass through the service: the intake (None for a known asset), the run, its summary, the report."""

    run: RunResult
    summary: AnalysisSummary
    intake: IntakeResult | None = None
    report: WrittenReport | None = None


def summarize(ws: Workspace, asset_ref: str) -> AnalysisSummary:
    """Read back an asset's status, stages, raised flags and verdict from the database."""
    with ws.db.session() as session:
        asset = queries.find_asset(session, asset_ref)
        runs = queries.stage_runs(session, asset.asset_id)
        flags = [{"module": d.module_name, "window": d.window_id, "evidence": d.evidence_json}
                 for d in queries.flags(session, asset.asset_id)]
        row = queries.verdict(session, asset.asset_id)
        verdict = None
        if row is not None:
            evidence = row.evidence_json or {}
            verdict = {"probability": row.score, "band": row.band, "status": row.status,
                       "policy": evidence.get("policy_version"), "reason": evidence.get("reason")}
        return AnalysisSummary(
            asset_id=asset.asset_id, sha256=asset.sha256, status=asset.status,
            ran=sorted(r.stage for r in runs if r.status == "done"),
            failed={r.stage: r.error or "" for r in runs if r.status in ("failed", "limit_exceeded")},
            flags=flags, verdict=verdict,
        )


def format_verdict(verdict: dict[str, Any]) -> str:
    """One line for people: the band with its probability and policy, or why there is no band."""
    if verdict.get("band") is None or verdict.get("probability") is None:
        return f"no verdict ({verdict.get('status')}): {verdict.get('reason')}"
    return f"{verdict['band']} (p={verdict['probability']:.3f}, policy {verdict['policy']})"


def run_analysis(ws: Workspace, target: str | Path, *, record: IntakeRecord | None = None,
                 only: list[str] | None = None, force: bool = False, progress: ProgressCallback | None = None,
                 report: bool = False, report_dir: Path | None = None) -> AnalysisOutcome:
    """Ingest ``target`` if it is a :class:`~pathlib.Path` (a ``str`` names a stored asset by id or SHA-256
    prefix), run every stage that is not current (or only ``only``), summarise, and write the report when
    ``report`` (copied to ``report_dir`` when given).

    Raises what intake and the runner raise (a rejected input, an unknown asset); a failing stage does not
    raise: it is listed in ``outcome.run.failed``.
    """
    def tell(phase: str, fraction: float, message: str) -> None:
        if progress is not None:
            progress(phase, fraction, message)

    intake = None
    if isinstance(target, Path):
        tell("ingest", 0.0, "hashing and validating")
        intake = ingest_path(ws, target, record)
        tell("ingest", 1.0, intake.status)
    run = analyze_asset(ws, intake.asset_id if intake else str(target), only=only, force=force, progress=progress)
    summary = summarize(ws, run.asset_id)
    summary.skipped = list(run.skipped)
    written = None
    if report or report_dir is not None:
        tell("report", 0.0, "writing report")
        written = write_report(ws, run.asset_id, report_dir)
        tell("report", 1.0, written.report_id)
    return AnalysisOutcome(run=run, summary=summary, intake=intake, report=written)


def as_target(path_or_asset: str | Path) -> str | Path:
    """A command-line argument as a target: an existing file is a path to ingest, a hex string an asset id or
    SHA-256 prefix; anything else names a file, so a missing one or a directory is a typed usage error."""
    path = Path(path_or_asset)
    if path.is_file():
        return path
    if path.is_dir():
        raise IsDirectoryError(str(path_or_asset), "give one file, or ingest a folder with `tamperscope ingest DIR`")
    text = str(path_or_asset)
    if text and all(c in "0123456789abcdefABCDEF" for c in text):
        return text
    raise PathNotFoundError(text)


def analyze(path_or_asset: str | Path, settings: Settings | None = None) -> AnalysisSummary:
    """The front door: ingest ``path_or_asset`` if it is a file (else treat it as an asset id), analyse it fully
    in the workspace ``settings`` name, and return the summary."""
    ws = Workspace.open(settings)
    try:
        return run_analysis(ws, as_target(path_or_asset)).summary
    finally:
        ws.close()
