"""The seals of an analysis hash each unchanged object once (:class:`ObjectDigests`), never read back the bytes
the store itself wrote, and seal exactly what hashing every object again would."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from tamperscope.custody import seal as seal_module
from tamperscope.custody.digests import DigestMemo
from tamperscope.custody.intake import ingest_path
from tamperscope.custody.objectstore import ObjectStore, raw_key
from tamperscope.custody.seal import ObjectDigests, asset_object_identities, asset_objects, hash_objects
from tamperscope.custody.verify import verify
from tamperscope.errors import NotFoundError
from tamperscope.pipeline import runner
from tamperscope.settings import Settings
from tamperscope.workspace import Workspace

SETTLE_S = 0.05


def _settle() -> None:
    time.sleep(SETTLE_S * 3)


@pytest.fixture
def store(tmp_path: Path) -> ObjectStore:
    """A store over four objects another process wrote (so this one has no digests of them yet)."""
    writer = ObjectStore(str(tmp_path / "objects"))
    for n in range(4):
        writer.put_bytes(f"derived/a/stage/{n}.bin", bytes([n]) * (1000 + n))
    return ObjectStore(str(tmp_path / "objects"))


def test_unchanged_objects_are_hashed_once(store: ObjectStore) -> None:
    keys = store.list("derived/a/")
    _settle()
    digests = ObjectDigests(store, settle_s=SETTLE_S)
    first = digests.of(keys)
    assert first == hash_objects(store, keys) and digests.hashed == 4
    assert digests.of(keys) == first and digests.hashed == 4


def test_every_change_is_hashed_again(store: ObjectStore) -> None:
    keys = store.list("derived/a/")
    _settle()
    digests = ObjectDigests(store, settle_s=SETTLE_S)
    digests.of(keys)
    store.put_bytes(keys[0], b"\xff" * 1000)  # same size, replaced as every store write is
    path = Path(store.path(keys[1]))
    before = path.stat()
    with open(path, "r+b") as handle:  # in place, same size, its modification time set back
        handle.write(b"\xee")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    store.put_bytes("derived/a/stage/new.bin", b"new")
    keys = store.list("derived/a/")
    again = digests.of(keys)
    assert again == hash_objects(store, keys)
    assert again[keys[0]] == hashlib.sha256(b"\xff" * 1000).hexdigest()
    assert digests.hashed == 4 + 1  # the object changed in place; the two this store wrote are known from the write
    store.delete(keys[2])
    with pytest.raises(NotFoundError):
        digests.of(keys)


def test_a_fresh_object_is_hashed_again_until_it_settles(store: ObjectStore) -> None:
    keys = store.list("derived/a/")
    digests = ObjectDigests(store, settle_s=60.0)  # everything here changed less than a minute ago
    digests.of(keys)
    digests.of(keys)
    assert digests.hashed == 8


def test_the_bytes_a_store_wrote_are_not_read_back(tmp_path: Path) -> None:
    store = ObjectStore(str(tmp_path / "objects"))
    for n in range(3):
        store.put_bytes(f"derived/a/stage/{n}.bin", bytes([n]) * 500)
    keys = store.list("derived/a/")
    digests = ObjectDigests(store, settle_s=60.0)  # fresh, yet known: the digests are those of the bytes written
    assert digests.of(keys) == hash_objects(store, keys) and digests.hashed == 0
    path = Path(store.path(keys[0]))
    with open(path, "r+b") as handle:  # changed behind the store's back: its identity moves, so it is hashed
        handle.write(b"\xee")
    assert digests.of(keys) == hash_objects(store, keys) and digests.hashed == 1
    store.delete(keys[1])
    store.put_bytes(keys[1], b"other")
    assert digests.of(keys)[keys[1]] == hashlib.sha256(b"other").hexdigest() and digests.hashed == 2


def test_an_ingested_upload_is_not_read_back(settings: Settings, small_video: Path) -> None:
    ws = Workspace.open(settings)
    asset = ingest_path(ws, small_video)
    digests = ObjectDigests(ws.store, settle_s=60.0)
    keys = [raw_key(asset.sha256)]
    assert digests.of(keys) == hash_objects(ws.store, keys) == {keys[0]: asset.sha256}
    assert digests.hashed == 0
    ws.close()


def test_a_listing_gives_the_same_identities_as_a_look_at_each_object(store: ObjectStore) -> None:
    keys = store.list("derived/a/")
    assert store.list_identities("derived/a/") == {key: store.identity(key) for key in keys}
    assert asset_object_identities(store, "a", "raw/none") == store.list_identities("derived/a/")


def test_a_listing_skips_writes_in_flight_and_files_gone_before_their_status(store: ObjectStore,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A stage writing beside a seal's listing renames its temporary file away at any moment (it made a
    ``--force`` re-analysis fail with "derived/.../.tmp-... is not in the store")."""
    in_flight = Path(store.path("derived/a/stage/.tmp-abc123"))
    in_flight.write_bytes(b"half written")
    listed = store.list("derived/a/")
    assert "derived/a/stage/.tmp-abc123" in listed
    gone = ["derived/a/stage/.tmp-renamed", "derived/a/stage/deleted.bin"]  # listed, then gone before the stat
    monkeypatch.setattr(store, "list", lambda prefix: sorted(listed + gone))
    expected = {key: store.identity(key) for key in listed if ".tmp-" not in key}
    assert len(expected) == 4
    assert store.list_identities("derived/a/") == expected
    assert asset_object_identities(store, "a", "raw/none") == expected


