"""The JSON evidence report: a pure function from loaded rows to a dict, plus the loader at the edge.

The report is built only from the database and the object store, so regenerating it from stored data yields
byte-identical output. Custody lists the audit events up to the analysis (report and access events are
excluded, since writing the report is itself an event), and the chain hash given is the hash of the last
listed event, which :func:`tamperscope.custody.audit.verify_chain` ties to the chain head. Evidence seals are
not listed (they hold every row hash) but the signed head is the asset's last event including its seals,
signed with the installation key, so the report names the chain state that commits to all its evidence.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tamperscope._version import __version__
from tamperscope.custody.audit import canonical_json
from tamperscope.custody.seal import SEAL_ACTION
from tamperscope.fusion.branches import BRANCHES
from tamperscope.fusion.model import load_model
from tamperscope.records import FrameRecord, ShotRecord
from tamperscope.report.narrative import (
    LIMITATIONS,
    c2pa_summary,
    face_evidence,
    findings,
    methods_for,
    module_summary,
    strip_machine_paths,
    verdict_sentence,
    verdict_stages,
)
from tamperscope.store import queries
from tamperscope.store.models import Asset, AuditEvent, Detection, StageRun
from tamperscope.workspace import Workspace

# 1.1: asset.structure (intake's container walk); 1.2: custody.signed_head; 2.0: case, summary (findings),
# modules_summary, face_evidence, provenance, flags' entered_verdict, methods, limitations; no machine paths
SCHEMA_VERSION = "2.0.0"
SCHEMA_ID = "https://tamperscope.example/schema/report-v2.schema.json"
CASE_ACTION = "case.assigned"
FACE_EVIDENCE = 6
PYTHON_PACKAGES = ("numpy", "scipy", "opencv-python-headless", "av", "scikit-image", "scenedetect", "onnxruntime",
                   "mediapipe", "sqlalchemy", "reportlab", "matplotlib", "fastapi")
EXCLUDED_ACTION_PREFIXES = ("report.", "access.", "api.")

@dataclass(frozen=True)
class ReportInputs:
    """Every row a report is built from, already loaded."""

    asset: Asset
    events: Sequence[AuditEvent]
    stage_runs: Sequence[StageRun]
    detections: Sequence[Detection]
    shots: Sequence[ShotRecord]
    frames: Sequence[FrameRecord]
    artifact_sha256: dict[str, str]
    python_packages: dict[str, str]
    signed_head: dict[str, Any] | None = None
    fusion_model: dict[str, Any] | None = None  # model_id, branches, branch_stages of the verdict's artifact


def _utc_naive(value: datetime) -> datetime:
    """UTC without tzinfo, whatever the backend returned (SQLite: naive UTC; PostgreSQL: aware, session zone)."""
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo is not None else value


def _iso(value: datetime | None) -> str | None:
    return _utc_naive(value).isoformat() + "Z" if value is not None else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 6)


def verdict_row(detections: Iterable[Detection]) -> Detection | None:
    """The fusion stage's whole-asset row, which holds the verdict (None before fusion ran)."""
    return next((d for d in detections if d.module_name == "fusion" and d.window_id == "asset"), None)


def generated_at(inputs: ReportInputs) -> str:
    """The report's date, taken from the data: the last finished stage run, else the upload time."""
    times = [run.finished_at for run in inputs.stage_runs if run.finished_at is not None]
    latest = max(times) if times else inputs.asset.upload_time
    return _utc_naive(latest).isoformat(timespec="seconds") + "Z"


def _detection(row: Detection) -> dict[str, Any]:
    return {
        "module_name": row.module_name, "module_version": row.module_version, "stage": row.stage,
        "window_id": row.window_id, "status": row.status, "score": _round(row.score),
        "threshold": _round(row.threshold), "band": row.band, "t_start_ms": row.t_start_ms, "t_end_ms": row.t_end_ms,
        "params": row.params_json or {}, "logits": row.logits_json, "evidence": row.evidence_json or {},
        "saliency_uri": row.saliency_uri, "overlay_uri": row.overlay_uri,
    }


def _timelines(detections: Sequence[Detection]) -> dict[str, list[dict[str, Any]]]:
    series: dict[str, list[dict[str, Any]]] = {}
    for row in detections:
        if row.window_id == "asset" or row.t_start_ms is None or row.score is None:
            continue
        series.setdefault(row.module_name, []).append({
            "window_id": row.window_id, "t_start_ms": row.t_start_ms,
            "t_end_ms": row.t_end_ms if row.t_end_ms is not None else row.t_start_ms, "score": _round(row.score)})
    for points in series.values():
        points.sort(key=lambda p: (p["t_start_ms"], p["window_id"]))
    return dict(sorted(series.items()))


