"""C2PA provenance: read the manifest store with c2pa-python, offline, and classify it.

The manifest store and its validation follow the C2PA Technical Specification 2.x (Coalition for Content
Provenance and Authenticity, 2024), section 15 "Validation". ``validation_state`` ``Valid`` or ``Trusted``
maps to ``valid``; ``Invalid`` to ``invalid``; no JUMBF/manifest to ``absent``. An untrusted signing
credential (``signingCredential.untrusted``, e.g. test certificates) does not make a manifest invalid: it is
kept in the evidence.

The reader never touches the network (a forensic workstation must not reveal what it examines): remote
manifest and OCSP fetching are switched off and no host is allowed. A manifest stored only at a remote URL gets
``remote_not_fetched``; a manifest the reader cannot read (bad signature, unsupported algorithm, broken JUMBF)
gets ``invalid``; an asset the reader cannot open at all gets ``inaccessible``, and a file type C2PA does not
define (PSD, TGA) ``unsupported``. Each keeps the reader's code.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import c2pa

#: c2pa-rs settings: no remote manifest fetch, no OCSP fetch, no host allowed for any other request
OFFLINE_SETTINGS: dict[str, Any] = {
    "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False},
    "core": {"allowed_network_hosts": []},
}
REMOTE_NOT_FETCHED = "remote_not_fetched"
INACCESSIBLE = "inaccessible"
INVALID = "invalid"
ABSENT = "absent"
UNSUPPORTED = "unsupported"
#: reader error kinds (``C2paError.<Kind>``) of a manifest that is there but does not validate
_INVALID_KINDS = {"Signature", "Verify", "NotSupported", "Decoding", "Manifest", "Assertion", "AssertionNotFound",
                  "Json", "ResourceNotFound", "Encoding"}
#: validation codes (C2PA 2.x, 15.2) that mean the manifest could not be reached, not that it is wrong
_INACCESSIBLE_CODES = {"manifest.inaccessible", "claim.inaccessible"}
_URL = re.compile(r"https?://\S+")


@dataclass
class Provenance:
    """The outcome of reading a file's C2PA manifest store.

    Attributes
    ----------
    status : ``valid``, ``invalid``, ``absent``, ``remote_not_fetched``, ``inaccessible`` or ``unsupported``.
    manifest : the manifest store JSON as c2pa-python returns it (None when none was read).
    validation_state : the library's ``validation_state``.
    failure_codes : codes of failed validation checks of the active manifest, or the reader's error kind.
    informational_codes : other status codes (e.g. ``signingCredential.untrusted``).
    error : the reader's error message, if any.
    remote_url : the manifest's remote URL when it is stored remotely (not fetched).
    """

    status: str
    manifest: dict[str, Any] | None = None
    validation_state: str | None = None
    failure_codes: list[str] = field(default_factory=list)
    informational_codes: list[str] = field(default_factory=list)
    error: str | None = None
    remote_url: str | None = None

    def summary(self) -> dict[str, Any]:
        return {"status": self.status, "validation_state": self.validation_state,
                "failure_codes": self.failure_codes, "informational_codes": self.informational_codes,
                "error": self.error, "remote_url": self.remote_url}


def classify(store: dict[str, Any]) -> Provenance:
    """Classify a manifest store JSON (pure)."""
    state = store.get("validation_state")
    results = (store.get("validation_results") or {}).get("activeManifest") or {}
    failures = [str(item.get("code")) for item in results.get("failure") or []]
    failures += [str(item.get("code")) for item in store.get("validation_status") or []
                 if str(item.get("code")) in _INACCESSIBLE_CODES and str(item.get("code")) not in failures]
    informational = [str(item.get("code")) for item in store.get("validation_status") or []
                     if str(item.get("code")) not in failures]
    if failures and set(failures) <= _INACCESSIBLE_CODES:
        status = INACCESSIBLE
    elif state in ("Valid", "Trusted"):
        status = "valid"
    elif state == "Invalid" or failures:
        status = INVALID
    else:
        status = INVALID if not store.get("active_manifest") else "valid"
    return Provenance(status=status, manifest=store, validation_state=state, failure_codes=failures,
                      informational_codes=sorted(set(informational)))


def classify_error(kind: str, message: str) -> Provenance:
    """Classify a reader failure of error kind ``kind`` (``C2paError.<kind>``, e.g. ``RemoteManifest``) (pure).

    Every failure gets a non-empty status and keeps the kind as its code (``c2pa.<kind>``).
    """
    code = f"c2pa.{kind}"
    text = message[:500]
    if kind == "ManifestNotFound":
        return Provenance(status=ABSENT)
    if kind == "RemoteManifest":
        url = _URL.search(message)
        return Provenance(status=REMOTE_NOT_FETCHED, failure_codes=[code], error=text,
                          remote_url=url.group(0) if url else None)
    if kind == "NotSupported" and "type is unsupported" in message:
        return Provenance(status=UNSUPPORTED, failure_codes=[code], error=text)
    status = INVALID if kind in _INVALID_KINDS else INACCESSIBLE
    return Provenance(status=status, failure_codes=[code], error=text)


def _error_kind(exc: BaseException) -> str:
    """``RemoteManifest`` for ``C2paError.RemoteManifest`` (class ``_C2paRemoteManifest``), else the class name."""
    name = type(exc).__name__
    if name.startswith("_C2pa"):
        return name.removeprefix("_C2pa")
    head = str(exc).split(":", 1)[0].strip()
    return head if head.isidentifier() and isinstance(exc, c2pa.C2paError) else name


@lru_cache(maxsize=1)
def offline_context() -> c2pa.Context:
    """One reader context with every network fetch switched off (see :data:`OFFLINE_SETTINGS`)."""
    return c2pa.Context(settings=c2pa.Settings.from_dict(OFFLINE_SETTINGS))


def read_provenance(path: Path, mime_type: str | None = None) -> Provenance:
    """Read and classify ``path``'s C2PA manifest offline; never raises (failures get a typed status).

    ``mime_type`` (e.g. ExifTool's ``File:MIMEType``) is a hint: store paths carry no extension.
    """
    try:
        with open(path, "rb") as handle:
            reader = c2pa.Reader(mime_type or None, handle, context=offline_context())
            try:
                store = json.loads(reader.json())
            finally:
                reader.close()
    except Exception as exc:  # the reader's own typed errors and anything its native layer raises
        return classify_error(_error_kind(exc), f"{type(exc).__name__}: {exc}".replace(str(path), "<media>"))
    return classify(store)
