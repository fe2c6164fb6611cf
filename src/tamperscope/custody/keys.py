"""The Ed25519 key that signs the audit chain head, and anchors: signed heads a third party keeps.

The private key lives in a PEM file outside the database (``custody.key_path``). Signing is deterministic,
so the same head always gives the same signature (reports stay byte-identical). A signature covers the
canonical JSON of ``{"domain", "event_id", "hash"}``, so it cannot be replayed for another purpose.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from tamperscope.custody.audit import canonical_json
from tamperscope.errors import UsageError

HEAD_DOMAIN = "tamperscope-audit-head-v1"
ANCHOR_FORMAT = "tamperscope-anchor-v1"
ALGORITHM = "Ed25519"


def head_message(event_id: int, head_hash: str) -> bytes:
    return canonical_json({"domain": HEAD_DOMAIN, "event_id": event_id, "hash": head_hash})


def public_key_hex(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def verify_head(public_key: str, event_id: int, head_hash: str, signature: str | None) -> bool:
    """True when ``signature`` (hex) is ``public_key``'s (hex) signature of that head."""
    if not signature:
        return False
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key))
        key.verify(bytes.fromhex(signature), head_message(event_id, head_hash))
    except (ValueError, InvalidSignature):
        return False
    return True


@dataclass(frozen=True)
class Signer:
    """A loaded private key; ``public_key`` is its raw public key in hex."""

    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> str:
        return public_key_hex(self.private_key.public_key())

    def sign_head(self, event_id: int, head_hash: str) -> str:
        return self.private_key.sign(head_message(event_id, head_hash)).hex()

    def signed_head(self, event_id: int, head_hash: str) -> dict[str, Any]:
        """The head with its signature and the public key that checks it (as reports and anchors carry it)."""
        return {"algorithm": ALGORITHM, "event_id": event_id, "hash": head_hash,
                "signature": self.sign_head(event_id, head_hash), "public_key": self.public_key}


def create_key(path: Path, *, overwrite: bool = False) -> Signer:
    """Write a new private key to ``path`` (mode 0600); refuse to replace one unless ``overwrite``."""
    if path.exists() and not overwrite:
        raise UsageError(f"a key already exists at {path.name}; pass --force to replace it (old anchors then "
                         "only verify against the old public key)")
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    os.replace(tmp, path)
    return Signer(key)


def load_key(path: Path) -> Signer | None:
    """The signer in ``path``, or None when there is no key file."""
    if not path.is_file():
        return None
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except ValueError as exc:
        raise UsageError(f"{path.name} is not a PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise UsageError(f"{path.name} is not an Ed25519 key")
    return Signer(key)


def anchor_document(signer: Signer, event_id: int, head_hash: str, created_at: str) -> dict[str, Any]:
    """The small JSON a third party keeps: the signed head at ``event_id``."""
    return {"format": ANCHOR_FORMAT, "created_at": created_at, **signer.signed_head(event_id, head_hash)}


def parse_anchor(data: bytes) -> dict[str, Any]:
    """Read an anchor file; a malformed or badly signed one is a usage error."""
    try:
        anchor = json.loads(data)
        fields = (anchor["format"], int(anchor["event_id"]), anchor["hash"], anchor["signature"],
                  anchor["public_key"])
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"not a tamperscope anchor: {exc}") from None
    if fields[0] != ANCHOR_FORMAT:
        raise UsageError(f"unknown anchor format {fields[0]!r}")
    return dict(anchor)
