"""Content-addressed object store over fsspec: a local directory by default, ``s3://`` and friends alike.

Layout (keys are relative to the store root):

* ``raw/sha256/<h[0:2]>/<h[2:4]>/<h>``: accepted uploads, byte for byte, read-only;
* ``quarantine/sha256/<h[0:2]>/<h[2:4]>/<h>``: rejected uploads, kept for the record;
* ``derived/<asset_id>/<stage>/...``: artifacts (frames, maps, overlays, clips, reports);
* ``tmp/``: in-flight uploads, renamed into place once hashed and verified.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import stat
import tempfile
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import fsspec
from fsspec.implementations.local import LocalFileSystem

from tamperscope.custody.digests import DigestMemo, ObjectIdentity, local_identity, remote_identity
from tamperscope.custody.hashing import CHUNK_SIZE, sha256_file, sha256_stream
from tamperscope.custody.storeclient import classify, storage_options
from tamperscope.errors import (
    InputRejectedError,
    NotFoundError,
    RejectReason,
    StoreError,
    StoreFailure,
    TamperscopeError,
)
from tamperscope.settings import StoreSettings

T = TypeVar("T")

#: fsspec protocols whose first path component is a bucket (container) that can itself be missing
BUCKET_PROTOCOLS = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss"}


def raw_key(sha256: str, area: str = "raw") -> str:
    """Key of an upload's bytes in ``area`` ("raw" or "quarantine")."""
    return f"{area}/sha256/{sha256[0:2]}/{sha256[2:4]}/{sha256}"


class _GuardedReader(io.RawIOBase):
    """A store object opened for reading whose read errors are typed like every other store call."""

    def __init__(self, store: ObjectStore, key: str, handle: Any) -> None:
        self._store, self._key, self._handle = store, key, handle

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return int(self._store._call("read", self._key, self._handle.readinto, buffer))

    def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(Exception):
                self._handle.close()
        super().close()


#: name prefix of the temporary file a local write goes through before its rename (:meth:`ObjectStore.put_bytes`)
IN_FLIGHT_PREFIX = ".tmp-"


def in_flight(key: str) -> bool:
    """Whether ``key`` names the temporary file of a local write in flight, not an object."""
    return key.rsplit("/", 1)[-1].startswith(IN_FLIGHT_PREFIX)


