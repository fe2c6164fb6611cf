"""Run the registered stages on one asset: in dependency order, independent stages in parallel,
each stage committed atomically with its ``stage_runs`` row, so a killed run resumes where it stopped."""

from __future__ import annotations

import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from tamperscope.custody import lease
from tamperscope.custody.audit import append_event
from tamperscope.custody.seal import asset_objects, seal
from tamperscope.errors import InputRejectedError, LimitExceededError, RejectReason, UsageError
from tamperscope.media.session import MediaSession
from tamperscope.pipeline.registry import all_stages
from tamperscope.records import AssetStatus, StageOutput
from tamperscope.settings import Settings
from tamperscope.stages.base import ProgressCallback, Stage, StageBudget, StageContext, fingerprint, open_session
from tamperscope.store.models import Asset, Detection, Frame, Shot, StageRun, Window
from tamperscope.store.queries import find_asset, stage_runs
from tamperscope.workspace import Workspace


@dataclass
class RunResult:
    asset_id: str
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    not_applicable: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)  # stage -> reject reason, when a stage refused the input
    limited: dict[str, str] = field(default_factory=dict)  # stage -> the budget it exceeded (time, memory, ...)


def _write_output(session: Session, stage: Stage, asset_id: str, output: StageOutput) -> None:
    now = datetime.now(UTC)
    session.execute(delete(Detection).where(Detection.asset_id == asset_id, Detection.stage == stage.name))
    if "frames" in stage.owns_tables or "shots" in stage.owns_tables:
        session.execute(delete(Window).where(Window.asset_id == asset_id))
        session.execute(delete(Frame).where(Frame.asset_id == asset_id))
    if "shots" in stage.owns_tables:
        session.execute(delete(Shot).where(Shot.asset_id == asset_id))
    session.flush()
    for shot in output.shots:
        session.add(Shot(asset_id=asset_id, **shot))
    session.flush()
    for frame in output.frames:
        session.add(Frame(asset_id=asset_id, **frame))
    session.flush()
    for window in output.windows:
        session.add(Window(asset_id=asset_id, **window.to_row()))
    for record in output.detections:
        session.add(
            Detection(
                asset_id=asset_id,
                stage=stage.name,
                window_id=record.window_id,
                module_name=record.module_name,
                module_version=record.module_version,
                params_json=record.params,
                t_start_ms=record.t_start_ms,
                t_end_ms=record.t_end_ms,
                status=record.status,
                score=record.score,
                logits_json=record.logits,
                threshold=record.threshold,
                band=record.band,
                evidence_json=record.evidence,
                saliency_uri=record.saliency_uri,
                overlay_uri=record.overlay_uri,
                created_at=now,
            )
        )
    if output.asset_updates:
        asset = session.get(Asset, asset_id)
        assert asset is not None
        for key, value in output.asset_updates.items():
            setattr(asset, key, value)


def _sealed_groups(stage: Stage, asset_id: str, output: StageOutput) -> list[str]:
    """The evidence groups a stage commit (re)wrote: see :mod:`tamperscope.custody.seal`."""
    groups = [f"assets/{asset_id}", f"detections/{asset_id}/{stage.name}"]
    if set(stage.owns_tables) & {"frames", "shots"} or output.windows:
        groups += [f"shots/{asset_id}", f"frames/{asset_id}", f"windows/{asset_id}"]
    return groups


def _record_run(session: Session, stage: Stage, asset_id: str, params: dict[str, Any], status: str,
                error: str | None, summary: dict[str, Any], fingerprint: str | None) -> None:
    session.merge(
        StageRun(asset_id=asset_id, stage=stage.name, version=stage.version, params_json=params, status=status,
                 error=error, finished_at=datetime.now(UTC), summary_json=summary, fingerprint=fingerprint)
    )


def _is_current(previous: StageRun | None, print_: str) -> bool:
    """The one rule: a stored result is current when its run succeeded with the fingerprint ``print_``."""
    return previous is not None and previous.status in ("done", "not_applicable") and previous.fingerprint == print_


