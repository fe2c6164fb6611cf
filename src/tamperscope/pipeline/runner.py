"""Run the registered stages on one asset: in dependency order, independent stages in parallel,
each stage committed atomically with its ``stage_runs`` row, so a killed run resumes where it stopped.

An analysis runs in one call (:func:`analyze_asset`), or in parts (the batch's task graph per asset): it is begun
once (:func:`begin_analysis`), each part runs some of the stages under the asset's lease (:func:`analyze_asset` with
``part_of``), and it is finished once (:func:`finish_analysis`), which sets the asset's status from every part.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from tamperscope.custody import lease
from tamperscope.custody.audit import append_event
from tamperscope.custody.seal import ObjectDigests, asset_objects, seal
from tamperscope.errors import InputRejectedError, LimitExceededError, RejectReason
from tamperscope.media.session import MediaSession
from tamperscope.pipeline.registry import all_stages, check_known
from tamperscope.pipeline.watchdog import Overrun, Watchdog
from tamperscope.records import AssetStatus, StageOutput
from tamperscope.settings import LimitSettings, Settings
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

    @classmethod
    def merged(cls, asset_id: str, parts: list[RunResult]) -> RunResult:
        """One result of the parts of an analysis (each holds its own stages' outcomes)."""
        result = cls(asset_id=asset_id)
        for part in parts:
            result.ran += part.ran
            result.skipped += part.skipped
            result.not_applicable += part.not_applicable
            result.failed.update(part.failed)
            result.rejected.update(part.rejected)
            result.limited.update(part.limited)
        return result

    def restricted(self, stages: set[str]) -> RunResult:
        """This result with only the outcomes of ``stages``."""
        return RunResult(asset_id=self.asset_id, ran=[s for s in self.ran if s in stages],
                         skipped=[s for s in self.skipped if s in stages],
                         not_applicable=[s for s in self.not_applicable if s in stages],
                         failed={k: v for k, v in self.failed.items() if k in stages},
                         rejected={k: v for k, v in self.rejected.items() if k in stages},
                         limited={k: v for k, v in self.limited.items() if k in stages})


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


def _limits_record(limits: LimitSettings) -> dict[str, Any]:
    """The budgets a run went past, kept in its ``stage_runs`` summary (see :func:`_is_settled`)."""
    return limits.model_dump(mode="json")


def _is_settled(previous: StageRun | None, print_: str, limits: LimitSettings) -> bool:
    """A ``limit_exceeded`` result stands (is not re-run without ``force``) while the stage's fingerprint and
    the budgets it exceeded are unchanged: the same run would only exceed them again, or hang again in a native
    call until the watchdog ends the process. Raising a budget re-runs it."""
    return (previous is not None and previous.status == "limit_exceeded" and previous.fingerprint == print_
            and (previous.summary_json or {}).get("limits") == _limits_record(limits))


def _stale_prints(previous: dict[str, StageRun], stages: list[Stage], settings: Settings, *,
                  only: list[str] | None = None, force: bool = False) -> dict[str, str]:
    """The stages (of ``stages``, in dependency order) whose stored result is not current under the fingerprint
    rule (nor a ``limit_exceeded`` result that stands, :func:`_is_settled`), each with the fingerprint its new run
    records; a stage whose inputs will change gets a new fingerprint, so the stages after it follow. ``only``
    limits the answer to those stages and ``force`` re-runs them all."""
    current: dict[str, str | None] = {name: run.fingerprint for name, run in previous.items()}
    stale: dict[str, str] = {}
    for stage in stages:
        if only and stage.name not in only:
            continue
        print_ = fingerprint(stage, settings, current)
        stored = previous.get(stage.name)
        if force or not (_is_current(stored, print_) or _is_settled(stored, print_, settings.limits)):
            stale[stage.name] = current[stage.name] = print_
    return stale


def stages_to_run(previous: dict[str, StageRun], stages: list[Stage], settings: Settings, *,
                  only: list[str] | None = None, force: bool = False) -> set[str]:
    """The names of the stages not current (:func:`_stale_prints`). An empty answer means the asset's results
    are current (the runner and the batch's skip decide with this one rule)."""
    return set(_stale_prints(previous, stages, settings, only=only, force=force))


def _refuse_rejected(asset: Asset) -> None:
    """Raise :class:`InputRejectedError` for an asset intake rejected: there is nothing to analyse."""
    if asset.status == AssetStatus.REJECTED:
        raise InputRejectedError(RejectReason(asset.reject_reason or "corrupt_stream"),
                                 asset.error or "input was rejected at intake", asset_id=asset.asset_id)


def analyze_asset(ws: Workspace, ref: str, *, only: list[str] | None = None, force: bool = False,
                  progress: ProgressCallback | None = None, part_of: RunResult | None = None) -> RunResult:
    """Run every stage not yet current for the asset (:func:`~tamperscope.stages.base.fingerprint`: a stage
    whose fingerprint changed re-runs, and so, through theirs, do the stages after it).

    The run holds the asset's analysis lease (see :mod:`tamperscope.custody.lease`): a second run of the same
    asset waits or fails with :class:`BusyError`, and a run that died is recovered by the next one. Each stage
    run is guarded by a :class:`~tamperscope.pipeline.watchdog.Watchdog`: a stage stuck past its wall-clock
    budget plus ``limits.stage_grace_s`` is recorded ``limit_exceeded`` and the process ends with exit code 3.

    With ``part_of`` (the merged results of the parts it follows, :meth:`RunResult.merged`) this is one part of an
    analysis begun by :func:`begin_analysis`: a stage whose requirement failed there is skipped as failed, the
    asset's status and the ``analysis.started``/``finished`` events are left to the begin and the finish, and the
    result holds only the outcomes of ``only``.
    """
    with ws.db.read_session() as session:
        asset_id = find_asset(session, ref).asset_id
    with lease.hold(ws, asset_id) as held:
        return _analyze_leased(ws, asset_id, held, only=only, force=force, progress=progress, part_of=part_of)


def begin_analysis(ws: Workspace, ref: str, *, only: list[str] | None = None, force: bool = False) -> str:
    """Begin an analysis run in parts: refuse a rejected asset or an unknown stage, record ``analysis.started``
    once, and return the asset id.

    The asset's status changes only at :func:`finish_analysis`, so between parts, when no lease is held, it is not
    marked analysing (the next lease would take that for a dead run); an asset a dead run left marked analysing is
    recovered here, under the lease, once, and set back to accepted until the finish.
    """
    check_known(only, (s.name for s in all_stages()))
    with ws.db.read_session() as session:
        asset_id = find_asset(session, ref).asset_id
    with lease.hold(ws, asset_id), ws.db.session() as session:
        asset = find_asset(session, asset_id)
        _refuse_rejected(asset)
        if asset.status == AssetStatus.ANALYZING:
            asset.status = AssetStatus.ACCEPTED
            seal(session, who=ws.actor, asset_id=asset_id, groups=[f"assets/{asset_id}"])
        append_event(session, action="analysis.started", who=ws.actor, asset_id=asset_id,
                     details={"only": only, "force": force, "parts": True})
    return asset_id


def finish_analysis(ws: Workspace, result: RunResult) -> None:
    """Finish an analysis run in parts (:func:`begin_analysis`): under the asset's lease, set its status from
    ``result`` (every part's outcomes, :meth:`RunResult.merged`) and record ``analysis.finished``."""
    with lease.hold(ws, result.asset_id):
        with ws.db.read_session() as session:
            asset = find_asset(session, result.asset_id)
            session.expunge(asset)
        _finish(ws, asset, result)


def _analyze_leased(ws: Workspace, ref: str, held: lease.Lease, *, only: list[str] | None, force: bool,
                    progress: ProgressCallback | None, part_of: RunResult | None) -> RunResult:
    actor = ws.actor
    with ws.db.session() as session:
        asset = find_asset(session, ref)
        _refuse_rejected(asset)
        done = {run.stage: run for run in stage_runs(session, asset.asset_id)}
        if part_of is None:
            asset.status = AssetStatus.ANALYZING
            append_event(session, action="analysis.started", who=actor, asset_id=asset.asset_id,
                         details={"only": only, "force": force})
            seal(session, who=actor, asset_id=asset.asset_id, groups=[f"assets/{asset.asset_id}"])
        session.expunge(asset)
    stages = all_stages()
    check_known(only, (s.name for s in stages))
    # a part starts from the outcomes before it, so its stages see which requirements failed
    result = RunResult.merged(asset.asset_id, [part_of] if part_of is not None else [])
    media = open_session(ws, asset)  # one fetch, one decode, shared by every stage of this analysis
    media.wants = set(only) if only else {s.name for s in stages}
    digests = ObjectDigests(ws.store)  # the seals of this analysis hash each unchanged object once
    try:
        _run_stages(ws, asset, stages, done, media, result, held, digests, only=only, force=force, progress=progress)
    finally:
        media.close()
    if part_of is not None:
        return result.restricted(media.wants)
    _finish(ws, asset, result, digests)
    return result


def _finish(ws: Workspace, asset: Asset, result: RunResult, digests: ObjectDigests | None = None, **extra: Any) -> None:
    """Set the asset's status from the run's outcome and record ``analysis.finished`` (with ``extra`` details).

    Every finish (a whole run, a batch's finish part, a watchdog's) seals with the store's remembered digests."""
    objects = asset_objects(ws.store, asset.asset_id, asset.storage_key, digests or ObjectDigests(ws.store))
    with ws.db.session() as session:
        stored = session.get(Asset, asset.asset_id)
        assert stored is not None
        stored.status = (AssetStatus.LIMIT_EXCEEDED if result.limited else AssetStatus.FAILED if result.failed
                         else AssetStatus.ANALYZED)
        failed = dict(result.failed)  # copies: the watchdog calls this while the runner's thread may still add
        stored.error = "; ".join(f"{k}: {v}" for k, v in failed.items()) or None
        append_event(session, action="analysis.finished", who=ws.actor, asset_id=asset.asset_id,
                     details={"ran": list(result.ran), "skipped": list(result.skipped), "failed": failed,
                              "not_applicable": list(result.not_applicable), "limit_exceeded": dict(result.limited),
                              **extra})
        seal(session, who=ws.actor, asset_id=asset.asset_id, groups=[f"assets/{asset.asset_id}"], objects=objects)


def _record_failure(ws: Workspace, asset_id: str, stage: Stage, exc: Exception, print_: str, result: RunResult,
                    summary: dict[str, Any], **details: Any) -> None:
    """Record a stage that raised: ``failed``, or ``limit_exceeded`` (with the budgets it exceeded) for a
    :class:`LimitExceededError`; its ``stage_runs`` row and audit event in one transaction."""
    message = f"{type(exc).__name__}: {exc}"
    result.failed[stage.name] = message
    status, event = "failed", {"error": message}
    if isinstance(exc, InputRejectedError):
        result.rejected[stage.name] = exc.reason.value
    if isinstance(exc, LimitExceededError):
        result.limited[stage.name] = exc.limit
        status, event = "limit_exceeded", {"limit": exc.limit, "error": exc.message, **details}
        summary = {**summary, "limit": exc.limit, "limits": _limits_record(ws.settings.limits)}
    with ws.db.session() as session:
        _record_run(session, stage, asset_id, stage.params(ws.settings), status, message, summary, print_)
        append_event(session, action=f"stage.{status}", who=ws.actor, asset_id=asset_id,
                     details={"stage": stage.name, "version": stage.version, **event})


def _overrun_recorder(ws: Workspace, asset: Asset, stages: dict[str, Stage], prints: dict[str, str],
                      result: RunResult, held: lease.Lease) -> Callable[[Overrun], None]:
    """What the watchdog records before it ends the process: the stuck stage ``limit_exceeded`` (as a
    cooperative time limit records it), the asset's status and ``analysis.finished``, then the lease released."""

    def record(overrun: Overrun) -> None:
        stage = stages[overrun.stage]
        _record_failure(ws, asset.asset_id, stage, overrun.error(), prints[stage.name], result, {},
                        watchdog=True, elapsed_s=round(overrun.elapsed_s, 3))
        _finish(ws, asset, result, ended_by="watchdog")
        lease.release(ws, held)

    return record


def _run_stages(ws: Workspace, asset: Asset, stages: list[Stage], done: dict[str, StageRun], media: MediaSession,
                result: RunResult, held: lease.Lease, digests: ObjectDigests, *, only: list[str] | None,
                force: bool, progress: ProgressCallback | None) -> None:
    """Run the stages not yet current, in dependency order, ``ws.settings.workers`` at a time, each under the
    watchdog (:mod:`tamperscope.pipeline.watchdog`)."""
    actor = ws.actor
    limits = ws.settings.limits
    prints = _stale_prints(done, stages, ws.settings, only=only, force=force)  # the stages to run, and their prints
    watchdog = Watchdog(_overrun_recorder(ws, asset, {s.name: s for s in stages}, prints, result, held),
                        asset.asset_id, limits.stage_timeout_s, limits.stage_grace_s)

    def execute(stage: Stage) -> tuple[StageOutput | None, str]:
        if not stage.applies_to(asset):
            return None, "not_applicable"
        with watchdog.guard(stage.name):
            ctx = StageContext(ws=ws, asset=asset, progress=progress, stage_name=stage.name, media=media,
                               budget=StageBudget.from_limits(stage.name, limits))
            ctx.report(0.0, "started")
            output = stage.run(ctx)
            ctx.report(1.0, "done")
        return output, "done"

    def commit(stage: Stage, output: StageOutput | None, status: str) -> None:
        params = stage.params(ws.settings)
        objects = None if output is None else asset_objects(ws.store, asset.asset_id, asset.storage_key, digests)
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
                    stored = done.get(name)
                    if (stored is not None and stored.status == "limit_exceeded"  # a limit result that stands
                            and (not only or name in only)):
                        result.failed[name] = (f"{stored.error} (stored result; raise the budget or use --force "
                                               "to run it again)")
                        result.rejected[name] = RejectReason.LIMIT_EXCEEDED.value
                        result.limited[name] = (stored.summary_json or {}).get("limit", "time")
                    else:
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
                    _record_failure(ws, asset.asset_id, stage, exc, prints[stage.name], result,
                                    {"traceback": traceback.format_exc(limit=8)})
                    continue
                (result.ran if status == "done" else result.not_applicable).append(stage.name)


__all__ = ["RunResult", "analyze_asset", "begin_analysis", "finish_analysis", "stages_to_run"]
