"""The case view: everything the web page shows for one asset, built in one pass from its stored rows.

:func:`build_case` is pure (loaded rows and the fusion model in, a JSON-able dict out); :func:`load_case` is the
I/O edge. The verdict comes first, with what its probability means under the policy: the measured precision of
its band and the share of manipulated cases among the calibration cases of similar probability, both read from
the fusion model's artifact (``fusion/artifacts/<model>.json``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from tamperscope.errors import NotFoundError
from tamperscope.fusion.branches import BRANCHES
from tamperscope.fusion.model import FusionModel, load_model
from tamperscope.fusion.policy import LIKELY_MANIPULATED, LIKELY_REAL, UNSURE
from tamperscope.media.orientation import upright_points
from tamperscope.probe.rules.explain import flag_sentence, flag_values
from tamperscope.records import FaceRecord, ShotRecord
from tamperscope.report.build import verdict_row
from tamperscope.report.narrative import BAND_WORDS, active_manifest, manifest_actions, verdict_stages
from tamperscope.store import queries
from tamperscope.store.models import Asset, AuditEvent, Detection, Report, StageRun
from tamperscope.workspace import Workspace

#: how many face crops the face-track strip shows (highest frame-model scores first).
FACE_STRIP = 8
#: a fused window at or above this probability is shaded as suspicious: more likely manipulated than not on the
#: calibration set. The policy's own threshold is drawn too; it is closed (1.0) while no band reaches 90 % precision.
SUSPICIOUS_P = 0.5
#: the modules whose per-window or per-frame scores can be drawn as branch lines under the fused timeline.
TIMELINE_BRANCHES = ("deep.frame", "deep.clip", "temporal.", "avsync.", "forensics.")
EXIF_SUMMARY = ("IFD0:Make", "IFD0:Model", "IFD0:Software", "ExifIFD:DateTimeOriginal", "IFD0:ModifyDate",
                "ExifIFD:LensModel", "GPS:GPSLatitude", "GPS:GPSLongitude", "XMP-xmp:CreatorTool",
                "File:FileType", "File:ImageWidth", "File:ImageHeight", "QuickTime:CreateDate",
                "QuickTime:Encoder")


@dataclass(frozen=True)
class FrameRow:
    """A sampled frame without its faces."""

    frame_id: str
    t_ms: int
    uri: str | None
    width: int | None
    height: int | None


@dataclass(frozen=True)
class CaseInputs:
    """The rows a case view is built from, already loaded."""

    asset: Asset
    detections: Sequence[Detection]
    stage_runs: Sequence[StageRun]
    shots: Sequence[ShotRecord]
    frames: Sequence[FrameRow]
    faces: Mapping[str, Sequence[FaceRecord]]
    events: Sequence[AuditEvent]
    report: Report | None
    model: FusionModel | None


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f} %"


def reading(model: FusionModel, band: str | None, probability: float | None) -> dict[str, Any]:
    """What ``probability`` means under ``model``'s policy: band precision and the similar calibration cases.

    ``band_precision`` is the cross-validated precision of the band (NPV for *likely real*) with its size, each
    fold's own thresholds applied to its held-out cases; ``shipped_band_precision`` the same for the shipped
    thresholds on the out-of-fold cases they were chosen on (optimistic);
    ``similar`` is the calibration reliability bin holding ``probability`` (how many cases, what share of them
    manipulated). ``sentences`` says the same for people.
    """
    policy = model.policy
    cv = model.metrics.get("cv", {})
    stats = cv.get(band or "", {}) if band in (LIKELY_MANIPULATED, LIKELY_REAL) else {}
    shipped = model.metrics.get("cv_shipped_policy", {}).get(band or "", {}) if stats else {}
    bins = model.metrics.get("cal", {}).get("reliability", [])
    similar = next((b for b in bins if probability is not None and b["lo"] <= probability
                    and (probability < b["hi"] or b["hi"] >= 1.0)), None)
    closed_high, closed_low = policy.high > 1.0, policy.low <= 0.0
    sentences = []
    if band == UNSURE:
        high = f"closed: no threshold reached {_pct(policy.target_precision)} precision" if closed_high \
            else f"{policy.high:.3f}"
        low = "closed" if closed_low else f"{policy.low:.3f}"
        sentences.append(
            f"Unsure is the policy abstaining: {policy.version} says 'likely manipulated' only at p >= {high} and "
            f"'likely real' only below {low}. In cross-validation {_pct(cv.get('unsure_share'))} of "
            f"{cv.get('n', '?')} evaluation cases were unsure.")
    elif band in (LIKELY_MANIPULATED, LIKELY_REAL):
        truth = "manipulated" if band == LIKELY_MANIPULATED else "real"
        sentences.append(
            f"Cases the cross-validated policy put in this band were {truth} {_pct(stats.get('precision'))} of the "
            f"time (n = {stats.get('n', 0)}); target {_pct(policy.target_precision)}.")
        if shipped.get("n"):
            sentences.append(
                f"The shipped threshold was chosen on {cv.get('n', '?')} out-of-fold evaluation cases; of the "
                f"{shipped['n']} it puts in this band, {_pct(shipped.get('precision'))} were {truth} (optimistic: "
                "measured on the cases it was chosen on).")
    if similar is not None:
        sentences.append(
            f"Of the {similar['n']} calibration cases with p in [{similar['lo']:.1f}, {similar['hi']:.1f}), "
            f"{_pct(similar['accuracy'])} were manipulated.")
    auc = cv.get("auc")
    if auc is not None:
        sentences.append(f"The model's cross-validated AUC is {auc:.2f} (0.5 is chance): read p as weak evidence"
                         if auc < 0.75 else f"The model's cross-validated AUC is {auc:.2f}.")
    return {"policy_version": policy.version, "high": policy.high, "low": policy.low,
            "target_precision": policy.target_precision, "high_closed": closed_high, "low_closed": closed_low,
            "band_precision": {"precision": stats.get("precision"), "n": stats.get("n")} if stats else None,
            "shipped_band_precision": {"precision": shipped.get("precision"), "n": shipped.get("n")} if shipped
            else None,
            "unsure_share": cv.get("unsure_share"), "evaluated": cv.get("n"), "auc": auc,
            "similar": None if similar is None else {"lo": similar["lo"], "hi": similar["hi"], "n": similar["n"],
                                                      "share_manipulated": similar["accuracy"]},
            "sentences": sentences}


#: module-name prefixes of the branches that read one module; the others read their whole stage's modules.
BRANCH_MODULES = {"deep_frame": "deep.frame", "deep_clip": "deep.clip"}
STAGE_MODULES = {"metadata": "meta."}


def _branch_modules(branch: str) -> str:
    """The module-name prefix whose rows feed a branch (``deep_frame`` -> ``deep.frame``, ``meta_flags`` ->
    ``meta.``)."""
    stage = BRANCHES[branch].stage
    return BRANCH_MODULES.get(branch) or STAGE_MODULES.get(stage, stage + ".")


def missing_reason(branch: str, detections: Sequence[Detection], runs: Mapping[str, StageRun]) -> str:
    """Why a model branch had no value: its stage did not run or failed, or the reasons its modules gave."""
    stage = BRANCHES[branch].stage if branch in BRANCHES else branch
    run = runs.get(stage)
    if run is None:
        return f"the {stage} stage did not run for this asset"
    if run.status != "done":
        return f"the {stage} stage failed: {run.error or 'no error recorded'}"
    prefix = _branch_modules(branch)
    reasons = sorted({str((d.evidence_json or {}).get("reason")) for d in detections
                      if d.module_name.startswith(prefix) and d.status in ("not_applicable", "insufficient_data")
                      and (d.evidence_json or {}).get("reason")})
    if reasons:
        return "; ".join(reasons)
    return f"no scored {prefix.rstrip('.')} rows for this asset"


def verdict_view(inputs: CaseInputs) -> dict[str, Any] | None:
    """The verdict: band, probability, reading under the policy, signed contributions, missing branches."""
    row = verdict_row(inputs.detections)
    if row is None:
        return None
    evidence = row.evidence_json or {}
    runs = {r.stage: r for r in inputs.stage_runs}
    model = inputs.model
    out: dict[str, Any] = {"band": row.band, "band_text": BAND_WORDS.get(row.band or "", "no verdict"),
                           "probability": row.score, "status": row.status, "reason": evidence.get("reason"),
                           "model_id": evidence.get("model_id"), "policy_version": evidence.get("policy_version")}
    if row.score is None or model is None:
        return out
    features = evidence.get("features") or {}
    columns = []
    for column, value in (evidence.get("contributions") or {}).items():
        branch, _, feature = column.partition(".")
        raw = (features.get(branch) or {}).get(feature)
        columns.append({"column": column, "branch": branch, "feature": feature, "value": float(value),
                        "raw": 1.0 if feature == "missing" and branch not in features else raw})
    out["contributions"] = sorted(columns, key=lambda c: (-abs(c["value"]), c["column"]))
    out["intercept"] = model.intercept
    out["present"] = list(evidence.get("branches_present") or [])
    out["missing"] = [{"branch": b, "why": missing_reason(b, inputs.detections, runs)}
                      for b in evidence.get("branches_missing") or []]
    trials = model.training.get("branch_selection", {})
    out["not_selected"] = [{"branch": b, "why": "left out at training: it did not raise the held-out AUC by "
                            f"{trials.get('min_gain', 0)}"} for b in trials.get("candidates", [])
                           if b not in model.branches]
    out["reading"] = reading(model, row.band, row.score)
    return out


def _segments(points: Sequence[Mapping[str, Any]], threshold: float) -> list[dict[str, Any]]:
    """Maximal runs of overlapping or touching windows at or above ``threshold``, with their peak."""
    hot = sorted((p for p in points if p["probability"] is not None and p["probability"] >= threshold),
                 key=lambda p: p["t_start_ms"])
    segments: list[dict[str, Any]] = []
    for p in hot:
        if segments and p["t_start_ms"] <= segments[-1]["t_end_ms"]:
            seg = segments[-1]
            seg["t_end_ms"] = max(seg["t_end_ms"], p["t_end_ms"])
            seg["peak"] = max(seg["peak"], p["probability"])
            seg["windows"] += 1
        else:
            segments.append({"t_start_ms": p["t_start_ms"], "t_end_ms": p["t_end_ms"], "peak": p["probability"],
                             "windows": 1})
    return segments


def timeline_view(inputs: CaseInputs) -> dict[str, Any]:
    """The fused per-window probability, its suspicious segments, shot boundaries and the branch lines."""
    fused = sorted(({"window_id": d.window_id, "t_start_ms": d.t_start_ms, "t_end_ms": d.t_end_ms,
                     "probability": d.score, "band": d.band, "track_id": (d.evidence_json or {}).get("track_id")}
                    for d in inputs.detections if d.module_name == "fusion.window" and d.t_start_ms is not None),
                   key=lambda p: (p["t_start_ms"], p["window_id"]))
    branches: dict[str, list[dict[str, Any]]] = {}
    for d in inputs.detections:
        if (d.window_id == "asset" or d.t_start_ms is None or d.score is None
                or not d.module_name.startswith(TIMELINE_BRANCHES)):
            continue
        branches.setdefault(d.module_name, []).append(
            {"t_start_ms": d.t_start_ms, "t_end_ms": d.t_end_ms if d.t_end_ms is not None else d.t_start_ms,
             "score": d.score})
    for points in branches.values():
        points.sort(key=lambda p: p["t_start_ms"])
    high = inputs.model.policy.high if inputs.model is not None else None
    return {"fused": fused, "suspicious": _segments(fused, SUSPICIOUS_P), "suspicious_p": SUSPICIOUS_P,
            "policy_high": high, "shots": [{"index": s.index, "t_start_ms": s.t_start_ms, "t_end_ms": s.t_end_ms}
                                           for s in inputs.shots],
            "branches": dict(sorted(branches.items())), "duration_ms": inputs.asset.duration_ms}


def strip_rows(detections: Sequence[Detection], limit: int = FACE_STRIP) -> list[Detection]:
    """The ``deep.frame`` rows of the face strip: those with a Grad-CAM map first, then by score."""
    rows = [d for d in detections if d.module_name == "deep.frame" and d.score is not None]
    rows.sort(key=lambda d: (d.saliency_uri is None, -(d.score or 0.0), d.window_id))
    return rows[:limit]


def faces_view(inputs: CaseInputs) -> list[dict[str, Any]]:
    """The face crops the frame model scored highest, with their Grad-CAM maps where the deep stage kept one."""
    frames = {f.frame_id: f for f in inputs.frames}
    out = []
    for d in strip_rows(inputs.detections):
        track = (d.evidence_json or {}).get("track_id")
        face = next((f for f in inputs.faces.get(d.window_id, ()) if f.track_id == track), None)
        frame = frames.get(d.window_id)
        out.append({"frame_id": d.window_id, "t_ms": d.t_start_ms, "score": d.score, "track_id": track,
                    "crop_uri": face.crop_uri if face else None, "saliency_uri": d.saliency_uri,
                    "frame_uri": frame.uri if frame else None})
    return out


def copymove_lines(evidence: Mapping[str, Any], stored_size: tuple[int | None, int | None] = (None, None)
                   ) -> list[list[float]]:
    """Match lines ``[x1, y1, x2, y2]`` in upright image pixels from a copy-move row's evidence (``pairs`` of each
    verified transform or shift, found in the stored grid ``stored_size`` = width, height and turned upright with
    the evidence's ``exif_orientation``; none when a turned image's size is unknown)."""
    pairs = [list(map(float, pair)) for item in [*(evidence.get("transforms") or []), *(evidence.get("shifts") or [])]
             if item.get("verified", True) for pair in item.get("pairs") or []]
    orientation = int(evidence.get("exif_orientation", 1))
    if orientation == 1 or not pairs:
        return pairs
    width, height = stored_size
    if not width or not height:
        return []
    ends = np.array(pairs, dtype=np.float64).reshape(-1, 2)
    return upright_points(ends, orientation, width, height).reshape(-1, 4).round(2).tolist()


def maps_view(inputs: CaseInputs) -> dict[str, list[dict[str, Any]]]:
    """Per analysed window (``asset`` for an image, frame ids for a video): every forensics module's map."""
    out: dict[str, list[dict[str, Any]]] = {}
    for d in inputs.detections:
        if not d.module_name.startswith("forensics.") or not (d.saliency_uri or d.overlay_uri):
            continue
        evidence = d.evidence_json or {}
        out.setdefault(d.window_id, []).append({
            "module": d.module_name, "score": d.score, "status": d.status, "saliency_uri": d.saliency_uri,
            "overlay_uri": d.overlay_uri, "t_ms": d.t_start_ms,
            "lines": copymove_lines(evidence, (inputs.asset.width, inputs.asset.height))
            if "copymove" in d.module_name else []})
    for maps in out.values():
        maps.sort(key=lambda m: m["module"])
    return dict(sorted(out.items()))


