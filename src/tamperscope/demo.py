"""``make demo``: generate sample media, ingest and analyse it, write reports, print what was found."""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console

from tamperscope.custody.intake import IntakeRecord
from tamperscope.redact import mask_url
from tamperscope.samples import demo as samples
from tamperscope.samples.talking_head import astronaut_rig, talking_head
from tamperscope.services.analysis import AnalysisOutcome, format_verdict, run_analysis
from tamperscope.settings import Settings
from tamperscope.workspace import Workspace

console = Console()


def main(out_dir: Path = Path("demo-output")) -> int:
    out_dir = out_dir.resolve()
    media = out_dir / "media"
    media.mkdir(parents=True, exist_ok=True)
    settings = Settings(home=out_dir / "home")
    ws = Workspace.open(settings)
    console.rule("tamperscope demo")
    console.print(f"workspace: {settings.home}")
    video = samples.video_with_cut(media / "two_shots.mp4")
    photo = samples.camera_like_jpeg(media / "camera.jpg")
    edited, _ = samples.edited_copy(photo, media / "camera_edited.jpg")
    face = talking_head(media / "talking_head.mp4", rig=astronaut_rig(320, 320), duration_s=6.0).path
    inputs = [(video, "generated lavfi video with a cut", "real"), (photo, "camera-like photo", "real"),
              (edited, "copy-moved, re-saved in an editor", "manipulated"),
              (face, "synthetic talking head with speech (a warped photo: the deep branches see a face)", "synthetic")]
    for path, what, label in inputs:
        record = IntakeRecord(original_name=path.name, source="tamperscope demo", license="CC0", label=label)
        outcome = run_analysis(ws, path, record=record, report_dir=out_dir / "reports")
        run, summary = outcome.run, outcome.summary
        console.print(f"\n[bold]{path.name}[/bold] ({what}) -> asset {summary.asset_id} [{summary.status}]")
        console.print(f"  sha256 {summary.sha256}; stages run: {', '.join(run.ran) or 'all current'}")
        for name, error in run.failed.items():
            console.print(f"  [red]stage {name} failed[/red]: {error}")
        for flag in summary.flags:
            console.print(f"  flag {flag['module']}: {flag['evidence']}")
        if summary.verdict:
            console.print(f"  verdict: {format_verdict(summary.verdict)}")
        _print_report(outcome, out_dir / "reports")
    _print_web_help(settings)
    console.print(f"\nresults: database {mask_url(settings.resolved_db_url)}, store "
                  f"{mask_url(settings.resolved_store_url)}")
    console.print(f"inspect: TAMPERSCOPE_HOME={settings.home} .venv/bin/tamperscope show <asset>")
    ws.close()
    return 0


def _print_report(outcome: AnalysisOutcome, reports_dir: Path) -> None:
    """Name the report files the service wrote (store + ``reports`` table, copied to ``reports_dir``)."""
    written = outcome.report
    assert written is not None
    asset_id = written.asset_id
    console.print(f"  report: {reports_dir / (asset_id + '.json')} and {reports_dir / (asset_id + '.pdf')}"
                  f" (json sha256 {written.sha256_json[:16]}…)")


def _print_web_help(settings: Settings) -> None:
    home = f"TAMPERSCOPE_HOME={settings.home}"
    console.print("\nweb page: create a token, start the server, open http://127.0.0.1:8000/ and paste the token:")
    console.print(f"  {home} .venv/bin/tamperscope token create me")
    console.print(f"  {home} .venv/bin/tamperscope serve   (API docs at http://127.0.0.1:8000/docs)")
    console.print(f"verify a report: {home} .venv/bin/tamperscope report verify <report.json>")


if __name__ == "__main__":
    sys.exit(main())
