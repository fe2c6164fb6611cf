"""Training folders: layouts, identities, manifest links and face-track extraction (no torch)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tamperscope.errors import UsageError
from tamperscope.samples.talking_head import astronaut_rig, talking_head
from tamperscope_train.dataset import MediaItem, link_layout, load_tracks, scan


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_generic_layout_groups_identities_by_folder(tmp_path: Path) -> None:
    _touch(tmp_path / "real" / "alice" / "a1.mp4")
    _touch(tmp_path / "real" / "alice" / "a2.jpg")
    _touch(tmp_path / "real" / "bob.mp4")
    _touch(tmp_path / "fake" / "swap.mp4")
    _touch(tmp_path / "real" / "notes.txt")
    items = {i.path.name: i for i in scan(tmp_path)}
    assert set(items) == {"a1.mp4", "a2.jpg", "bob.mp4", "swap.mp4"}
    assert items["a1.mp4"].identities == items["a2.jpg"].identities == ("alice",)
    assert items["bob.mp4"].identities == ("bob",) and items["bob.mp4"].label == 0
    assert items["swap.mp4"].label == 1


def test_faceforensics_layout_names_both_identities_of_a_fake(tmp_path: Path) -> None:
    _touch(tmp_path / "original_sequences" / "youtube" / "c23" / "videos" / "183.mp4")
    _touch(tmp_path / "manipulated_sequences" / "Deepfakes" / "c23" / "videos" / "183_253.mp4")
    items = {i.path.name: i for i in scan(tmp_path)}
    assert items["183.mp4"].identities == ("183",) and items["183.mp4"].label == 0
    fake = items["183_253.mp4"]
    assert fake.identities == ("183", "253") and fake.label == 1 and fake.family == "Deepfakes"


def test_a_folder_without_real_media_is_refused(tmp_path: Path) -> None:
    _touch(tmp_path / "fake" / "x.mp4")
    with pytest.raises(UsageError):
        scan(tmp_path)


def test_manifest_layout_links_real_media_by_group(tmp_path: Path) -> None:
    root = tmp_path / "data"
    _touch(root / "video" / "real" / "a.mp4")
    _touch(root / "video" / "fake" / "b.mp4")
    manifest = tmp_path / "m.csv"
    _touch(root / "video" / "fake" / "c.mp4")
    manifest.write_text("path,label,family,group\nvideo/real/a.mp4,0,real,g1\nvideo/fake/b.mp4,1,ffpp_x,g1\n"
                        "video/fake/c.mp4,1,lipsync,g2\n")
    assert link_layout(manifest, root, tmp_path / "train") == 1
    link = tmp_path / "train" / "real" / "g1" / "a.mp4"
    assert link.is_symlink() and link.resolve() == (root / "video" / "real" / "a.mp4").resolve()
    assert [i.identities for i in scan(tmp_path / "train")] == [("g1",)]
    assert link_layout(manifest, root, tmp_path / "train", fake_families=("ffpp_x",)) == 2
    assert [(i.label, i.identities) for i in scan(tmp_path / "train")] == [(0, ("g1",)), (1, ("g1",))]


@pytest.mark.slow
def test_face_tracks_are_extracted_once_and_cached(tmp_path: Path) -> None:
    clip = talking_head(tmp_path / "real" / "astro" / "talk.mp4", rig=astronaut_rig(256, 256), duration_s=2.0)
    items = scan(tmp_path)
    first = load_tracks(items, tmp_path / "cache", fps=8.0, max_frames=12, progress=False)[0]
    assert clip.path.exists() and len(first.crops) >= 10
    assert first.crops.shape[1:] == (224, 224, 3) and first.landmarks.shape[1:] == (478, 2)
    assert np.all(np.diff(first.grid) >= 1) and first.runs(8)
    # landmarks are in crop pixels: the face fills the crop around its centre
    centre = first.landmarks.mean(axis=1)
    assert np.all(np.abs(centre - 112) < 40)
    cached = load_tracks(items, tmp_path / "cache", fps=8.0, max_frames=12, progress=False)[0]
    np.testing.assert_array_equal(cached.crops, first.crops)
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1


def test_a_medium_shows_an_identity_when_any_of_its_people_is_left_out() -> None:
    swap = MediaItem(Path("183_253.mp4"), 1, ("183", "253"), "FaceSwap")
    assert swap.shows_any(["253"]) and swap.shows_any(("999", "183"))
    assert not swap.shows_any(["999"]) and not swap.shows_any([])