def provenance_view(asset: Asset) -> dict[str, Any]:
    """C2PA status and a summary of the active manifest: signer, claim generator, actions, ingredients."""
    data = asset.provenance_json or {}
    manifest = active_manifest(data)
    actions = [{"action": a.get("action"), "software": (a.get("softwareAgent") or {}).get("name")
                if isinstance(a.get("softwareAgent"), Mapping) else a.get("softwareAgent"), "when": a.get("when")}
               for a in manifest_actions(manifest)]
    signature = manifest.get("signature_info") or {}
    return {"status": asset.provenance_status, "validation_state": data.get("validation_state"),
            "failure_codes": data.get("failure_codes") or [], "error": data.get("error"),
            "manifest": None if not manifest else {
                "title": manifest.get("title"), "claim_generator": manifest.get("claim_generator"),
                "signer": signature.get("issuer"), "common_name": signature.get("common_name"),
                "signed_at": signature.get("time"), "algorithm": signature.get("alg"), "actions": actions,
                "ingredients": [{"title": i.get("title"), "format": i.get("format"),
                                 "relationship": i.get("relationship")} for i in manifest.get("ingredients") or []],
                "manifests_in_store": len((data.get("store") or {}).get("manifests") or {})}}


def metadata_view(inputs: CaseInputs) -> dict[str, Any]:
    """Raised flags as sentences with the tag values behind them, whether fusion read them, and key tags."""
    verdict = verdict_row(inputs.detections)
    fed = verdict_stages({name: branch.stage for name, branch in BRANCHES.items()},
                         verdict.evidence_json if verdict else None)
    flags = [{"module": d.module_name, "window_id": d.window_id, "score": d.score,
              "sentence": flag_sentence(d.module_name, d.evidence_json), "values": flag_values(d.evidence_json),
              "in_verdict": d.stage in fed} for d in inputs.detections if d.status == "flag"]
    exif = inputs.asset.exif_json or {}
    return {"flags": sorted(flags, key=lambda f: (-(f["score"] or 0), f["module"])),
            "metadata_in_verdict": "metadata" in fed,
            "tags": {k: exif[k] for k in EXIF_SUMMARY if k in exif}, "tag_count": len(exif)}


