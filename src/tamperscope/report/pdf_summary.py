"""The PDF report's first page: the asset and case, the verdict (band, calibrated probability, what moved it),
the findings and the integrity digests."""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.units import mm
from reportlab.platypus import ListFlowable, ListItem, Paragraph, Spacer

from tamperscope.fusion.policy import LIKELY_MANIPULATED, LIKELY_REAL, UNSURE
from tamperscope.report.narrative import BAND_WORDS, band_closed
from tamperscope.report.pdf_layout import BIG, BODY, H1, H2, MONO, SMALL, WIDTH, kv_table, para, picture
from tamperscope.report.plots import contributions_png

BAND_COLOURS: dict[str, colors.Color] = {LIKELY_MANIPULATED: colors.HexColor("#b3261e"),
                                         LIKELY_REAL: colors.HexColor("#1e7b34"), UNSURE: colors.HexColor("#8a6d00")}


def _verdict_block(report: dict[str, Any]) -> list[Any]:
    verdict = report["verdict"]
    if verdict is None:
        return [para("No verdict: the fusion stage has not run for this asset. The detections below are individual "
                     "module scores and flags, not a calibrated decision.", BIG)]
    band = verdict["band"]
    prob = verdict["probability"]
    if band is None or prob is None:
        return [para("No calibrated verdict", BIG), para((verdict.get("evidence") or {}).get("reason") or "")]
    colour = BAND_COLOURS.get(band, colors.black).hexval()[2:]
    calibration = (report.get("fusion_model") or {}).get("calibration") or {}
    branches = (report.get("fusion_model") or {}).get("branches") or []
    high = verdict["threshold"]
    threshold = "closed (no threshold reached the target precision)" if band_closed(high) else high
    out: list[Any] = [Paragraph(f'<font color="#{colour}"><b>{escape(BAND_WORDS.get(band, band))}</b></font>'
                                f"  p = {prob:.3f}", BIG),
                      kv_table([("probability of manipulation", f"{prob:.4f} (calibrated)"),
                                ("band", BAND_WORDS.get(band, band)), ("'likely manipulated' threshold", threshold),
                                ("threshold policy", verdict["policy_version"]),
                                ("fusion model", f"{verdict['model_id']} (branches used: {', '.join(branches)})"),
                                ("model's out-of-fold AUC", f"{calibration.get('auc')} on {calibration.get('n')} "
                                                            f"cases, {calibration.get('positives')} manipulated")])]
    png = contributions_png((verdict.get("evidence") or {}).get("contributions") or {})
    if png is not None:
        out += [Spacer(1, 4), para("What moved p: each feature's signed contribution to the fused logit.", SMALL),
                picture(png, WIDTH * 0.7, 40 * mm)]
    return out


def summary_section(report: dict[str, Any], json_sha256: str) -> list[Any]:
    """The first page: asset and case, verdict, findings and the integrity digests to verify it with."""
    asset, case = report["asset"], report.get("case") or {}
    out: list[Any] = [para("tamperscope evidence report", H1),
                      para(f"{asset['original_name']}  ·  asset {asset['asset_id']}  ·  {asset['media_type']}  ·  data "
                           f"as of {report['generated_at']}", BODY)]
    if case:
        out.append(para(f"Case {case.get('case_id') or '-'}  ·  examiner {case.get('examiner') or '-'}  ·  recorded "
                        f"{str(case.get('assigned_at'))[:19]} by {case.get('assigned_by')}", BODY))
    out += [Spacer(1, 6), *_verdict_block(report), para("Findings", H2),
            ListFlowable([ListItem(para(f), leftIndent=10) for f in report["summary"]["findings"]],
                         bulletType="bullet", start="•", leftIndent=10),
            para("Only 'likely manipulated' is a positive finding; 'unsure' means the tool abstains. Methods, measured "
                 "accuracy and limitations are at the end of this report.", SMALL),
            para("Integrity", H2),
            kv_table([("asset SHA-256", asset["sha256"]), ("JSON report SHA-256", json_sha256),
                      ("audit chain hash", report["custody"]["chain_hash"]), *_signed_head_rows(report)], MONO),
            para("Verify with: tamperscope report verify <report.json> (recomputes the report from stored data) "
                 "and tamperscope verify --anchor <anchor.json> (re-hashes every evidence row and stored object "
                 "against its seal in the audit chain, and checks the chain against the anchor).", SMALL)]
    return out


def _signed_head_rows(report: dict[str, Any]) -> list[tuple[str, Any]]:
    head = report["custody"].get("signed_head")
    if not head:
        return [("signed chain head", "none (no signing key: tamperscope key create)")]
    return [("signed chain head", f"event {head['event_id']}: {head['hash']}"),
            ("Ed25519 signature", head["signature"]), ("Ed25519 public key", head["public_key"])]
