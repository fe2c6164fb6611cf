"""Content-addressed object store over fsspec: a local directory by default, ``s3://`` and friends alike.

Layout (keys are relative to the store root):

* ``raw/sha256/<h[0:2]>/<h[2:4]>/<h>``: accepted uploads, byte for byte, read-only;
* ``quarantine/sha256/<h[0:2]>/<h[2:4]>/<h>``: rejected uploads, kept for the record;
* ``derived/<asset_id>/<stage>/...``: artifacts (frames, maps, overlays, clips, reports);
* ``tmp/``: in-flight uploads, renamed into place once hashed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import stat
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import fsspec
from fsspec.implementations.local import LocalFileSystem

from tamperscope.custody.hashing import CHUNK_SIZE
from tamperscope.errors import InputRejectedError, NotFoundError, RejectReason


def raw_key(sha256: str, area: str = "raw") -> str:
    """Key of an upload's bytes in ``area`` ("raw" or "quarantine")."""
    return f"{area}/sha256/{sha256[0:2]}/{sha256[2:4]}/{sha256}"


class ObjectStore:
    """Put, get and list objects by key; the same code path for local disks and object storage."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.fs, self.root = fsspec.core.url_to_fs(url)
        self.is_local = isinstance(self.fs, LocalFileSystem)
        if self.is_local:
            Path(self.root).mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> str:
        return f"{self.root.rstrip('/')}/{key}"

    def uri(self, key: str) -> str:
        """A stable, location-independent reference stored in the database."""
        return f"store://{key}"

    @staticmethod
    def key_of(uri: str) -> str:
        return uri.removeprefix("store://")

    def exists(self, key: str) -> bool:
        return bool(self.fs.exists(self.path(key)))

    # -- uploads -------------------------------------------------------------------------------

    def ingest_stream(self, stream: BinaryIO, *, max_bytes: int) -> tuple[str, int, str]:
        """Copy ``stream`` to a temporary key while hashing it; return (sha256, size, tmp_key).

        Hashing and writing overlap: a writer thread drains a bounded queue, so memory stays at a few
        chunks whatever the size. Exceeding ``max_bytes`` aborts the copy and raises ``too_large``.
        """
        tmp_key = f"tmp/{uuid.uuid4().hex}"
        digest = hashlib.sha256()
        size = 0
        chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=8)
        failure: list[BaseException] = []

        def writer() -> None:
            try:
                with self._open_for_write(tmp_key) as out:
                    while (chunk := chunks.get()) is not None:
                        out.write(chunk)
            except BaseException as exc:  # re-raised in the caller's thread
                failure.append(exc)
                while chunks.get() is not None:
                    pass

        thread = threading.Thread(target=writer, name="store-writer", daemon=True)
        thread.start()
        try:
            while chunk := stream.read(CHUNK_SIZE):
                size += len(chunk)
                if size > max_bytes:
                    raise InputRejectedError(RejectReason.TOO_LARGE, f"more than {max_bytes} bytes")
                digest.update(chunk)
                chunks.put(chunk)
        except BaseException:
            chunks.put(None)
            thread.join()
            self.delete(tmp_key)
            raise
        chunks.put(None)
        thread.join()
        if failure:
            self.delete(tmp_key)
            raise failure[0]
        return digest.hexdigest(), size, tmp_key

    @contextlib.contextmanager
    def _open_for_write(self, key: str) -> Iterator[BinaryIO]:
        if self.is_local:
            target = Path(self.path(key))
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as handle:
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
        else:
            with self.fs.open(self.path(key), "wb") as handle:
                yield handle

    def promote(self, tmp_key: str, key: str) -> bool:
        """Atomically move a finished upload into place, read-only; False if the key already existed."""
        if self.exists(key):
            self.delete(tmp_key)
            return False
        if self.is_local:
            target = Path(self.path(key))
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.path(tmp_key), target)
            os.chmod(target, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
            dir_fd = os.open(target.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        else:
            self.fs.mv(self.path(tmp_key), self.path(key))
        return True

    # -- artifacts -----------------------------------------------------------------------------

    def put_bytes(self, key: str, data: bytes) -> str:
        """Write an artifact atomically (temp name, then rename) and return its URI."""
        if self.is_local:
            target = Path(self.path(key))
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                os.replace(tmp, target)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
        else:
            self.fs.pipe_file(self.path(key), data)
        return self.uri(key)

    def get_bytes(self, key: str) -> bytes:
        try:
            return bytes(self.fs.cat_file(self.path(key)))
        except FileNotFoundError as exc:
            raise NotFoundError(f"object {key} is not in the store") from exc

    def open(self, key: str) -> BinaryIO:
        try:
            return self.fs.open(self.path(key), "rb")  # type: ignore[no-any-return]
        except FileNotFoundError as exc:
            raise NotFoundError(f"object {key} is not in the store") from exc

    @contextlib.contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        """A local file path holding the object (a temp copy for remote stores), for decoders and tools."""
        if self.is_local:
            path = Path(self.path(key))
            if not path.exists():
                raise NotFoundError(f"object {key} is not in the store")
            yield path
            return
        with tempfile.TemporaryDirectory(prefix="tamperscope-") as tmpdir:
            local = Path(tmpdir) / Path(key).name
            try:
                self.fs.get_file(self.path(key), str(local))
            except FileNotFoundError as exc:
                raise NotFoundError(f"object {key} is not in the store") from exc
            yield local

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self.path(key))

    def list(self, prefix: str) -> list[str]:
        """Keys below ``prefix``, sorted."""
        base = self.path(prefix)
        if not self.fs.exists(base):
            return []
        root = self.root.rstrip("/") + "/"
        found = self.fs.find(base)
        return sorted(p[len(root):] if p.startswith(root) else p for p in found)
