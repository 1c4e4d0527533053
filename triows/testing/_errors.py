"""What the test clients raise."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import httpx
import pydantic_core

from ..errors import exception_leaves

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

__all__ = ["ReceiveTimeout", "UnexpectedMessage", "WebSocketDenied", "collapse_single"]


class WebSocketDenied(Exception):
    """The app refused the handshake; the HTTP response it answered with.

    Attributes:
        status_code: The HTTP status (403 when the app closed before accepting).
        headers: The response headers: case-insensitive and multi-valued (``httpx.Headers``, as
            on Starlette's ``WebSocketDenialResponse``): ``headers["content-type"]``,
            ``headers.get_list("set-cookie")``, ``headers.multi_items()``.
        body: The response body.
    """

    def __init__(
        self, status_code: int, headers: Sequence[tuple[bytes, bytes]], body: bytes
    ) -> None:
        super().__init__(status_code, body)
        self.status_code = status_code
        self.headers = httpx.Headers(list(headers))
        self.body = body

    @property
    def content(self) -> bytes:
        """The body (the name of Starlette's ``WebSocketDenialResponse``)."""
        return self.body

    @property
    def text(self) -> str:
        """The body decoded as UTF-8."""
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body parsed as JSON."""
        return pydantic_core.from_json(self.body)

    def __repr__(self) -> str:
        return f"WebSocketDenied(status_code={self.status_code}, body={self.body!r})"

    __str__ = __repr__


class ReceiveTimeout(TimeoutError):
    """Nothing arrived within the receive timeout (the test would otherwise hang)."""


class UnexpectedMessage(AssertionError):
    """The app sent something other than what the test asked for (bytes for text…)."""


@contextmanager
def collapse_single() -> Iterator[None]:
    """Let a lone exception out of a nursery as itself, not inside an ``ExceptionGroup``.

    The test clients run the app in a nursery around the test's own code; without this, a
    ``pytest.raises(WebSocketDisconnect)`` around a receive would see a group instead.
    """
    try:
        yield
    except BaseExceptionGroup as group:
        # The app's crash may reach the test twice (from the app's task and re-raised by the
        # session to the test's call): count each exception once.
        leaves = list({id(leaf): leaf for leaf in exception_leaves(group)}.values())
        if len(leaves) == 1:
            raise leaves[0] from None
        raise
