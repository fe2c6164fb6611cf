import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from tamperscope.custody.intake import ingest_path
from tamperscope.pipeline.runner import analyze_asset
from tamperscope.stages.forensics import map_pngs, pick_frames
from tamperscope.stages.video import decode_png
from tamperscope.store.models import Detection, Frame
from tamperscope.workspace import Workspace


@pytest.mark.slow
def test_image_gets_forensic_maps_and_a_banded_verdict(ws: Workspace, small_jpeg: Path) -> None:
    asset_id = ingest_path(ws, small_jpeg).asset_id
    analyze_asset(ws, asset_id, only=["metadata", "video", "forensics", "fusion"])
    with ws.db.session() as s:
        rows = list(s.scalars(select(Detection).where(Detection.asset_id == asset_id)))
    forensic = [r for r in rows if r.stage == "forensics"]
    assert len(forensic) == 9 and all(r.window_id == "asset" for r in forensic)
    (copymove,) = [r for r in forensic if r.module_name == "forensics.copymove_keypoint"]
    assert copymove.params_json["min_side"] == 768  # a small photo is up-scaled for SIFT; video frames are not
    for r in forensic:
        heat = ws.store.get_bytes(ws.store.key_of(r.saliency_uri))
        assert heat[:8] == b"\x89PNG\r\n\x1a\n"
        assert ws.store.exists(ws.store.key_of(r.overlay_uri))
    (verdict,) = [r for r in rows if r.module_name == "fusion"]
    assert verdict.window_id == "asset" and 0.0 <= verdict.score <= 1.0
    assert verdict.band in ("likely_real", "unsure", "likely_manipulated")
    assert verdict.evidence_json["policy_version"].startswith("image-v2")
    # every branch of the shipped model has evidence here (image-v2 keeps the branches its selection chose)
    from tamperscope.fusion.model import load_model

    assert verdict.evidence_json["branches_present"] == list(load_model("image-v2").branches)


def _png(ws: Workspace, uri: str | None) -> np.ndarray:
    with Image.open(io.BytesIO(ws.store.get_bytes(ws.store.key_of(uri or "")))) as img:
        return np.asarray(img.convert("RGB"))


