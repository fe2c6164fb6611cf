"""Reading stored assets: ``show`` (the verdict first, then a per-module summary) and ``list`` (filterable)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from tamperscope.cli.context import console, workspace
from tamperscope.errors import UsageError


def register(app: typer.Typer) -> None:
    """Add ``show`` and ``list`` to ``app``."""
    app.command()(show)
    app.command("list")(list_assets)


def show(
    asset: Annotated[str, typer.Argument(help="asset id or SHA-256 prefix")],
    json_out: Annotated[bool, typer.Option("--json", help="print everything as JSON")] = False,
    all_rows: Annotated[bool, typer.Option("--all", help="also list every detection row")] = False,
) -> None:
    """Show an asset: the verdict first, then a per-module summary, identity, stages and flags."""
    from tamperscope.report.build import fusion_model_info
    from tamperscope.report.narrative import module_summary, verdict_sentence
    from tamperscope.store import queries

    ws = workspace()
    with ws.db.session() as session:
        row = queries.find_asset(session, asset)
        runs = queries.stage_runs(session, row.asset_id)
        detections = queries.detections(session, row.asset_id)
        data: dict[str, Any] = {
            "asset_id": row.asset_id, "sha256": row.sha256, "size_bytes": row.size_bytes,
            "original_name": row.original_name, "status": row.status, "reject_reason": row.reject_reason,
            "media_type": row.media_type, "container": row.container, "duration_ms": row.duration_ms,
            "width": row.width, "height": row.height, "fps": row.fps, "provenance_status": row.provenance_status,
            "structure": (row.probe_json or {}).get("structure"),
            "stages": {r.stage: {"version": r.version, "status": r.status, "error": r.error} for r in runs},
            "detections": [
                {"stage": d.stage, "module": d.module_name, "version": d.module_version, "window": d.window_id,
                 "status": d.status, "score": d.score, "band": d.band, "evidence": d.evidence_json,
                 "saliency_uri": d.saliency_uri, "t_start_ms": d.t_start_ms} for d in detections
            ],
        }
        calibration = (fusion_model_info(detections) or {}).get("calibration")
    fusion = next((d for d in data["detections"] if d["module"] == "fusion" and d["window"] == "asset"), None)
    data["verdict"] = None if fusion is None else {"band": fusion["band"], "probability": fusion["score"],
                                                   "status": fusion["status"], "evidence": fusion["evidence"],
                                                   "meaning": verdict_sentence(fusion["band"], fusion["score"],
                                                                               fusion["evidence"] or {}, calibration)}
    data["modules"] = module_summary(
        [{"module_name": d["module"], "window_id": d["window"], "status": d["status"], "score": d["score"],
          "t_start_ms": d["t_start_ms"]} for d in data["detections"]])
    if json_out:
        print(json.dumps(data, sort_keys=True, default=str))
        return
    _print_verdict(data)
    _print_modules(data["modules"], (fusion or {}).get("evidence") or {})
    identity = Table(show_header=False, box=None, pad_edge=False)
    size = f"{data['size_bytes']:,} bytes"
    dims = f"{data['width']}x{data['height']}" if data["width"] else "-"
    duration = f"{data['duration_ms'] / 1000:.1f} s" if data["duration_ms"] else "-"
    for key, value in (("asset", f"{data['asset_id']}  {data['original_name']}"), ("sha256", data["sha256"]),
                       ("media", f"{data['media_type']} {data['container']} {dims} {duration} {size}"),
                       ("status", data["status"] + (f" ({data['reject_reason']})" if data["reject_reason"] else "")),
                       ("provenance (C2PA)", data["provenance_status"] or "-"),
                       ("trailing bytes", (data["structure"] or {}).get("trailing_bytes"))):
        identity.add_row(f"[dim]{key}[/dim]", escape(str(value)))
    console.print(identity)
    stages = data["stages"]
    done = sorted(k for k, v in stages.items() if v["status"] == "done")
    idle = sorted(k for k, v in stages.items() if v["status"] == "not_applicable")
    console.print(f"[dim]stages[/dim] done: {', '.join(done) or '-'}"
                  + (f"; not applicable: {', '.join(idle)}" if idle else "")
                  + "".join(f"; [red]{escape(k)} {v['status']}[/red]: {escape(str(v['error']))}"
                            for k, v in sorted(stages.items()) if k not in done and k not in idle))
    flagged = [d for d in data["detections"] if d["status"] == "flag"]
    for d in flagged:
        console.print(f"[yellow]flag[/yellow] {escape(d['module'])}: {escape(_short_json(d['evidence']))}")
    if all_rows:
        found = Table(title="every detection row")
        for column in ("stage", "module", "window", "status", "score", "band"):
            found.add_column(column)
        for d in data["detections"]:
            score = "" if d["score"] is None else f"{d['score']:.3f}"
            found.add_row(d["stage"], d["module"], d["window"], d["status"], score, d["band"] or "")
        console.print(found)
    else:
        console.print(f"[dim]{len(data['detections'])} detection rows; --all lists every one, --json gives all "
                      "data[/dim]")


def _short_json(value: Any, limit: int = 160) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _print_verdict(data: dict[str, Any]) -> None:
    verdict = data["verdict"]
    colours = {"likely_manipulated": "red", "likely_real": "green", "unsure": "yellow"}
    if verdict is None or verdict["band"] is None:
        reason = ((verdict or {}).get("evidence") or {}).get("reason") or "the fusion stage has not run"
        console.print(f"[bold]no verdict[/bold]: {escape(reason)}")
        return
    band = verdict["band"]
    evidence = verdict["evidence"] or {}
    console.print(f"[bold {colours.get(band, 'white')}]{band.replace('_', ' ')}[/bold {colours.get(band, 'white')}]"
                  f"  p = {verdict['probability']:.3f}  (policy {escape(str(evidence.get('policy_version')))})")
    console.print(escape(verdict["meaning"]))


def _print_modules(modules: list[dict[str, Any]], fusion_evidence: dict[str, Any]) -> None:
    contributions = fusion_evidence.get("contributions") or {}
    table = Table(title="per module", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("module", no_wrap=True)
    for column in ("rows", "scored", "max", "at (s)", "mean", "flags"):
        table.add_column(column, justify="right")
    table.add_column("other statuses")
    for m in modules:
        if m["module_name"] in ("fusion", "fusion.window"):
            continue
        at = "" if m["max_at_ms"] is None else f"{m['max_at_ms'] / 1000:.2f}"
        other = ", ".join(f"{k} {v}" for k, v in m["statuses"].items() if k not in ("scored", "flag"))
        table.add_row(m["module_name"], str(m["rows"]), str(m["scored"]),
                      "" if m["max"] is None else f"{m['max']:.3f}", at,
                      "" if m["mean"] is None else f"{m['mean']:.3f}", str(m["statuses"].get("flag", "") or ""),
                      other)
    console.print(table)
    if contributions:
        parts = ", ".join(f"{k} {v:+.3f}" for k, v in sorted(contributions.items(), key=lambda kv: -abs(kv[1])))
        console.print(f"[dim]fusion contributions (logit)[/dim]: {escape(parts)}")
    missing = fusion_evidence.get("branches_missing") or []
    if missing:
        console.print(f"[dim]branches without evidence[/dim]: {escape(', '.join(missing))}")


def list_assets(
    name: Annotated[str | None, typer.Option(help="original name contains (case-insensitive)")] = None,
    sha256: Annotated[str | None, typer.Option("--hash", help="SHA-256 prefix")] = None,
    band: Annotated[str | None, typer.Option(help="verdict band: likely_manipulated, unsure, likely_real, "
                                                  "or none (no verdict)")] = None,
    media_type: Annotated[str | None, typer.Option("--media", help="image | video | audio")] = None,
    since: Annotated[str | None, typer.Option(help="uploaded on or after (YYYY-MM-DD or ISO time, UTC)")] = None,
    until: Annotated[str | None, typer.Option(help="uploaded before (YYYY-MM-DD or ISO time, UTC)")] = None,
    limit: Annotated[int, typer.Option(min=1, help="at most this many rows")] = 50,
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON object per asset")] = False,
) -> None:
    """List stored assets, newest first, with their verdict; filter by name, hash, band, media type, date."""
    from tamperscope.fusion.policy import LIKELY_MANIPULATED, LIKELY_REAL, UNSURE
    from tamperscope.store import queries

    if band is not None and band not in (LIKELY_MANIPULATED, UNSURE, LIKELY_REAL, "none"):
        raise UsageError(f"unknown band {band!r}: use likely_manipulated, unsure, likely_real or none")
    before = _parse_day(until, "--until")
    where = queries.AssetQuery(name=name, sha256_prefix=sha256, band=band, media_type=media_type,
                               uploaded_from=_parse_day(since, "--since"),
                               uploaded_to=before - timedelta(microseconds=1) if before is not None else None,
                               limit=limit)
    ws = workspace()
    with ws.db.session() as session:
        hits, _ = queries.search_assets(session, where)
        rows: list[dict[str, Any]] = [
            {"asset_id": h.asset.asset_id, "sha256": h.asset.sha256, "original_name": h.asset.original_name,
             "media_type": h.asset.media_type, "status": h.asset.status, "upload_time": _utc_iso(h.asset.upload_time),
             "band": h.band, "probability": h.probability} for h in hits]
    if json_out:
        for item in rows:
            print(json.dumps(item, sort_keys=True))
        return
    table = Table(title=f"{len(rows)} asset(s)" + (f" (limit {limit})" if len(rows) == limit else ""),
                  box=box.SIMPLE_HEAD)
    table.add_column("asset", no_wrap=True)
    table.add_column("name", overflow="fold")
    for column in ("media", "status", "verdict", "p"):
        table.add_column(column)
    table.add_column("uploaded (UTC)", no_wrap=True)
    for item in rows:
        table.add_row(item["asset_id"], escape(item["original_name"]), item["media_type"] or "-", item["status"],
                      (item["band"] or "-").replace("_", " "),
                      "" if item["probability"] is None else f"{item['probability']:.3f}",
                      item["upload_time"][:16].replace("T", " "))
    console.print(table)


def _parse_day(value: str | None, option: str) -> Any:
    from datetime import UTC, datetime

    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise UsageError(f"{option} {value!r} is not a date (YYYY-MM-DD) or ISO time") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def _utc_iso(value: Any) -> str:
    from datetime import UTC

    return (value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)).isoformat()