def _stale_prints(previous: dict[str, StageRun], stages: list[Stage], settings: Settings, *,
                  only: list[str] | None = None, force: bool = False) -> dict[str, str]:
    """The stages (of ``stages``, in dependency order) whose stored result is not current under the fingerprint
    rule, each with the fingerprint its new run records; a stage whose inputs will change gets a new
    fingerprint, so the stages after it follow. ``only`` limits the answer to those stages and ``force``
    re-runs them all."""
    current: dict[str, str | None] = {name: run.fingerprint for name, run in previous.items()}
    stale: dict[str, str] = {}
    for stage in stages:
        if only and stage.name not in only:
            continue
        print_ = fingerprint(stage, settings, current)
        if force or not _is_current(previous.get(stage.name), print_):
            stale[stage.name] = current[stage.name] = print_
    return stale


def stages_to_run(previous: dict[str, StageRun], stages: list[Stage], settings: Settings, *,
                  only: list[str] | None = None, force: bool = False) -> set[str]:
    """The names of the stages not current (:func:`_stale_prints`). An empty answer means the asset's results
    are current (the runner and the batch's skip decide with this one rule)."""
    return set(_stale_prints(previous, stages, settings, only=only, force=force))


def analyze_asset(ws: Workspace, ref: str, *, only: list[str] | None = None, force: bool = False,
                  progress: ProgressCallback | None = None) -> RunResult:
    """Run every stage not yet current for the asset (:func:`~tamperscope.stages.base.fingerprint`: a stage
    whose fingerprint changed re-runs, and so, through theirs, do the stages after it).

    The run holds the asset's analysis lease (see :mod:`tamperscope.custody.lease`): a second run of the same
    asset waits or fails with :class:`BusyError`, and a run that died is recovered by the next one.
    """
    with ws.db.read_session() as session:
        asset_id = find_asset(session, ref).asset_id
    with lease.hold(ws, asset_id):
        return _analyze_leased(ws, asset_id, only=only, force=force, progress=progress)


def _analyze_leased(ws: Workspace, ref: str, *, only: list[str] | None, force: bool,
                    progress: ProgressCallback | None) -> RunResult:
    actor = ws.actor
    with ws.db.session() as session:
        asset = find_asset(session, ref)
        if asset.status == AssetStatus.REJECTED:
            raise InputRejectedError(RejectReason(asset.reject_reason or "corrupt_stream"),
                                     asset.error or "input was rejected at intake", asset_id=asset.asset_id)
        done = {run.stage: run for run in stage_runs(session, asset.asset_id)}
        asset.status = AssetStatus.ANALYZING
        append_event(session, action="analysis.started", who=actor, asset_id=asset.asset_id,
                     details={"only": only, "force": force})
        seal(session, who=actor, asset_id=asset.asset_id, groups=[f"assets/{asset.asset_id}"])
        session.expunge(asset)
    stages = all_stages()
    if only:
        unknown = set(only) - {s.name for s in stages}
        if unknown:
            raise UsageError(f"unknown stages: {', '.join(sorted(unknown))}")
    result = RunResult(asset_id=asset.asset_id)
    media = open_session(ws, asset)  # one fetch, one decode, shared by every stage of this analysis
    media.wants = set(only) if only else {s.name for s in stages}
    try:
        _run_stages(ws, asset, stages, done, media, result, only=only, force=force, progress=progress)
    finally:
        media.close()

    objects = asset_objects(ws.store, asset.asset_id, asset.storage_key)
    with ws.db.session() as session:
        stored = session.get(Asset, asset.asset_id)
        assert stored is not None
        stored.status = (AssetStatus.LIMIT_EXCEEDED if result.limited else AssetStatus.FAILED if result.failed
                         else AssetStatus.ANALYZED)
        stored.error = "; ".join(f"{k}: {v}" for k, v in result.failed.items()) or None
        append_event(session, action="analysis.finished", who=actor, asset_id=asset.asset_id,
                     details={"ran": result.ran, "skipped": result.skipped, "failed": result.failed,
                              "not_applicable": result.not_applicable, "limit_exceeded": result.limited})
        seal(session, who=actor, asset_id=asset.asset_id, groups=[f"assets/{asset.asset_id}"], objects=objects)
    return result


