"""Typed errors, and the one table mapping each to a CLI exit code and an HTTP status."""

from __future__ import annotations

from enum import StrEnum


class RejectReason(StrEnum):
    """Why an input was refused; stored on the asset row and in the audit log."""

    TRUNCATED = "truncated"
    UNSUPPORTED_FORMAT = "unsupported_format"
    NO_DECODABLE_STREAM = "no_decodable_stream"
    TOO_LARGE = "too_large"
    TOO_MANY_PIXELS = "too_many_pixels"
    TOO_LONG = "too_long"
    TOO_MANY_STREAMS = "too_many_streams"
    PROBE_TIMEOUT = "probe_timeout"
    CORRUPT_STREAM = "corrupt_stream"
    EMPTY = "empty"
    LIMIT_EXCEEDED = "limit_exceeded"


class TamperscopeError(Exception):
    """Base of every error tamperscope raises on purpose."""


class UsageError(TamperscopeError):
    """The caller asked for something malformed (bad flag, unknown stage)."""


class NotFoundError(TamperscopeError):
    """An asset, report or object that does not exist."""


class PathNotFoundError(UsageError):
    """A local file named on the command line does not exist."""

    def __init__(self, path: str) -> None:
        super().__init__(f"no such file: {path}")
        self.path = path


class IsDirectoryError(UsageError):
    """A directory where one file was expected."""

    def __init__(self, path: str, hint: str = "") -> None:
        super().__init__(f"{path} is a directory, not a file{'; ' + hint if hint else ''}")
        self.path = path


class UnknownAssetError(NotFoundError):
    """No stored asset has this id or SHA-256 prefix."""

    def __init__(self, ref: str) -> None:
        super().__init__(f"no asset with id or SHA-256 prefix {ref!r} (`tamperscope list` shows the stored assets)")
        self.ref = ref


class PrefixTooShortError(UsageError):
    """A SHA-256 prefix shorter than the minimum the lookup accepts."""

    def __init__(self, ref: str, minimum: int) -> None:
        super().__init__(f"{ref!r} is too short to name an asset: give at least {minimum} hex digits of its SHA-256 "
                         "or its 16-character asset id")
        self.ref = ref
        self.minimum = minimum


class AmbiguousPrefixError(UsageError):
    """A SHA-256 prefix that matches more than one asset."""

    def __init__(self, ref: str, matches: int, needed: int) -> None:
        super().__init__(f"{ref!r} matches {matches} assets; give at least {needed} hex digits to tell them apart")
        self.ref = ref
        self.matches = matches
        self.needed = needed


class InputRejectedError(TamperscopeError):
    """An input failed validation; its bytes are quarantined and the reason recorded."""

    def __init__(self, reason: RejectReason, message: str, *, asset_id: str | None = None) -> None:
        super().__init__(f"{reason.value}: {message}")
        self.reason = reason
        self.message = message
        self.asset_id = asset_id


class UploadTooLargeError(InputRejectedError):
    """An API upload over the upload limit, refused before (or while) its body is stored (HTTP 413)."""

    def __init__(self, message: str) -> None:
        super().__init__(RejectReason.TOO_LARGE, message)


class LimitExceededError(InputRejectedError):
    """Analysis of an input went past a budget (``limit``: pixels, duration, time or memory, see
    ``settings.limits``); the stage ends with status ``limit_exceeded`` instead of crashing or running on."""

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(RejectReason.LIMIT_EXCEEDED, f"{limit} budget: {message}")
        self.limit = limit


class IntegrityError(TamperscopeError):
    """A stored object or audit event does not match its recorded hash."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems) if problems else "integrity failure")
        self.problems = problems


class ToolError(TamperscopeError):
    """An external tool (ffprobe, ExifTool, MediaInfo) failed or timed out."""

    def __init__(self, tool: str, message: str, *, timed_out: bool = False) -> None:
        super().__init__(f"{tool}: {message}")
        self.tool = tool
        self.timed_out = timed_out


class BusyError(TamperscopeError):
    """Another live run holds the analysis lease of the asset."""


class AuthError(TamperscopeError):
    """A request without a valid API token."""


class StageRegistryError(TamperscopeError):
    """The stages package is inconsistent (a stage module fails to import, two stages share a name, a stage
    requires an unknown stage, or stages require each other in a cycle): a defect of the installed code, not of the
    request, so an internal failure."""

    def __init__(self, message: str, stages: tuple[str, ...]) -> None:
        super().__init__(message)
        self.stages = stages


class StoreFailure(StrEnum):
    """Why an object-store operation failed; stored in the ``store.failed`` audit event."""

    BUCKET_MISSING = "bucket_missing"
    ACCESS_DENIED = "access_denied"
    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"
    WRITE_MISMATCH = "write_mismatch"
    FAILED = "failed"


class StoreError(TamperscopeError):
    """The object store failed (missing bucket, access denied, unreachable, timed out, bytes written differ)."""

    def __init__(self, reason: StoreFailure, operation: str, key: str, message: str) -> None:
        super().__init__(f"object store {reason.value} ({operation} {key}): {message}")
        self.reason = reason
        self.operation = operation
        self.key = key
        self.message = message


# exit code, HTTP status; the most specific class wins (checked in MRO order).
ERROR_TABLE: dict[type[BaseException], tuple[int, int]] = {
    UsageError: (2, 400),
    NotFoundError: (2, 404),
    UploadTooLargeError: (3, 413),
    InputRejectedError: (3, 422),
    IntegrityError: (4, 409),
    AuthError: (2, 401),
    BusyError: (5, 423),
    ToolError: (1, 502),
    StoreError: (1, 503),
    TamperscopeError: (1, 500),
}


def _lookup(exc: BaseException) -> tuple[int, int]:
    for cls in type(exc).__mro__:
        if cls in ERROR_TABLE:
            return ERROR_TABLE[cls]
    return (1, 500)


def exit_code_for(exc: BaseException) -> int:
    """CLI exit code: 0 ok, 1 internal or store failure, 2 usage, 3 input rejected, 4 integrity failure, 5 busy."""
    return _lookup(exc)[0]


def http_status_for(exc: BaseException) -> int:
    """HTTP status for the API's exception handler."""
    return _lookup(exc)[1]
