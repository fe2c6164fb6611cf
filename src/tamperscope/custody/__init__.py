"""Intake and custody: stream hashing, the content-addressed object store, the hash-chained audit log."""

from tamperscope.custody.hashing import CHUNK_SIZE, sha256_file, sha256_stream
from tamperscope.custody.objectstore import ObjectStore

__all__ = ["CHUNK_SIZE", "ObjectStore", "sha256_file", "sha256_stream"]
