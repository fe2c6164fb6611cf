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
    TamperscopeError: (1, 500),
}


def _lookup(exc: BaseException) -> tuple[int, int]:
    for cls in type(exc).__mro__:
        if cls in ERROR_TABLE:
            return ERROR_TABLE[cls]
    return (1, 500)


def exit_code_for(exc: BaseException) -> int:
    """CLI exit code: 0 ok, 1 internal, 2 usage, 3 input rejected, 4 integrity failure, 5 busy (leased)."""
    return _lookup(exc)[0]


def http_status_for(exc: BaseException) -> int:
    """HTTP status for the API's exception handler."""
    return _lookup(exc)[1]
