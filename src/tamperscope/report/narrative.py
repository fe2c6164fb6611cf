"""The report's words: plain-language findings, what the verdict means, per-module summaries, methods, limits.

Pure functions over report-shaped dicts, shared by the JSON report (schema v2), its PDF and ``tamperscope show``.
The measured figures in :data:`METHODS` are copied from ``docs/model-card.md``, ``docs/threshold-policy.md``,
``docs/forensics.md`` and ``docs/temporal.md``; change them together.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tamperscope.fusion.policy import LIKELY_MANIPULATED, LIKELY_REAL, UNSURE

MIN_SIMILAR = 5  # calibration cases a reliability bin needs before the report quotes its manipulated share
MIN_CONTRIBUTION = 0.005  # a feature's logit contribution below this moved p too little to name or draw
_ABS_PATH = re.compile(r"(?<![\w:/.~-])/(?:[^\s/\"'<>]+/)+(?P<name>[^\s/\"'<>]+)")


def strip_machine_paths(value: Any) -> Any:
    """``value`` with every absolute filesystem path inside its strings cut to its file name (recursively).

    A report leaves the machine it was made on, so it names files (``frame.onnx``), never where they were kept.
    """
    if isinstance(value, str):
        return _ABS_PATH.sub(lambda m: m["name"], value)
    if isinstance(value, dict):
        return {k: strip_machine_paths(v) for k, v in value.items()}
    if isinstance(value, list):
        return [strip_machine_paths(v) for v in value]
    return value


def module_summary(detections: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per module: rows, scored rows, max score and where (ms), mean score and a count per status."""
    by_module: dict[str, list[Mapping[str, Any]]] = {}
    for det in detections:
        by_module.setdefault(det["module_name"], []).append(det)
    out = []
    for name in sorted(by_module):
        rows = by_module[name]
        scored = [d for d in rows if d["score"] is not None]
        top = max(scored, key=lambda d: (d["score"], -(d.get("t_start_ms") or 0)), default=None)
        statuses: dict[str, int] = {}
        for d in rows:
            statuses[d["status"]] = statuses.get(d["status"], 0) + 1
        out.append({"module_name": name, "rows": len(rows), "scored": len(scored),
                    "max": None if top is None else round(float(top["score"]), 6),
                    "max_at_ms": None if top is None else top.get("t_start_ms"),
                    "mean": round(sum(float(d["score"]) for d in scored) / len(scored), 6) if scored else None,
                    "statuses": dict(sorted(statuses.items()))})
    return out


BAND_WORDS: dict[str, str] = {LIKELY_MANIPULATED: "likely manipulated", LIKELY_REAL: "likely real", UNSURE: "unsure"}


def verdict_sentence(band: str | None, probability: float | None, evidence: Mapping[str, Any],
                     calibration: Mapping[str, Any] | None = None) -> str:
    """What the band and the probability mean under the policy: the band's rule, and how often calibration cases
    with a similar p were manipulated (the reliability bin of p, out of fold) when the model's metrics have it."""
    if band is None or probability is None:
        return f"No calibrated verdict: {evidence.get('reason') or 'the fusion stage has not run'}."
    policy = evidence.get("policy_version") or "the threshold policy"
    reading = f"p = {probability:.2f} is the calibrated probability that a file like this one is manipulated."
    similar = similar_cases(probability, calibration)
    if similar is not None:
        share, n, lo, hi = similar
        reading += (f" Of the {n} held-out calibration cases with p between {lo:.1f} and {hi:.1f}, "
                    f"{share * 100:.0f} % were manipulated." if n >= MIN_SIMILAR else
                    f" Only {n} held-out calibration case(s) had p between {lo:.1f} and {hi:.1f}: too few to say how "
                    "often such files are manipulated.")
    if band == LIKELY_MANIPULATED:
        return (f"Likely manipulated: p reached the threshold where {policy} measured at least its target precision "
                "on out-of-fold evaluation data (the data the threshold was chosen on, so an optimistic figure). "
                f"{reading}")
    if band == LIKELY_REAL:
        return f"Likely real: p is below the level where {policy} measured its target precision for 'real'. {reading}"
    closed = calibration is not None and band_closed(calibration.get("high")) and not calibration.get("low")
    target = float((calibration or {}).get("target_precision") or 0.9)
    why = (f"{policy} has both bands closed (no threshold reached {target:.0%} precision on held-out data), so "
           "every file is 'unsure'" if closed else
           f"p lies between the thresholds of {policy}")
    return f"Unsure: the tool abstains; {why}. {reading} 'Unsure' is not a finding either way."


