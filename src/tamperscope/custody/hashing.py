"""Streaming SHA-256 in fixed-size chunks: a file is never held in memory whole."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import BinaryIO

CHUNK_SIZE = 1024 * 1024


def sha256_stream(stream: BinaryIO, chunk_size: int = CHUNK_SIZE) -> tuple[str, int]:
    """Hex SHA-256 and byte count of everything left in ``stream``."""
    digest = hashlib.sha256()
    size = 0
    buffer = bytearray(chunk_size)
    view = memoryview(buffer)
    while True:
        n = stream.readinto(view)  # type: ignore[attr-defined]
        if not n:
            break
        digest.update(view[:n])
        size += n
    return digest.hexdigest(), size


def sha256_file(path: str | Path, chunk_size: int = CHUNK_SIZE) -> tuple[str, int]:
    """Hex SHA-256 and size of a local file."""
    with open(path, "rb", buffering=0) as handle:
        return sha256_stream(handle, chunk_size)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
