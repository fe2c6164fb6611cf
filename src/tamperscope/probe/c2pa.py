"""C2PA provenance: read the manifest store with c2pa-python and classify it valid / invalid / absent.

The manifest store and its validation follow the C2PA Technical Specification 2.x (Coalition for Content
Provenance and Authenticity, 2024), section 15 "Validation". ``validation_state`` ``Valid`` or ``Trusted``
maps to ``valid``; ``Invalid`` to ``invalid``; no JUMBF/manifest to ``absent``. An untrusted signing
credential (``signingCredential.untrusted``, e.g. test certificates) does not make a manifest invalid: it is
kept in the evidence.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import c2pa

UNREADABLE = "error"


@dataclass
class Provenance:
    """The outcome of reading a file's C2PA manifest store.

    Attributes
    ----------
    status : ``valid``, ``invalid``, ``absent``, or ``error`` when the reader itself failed.
    manifest : the manifest store JSON as c2pa-python returns it (None when absent).
    validation_state : the library's ``validation_state``.
    failure_codes : codes of failed validation checks of the active manifest.
    informational_codes : other status codes (e.g. ``signingCredential.untrusted``).
    error : the reader's error message, if any.
    """

    status: str
    manifest: dict[str, Any] | None = None
    validation_state: str | None = None
    failure_codes: list[str] = field(default_factory=list)
    informational_codes: list[str] = field(default_factory=list)
    error: str | None = None

    def summary(self) -> dict[str, Any]:
        return {"status": self.status, "validation_state": self.validation_state,
                "failure_codes": self.failure_codes, "informational_codes": self.informational_codes,
                "error": self.error}


def classify(store: dict[str, Any]) -> Provenance:
    """Classify a manifest store JSON (pure)."""
    state = store.get("validation_state")
    results = (store.get("validation_results") or {}).get("activeManifest") or {}
    failures = [str(item.get("code")) for item in results.get("failure") or []]
    informational = [str(item.get("code")) for item in store.get("validation_status") or []
                     if str(item.get("code")) not in failures]
    if state in ("Valid", "Trusted"):
        status = "valid"
    elif state == "Invalid" or failures:
        status = "invalid"
    else:
        status = "invalid" if not store.get("active_manifest") else "valid"
    return Provenance(status=status, manifest=store, validation_state=state, failure_codes=failures,
                      informational_codes=sorted(set(informational)))


def read_provenance(path: Path, mime_type: str | None = None) -> Provenance:
    """Read and classify ``path``'s C2PA manifest; never raises (reader failures give status ``error``).

    ``mime_type`` (e.g. ExifTool's ``File:MIMEType``) is a hint: store paths carry no extension.
    """
    try:
        with open(path, "rb") as handle:
            reader = c2pa.Reader(mime_type or None, handle) if mime_type else c2pa.Reader(handle)
            try:
                store = json.loads(reader.json())
            finally:
                reader.close()
    except c2pa.C2paError as exc:
        if "ManifestNotFound" in type(exc).__name__ or "ManifestNotFound" in str(exc):
            return Provenance(status="absent")
        return Provenance(status=UNREADABLE, error=f"{type(exc).__name__}: {exc}"[:500])
    except Exception as exc:
        return Provenance(status=UNREADABLE, error=f"{type(exc).__name__}: {exc}"[:500])
    return classify(store)