def test_the_memo_keeps_the_most_recently_used_digests(tmp_path: Path) -> None:
    memo = DigestMemo(max_entries=2)
    identity = (1, 2, 3, 4, 5)
    memo.put("a", identity, "da")
    memo.put("b", identity, "db")
    assert memo.get("a", identity) == "da"  # a is now the most recently used
    memo.put("c", identity, "dc")
    assert memo.get("b", identity) is None and memo.get("a", identity) == "da" and memo.get("c", identity) == "dc"
    assert memo.get("a", (1, 2, 3, 4, 6)) is None  # another identity: not this file's digest


@pytest.mark.slow
def test_every_seal_of_an_analysis_equals_hashing_every_object(settings: Settings, small_video: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    ws = Workspace.open(settings.model_copy(update={"workers": 1}))  # no stage writes while another seals
    seals: list[dict[str, str]] = []
    spies: list[ObjectDigests] = []

    def both(store: ObjectStore, asset_id: str, storage_key: str,
             digests: ObjectDigests | None = None) -> dict[str, str]:
        sealed = asset_objects(store, asset_id, storage_key, digests)
        assert sealed == asset_objects(store, asset_id, storage_key)  # what every seal hashed before
        seals.append(sealed)
        if digests is not None and digests not in spies:
            spies.append(digests)
        return sealed

    monkeypatch.setattr(runner, "asset_objects", both)
    asset_id = ingest_path(ws, small_video).asset_id
    result = runner.analyze_asset(ws, asset_id)
    assert not result.failed and len(seals) == len(result.ran) + 1  # each stage's commit and the finish
    # the upload and every artifact were written by this process's store: fewer read back than one seal holds
    assert len(spies) == 1 and spies[0].hashed < len(seals[-1])
    assert len(seals[-1]) > 10
    checked = verify(ws, asset_id)
    assert not checked.problems and checked.objects_checked == len(seals[-1])
    ws.close()


def test_a_remote_store_without_entity_tags_is_hashed_every_time(store: ObjectStore,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    keys = store.list("derived/a/")
    monkeypatch.setattr(store, "is_local", False)
    digests = ObjectDigests(store, settle_s=0.0)
    assert digests.of(keys) == digests.of(keys) == hash_objects(store, keys)
    assert digests.hashed == 8
    assert seal_module.asset_objects(store, "a", "raw/none", digests) == hash_objects(store, keys)
