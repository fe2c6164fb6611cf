"""Spliced training samples: a few windows of a manipulated video pasted into a real one, at the row level.

Labelled video sets (FaceForensics++, the shared test videos) hold fully manipulated fakes, so a model fitted on
them may learn to need *every* window to look manipulated: the whole-video features (median, mean) separate
such sets as well as the peak features (max, top-10 % mean), and a short manipulated segment in a long real
video then scores like a real video. Splicing the deep scores of a few fake windows into a real video's rows,
labelled manipulated, teaches the model that the peak alone is evidence. Only the window-local modules
(``deep.clip``, ``deep.frame``) are spliced; asset-level rows (temporal, AV sync, metadata) stay the real
video's, as they would for a short inserted segment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from tamperscope.fusion.branches import Row
from tamperscope.fusion.timeline import CLIP_MODULE, FRAME_MODULE, WindowSpan


def scored_windows(rows: Sequence[Row]) -> list[Row]:
    """The scored ``deep.clip`` rows that have a time span, in time order."""
    return sorted((r for r in rows if r.module_name == CLIP_MODULE and r.status == "scored"
                   and r.score is not None and r.t_start_ms is not None and r.t_end_ms is not None),
                  key=lambda r: (r.t_start_ms or 0, r.window_id))


def splice_rows(real: Sequence[Row], fake: Sequence[Row], *, fraction: float = 0.1, offset: float = 0.5) -> list[Row]:
    """Rows of ``real`` with about ``fraction`` of its scored windows replaced by windows of ``fake``.

    Parameters
    ----------
    real
        Detection rows of a real video (needs scored ``deep.clip`` rows with time spans).
    fake
        Detection rows of a manipulated video (likewise).
    fraction
        Share of the real video's scored windows replaced (at least one, at most all of ``fake``'s).
    offset
        Where the spliced run starts, as a fraction of the real windows (0 = first, 1 = last possible).

    Returns
    -------
    list of Row
        The real rows, with the chosen windows' clip score and the frame rows inside them taken from consecutive
        fake windows (frames re-timed by their offset within the window). Unchanged when either video has no
        scored window.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError("fraction must be in (0, 1]")
    real_windows, fake_windows = scored_windows(real), scored_windows(fake)
    if not real_windows or not fake_windows:
        return list(real)
    k = min(max(1, round(fraction * len(real_windows))), len(fake_windows))
    start = round(min(max(offset, 0.0), 1.0) * (len(real_windows) - k))
    targets = real_windows[start:start + k]
    fake_start = (len(fake_windows) - k) // 2
    donors = fake_windows[fake_start:fake_start + k]
    spans = [WindowSpan(t.window_id, t.t_start_ms or 0, t.t_end_ms or 0) for t in targets]

    def inside(row: Row, span: WindowSpan) -> bool:
        return row.t_start_ms is not None and span.t_start_ms <= row.t_start_ms <= span.t_end_ms

    out = [r for r in real if not (r.module_name == FRAME_MODULE and any(inside(r, s) for s in spans))
           and not (r.module_name == CLIP_MODULE and any(r.window_id == s.window_id for s in spans))]
    for span, donor in zip(spans, donors, strict=True):
        out.append(replace(donor, window_id=span.window_id, t_start_ms=span.t_start_ms, t_end_ms=span.t_end_ms))
        donor_span = WindowSpan(donor.window_id, donor.t_start_ms or 0, donor.t_end_ms or 0)
        for r in fake:
            if r.module_name == FRAME_MODULE and inside(r, donor_span):
                t = span.t_start_ms + (r.t_start_ms or 0) - donor_span.t_start_ms
                if t <= span.t_end_ms:
                    out.append(replace(r, window_id=f"{r.window_id}@{span.window_id}", t_start_ms=t, t_end_ms=t))
    return out