def band_closed(high: float | None) -> bool:
    """Whether a 'likely manipulated' threshold can never be reached (a closed band is stored as just above 1)."""
    return high is not None and high >= 1.0


def similar_cases(probability: float, calibration: Mapping[str, Any] | None) -> tuple[float, int, float, float] | None:
    """(manipulated share, count, bin low, bin high) of the reliability bin that holds ``probability``."""
    for row in (calibration or {}).get("reliability") or []:
        last = row["hi"] >= 1.0
        if row["lo"] <= probability < row["hi"] or (last and probability >= row["lo"]):
            return (row["manipulated_share"], row["n"], row["lo"], row["hi"]) if row["n"] else None
    return None


@dataclass(frozen=True)
class Method:
    """What a module family does, its measured accuracy (from the docs) and its known failure modes."""

    family: str
    prefixes: tuple[str, ...]
    what: str
    measured: str
    fails_when: str


METHODS: tuple[Method, ...] = (
    Method("Error level analysis", ("forensics.ela",),
           "Re-compresses the JPEG at quality 75/85/95 and maps where the residual differs from its neighbourhood "
           "(Krawetz 2007).",
           "Image AUC 0.63 on ManTraNet edited/original pairs; 0.65 over 20 real forgeries (docs/forensics.md).",
           "Lights up edges and high-texture regions of untouched photos; loses its signal after re-saving at low "
           "quality or resizing."),
    Method("Noise, SRM, LBP, JPEG ghost", ("forensics.noise", "forensics.srm", "forensics.lbp",
                                           "forensics.jpeg_ghost"),
           "Local noise level, high-pass residuals, texture histograms and re-compression dips per block; a pasted "
           "region from another camera or quality stands out.",
           "Per-image AUC 0.5-0.64 on the synthetic benchmark; best splice pixel F1 0.38 (LBP); NIST16 splice "
           "pixel F1 0.64 (LBP) (docs/forensics.md).",
           "Natural photos are heterogeneous, so some block is always an outlier; on video frames these scores "
           "saturate (noise near 1.0 on every frame)."),
    Method("Copy-move", ("forensics.copymove_keypoint", "forensics.copymove_block"),
           "Finds regions cloned within the image: SIFT keypoint matches verified by an affine transform, and "
           "matching DCT blocks (Amerini 2011, Fridrich 2003).",
           "Keypoint AUC 0.840, TPR 0.72 at FPR 0.1 on the synthetic benchmark; CASIA copy-move pixel F1 0.56 "
           "(docs/forensics.md).",
           "Misses clones in low-texture regions (no keypoints); the block method handles translation only; "
           "repetitive patterns (windows, tiles) give false matches; video frames score 0.8-0.9 on repeated content."),
    Method("Double JPEG, resampling", ("forensics.jpeg_dq", "forensics.spectrum"),
           "Double quantisation of the file's own JPEG tables, and periodic correlations left by resizing.",
           "jpeg_dq AUC 1.000 on synthetic double compression (Q2 > Q1); spectrum finds whole-image up-scaling "
           "but not small resampled regions (AUC 0.46) (docs/forensics.md).",
           "Any camera-to-editor re-save is double compression, manipulated or not; no signal on PNG or video "
           "frames."),
    Method("Metadata rules and C2PA", ("meta.", "structure."),
           "Reads EXIF/XMP/container metadata (ExifTool, ffprobe, MediaInfo) for editing software, date gaps, "
           "re-encode chains, missing camera tags; validates a C2PA manifest offline.",
           "As a fusion branch, never read inverted: image AUC 0.40 and video AUC 0.49 out of fold; weighted out "
           "of image-v2 and video-v3 (docs/threshold-policy.md, docs/model-card.md).",
           "Pristine camera files carry vendor software and date gaps; most forgeries carry no metadata at all; "
           "metadata is easy to strip or forge. A valid C2PA manifest proves who signed, not that the content is "
           "true."),
    Method("Deep face model (frame)", ("deep.frame",),
           "EfficientNet-Lite0 face-crop classifier (shipped v3) giving a calibrated probability per face and a "
           "Grad-CAM map of the regions that drove it.",
           "Video AUC 0.683 out of fold on 256 labelled videos (0.694 for its raw top-10 % score), but 0.53 over "
           "fake-real pairs of the same collection; FF++ fakes against their own originals: Deepfakes 1.00, "
           "NeuralTextures 0.86, FaceSwap 0.71, Face2Face 0.67 on a handful of pairs (docs/model-card.md).",
           "Scores move with the source collection's resolution and compression more than with manipulation; "
           "families without texture artefacts stay below chance; needs a detectable face."),
    Method("Deep clip model", ("deep.clip",),
           "A GRU over 16 consecutive face crops of one track, for temporal inconsistency.",
           "Video AUC 0.664 out of fold (docs/model-card.md).",
           "Short tracks (under 16 sampled faces) give no score; camera motion and cuts read as inconsistency."),
    Method("Temporal face cues", ("temporal.",),
           "Blink rate, head-pose consistency and landmark stability over a face track.",
           "Read the right way round (a higher score never counts as evidence of authenticity) it does not "
           "separate: video AUC 0.49 out of fold; its scores rank reals above fakes for most families. Evidence "
           "only, not a fusion candidate (docs/model-card.md).",
           "Depends on the collection (frame rate, pose, occlusion) more than on manipulation."),
    Method("Audio-visual sync", ("avsync.",),
           "Lip motion against speech energy: the offset and bilabial closures.",
           "Read the right way round it does not separate: video AUC 0.45 out of fold (71 of 256 videos have "
           "speech and a face); lip-sync fakes 0.70 (docs/temporal.md, docs/model-card.md).",
           "Silent or music videos, off-screen speakers; evidence for dubbing, not a deepfake detector."),
    Method("Fusion and threshold policy", ("fusion",),
           "Logistic regression over the branches the shipped model kept, temperature-calibrated; the policy maps "
           "p to a band at 90 % target precision.",
           "image-v2: AUC 0.615 out of fold on 28 real images (0.646 for the one branch it keeps), both bands "
           "closed; video-v3: AUC 0.681 out of fold on 256 videos (0.53 within collections), 'likely manipulated' "
           "from p >= 0.62 (9 of the "
           "10 out-of-fold videos there manipulated, on the probabilities the threshold was chosen on), 'likely "
           "real' closed (docs/threshold-policy.md).",
           "Every image and most videos are 'unsure'; p is calibrated on small collections (28 images, "
           "256 videos) and does not transfer to very different material."),
)