def test_maps_and_overlays_of_a_rotated_photo_are_upright_like_its_frame(ws: Workspace, tmp_path: Path) -> None:
    """A phone JPEG stored landscape with EXIF orientation 6 (shown turned a quarter clockwise): the frame, every
    heat map and every overlay are portrait, and the overlay shows the photo the way the frame does."""
    rng = np.random.default_rng(6)
    stored = rng.normal(128, 12, (128, 192, 3))
    stored[:64] -= 90  # dark top half of the stored grid: the right half once upright
    stored[64:] += 90
    path = tmp_path / "phone.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.clip(stored, 0, 255).astype(np.uint8)).save(path, "JPEG", exif=exif.tobytes(), quality=90)
    asset_id = ingest_path(ws, path).asset_id
    analyze_asset(ws, asset_id, only=["video", "forensics"])
    with ws.db.session() as s:
        (frame,) = s.scalars(select(Frame).where(Frame.asset_id == asset_id))
        rows = list(s.scalars(select(Detection).where(Detection.asset_id == asset_id, Detection.stage == "forensics")))
        s.expunge_all()
    shown = _png(ws, frame.uri)
    assert shown.shape[0] > shown.shape[1]  # portrait
    assert shown[:, : shown.shape[1] // 2].mean() > shown[:, shown.shape[1] // 2 :].mean() + 100
    assert len(rows) == 9
    for row in rows:
        heat, overlay = _png(ws, row.saliency_uri), _png(ws, row.overlay_uri)
        assert heat.shape == overlay.shape == (192, 128, 3), row.module_name
        assert overlay[:, :64].mean() > overlay[:, 64:].mean() + 40, row.module_name
        assert row.evidence_json["exif_orientation"] == 6


@pytest.mark.slow
def test_video_frames_are_analysed_per_window_with_a_cap(ws: Workspace, small_video: Path) -> None:
    ws.settings.forensics.max_frames_per_video = 3
    asset_id = ingest_path(ws, small_video).asset_id
    analyze_asset(ws, asset_id, only=["metadata", "video", "forensics", "fusion"])
    with ws.db.session() as s:
        rows = list(s.scalars(select(Detection).where(Detection.asset_id == asset_id)))
    forensic = [r for r in rows if r.stage == "forensics"]
    windows = {r.window_id for r in forensic}
    assert len(windows) == 3 and all(w.startswith(f"{asset_id}:f") for w in windows)
    assert len(forensic) == 3 * 9 and all(r.t_start_ms is not None for r in forensic)
    dq = [r for r in forensic if r.module_name == "forensics.jpeg_dq"]
    assert all(r.status == "not_applicable" and r.score is None for r in dq)  # PNG frames carry no JPEG tables
    copymove = [r for r in forensic if r.module_name == "forensics.copymove_keypoint"]
    assert len(copymove) == 3 and all(r.params_json["min_side"] == 0 for r in copymove)
    (verdict,) = [r for r in rows if r.module_name == "fusion"]
    # image-v1 is calibrated on JPEG photos only: a video gets an explicit non-verdict, not a band
    assert (verdict.status, verdict.band, verdict.score) == ("insufficient_data", None, None)
    assert "forensics.ela" in verdict.evidence_json["modules_scored"]


def test_pick_frames_prefers_keyframes_and_spreads_the_rest() -> None:
    frames = [Frame(frame_id=f"a:f{t:09d}", asset_id="a", t_ms=t, keyframe=t in (0, 500)) for t in range(0, 1000, 100)]
    chosen = pick_frames(frames, 4)
    assert [f.t_ms for f in chosen] == [0, 100, 500, 900]


def test_maps_of_a_long_image_are_stored_at_the_map_side_with_their_scale(ws: Workspace, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the stage's ``MAP_MAX_PIXELS`` the heat maps and overlays are stored scaled down to that many pixels,
    the evidence records the scale, and the scores are those of the full-size maps."""
    from tamperscope.stages import forensics

    rng = np.random.default_rng(8)
    path = tmp_path / "long.jpg"
    Image.fromarray(rng.integers(0, 255, (200, 300, 3), dtype=np.uint8)).save(path, "JPEG", quality=85)
    asset_id = ingest_path(ws, path).asset_id
    analyze_asset(ws, asset_id, only=["video", "forensics"])
    with ws.db.session() as s:
        full = {r.module_name: r.score for r in s.scalars(select(Detection).where(Detection.asset_id == asset_id))}
    monkeypatch.setattr(forensics, "MAP_MAX_PIXELS", 85 * 128)
    analyze_asset(ws, asset_id, only=["forensics"], force=True)
    with ws.db.session() as s:
        rows = list(s.scalars(select(Detection).where(Detection.asset_id == asset_id, Detection.stage == "forensics")))
        s.expunge_all()
    assert len(rows) == 9
    for r in rows:
        assert _png(ws, r.saliency_uri).shape == _png(ws, r.overlay_uri).shape == (85, 128, 3)
        assert r.evidence_json["map_scale"] == round(128 / 300, 6)
        assert r.score == full[r.module_name]


def test_map_pngs_colour_the_heat_once_and_blend_it_by_its_own_weight() -> None:
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (300, 200, 3), dtype=np.uint8)  # more rows than one blending strip
    heat = rng.random((300, 200)).astype(np.float32)
    heat[:20] = 0.0
    heat_png, overlay_png = map_pngs(image, heat)
    jet = decode_png(heat_png)
    level = np.clip(heat * 255.0 + 0.5, 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(jet, cv2.applyColorMap(level, cv2.COLORMAP_JET)[:, :, ::-1])
    overlay = decode_png(overlay_png).astype(np.int16)
    weight = (0.5 * heat)[:, :, None]
    reference = np.clip(image * (1 - weight) + jet * weight + 0.5, 0, 255).astype(np.int16)
    assert np.abs(overlay - reference).max() <= 1
    np.testing.assert_array_equal(overlay[:20], image[:20])  # no heat: the image untouched
