"""The object store's client: fsspec options that bound every S3 call, and the typed reason of a client's failure
(S3 error codes, botocore/aiohttp/OS network errors), so the store can type each failure it raises."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import fsspec

from tamperscope.errors import StoreFailure, UsageError
from tamperscope.settings import StoreSettings

#: error codes of S3 and S3-compatible servers that mean the credentials may not do this
_DENIED_CODES = {"AccessDenied", "AllAccessDisabled", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
                 "InvalidToken", "AccountProblem", "Forbidden", "403"}


def storage_options(url: str, settings: StoreSettings) -> dict[str, Any]:
    """fsspec options for ``url``: for S3, the endpoint, region and a client whose every call is bounded
    (connect and read timeouts, a fixed number of attempts with back-off, done by botocore alone)."""
    if fsspec.core.split_protocol(url)[0] not in ("s3", "s3a"):
        return {}
    options: dict[str, Any] = {
        "config_kwargs": {"connect_timeout": settings.connect_timeout_s, "read_timeout": settings.read_timeout_s,
                          "retries": {"total_max_attempts": settings.attempts, "mode": "standard"}},
        "default_block_size": settings.block_size,
        "use_listings_cache": False,  # several machines write one bucket: never answer from a stale listing
        "skip_instance_cache": True,  # a client per store: AWS_* variables are read when the store opens
        "session": _bounded_session(),
    }
    if settings.endpoint_url:
        options["endpoint_url"] = settings.endpoint_url
    if settings.region:
        options["client_kwargs"] = {"region_name": settings.region}
    return options


def _bounded_session() -> Any:
    """An AWS session whose S3 requests carry no ``Expect: 100-continue``: aiohttp waits for the interim "100"
    reply without any timeout, so a server that accepts the connection and never answers would hang an upload
    forever (measured; with the header gone the read timeout applies). The cost: a refused PUT sends its body
    (at most one part) before the refusal arrives."""
    try:
        from aiobotocore.session import AioSession
        from botocore.handlers import add_expect_header
    except ImportError as exc:
        raise UsageError("an s3:// store needs the s3 extra: pip install 'tamperscope[s3]'") from exc

    session = AioSession()
    session.unregister("before-call.s3", add_expect_header)
    return session


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def classify(exc: BaseException) -> StoreFailure:
    """The typed reason of a store client's exception (S3 error codes, botocore/aiohttp/OS network errors)."""
    chain = list(_causes(exc))
    codes = {str(((getattr(e, "response", None) or {}).get("Error") or {}).get("Code", "")) for e in chain}
    names = " ".join(type(e).__name__ for e in chain)
    text = " ".join(str(e) for e in chain).lower()
    if codes & _DENIED_CODES or any(isinstance(e, PermissionError) for e in chain):
        return StoreFailure.ACCESS_DENIED
    if "NoSuchBucket" in codes or "bucket does not exist" in text:
        return StoreFailure.BUCKET_MISSING
    if "Timeout" in names or any(isinstance(e, TimeoutError) for e in chain):
        return StoreFailure.TIMEOUT
    if "Connect" in names or any(isinstance(e, ConnectionError) for e in chain):
        return StoreFailure.UNREACHABLE
    return StoreFailure.FAILED