LIMITATIONS: tuple[str, ...] = (
    "No tool output is proof of manipulation or of authenticity; the report supports, not replaces, an examiner's "
    "judgement.",
    "No threshold reached 90 % precision for 'likely real' on held-out data, nor for images at all: every image and "
    "most videos are 'unsure', and 'likely manipulated' for a video rests on 10 evaluation videos (9 manipulated); "
    "the calibrated probability and the module evidence are what the report offers.",
    "Calibration rests on small collections (28 real images; 256 videos, 83 manipulated): a file unlike them "
    "(other cameras, compression, generators) may score in ways these figures do not describe.",
    "Classical detectors react to texture, edges, compression and content; a bright map region is a place to look, "
    "not a finding.",
    "The deep models see faces only; a manipulation outside faces, or a face that is not detected, leaves them "
    "without evidence. The shipped weights are research-only (training data licences).",
    "Metadata can be stripped or written by anyone; its absence or presence proves little on its own.",
    "Images in this PDF are downscaled for size; the full-resolution frames and maps are in the evidence store, "
    "named by their SHA-256 in the appendix and in the JSON report.",
)


def methods_for(modules: Iterable[str], in_verdict: Iterable[str]) -> list[dict[str, Any]]:
    """The methods of the module families present, each marked whether any of its modules fed the verdict."""
    names = sorted(set(modules))
    fed = set(in_verdict)
    out = []
    for method in METHODS:
        members = [n for n in names if n.startswith(method.prefixes)]
        if not members:
            continue
        out.append({"family": method.family, "modules": members, "what": method.what, "measured": method.measured,
                    "fails_when": method.fails_when, "in_verdict": any(n in fed for n in members)})
    return out