def _case(events: Sequence[AuditEvent]) -> dict[str, Any] | None:
    """The case reference and examiner of the last ``case.assigned`` event (None when never assigned)."""
    last = next((e for e in reversed(events) if e.action == CASE_ACTION), None)
    if last is None:
        return None
    details = last.details_json or {}
    return {"case_id": details.get("case_id"), "examiner": details.get("examiner"), "assigned_at": last.when,
            "assigned_by": last.who, "event_id": last.event_id}


def _provenance(asset: Asset, fed: set[str]) -> dict[str, Any]:
    return {"c2pa_status": asset.provenance_status, "manifest": c2pa_summary(asset.provenance_json),
            "entered_verdict": asset.provenance_status is not None and "metadata" in fed}


def build_report(inputs: ReportInputs) -> dict[str, Any]:
    """Assemble the JSON evidence report (schema ``report-v2``) from loaded rows; no I/O."""
    asset = inputs.asset
    detections = sorted(inputs.detections, key=lambda d: (d.module_name, d.t_start_ms or 0, d.window_id))
    events = sorted(inputs.events, key=lambda e: e.event_id)
    fusion = verdict_row(detections)
    verdict = None
    if fusion is not None:
        evidence = fusion.evidence_json or {}
        verdict = {"probability": _round(fusion.score), "band": fusion.band, "threshold": _round(fusion.threshold),
                   "policy_version": evidence.get("policy_version"), "model_id": evidence.get("model_id"),
                   "meaning": verdict_sentence(fusion.band, fusion.score, evidence,
                                               (inputs.fusion_model or {}).get("calibration")),
                   "evidence": evidence}
    fed = verdict_stages((inputs.fusion_model or {}).get("branch_stages"),
                         fusion.evidence_json if fusion is not None else None)
    flags = [{"module_name": d.module_name, "window_id": d.window_id, "stage": d.stage,
              "evidence": d.evidence_json or {}, "entered_verdict": d.stage in fed}
             for d in detections if d.status == "flag"]
    detection_dicts = [_detection(d) for d in detections]
    faces = [{"frame_id": f.frame_id, "faces": [{"track_id": x.track_id, "crop_uri": x.crop_uri} for x in f.faces]}
             for f in inputs.frames]
    in_verdict = [d.module_name for d in detections if d.stage in fed]
    artifacts = sorted(
        [{"uri": uri, "sha256": digest} for uri, digest in inputs.artifact_sha256.items()], key=lambda a: a["uri"])
    modules = sorted({(d.module_name, d.module_version, d.stage) for d in detections})
    report = {
        "$schema": SCHEMA_ID,
        "schema_version": SCHEMA_VERSION,
        "generated_at": generated_at(inputs),
        "asset": {
            "asset_id": asset.asset_id, "sha256": asset.sha256, "size_bytes": asset.size_bytes,
            "original_name": asset.original_name, "media_type": asset.media_type, "mime": asset.mime,
            "container": asset.container, "duration_ms": asset.duration_ms, "width": asset.width,
            "height": asset.height, "fps": _round(asset.fps), "status": asset.status, "source": asset.source,
            "license": asset.license, "uploaded_by": asset.uploaded_by, "upload_time": _iso(asset.upload_time),
            "storage_key": asset.storage_key, "provenance_status": asset.provenance_status,
            "structure": (asset.probe_json or {}).get("structure"),
        },
        "custody": {
            "events": [{"event_id": e.event_id, "who": e.who, "when": e.when, "action": e.action,
                        "details": e.details_json, "prev_hash": e.prev_hash, "hash": e.hash} for e in events],
            "chain_hash": events[-1].hash if events else None,
            "signed_head": inputs.signed_head,
        },
        "tools": {
            "tamperscope": __version__,
            "external": dict(sorted((asset.tool_versions_json or {}).items())),
            "python_packages": dict(sorted(inputs.python_packages.items())),
            "stages": [{"stage": r.stage, "version": r.version, "status": r.status, "params": r.params_json or {},
                        "finished_at": _iso(r.finished_at), "error": r.error, "summary": r.summary_json}
                       for r in sorted(inputs.stage_runs, key=lambda r: r.stage)],
            "modules": [{"module_name": m, "module_version": v, "stage": s} for m, v, s in modules],
        },
        "case": _case(events),
        "metadata_flags": flags,
        "provenance": _provenance(asset, fed),
        "fusion_model": inputs.fusion_model,
        "modules_summary": module_summary(detection_dicts),
        "face_evidence": face_evidence(detection_dicts, faces, FACE_EVIDENCE),
        "methods": methods_for((d.module_name for d in detections), in_verdict),
        "limitations": list(LIMITATIONS),
        "detections": detection_dicts,
        "timelines": _timelines(detections),
        "shots": [{"shot_id": s.shot_id, "index": s.index, "t_start_ms": s.t_start_ms, "t_end_ms": s.t_end_ms}
                  for s in sorted(inputs.shots, key=lambda s: s.index)],
        "frames": [{"frame_id": f.frame_id, "shot_id": f.shot_id, "t_ms": f.t_ms, "uri": f.uri}
                   for f in sorted(inputs.frames, key=lambda f: f.t_ms)],
        "artifacts": artifacts,
        "verdict": verdict,
    }
    report = strip_machine_paths(report)
    report["summary"] = {"findings": findings(report)}
    return report


