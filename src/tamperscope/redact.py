"""Masking of secrets in anything shown or logged: passwords in URLs, secret query parameters, API tokens.

Database and store URLs may carry credentials (``postgresql://user:password@host/db``, ``s3://key:secret@bucket``);
every message that can contain a URL goes through :func:`mask_secrets` before it is printed or logged.
"""

from __future__ import annotations

import logging
import re
from typing import Any

MASK = "***"
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*):(?P<secret>[^@/\s]+)@")
_QUERY_SECRET = re.compile(r"(?P<head>[?&;](?:password|passwd|pwd|secret|token|key|access_key|secret_key|"
                           r"aws_secret_access_key|sig|signature)=)(?P<secret>[^&;\s]+)", re.IGNORECASE)
_API_TOKEN = re.compile(r"\btsk_[A-Za-z0-9_\-]{8,}")


def mask_secrets(text: str) -> str:
    """``text`` with URL passwords, secret query parameters and API tokens replaced by ``***``."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}:{MASK}@", text)
    text = _QUERY_SECRET.sub(lambda m: f"{m['head']}{MASK}", text)
    return _API_TOKEN.sub(f"tsk_{MASK}", text)


def mask_url(url: str) -> str:
    """A URL safe to show: its password (and secret query parameters) masked, the rest unchanged."""
    return mask_secrets(url)


def install_log_redaction() -> None:
    """Mask secrets in every log record from now on (a record factory applies to every logger and handler)."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "tamperscope_redacting", False):
        return

    def redacting(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        message = record.getMessage()
        masked = mask_secrets(message)
        if masked != message:
            record.msg, record.args = masked, ()
        return record

    redacting.tamperscope_redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(redacting)