class ObjectStore:
    """Put, get and list objects by key; the same code path for local disks and object storage.

    Every failure of the store itself (missing bucket, denied, unreachable, timed out) is raised as
    :class:`StoreError` after ``on_error`` (the workspace's audit hook) has seen it; a missing key stays a
    :class:`NotFoundError`. S3 calls are bounded by the timeouts and attempts of :class:`StoreSettings`.
    """

    def __init__(self, url: str, settings: StoreSettings | None = None) -> None:
        self.url = url
        self.settings = settings or StoreSettings()
        self.on_error: Callable[[StoreError], None] | None = None
        self.fs, self.root = fsspec.core.url_to_fs(url, **storage_options(url, self.settings))
        if hasattr(self.fs, "retries"):
            self.fs.retries = 1  # s3fs's own retry loop (a class attribute) would multiply botocore's attempts
        if callable(getattr(self.fs, "connect", None)):
            self.fs.connect()  # the client, and the AWS_* variables it reads, are fixed when the store opens
        self.is_local = isinstance(self.fs, LocalFileSystem)
        self.digests = DigestMemo()
        protocols = {self.fs.protocol} if isinstance(self.fs.protocol, str) else set(self.fs.protocol)
        self.bucket = self.root.split("/", 1)[0] if protocols & BUCKET_PROTOCOLS else None
        if self.is_local:
            Path(self.root).mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> str:
        return f"{self.root.rstrip('/')}/{key}"

    def identity(self, key: str) -> ObjectIdentity | None:
        """The object's :data:`ObjectIdentity`; None for a remote store that gives no entity tag."""
        if self.is_local:
            try:
                st = os.stat(self.path(key))
            except FileNotFoundError as exc:
                raise NotFoundError(f"object {key} is not in the store") from exc
            return local_identity(st)
        try:
            info = self._call("info", key, self.fs.info, self.path(key))
        except FileNotFoundError as exc:
            raise NotFoundError(f"object {key} is not in the store") from exc
        return remote_identity(info)

    def _remember(self, key: str, sha256: str) -> None:
        """Remember the digest of bytes this store just wrote under ``key`` (see :meth:`put_bytes`)."""
        identity = self.identity(key)
        if identity is not None:
            self.digests.put(key, identity, sha256)

    def uri(self, key: str) -> str:
        """A stable, location-independent reference stored in the database."""
        return f"store://{key}"

    @staticmethod
    def key_of(uri: str) -> str:
        return uri.removeprefix("store://")

    # -- errors --------------------------------------------------------------------------------

    def _failed(self, reason: StoreFailure, operation: str, key: str, message: str) -> StoreError:
        """The typed error of a failed call, after the audit hook has recorded it (a failing hook is noted)."""
        error = StoreError(reason, operation, key, message)
        if self.on_error is not None:
            try:
                self.on_error(error)
            except Exception as exc:  # the store error is what the caller must see
                error.add_note(f"the store.failed audit event was not recorded: {type(exc).__name__}: {exc}")
        return error

    def _bucket_missing(self) -> bool:
        """For a bucket store, whether the bucket itself is gone (then a missing key is a missing bucket)."""
        if self.bucket is None:
            return False
        try:
            self.fs.info(self.bucket)
        except FileNotFoundError:
            return True
        except Exception:  # any other problem surfaces on the next call with its own type
            return False
        return False

    def _call(self, operation: str, key: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one store call; a missing key stays ``FileNotFoundError`` (unless the bucket is gone), every
        other failure becomes :class:`StoreError`."""
        try:
            return fn(*args, **kwargs)
        except TamperscopeError:
            raise
        except FileNotFoundError as exc:
            if self._bucket_missing():
                raise self._failed(StoreFailure.BUCKET_MISSING, operation, key, str(exc)) from exc
            raise
        except Exception as exc:
            raise self._failed(classify(exc), operation, key, f"{type(exc).__name__}: {exc}") from exc

    def exists(self, key: str) -> bool:
        found = bool(self._call("exists", key, self.fs.exists, self.path(key)))
        if not found and self._bucket_missing():
            raise self._failed(StoreFailure.BUCKET_MISSING, "exists", key, "the bucket does not exist")
        return found

    # -- uploads -------------------------------------------------------------------------------

    def ingest_stream(self, stream: BinaryIO, *, max_bytes: int) -> tuple[str, int, str]:
        """Copy ``stream`` to a temporary key while hashing it, verify what was written; (sha256, size, tmp_key).

        See :meth:`staged_upload`, which also hands out the verified bytes as a local file.
        """
        with self.staged_upload(stream, max_bytes=max_bytes) as (sha256, size, tmp_key, _local):
            return sha256, size, tmp_key

    @contextlib.contextmanager
    def staged_upload(self, stream: BinaryIO, *, max_bytes: int) -> Iterator[tuple[str, int, str, Path]]:
        """Copy ``stream`` to a temporary key while hashing it and verify what was written; yield (sha256, size,
        tmp_key, a local file of the verified bytes: the object itself on a local disk, else the read-back copy,
        removed on exit), so intake validates what the store holds without downloading it again.

        Memory stays at one chunk (plus one multipart part for S3). Hashing a chunk overlaps writing it (one
        helper thread, awaited per chunk, so a failing write surfaces at once). The written object is checked:
        its size on a local disk (fsynced), its SHA-256 read back from a remote store, against the intake
        hash. Exceeding ``max_bytes`` raises ``too_large``; a failed upload or check leaves no temporary object
        behind (an S3 multipart upload is aborted, never completed with what had arrived).
        """
        tmp_key = f"tmp/{uuid.uuid4().hex}"
        digest = hashlib.sha256()
        size = 0
        handle = self._call("upload", tmp_key, self._open_for_write, tmp_key)
        try:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer") as writer:
                while chunk := stream.read(CHUNK_SIZE):
                    size += len(chunk)
                    if size > max_bytes:
                        raise InputRejectedError(RejectReason.TOO_LARGE, f"more than {max_bytes} bytes")
                    written = writer.submit(self._call, "upload", tmp_key, handle.write, chunk)
                    digest.update(chunk)
                    written.result()
            self._call("upload", tmp_key, self._commit, handle)
        except BaseException:
            self._abandon(handle, tmp_key)
            raise
        sha256 = digest.hexdigest()
        with contextlib.ExitStack() as stack:
            try:
                local = stack.enter_context(self._verified_copy(tmp_key, sha256, size))
            except BaseException:
                with contextlib.suppress(StoreError):
                    self.delete(tmp_key)
                raise
            yield sha256, size, tmp_key, local

    def _open_for_write(self, key: str) -> Any:
        if self.is_local:
            target = Path(self.path(key))
            target.parent.mkdir(parents=True, exist_ok=True)
            return open(target, "wb")  # closed by _commit or _abandon
        return self.fs.open(self.path(key), "wb")

    def _commit(self, handle: Any) -> None:
        """Finish a write: flush and fsync a local file; complete the (multipart) upload of a remote one."""
        if self.is_local:
            handle.flush()
            os.fsync(handle.fileno())
        handle.close()

    def _abandon(self, handle: Any, key: str) -> None:
        """Drop an unfinished write without publishing it: abort the multipart upload, remove a local file."""
        if self.is_local:
            with contextlib.suppress(OSError):
                handle.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path(key))
            return
        try:
            with contextlib.suppress(Exception):  # best effort: the original failure is what the caller sees
                discard = getattr(handle, "discard", None)
                if callable(discard):
                    discard()
        finally:
            handle.closed = True  # never completed by a later close(), nor by the garbage collector

    @contextlib.contextmanager
    def _verified_copy(self, key: str, sha256: str, size: int) -> Iterator[Path]:
        """The object under ``key`` as a local file (:meth:`local_path`), checked against the intake's size and,
        for a remote store (whose copy was downloaded), its hash."""
        with self.local_path(key) as local:
            if self.is_local:
                stored_hash, stored_size = sha256, local.stat().st_size
            else:
                stored_hash, stored_size = sha256_file(local)
            if stored_size != size or stored_hash != sha256:
                raise self._failed(StoreFailure.WRITE_MISMATCH, "verify", key,
                                   f"wrote {size} bytes with SHA-256 {sha256}, the store holds {stored_size} "
                                   f"bytes with SHA-256 {stored_hash}")
            yield local

    def sha256(self, key: str) -> tuple[str, int]:
        """SHA-256 and size of a stored object, streamed."""
        with self.open(key) as handle:
            return sha256_stream(handle)

    def promote(self, tmp_key: str, key: str, sha256: str | None = None) -> bool:
        """Atomically move a finished upload into place, read-only; False if the key already existed.

        ``sha256``, the digest verified while the upload was written, is remembered for the seals
        (:class:`DigestMemo`), so they need not read the upload back."""
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
            self._call("promote", key, self.fs.mv, self.path(tmp_key), self.path(key))
        if sha256 is not None:
            self._remember(key, sha256)
        return True

    # -- artifacts -----------------------------------------------------------------------------

    def put_bytes(self, key: str, data: bytes) -> str:
        """Write an artifact atomically (temp name, then rename) and return its URI.

        The store remembers the digest of the bytes it wrote under the object's new identity (:class:`DigestMemo`),
        so the seal after the stage need not read them back. Should the object change between the write and the
        look at its identity (or a local file in place within the same clock tick), the seal holds the bytes
        written here, and ``verify``, which hashes every object, names the change.
        """
        if self.is_local:
            target = Path(self.path(key))
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=IN_FLIGHT_PREFIX)
            try:
                with os.fdopen(fd, "wb") as handle:
                    self._call("put", key, handle.write, data)
                os.replace(tmp, target)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
        else:
            self._call("put", key, self.fs.pipe_file, self.path(key), data)
        self._remember(key, hashlib.sha256(data).hexdigest())
        return self.uri(key)

    def get_bytes(self, key: str) -> bytes:
        try:
            return bytes(self._call("get", key, self.fs.cat_file, self.path(key)))
        except FileNotFoundError as exc:
            raise NotFoundError(f"object {key} is not in the store") from exc

    def open(self, key: str) -> BinaryIO:
        """The object for reading (buffered); its read errors are typed like every store call."""
        try:
            handle = self._call("open", key, self.fs.open, self.path(key), "rb")
        except FileNotFoundError as exc:
            raise NotFoundError(f"object {key} is not in the store") from exc
        return io.BufferedReader(_GuardedReader(self, key, handle), CHUNK_SIZE)

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
                self._call("get", key, self.fs.get_file, self.path(key), str(local))
            except FileNotFoundError as exc:
                raise NotFoundError(f"object {key} is not in the store") from exc
            yield local

    def delete(self, key: str) -> None:
        self.digests.forget(key)
        with contextlib.suppress(FileNotFoundError):
            self._call("delete", key, self.fs.rm_file, self.path(key))

    def _find(self, prefix: str, *, detail: bool) -> Any:
        try:
            found = self._call("list", prefix, self.fs.find, self.path(prefix), detail=detail)
        except FileNotFoundError:
            found = {} if detail else []
        if not found and self._bucket_missing():
            raise self._failed(StoreFailure.BUCKET_MISSING, "list", prefix, "the bucket does not exist")
        return found

    def _key(self, path: str) -> str:
        root = self.root.rstrip("/") + "/"
        return path[len(root):] if path.startswith(root) else path

    def list(self, prefix: str) -> list[str]:
        """Keys below ``prefix``, sorted."""
        return sorted(self._key(p) for p in self._find(prefix, detail=False))

    def list_identities(self, prefix: str) -> dict[str, ObjectIdentity | None]:
        """The objects below ``prefix``, sorted, with their :data:`ObjectIdentity`: for a remote store from the one
        listing (no request per object), for a local one from each file's status. Writes in flight are not objects
        yet, and a local file gone before its status was read is gone: a write beside the listing (another stage's
        artifact) renames its temporary file away at any moment."""
        if not self.is_local:
            found = self._find(prefix, detail=True)
            paths = {self._key(path): path for path in sorted(found)}
            return {key: remote_identity(found[path]) for key, path in paths.items() if not in_flight(key)}
        identities: dict[str, ObjectIdentity | None] = {}
        for key in self.list(prefix):
            if in_flight(key):
                continue
            with contextlib.suppress(NotFoundError):
                identities[key] = self.identity(key)
        return identities