def report_bytes(report: dict[str, Any]) -> bytes:
    """The one serialisation of a report: canonical JSON (sorted keys) plus a newline."""
    return canonical_json(report) + b"\n"


def python_package_versions(names: Sequence[str] = PYTHON_PACKAGES) -> dict[str, str]:
    versions: dict[str, str] = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def store_reader(ws: Workspace) -> Callable[[str], bytes]:
    """The bytes of a ``store://`` URI from the workspace's object store."""
    return lambda uri: ws.store.get_bytes(ws.store.key_of(uri))


def load_inputs(ws: Workspace, asset_ref: str, read_bytes: Callable[[str], bytes] | None = None) -> ReportInputs:
    """Load the rows of one asset and hash its artifacts (the I/O edge of :func:`build_report`)."""
    with ws.db.session() as session:
        asset = queries.find_asset(session, asset_ref)
        aid = asset.asset_id
        kept = [e for e in queries.audit_events(session, aid) if not e.action.startswith(EXCLUDED_ACTION_PREFIXES)]
        events = [e for e in kept if e.action != SEAL_ACTION]
        runs = list(queries.stage_runs(session, aid))
        detections = list(queries.detections(session, aid))
        shots = queries.shots(session, aid)
        frames = queries.frames(session, aid)
        session.expunge_all()
    uris = {u for d in detections for u in (d.saliency_uri, d.overlay_uri) if u}
    uris |= {f.uri for f in frames if f.uri}
    face_frames = {d.window_id for d in detections if d.module_name == "deep.frame" and d.saliency_uri}
    uris |= {face.crop_uri for f in frames if f.frame_id in face_frames for face in f.faces if face.crop_uri}
    reader = read_bytes or store_reader(ws)
    digests = {uri: hashlib.sha256(reader(uri)).hexdigest() for uri in sorted(uris)}
    signer = ws.db.signer
    signed_head = signer.signed_head(kept[-1].event_id, kept[-1].hash) if signer is not None and kept else None
    return ReportInputs(asset, events, runs, detections, shots, frames, digests, python_package_versions(),
                        signed_head, fusion_model_info(detections))


def fusion_model_info(detections: Sequence[Detection]) -> dict[str, Any] | None:
    """The branches of the fusion model behind the verdict (from its shipped artifact) and the stage each reads."""
    verdict = verdict_row(detections)
    model_id = ((verdict.evidence_json or {}).get("model_id") if verdict is not None else None)
    if model_id is None:
        return None
    model = load_model(model_id)
    cv = model.metrics.get("cv") or {}
    return {"model_id": model_id, "branches": list(model.branches),
            "branch_stages": {b: BRANCHES[b].stage for b in model.branches if b in BRANCHES},
            "artifact_sha256": model.artifact_sha256,
            "calibration": {"n": cv.get("n"), "positives": cv.get("positives"), "auc": _round(cv.get("auc")),
                            "low": _round(model.policy.low), "high": _round(model.policy.high),
                            "target_precision": model.policy.target_precision,
                            "reliability": [{"lo": _round(r["lo"]), "hi": _round(r["hi"]), "n": r["n"],
                                             "manipulated_share": _round(r["accuracy"])}
                                            for r in cv.get("reliability") or []]}}