def c2pa_summary(provenance: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Signer, claim generator, actions and ingredients of the active C2PA manifest (None without a manifest)."""
    if not provenance:
        return None
    active = active_manifest(provenance)
    actions = [str(a.get("action")) for a in manifest_actions(active)]
    signature = active.get("signature_info") or {}
    return {"status": provenance.get("status"), "validation_state": provenance.get("validation_state"),
            "signer": signature.get("issuer") or signature.get("common_name"), "signed_at": signature.get("time"),
            "claim_generator": active.get("claim_generator") or _generator(active),
            "title": active.get("title"), "actions": actions,
            "ingredients": [str(i.get("title")) for i in active.get("ingredients") or []],
            "failure_codes": list(provenance.get("failure_codes") or [])}


def active_manifest(provenance: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The active manifest of the stored C2PA manifest store (empty without one)."""
    store = (provenance or {}).get("store") or {}
    return (store.get("manifests") or {}).get(store.get("active_manifest") or "") or {}


def manifest_actions(manifest: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The entries of a manifest's ``c2pa.actions`` assertions, in order."""
    return [action for assertion in manifest.get("assertions") or []
            if str(assertion.get("label", "")).startswith("c2pa.actions")
            for action in (assertion.get("data") or {}).get("actions") or []]


def _generator(manifest: Mapping[str, Any]) -> str | None:
    info = manifest.get("claim_generator_info") or []
    return ", ".join(str(i.get("name")) for i in info if isinstance(i, Mapping)) or None


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def moving_contributions(contributions: Mapping[str, float]) -> list[tuple[str, float]]:
    """The fusion features whose signed logit contribution is at least :data:`MIN_CONTRIBUTION` either way,
    largest first (the ones the findings name and the contributions chart draws)."""
    return sorted(((k, v) for k, v in contributions.items() if abs(v) >= MIN_CONTRIBUTION),
                  key=lambda kv: (-abs(kv[1]), kv[0]))


def findings(report: Mapping[str, Any]) -> list[str]:
    """Plain-language findings, most important first: verdict, what drove it, flags, provenance, strongest
    modules, face evidence, and what could not be assessed."""
    out: list[str] = []
    verdict = report.get("verdict")
    if verdict is None:
        out.append("No calibrated verdict: the fusion stage has not run for this file; the module scores below "
                   "stand on their own.")
    else:
        evidence = verdict.get("evidence") or {}
        out.append(verdict_sentence(verdict.get("band"), verdict.get("probability"), evidence,
                                    (report.get("fusion_model") or {}).get("calibration")))
        strongest = moving_contributions(evidence.get("contributions") or {})[:3]
        if strongest:
            parts = ", ".join(f"{k} ({'raises' if v > 0 else 'lowers'} p, {v:+.2f} on the logit scale)"
                              for k, v in strongest)
            out.append(f"What moved p ({evidence.get('model_id')}): {parts}.")
        missing = evidence.get("branches_missing") or []
        if missing:
            out.append(f"Without evidence for this file: {', '.join(missing)} (missing evidence never votes).")
    flags = report.get("metadata_flags") or []
    if flags:
        entered = [f for f in flags if f.get("entered_verdict")]
        names = ", ".join(sorted({f["module_name"] for f in flags}))
        out.append(f"{len(flags)} metadata/structure flag(s) raised ({names}); "
                   + ("some entered the verdict." if entered else "none entered the verdict: the shipped model "
                      "does not use the metadata branch, so they are context for the examiner."))
    else:
        out.append("No metadata rule raised a flag.")
    provenance = report.get("provenance") or {}
    status = provenance.get("c2pa_status")
    if status == "valid":
        out.append("A valid C2PA manifest is attached (signer "
                   f"{(provenance.get('manifest') or {}).get('signer') or 'unknown'}): it shows who signed the "
                   "file and its declared edits, not whether the content is true.")
    elif status == "invalid":
        out.append("A C2PA manifest is attached but does not validate: the file changed after signing, or the "
                   "manifest is damaged.")
    elif status and status != "absent":
        out.append(f"C2PA provenance could not be checked ({status}).")
    video = report["asset"]["media_type"] == "video"
    top = [m for m in report.get("modules_summary") or [] if m["max"] is not None
           and not m["module_name"].startswith("fusion") and not (video and m["module_name"].startswith("forensics."))]
    top.sort(key=lambda m: (-m["max"], m["module_name"]))
    if top:
        parts = ", ".join(f"{m['module_name']} {m['max']:.2f}"
                          + (f" at {m['max_at_ms'] / 1000:.1f} s" if video and m["max_at_ms"] is not None else "")
                          for m in top[:4])
        out.append(f"Strongest module scores (0-1, uncalibrated, not a verdict each): {parts}.")
    if video and any(m["module_name"].startswith("forensics.") for m in report.get("modules_summary") or []):
        out.append("Classical image detectors also ran on sampled frames; on video they saturate (noise and "
                   "copy-move score high on most frames), so they are listed as evidence and do not enter the "
                   "verdict.")
    faces = report.get("face_evidence") or []
    if faces:
        best = faces[0]
        where = f" is at {best['t_ms'] / 1000:.2f} s" if video else ""
        out.append(f"The face model's highest-scoring face{where} has p = {_pct(best['score'])}; its crop and "
                   "Grad-CAM map are shown under Face evidence.")
    elif video:
        out.append("No face was scored by the face model, so the deep branches have no evidence.")
    return out


def verdict_stages(branch_stages: Mapping[str, str] | None, verdict_evidence: Mapping[str, Any] | None) -> set[str]:
    """The stages whose rows fed the verdict: each read by a branch (``branch_stages``: branch -> stage) that had
    evidence for this asset; a flag or method of any other stage is context only."""
    present = set((verdict_evidence or {}).get("branches_present") or [])
    return {stage for branch, stage in (branch_stages or {}).items() if branch in present}


def face_evidence(detections: Sequence[Mapping[str, Any]], frames: Sequence[Mapping[str, Any]],
                  limit: int) -> list[dict[str, Any]]:
    """The face-model frames with a Grad-CAM map, strongest first, each with the crop of the scored face."""
    crops = {(f["frame_id"], face.get("track_id")): face.get("crop_uri")
             for f in frames for face in f.get("faces") or []}
    rows = [d for d in detections if d["module_name"] == "deep.frame" and d["saliency_uri"] and d["score"] is not None]
    rows.sort(key=lambda d: (-d["score"], d["window_id"]))
    return [{"frame_id": d["window_id"], "t_ms": d["t_start_ms"], "track_id": (d["evidence"] or {}).get("track_id"),
             "score": d["score"], "crop_uri": crops.get((d["window_id"], (d["evidence"] or {}).get("track_id"))),
             "saliency_uri": d["saliency_uri"]} for d in rows[:limit]]
