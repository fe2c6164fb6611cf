"""Deterministic timeline plots (matplotlib, Agg): fixed metadata, fixed hash salt, no dates."""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

plt.rcParams["svg.hashsalt"] = "tamperscope"
PNG_METADATA = {"Software": None}


def timeline_png(timelines: dict[str, list[dict[str, Any]]], shots: list[dict[str, Any]],
                 *, width_in: float = 7.0, height_in: float = 2.6) -> bytes | None:
    """One PNG with a score-over-time line per module and the shot boundaries as dashed lines.

    Returns ``None`` when no module has a timed score.
    """
    if not timelines:
        return None
    fig, ax = plt.subplots(figsize=(width_in, height_in), dpi=110)
    for name, points in timelines.items():
        xs = [(p["t_start_ms"] + p["t_end_ms"]) / 2000.0 for p in points]
        ys = [p["score"] for p in points]
        ax.plot(xs, ys, marker="o", markersize=2.5, linewidth=1.1, label=name)
    for shot in shots[1:]:
        ax.axvline(shot["t_start_ms"] / 1000.0, color="0.35", linestyle="--", linewidth=0.9)
    if len(shots) > 1:
        ax.plot([], [], color="0.35", linestyle="--", linewidth=0.9, label="shot boundary")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("score (1 = manipulated)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata=PNG_METADATA)
    plt.close(fig)
    return buf.getvalue()
