"""The one receive path for data messages: ``receive_text/bytes/json`` and ``iter_*``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Literal

import pydantic_core

from ._state import WebSocketState
from ._types import Message
from .errors import CloseCode, WebSocketException, truncate_reason

if TYPE_CHECKING:
    from .websocket import WebSocket

__all__ = ["KEYS", "InvalidJSON", "Messages", "Mode", "UnexpectedFrame", "parse_json"]

Mode = Literal["text", "binary"]

#: The ASGI message key of each JSON ``mode``.
KEYS = {"text": "text", "binary": "bytes"}


class UnexpectedFrame(WebSocketException):
    """The client sent a text frame where binary was expected, or the reverse (close 1003)."""

    def __init__(self, expected: str, got: str) -> None:
        super().__init__(CloseCode.UNSUPPORTED_DATA, f"expected a {expected} frame, got {got}")


class InvalidJSON(WebSocketException):
    """The client sent a frame that is not valid JSON where JSON was expected (close 1007)."""

    def __init__(self, detail: str) -> None:
        super().__init__(CloseCode.INVALID_PAYLOAD, truncate_reason(f"invalid JSON: {detail}"))


class Messages(AsyncIterator[Any]):
    """The one receive path for data messages: ``receive_text/bytes/json`` and ``iter_*``.

    Every frame a connection receives goes through :meth:`__anext__`, so it is kept flat: as
    an ``async for`` iterator, ``__anext__`` is itself the coroutine that receives. A plain
    iterator rather than an async generator: leaving the loop early (``break``) must not leave
    an unfinished generator for trio to finalise.

    Args:
        websocket: The connection.
        key: ``"text"`` or ``"bytes"``: which frames are wanted (the other kind is a 1003).
        decode: Applied to each payload (JSON parsing), or ``None``.
        iterating: End with ``StopAsyncIteration`` once the connection has ended, rather than
            ``WebSocketDisconnect``.
    """

    __slots__ = ("_decode", "_iterating", "_key", "_websocket")

    def __init__(
        self,
        websocket: WebSocket,
        key: str,
        decode: Callable[[Any], Any] | None,
        iterating: bool,
    ) -> None:
        self._websocket = websocket
        self._key = key
        self._decode = decode
        self._iterating = iterating

    def __aiter__(self) -> Messages:
        return self

    async def __anext__(self) -> Any:
        websocket = self._websocket
        if websocket._conn_state is not WebSocketState.CONNECTED:
            await websocket._check_receivable(self._iterating, raw=False)
        message = await websocket._inbox.get()
        payload = message.get(self._key)
        if payload is None or message["type"] != "websocket.receive":
            self._not_a_payload(message)
        return payload if self._decode is None else self._decode(payload)

    def _not_a_payload(self, message: Message) -> None:
        """Raise what a message without the wanted payload means (off the hot path)."""
        kind = message["type"]
        if kind == "websocket.disconnect":
            if self._iterating:
                raise StopAsyncIteration
            raise self._websocket._disconnect()
        if kind != "websocket.receive":
            raise RuntimeError(f"expected ASGI 'websocket.receive', got {kind!r}")
        if self._key == "text":
            raise UnexpectedFrame("text", "binary")
        raise UnexpectedFrame("binary", "text")


def parse_json(payload: str | bytes) -> Any:
    try:
        return pydantic_core.from_json(payload)
    except ValueError as exc:
        raise InvalidJSON(str(exc)) from None
