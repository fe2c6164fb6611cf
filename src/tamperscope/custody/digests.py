"""Remembered SHA-256 digests of stored objects, each kept with the identity it was taken under, so a seal reuses a
digest only while the object is provably unchanged and otherwise hashes its bytes again."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import Any, NamedTuple

#: how many objects' digests a store remembers for its seals (about 250 bytes each)
DIGEST_MEMO_ENTRIES = 100_000
#: what shows that an object is unchanged: for a local file its device, inode, size, modification and change
#: times (every store write replaces the file, so a new inode; any other change of its bytes moves its change time,
#: which no user can set back); for a remote object its size and entity tag (S3's ETag is computed from the bytes,
#: so any rewrite with other bytes changes it)
ObjectIdentity = tuple[object, ...]


class LocalIdentity(NamedTuple):
    """The :data:`ObjectIdentity` of a local file."""

    device: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int  # when its bytes or status last changed: a seal remembers a digest only once this has settled


def local_identity(st: os.stat_result) -> LocalIdentity:
    """The :data:`ObjectIdentity` of a local file from its status."""
    return LocalIdentity(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def remote_identity(info: dict[str, Any]) -> ObjectIdentity | None:
    """The :data:`ObjectIdentity` of a remote object from its fsspec info; None when it gives no entity tag."""
    tag = info.get("ETag") or info.get("etag")
    return None if tag is None else (info.get("size"), str(tag))


class DigestMemo:
    """SHA-256 digests of objects, each with the identity (:data:`ObjectIdentity`) it was taken under: shared by every
    seal the process makes with one store (the analyses and batch parts it runs), bounded, least recently used out
    first."""

    def __init__(self, max_entries: int = DIGEST_MEMO_ENTRIES) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[ObjectIdentity, str]] = OrderedDict()
        self._lock = threading.Lock()  # stages write objects from several threads

    def get(self, key: str, identity: ObjectIdentity) -> str | None:
        """The remembered digest of ``key`` if the object still has the identity it had then, else None."""
        with self._lock:
            known = self._entries.get(key)
            if known is None or known[0] != identity:
                return None
            self._entries.move_to_end(key)
            return known[1]

    def put(self, key: str, identity: ObjectIdentity, digest: str) -> None:
        with self._lock:
            self._entries[key] = (identity, digest)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def forget(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)