def _run_stages(ws: Workspace, asset: Asset, stages: list[Stage], done: dict[str, StageRun], media: MediaSession,
                result: RunResult, *, only: list[str] | None, force: bool, progress: ProgressCallback | None) -> None:
    """Run the stages not yet current, in dependency order, ``ws.settings.workers`` at a time."""
    actor = ws.actor
    prints = _stale_prints(done, stages, ws.settings, only=only, force=force)  # the stages to run, and their prints

    def execute(stage: Stage) -> tuple[StageOutput | None, str]:
        if not stage.applies_to(asset):
            return None, "not_applicable"
        ctx = StageContext(ws=ws, asset=asset, progress=progress, stage_name=stage.name, media=media,
                           budget=StageBudget.from_limits(stage.name, ws.settings.limits))
        ctx.report(0.0, "started")
        output = stage.run(ctx)
        ctx.report(1.0, "done")
        return output, "done"

    def commit(stage: Stage, output: StageOutput | None, status: str) -> None:
        params = stage.params(ws.settings)
        objects = asset_objects(ws.store, asset.asset_id, asset.storage_key) if output is not None else None
        with ws.db.session() as session:
            if output is not None:
                _write_output(session, stage, asset.asset_id, output)
            _record_run(session, stage, asset.asset_id, params, status, None, output.summary if output else {},
                        prints[stage.name])
            append_event(session, action=f"stage.{status}", who=actor, asset_id=asset.asset_id,
                         details={"stage": stage.name, "version": stage.version, "params": params,
                                  "rows": {"shots": len(output.shots), "frames": len(output.frames),
                                           "detections": len(output.detections)} if output else {}})
            if output is not None:
                seal(session, who=actor, asset_id=asset.asset_id, groups=_sealed_groups(stage, asset.asset_id,
                                                                                         output), objects=objects)

    pending = {s.name: s for s in stages}
    running: dict[Future[tuple[StageOutput | None, str]], Stage] = {}
    with ThreadPoolExecutor(max_workers=ws.settings.workers, thread_name_prefix="stage") as pool:
        while pending or running:
            for name, stage in list(pending.items()):
                blocked = [d for d in stage.requires if d in pending or any(r.name == d for r in running.values())]
                if blocked:
                    continue
                failed_dep = [d for d in stage.requires if d in result.failed]
                del pending[name]
                if failed_dep:
                    result.failed[name] = f"skipped: {', '.join(failed_dep)} failed"
                    continue
                if name not in prints:
                    result.skipped.append(name)
                    continue
                running[pool.submit(execute, stage)] = stage
            if not running:
                continue
            completed, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in completed:
                stage = running.pop(future)
                try:
                    output, status = future.result()
                    commit(stage, output, status)
                except Exception as exc:
                    message = f"{type(exc).__name__}: {exc}"
                    result.failed[stage.name] = message
                    status, details = "failed", {"error": message}
                    if isinstance(exc, InputRejectedError):
                        result.rejected[stage.name] = exc.reason.value
                    if isinstance(exc, LimitExceededError):
                        result.limited[stage.name] = exc.limit
                        status, details = "limit_exceeded", {"limit": exc.limit, "error": exc.message}
                    with ws.db.session() as session:
                        _record_run(session, stage, asset.asset_id, stage.params(ws.settings), status, message,
                                    {"traceback": traceback.format_exc(limit=8)}, prints[stage.name])
                        append_event(session, action=f"stage.{status}", who=actor, asset_id=asset.asset_id,
                                     details={"stage": stage.name, "version": stage.version, **details})
                    continue
                (result.ran if status == "done" else result.not_applicable).append(stage.name)


__all__ = ["RunResult", "analyze_asset", "stages_to_run"]
