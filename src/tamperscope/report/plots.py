"""Deterministic timeline plots (matplotlib, Agg): fixed metadata, fixed hash salt, no dates."""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from tamperscope.report.narrative import moving_contributions

plt.rcParams["svg.hashsalt"] = "tamperscope"
PNG_METADATA = {"Software": None}


def _png(fig: Any) -> bytes:
    """The figure laid out and saved as PNG without metadata that would change between runs, then closed."""
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata=PNG_METADATA)
    plt.close(fig)
    return buf.getvalue()


def _mid_s(points: list[dict[str, Any]]) -> list[float]:
    """The middle of each window, in seconds."""
    return [(p["t_start_ms"] + p["t_end_ms"]) / 2000.0 for p in points]


def timeline_png(timelines: dict[str, list[dict[str, Any]]], shots: list[dict[str, Any]],
                 *, width_in: float = 7.0, height_in: float = 2.6) -> bytes | None:
    """One PNG with a score-over-time line per module and the shot boundaries as dashed lines.

    Returns ``None`` when no module has a timed score.
    """
    if not timelines:
        return None
    fig, ax = plt.subplots(figsize=(width_in, height_in), dpi=110)
    for name, points in timelines.items():
        ax.plot(_mid_s(points), [p["score"] for p in points], marker="o", markersize=2.5, linewidth=1.1, label=name)
    for shot in shots[1:]:
        ax.axvline(shot["t_start_ms"] / 1000.0, color="0.35", linestyle="--", linewidth=0.9)
    if len(shots) > 1:
        ax.plot([], [], color="0.35", linestyle="--", linewidth=0.9, label="shot boundary")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("score (1 = manipulated)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return _png(fig)


def fused_timeline_png(fused: list[dict[str, Any]], branches: dict[str, list[dict[str, Any]]],
                       shots: list[dict[str, Any]], *, high: float | None, base_rate: float | None = None,
                       width_in: float = 7.0, height_in: float = 3.0) -> bytes | None:
    """The fused per-window probability as the main line, windows in the ``likely manipulated`` band shaded red
    and the strongest window shaded grey; the deep branches' per-frame/window scores as thin lines below it.

    Returns ``None`` without fused points.
    """
    if not fused:
        return None
    fig, (ax, sub) = plt.subplots(2, 1, figsize=(width_in, height_in), dpi=110, sharex=True,
                                  gridspec_kw={"height_ratios": [2.2, 1.0]})
    peak = max(fused, key=lambda p: (p["score"], -p["t_start_ms"]))
    ax.axvspan(peak["t_start_ms"] / 1000.0, peak["t_end_ms"] / 1000.0, color="0.85", label="strongest window")
    for p in fused:
        if high is not None and high < 1.0 and p["score"] >= high:
            ax.axvspan(p["t_start_ms"] / 1000.0, p["t_end_ms"] / 1000.0, color="#f4c7c3")
    ax.plot(_mid_s(fused), [p["score"] for p in fused], color="#b3261e", marker="o", markersize=3, linewidth=1.6,
            label="fused p (per window)")
    if high is not None and high < 1.0:
        ax.axhline(high, color="#b3261e", linestyle=":", linewidth=0.9, label="'likely manipulated' threshold")
    if base_rate is not None:
        ax.axhline(base_rate, color="0.4", linestyle=":", linewidth=0.9, label="calibration base rate")
    for axis in (ax, sub):
        for shot in shots[1:]:
            axis.axvline(shot["t_start_ms"] / 1000.0, color="0.35", linestyle="--", linewidth=0.8)
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("p (manipulated)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    for name, points in branches.items():
        sub.plot(_mid_s(points), [p["score"] for p in points],
                 linewidth=0.9, marker=".", markersize=2, label=name)
    sub.set_ylim(-0.02, 1.02)
    sub.set_xlabel("time (s)")
    sub.set_ylabel("branch", fontsize=7)
    sub.grid(alpha=0.3)
    if branches:
        sub.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return _png(fig)


def contributions_png(contributions: dict[str, float], *, width_in: float = 5.0) -> bytes | None:
    """Signed contributions of the fusion features to the logit as horizontal bars (red raises p, green lowers)."""
    items = moving_contributions(contributions)
    if not items:
        return None
    fig, ax = plt.subplots(figsize=(width_in, 0.35 * len(items) + 0.7), dpi=110)
    names = [k for k, _ in items][::-1]
    values = [v for _, v in items][::-1]
    ax.barh(names, values, color=["#b3261e" if v > 0 else "#1e7b34" for v in values])
    ax.axvline(0, color="0.2", linewidth=0.8)
    ax.set_xlabel("contribution to the logit (right raises p)", fontsize=7)
    ax.tick_params(labelsize=7)
    return _png(fig)
