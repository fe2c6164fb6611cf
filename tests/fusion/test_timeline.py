"""Per-window timeline and the robust video aggregate, on synthetic detection rows (no media)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import numpy as np
import pytest

from tamperscope.fusion.augment import splice_rows
from tamperscope.fusion.branches import BRANCHES, Row
from tamperscope.fusion.cv import fit_grouped
from tamperscope.fusion.model import FusionModel, Sample
from tamperscope.fusion.timeline import WindowSpan, has_timeline, timeline, window_rows
from tamperscope.stages import fusion as fusion_stage
from tamperscope.stages.base import StageContext
from tamperscope.stages.fusion import FusionStage
from tamperscope.store.models import Asset, Detection, Window
from tamperscope.workspace import Workspace

BRANCH_NAMES = ("deep_frame", "deep_clip", "temporal", "avsync")
V3_CANDIDATES = ("deep_frame", "deep_clip")
WINDOW_MS = 2000
FRAMES_PER_WINDOW = 8


def _video(rng: np.random.Generator, n_windows: int, high: set[int]) -> tuple[list[Row], list[WindowSpan]]:
    """Rows of a video whose windows in ``high`` are manipulated (high deep scores), the rest real."""
    rows: list[Row] = [Row("temporal.head_pose", "asset", float(rng.uniform(0.1, 0.3)), "scored"),
                       Row("avsync.offset", "asset", None, "not_applicable")]
    windows = []
    for w in range(n_windows):
        t0 = w * WINDOW_MS
        span = WindowSpan(f"a:c0:{w}", t0, t0 + WINDOW_MS - 125, 0)
        windows.append(span)
        level = 0.85 if w in high else 0.12
        rows.append(Row("deep.clip", span.window_id, float(np.clip(rng.normal(level, 0.05), 0, 1)), "scored",
                        t_start_ms=span.t_start_ms, t_end_ms=span.t_end_ms))
        for f in range(FRAMES_PER_WINDOW):
            t = t0 + f * WINDOW_MS // FRAMES_PER_WINDOW
            rows.append(Row("deep.frame", f"a:f{t:09d}", float(np.clip(rng.normal(level, 0.08), 0, 1)), "scored",
                            t_start_ms=t, t_end_ms=t))
    return rows, windows


def _values(rows: list[Row]) -> dict[str, dict[str, float] | None]:
    return {b: BRANCHES[b].extract(rows) for b in BRANCH_NAMES}


def _training_set() -> tuple[list[list[Row]], list[Sample], list[int]]:
    """Synthetic real videos and fully manipulated fakes (like the FF++ ones), in 4 folds."""
    rng = np.random.default_rng(0)
    videos, samples, folds = [], [], []
    for i in range(40):
        y = i % 2
        n = int(rng.integers(3, 20))
        rows, _ = _video(rng, n, set(range(n)) if y else set())
        videos.append(rows)
        samples.append((_values(rows), y))
        folds.append(i % 4)
    return videos, samples, folds


def _splicer(videos: list[list[Row]], samples: list[Sample]) -> Callable[[Sequence[int]], list[Sample]]:
    def augment(positions: Sequence[int]) -> list[Sample]:
        reals = [i for i in positions if samples[i][1] == 0]
        fakes = [i for i in positions if samples[i][1] == 1]
        return [(_values(splice_rows(videos[r], videos[fakes[n % len(fakes)]], fraction=0.05)), 1)
                for n, r in enumerate(reals)]
    return augment


@pytest.fixture(scope="module")
def model() -> FusionModel:
    """A video model fitted with spliced samples (a few fake windows in real videos) added to training."""
    videos, samples, folds = _training_set()
    return fit_grouped("video-test", {b: BRANCHES[b].features for b in BRANCH_NAMES}, samples, folds,
                       augment=_splicer(videos, samples))


def test_without_spliced_samples_a_short_segment_barely_moves_the_score() -> None:
    """Why the augmentation exists: fitted on fully manipulated fakes only, the model needs every window high."""
    _, samples, folds = _training_set()
    plain = fit_grouped("plain", {b: BRANCHES[b].features for b in BRANCH_NAMES}, samples, folds)
    rng = np.random.default_rng(2)
    spliced_rows, _ = _video(rng, 20, {13})
    assert plain.probability(_values(spliced_rows))[0] < 0.2


def test_splice_rows_replaces_a_run_of_windows_and_their_frames() -> None:
    rng = np.random.default_rng(5)
    real, windows = _video(rng, 10, set())
    fake, _ = _video(rng, 4, set(range(4)))
    spliced = splice_rows(real, fake, fraction=0.1, offset=0.5)
    clips = {r.window_id: r.score for r in spliced if r.module_name == "deep.clip"}
    assert set(clips) == {w.window_id for w in windows}
    high = [w for w, s in clips.items() if (s or 0) > 0.5]
    assert len(high) == 1
    span = next(w for w in windows if w.window_id == high[0])
    frames = [r for r in spliced if r.module_name == "deep.frame" and span.t_start_ms <= (r.t_start_ms or 0)
              <= span.t_end_ms]
    assert len(frames) == FRAMES_PER_WINDOW and all((r.score or 0) > 0.5 for r in frames)
    assert sum(r.module_name == "deep.frame" for r in spliced) == sum(r.module_name == "deep.frame" for r in real)
    assert splice_rows(real, [], fraction=0.1) == real


def test_window_rows_select_own_clip_and_frames_in_span() -> None:
    rows, windows = _video(np.random.default_rng(1), 3, set())
    picked = window_rows(rows, windows[1])
    clip = [r for r in picked if r.module_name == "deep.clip"]
    frames = [r for r in picked if r.module_name == "deep.frame"]
    assert [r.window_id for r in clip] == [windows[1].window_id]
    assert len(frames) == FRAMES_PER_WINDOW
    assert all(windows[1].t_start_ms <= (r.t_start_ms or 0) <= windows[1].t_end_ms for r in frames)
    assert any(r.module_name == "temporal.head_pose" for r in picked)


def test_one_manipulated_window_in_twenty_raises_the_video_score(model: FusionModel) -> None:
    rng = np.random.default_rng(2)
    clean_rows, windows = _video(rng, 20, set())
    spliced_rows, _ = _video(rng, 20, {13})
    p_clean = model.probability(_values(clean_rows))[0]
    p_spliced = model.probability(_values(spliced_rows))[0]
    assert p_clean < 0.3
    assert p_spliced > p_clean + 0.3
    points = timeline(model, spliced_rows, windows)
    assert len(points) == 20 and all(p.probability is not None for p in points)
    probs = [p.probability or 0.0 for p in points]
    assert int(np.argmax(probs)) == 13
    assert max(p for i, p in enumerate(probs) if i != 13) < probs[13] - 0.3


def test_window_without_deep_evidence_has_no_probability(model: FusionModel) -> None:
    rows, windows = _video(np.random.default_rng(3), 2, set())
    faceless = WindowSpan("a:s1:0", 100_000, 102_000, None)
    points = timeline(model, rows, [*windows, faceless])
    assert points[-1].probability is None and "deep_clip" not in points[-1].branches_present
    assert has_timeline(model)


def test_stage_writes_asset_verdict_and_window_timeline(ws: Workspace, model: FusionModel,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    rows, windows = _video(np.random.default_rng(4), 6, {2})
    now = datetime.now(UTC)
    asset = Asset(asset_id="a", sha256="0" * 64, size_bytes=1, original_name="v.mp4", upload_time=now,
                  uploaded_by="tester", storage_key="raw/x", status="analyzing", media_type="video")
    with ws.db.session() as s:
        s.add(asset)
        s.flush()
        for w in windows:
            s.add(Window(window_id=w.window_id, asset_id="a", track_id=w.track_id, t_start_ms=w.t_start_ms,
                         t_end_ms=w.t_end_ms, frame_ids_json=[], uri=""))
        for r in rows:
            s.add(Detection(asset_id="a", stage=r.module_name.split(".")[0], window_id=r.window_id,
                            module_name=r.module_name, module_version="t", params_json={}, status=r.status,
                            score=r.score, t_start_ms=r.t_start_ms, t_end_ms=r.t_end_ms, created_at=now))
    with ws.db.session() as s:
        stored = s.get(Asset, "a")
        assert stored is not None
        s.expunge(stored)
    monkeypatch.setitem(fusion_stage.MODEL_FOR_MEDIA, "video", "video-test")
    monkeypatch.setattr(FusionStage, "_model", lambda self, media_type: model)
    out = FusionStage().run(StageContext(ws=ws, asset=stored, stage_name="fusion"))
    verdict = next(d for d in out.detections if d.module_name == "fusion")
    points = [d for d in out.detections if d.module_name == "fusion.window"]
    assert verdict.window_id == "asset" and verdict.band is not None
    assert [p.window_id for p in points] == [w.window_id for w in windows]
    assert all(p.score is not None and p.band and p.t_end_ms for p in points)
    assert verdict.evidence and verdict.evidence["timeline"]["peak_window"] == windows[2].window_id


def test_shipped_video_model_loads_with_its_cv_metrics() -> None:
    from tamperscope.fusion.model import load_model

    model = load_model(fusion_stage.MODEL_FOR_MEDIA["video"])
    assert set(model.branches) <= set(BRANCH_NAMES) and has_timeline(model)
    assert model.training["branch_selection"]["candidates"] == list(V3_CANDIDATES)
    assert model.policy.version.startswith("video-v3/") and model.calibration == "temperature"
    assert {"cv", "cal", "train"} <= set(model.metrics) and model.metrics["cal"]["data"].startswith("inner")
    # missing evidence never votes: every missing indicator has weight 0
    assert all(w == 0.0 for col, w in model.coef.items() if col.endswith(".missing"))


def test_video_without_any_branch_evidence_gets_an_explicit_non_verdict(ws: Workspace) -> None:
    now = datetime.now(UTC)
    asset = Asset(asset_id="b", sha256="1" * 64, size_bytes=1, original_name="v.mp4", upload_time=now,
                  uploaded_by="tester", storage_key="raw/y", status="analyzing", media_type="video")
    with ws.db.session() as s:
        s.add(asset)
        s.flush()
        for module, status in (("deep.frame", "not_applicable"), ("temporal.blink", "not_applicable"),
                               ("forensics.ela", "scored")):
            s.add(Detection(asset_id="b", stage=module.split(".")[0], window_id="asset", module_name=module,
                            module_version="t", params_json={}, status=status,
                            score=0.4 if status == "scored" else None, created_at=now))
    with ws.db.session() as s:
        stored = s.get(Asset, "b")
        assert stored is not None
        s.expunge(stored)
    out = FusionStage().run(StageContext(ws=ws, asset=stored, stage_name="fusion"))
    [verdict] = out.detections
    assert (verdict.status, verdict.band, verdict.score) == ("insufficient_data", None, None)
    assert verdict.evidence and "video-v3" in verdict.evidence["reason"]
    assert verdict.evidence["modules_scored"] == ["forensics.ela"]
