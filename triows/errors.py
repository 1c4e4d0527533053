"""The exception family and the close-code table.

Errors that carry a protocol answer (an HTTP status, a websocket close code) carry it as data,
so one place — the app's dispatcher — turns them into what the client sees.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Iterator, Mapping
from http import HTTPStatus
from typing import Any

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

__all__ = [
    "CloseCode",
    "ConfigurationError",
    "HTTPException",
    "WebSocketDisconnect",
    "WebSocketException",
    "WebSocketStateError",
    "exception_leaves",
    "truncate_reason",
]


#: The close reason is limited to 123 bytes of UTF-8 on the wire (RFC 6455 section 5.5).
MAX_REASON_BYTES = 123


def truncate_reason(reason: str) -> str:
    """Cut ``reason`` to what fits in a close frame, without splitting a character."""
    encoded = reason.encode("utf-8")
    if len(encoded) <= MAX_REASON_BYTES:
        return reason
    return encoded[:MAX_REASON_BYTES].decode("utf-8", errors="ignore")


class CloseCode(enum.IntEnum):
    """Websocket close codes (RFC 6455 section 7.4.1) used by triows."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS = 1005
    ABNORMAL = 1006
    INVALID_PAYLOAD = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013


class ConfigurationError(Exception):
    """The app is misconfigured; raised when a handler is decorated or the app is built."""


class HTTPException(Exception):
    """An HTTP error answer.

    Raised from an HTTP handler it becomes a JSON response ``{"detail": ...}``. Raised from a
    websocket handler (or guard) before the connection is accepted, it becomes an HTTP denial
    response with the same status, headers and body.

    Args:
        status_code: The HTTP status to answer with.
        detail: Any JSON-serialisable detail; defaults to the status phrase.
        headers: Extra response headers.
    """

    def __init__(
        self,
        status_code: int,
        detail: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if detail is None:
            try:
                detail = HTTPStatus(status_code).phrase
            except ValueError:  # a non-standard status such as 499
                detail = "Error"
        super().__init__(status_code, detail)
        self.status_code = status_code
        self.detail = detail
        self.headers = dict(headers) if headers else {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status_code={self.status_code!r}, detail={self.detail!r})"


class WebSocketException(Exception):
    """Close the websocket with ``code`` and ``reason``.

    Raised by a handler (or anything it awaits) the connection is closed with that code and
    reason, and nothing is logged: it is an expected outcome, not a server error.

    Args:
        code: The close code to send (1000-4999).
        reason: A short human-readable reason (at most 123 UTF-8 bytes on the wire).
    """

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, reason={self.reason!r})"


class WebSocketDisconnect(Exception):
    """The websocket is closed: raised by ``receive_*`` (and sends) once it has ended.

    Args:
        code: The close code the connection ended with.
        reason: The close reason, if any.
    """

    def __init__(self, code: int = CloseCode.NORMAL, reason: str | None = None) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason or ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, reason={self.reason!r})"


class WebSocketStateError(RuntimeError):
    """A websocket method was called in a state that does not allow it (a programming error)."""


def exception_leaves(exc: BaseException) -> Iterator[BaseException]:
    """The exceptions inside ``exc``, exception groups flattened (``exc`` itself if none)."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from exception_leaves(inner)
    else:
        yield exc
