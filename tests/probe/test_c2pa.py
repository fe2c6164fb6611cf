"""C2PA reading is offline, and every reader failure gets a non-empty status that keeps the reader's code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import c2pa
import pytest

from tamperscope.probe import c2pa as provenance
from tamperscope.probe.c2pa import OFFLINE_SETTINGS, classify, classify_error, read_provenance


def test_offline_settings_are_known_to_the_reader() -> None:
    """The keys exist in c2pa-rs's settings schema: a wrongly typed value for each is refused."""
    for section, values in OFFLINE_SETTINGS.items():
        for key in values:
            with pytest.raises(c2pa.C2paError):
                c2pa.Settings.from_dict({section: {key: "not-a-valid-value"}})
    assert provenance.offline_context() is provenance.offline_context()


def _raising_reader(exc: Exception) -> Any:
    def reader(*args: Any, **kwargs: Any) -> Any:
        assert kwargs.get("context") is provenance.offline_context()
        raise exc
    return reader


@pytest.mark.parametrize(("exc", "status", "code"), [
    (c2pa.C2paError.RemoteManifest("RemoteManifest: https://cai.example.org/manifests/abc.c2pa"),
     "remote_not_fetched", "c2pa.RemoteManifest"),
    (c2pa.C2paError.Signature("Signature: unsupported signing algorithm"), "invalid", "c2pa.Signature"),
    (c2pa.C2paError.NotSupported("NotSupported: unsupported algorithm"), "invalid", "c2pa.NotSupported"),
    (c2pa.C2paError.Verify("Verify: claim signature mismatch"), "invalid", "c2pa.Verify"),
    (c2pa.C2paError.NotSupported("NotSupported: type is unsupported"), "unsupported", "c2pa.NotSupported"),
    (c2pa.C2paError.Io("Io: failed to fill whole buffer"), "inaccessible", "c2pa.Io"),
    (c2pa.C2paError.Other("Other: asset could not be parsed"), "inaccessible", "c2pa.Other"),
    (OSError("disk went away"), "inaccessible", "c2pa.OSError"),
])
def test_reader_failures_map_to_a_typed_status(exc: Exception, status: str, code: str, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    media = tmp_path / "store" / "objects" / "ab"
    media.parent.mkdir(parents=True)
    media.write_bytes(b"\xff\xd8\xff\xe0" + bytes(64))
    monkeypatch.setattr(c2pa, "Reader", _raising_reader(exc))
    found = read_provenance(media, "image/jpeg")
    assert found.status == status
    assert found.failure_codes == [code]
    assert found.error and str(tmp_path) not in found.error
    if status == "remote_not_fetched":
        assert found.remote_url == "https://cai.example.org/manifests/abc.c2pa"


def test_manifest_not_found_is_absent() -> None:
    assert classify_error("ManifestNotFound", "ManifestNotFound: no JUMBF data found").status == "absent"


def test_validator_output_shapes() -> None:
    """The store JSON as c2pa-rs writes it: failures listed under the active manifest keep their codes."""
    untrusted = {"code": "signingCredential.untrusted", "url": "self#jumbf=/c2pa"}
    valid = {"active_manifest": "urn:1", "validation_state": "Valid", "validation_status": [untrusted],
             "validation_results": {"activeManifest": {"failure": [untrusted]}}}
    assert classify(valid).status == "valid"
    unsupported_alg = {"active_manifest": "urn:1", "validation_state": "Invalid",
                       "validation_results": {"activeManifest": {"failure": [
                           {"code": "algorithm.unsupported"}]}}}
    found = classify(unsupported_alg)
    assert (found.status, found.failure_codes) == ("invalid", ["algorithm.unsupported"])
    remote_failed = {"validation_status": [{"code": "manifest.inaccessible", "url": "https://x.example/m"}]}
    assert classify(remote_failed).status == "inaccessible"
    assert classify(remote_failed).failure_codes == ["manifest.inaccessible"]


def test_fixtures_keep_their_status(shared_dir: Path) -> None:
    expected = {"c2pars_CA.jpg": "valid", "c2pars_XCA.jpg": "invalid", "c2pars_no_manifest.jpg": "absent"}
    for name, status in expected.items():
        found = read_provenance(shared_dir / "c2pa" / name)
        assert found.status == status, (name, json.dumps(found.summary()))