def build_case(inputs: CaseInputs) -> dict[str, Any]:
    """The whole case view of one asset (JSON-able); no I/O."""
    a = inputs.asset
    modules = [{"module": d.module_name, "status": d.status, "score": d.score,
                "reason": (d.evidence_json or {}).get("reason")}
               for d in sorted(inputs.detections, key=lambda d: d.module_name)
               if d.window_id == "asset" and d.module_name != "fusion" and d.status != "flag"]
    image_frame = next((f for f in inputs.frames if f.uri), None) if a.media_type == "image" else None
    return {
        "asset": {"asset_id": a.asset_id, "sha256": a.sha256, "original_name": a.original_name,
                  "media_type": a.media_type, "mime": a.mime, "container": a.container,
                  "duration_ms": a.duration_ms, "width": a.width, "height": a.height, "fps": a.fps,
                  "size_bytes": a.size_bytes, "status": a.status, "uploaded_by": a.uploaded_by,
                  "upload_time": a.upload_time.isoformat(), "source": a.source, "license": a.license},
        "verdict": verdict_view(inputs),
        "timeline": timeline_view(inputs) if a.media_type == "video" else None,
        "faces": faces_view(inputs),
        "frames": [{"frame_id": f.frame_id, "t_ms": f.t_ms, "uri": f.uri} for f in inputs.frames if f.uri],
        "image": None if image_frame is None else {"uri": image_frame.uri, "width": image_frame.width,
                                                   "height": image_frame.height},
        "maps": maps_view(inputs),
        "modules": modules,
        "metadata": metadata_view(inputs),
        "provenance": provenance_view(a),
        "stages": [{"stage": r.stage, "status": r.status, "version": r.version, "error": r.error}
                   for r in sorted(inputs.stage_runs, key=lambda r: r.stage)],
        "custody": [{"event_id": e.event_id, "when": e.when, "who": e.who, "action": e.action, "hash": e.hash}
                    for e in inputs.events],
        "report": None if inputs.report is None else {"report_id": inputs.report.report_id,
                                                      "sha256_json": inputs.report.sha256_json,
                                                      "sha256_pdf": inputs.report.sha256_pdf},
    }


def load_case(ws: Workspace, ref: str) -> CaseInputs:
    """Load one asset's rows and its fusion model (the I/O edge of :func:`build_case`)."""
    from tamperscope.stages.fusion import MODEL_FOR_MEDIA

    with ws.db.session() as session:
        aid = queries.asset_id_of(session, ref)
        asset = queries.light_asset(session, aid)
        detections = list(queries.detections(session, aid))
        inputs = CaseInputs(asset=asset, detections=detections, stage_runs=list(queries.stage_runs(session, aid)),
                            shots=queries.shots(session, aid),
                            frames=[FrameRow(*row) for row in queries.frame_times(session, aid)],
                            faces=queries.frame_faces(session, [d.window_id for d in strip_rows(detections)]),
                            events=list(queries.audit_events(session, aid)),
                            report=queries.latest_report(session, aid), model=None)
        session.expunge_all()
    fused = verdict_row(inputs.detections)
    model_id = ((fused.evidence_json or {}).get("model_id") if fused else None) or \
        MODEL_FOR_MEDIA.get(asset.media_type or "")
    try:
        model = load_model(model_id) if model_id else None
    except NotFoundError:
        model = None
    return replace(inputs, model=model)
