"""The server side of one websocket connection.

How it works: :class:`WebSocket` wraps the ASGI ``receive``/``send`` pair and keeps one
:class:`WebSocketState`. The app opens a nursery per connection and hands it over as
:attr:`WebSocket.nursery`; when the handler returns, that nursery is cancelled and the socket is
closed, so nothing the connection started outlives it.

Errors follow trio's split:

* calling a method in a state that forbids it is a programming error:
  :class:`~triows.WebSocketStateError`, naming the expected and the actual state;
* the peer having left is not: :class:`~triows.WebSocketDisconnect` with its close code;
* a client sending the wrong kind of frame, or malformed JSON, raises a
  :class:`~triows.WebSocketException` (1003, 1007) that closes the connection with that code and
  a reason if the handler lets it through;
* two tasks receiving at once raise :class:`trio.BusyResourceError`. One reader and any number
  of writers may work concurrently.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any, Literal

import pydantic_core
import trio

from ._types import Message, Receive, Scope, Send
from .errors import CloseCode, WebSocketDisconnect, WebSocketException, WebSocketStateError
from .requests import HTTPConnection

__all__ = ["WebSocket", "WebSocketState"]

Mode = Literal["text", "binary"]

#: The close reason is limited to 123 bytes of UTF-8 on the wire (RFC 6455 section 5.5).
MAX_REASON_BYTES = 123


class WebSocketState(enum.Enum):
    """Where a connection stands, from the application's side."""

    #: The handshake arrived and has not been answered yet.
    CONNECTING = "connecting"
    #: ``accept()`` was sent: messages may flow both ways.
    CONNECTED = "connected"
    #: The application closed it (after accept, or before: the client then gets HTTP 403).
    CLOSED = "closed"
    #: The application refused the handshake with an HTTP response.
    DENIED = "denied"
    #: The peer closed it or went away.
    DISCONNECTED = "disconnected"


#: The ASGI message key of each JSON ``mode``.
_KEYS = {"text": "text", "binary": "bytes"}

_ENDED = frozenset({WebSocketState.CLOSED, WebSocketState.DENIED, WebSocketState.DISCONNECTED})


def truncate_reason(reason: str) -> str:
    """Cut ``reason`` to what fits in a close frame, without splitting a character."""
    encoded = reason.encode("utf-8")
    if len(encoded) <= MAX_REASON_BYTES:
        return reason
    return encoded[:MAX_REASON_BYTES].decode("utf-8", errors="ignore")


class UnexpectedFrame(WebSocketException):
    """The client sent a text frame where binary was expected, or the reverse (close 1003)."""

    def __init__(self, expected: str, got: str) -> None:
        super().__init__(CloseCode.UNSUPPORTED_DATA, f"expected a {expected} frame, got {got}")


class InvalidJSON(WebSocketException):
    """The client sent a frame that is not valid JSON where JSON was expected (close 1007)."""

    def __init__(self, detail: str) -> None:
        super().__init__(CloseCode.INVALID_PAYLOAD, truncate_reason(f"invalid JSON: {detail}"))


class _Messages(AsyncIterator[Any]):
    """The one receive path for data messages: ``receive_text/bytes/json`` and ``iter_*``.

    Every frame a connection receives goes through :meth:`__anext__`, so it is kept flat: as
    an ``async for`` iterator, ``__anext__`` is itself the coroutine that receives, with no
    frame of its own above it. A plain iterator rather than an async generator: leaving the
    loop early (``break``) must not leave an unfinished generator for trio to finalise.

    Args:
        websocket: The connection.
        key: ``"text"`` or ``"bytes"``: which frames are wanted (the other kind is a 1003).
        decode: Applied to each payload (JSON parsing), or ``None``.
        iterating: End with ``StopAsyncIteration`` when the peer has left, rather than
            ``WebSocketDisconnect``.
    """

    __slots__ = ("_decode", "_end", "_key", "_websocket")

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
        self._end = StopAsyncIteration if iterating else None

    def __aiter__(self) -> _Messages:
        return self

    async def __anext__(self) -> Any:
        websocket = self._websocket
        if websocket.connection_state is not WebSocketState.CONNECTED:
            state = websocket.connection_state
            if self._end is not None and (
                state is WebSocketState.DISCONNECTED or state is WebSocketState.CLOSED
            ):
                raise self._end
            websocket._check_receivable()
        if websocket._receiving:
            raise trio.BusyResourceError("another task is already receiving on this websocket")
        websocket._receiving = True
        try:
            message = await websocket._receive()
        finally:
            websocket._receiving = False
        payload = message.get(self._key)
        if payload is None or message["type"] != "websocket.receive":
            self._not_a_payload(message)
        return payload if self._decode is None else self._decode(payload)

    def _not_a_payload(self, message: Message) -> None:
        """Raise what a message without the wanted payload means (off the hot path)."""
        kind = message["type"]
        websocket = self._websocket
        if kind == "websocket.disconnect":
            websocket._peer_left(message)
            if self._end is not None:
                raise self._end
            raise WebSocketDisconnect(
                websocket.close_code or CloseCode.NO_STATUS, websocket.close_reason
            )
        if kind != "websocket.receive":
            raise RuntimeError(f"expected ASGI 'websocket.receive', got {kind!r}")
        if self._key == "text":
            raise UnexpectedFrame("text", "binary")
        raise UnexpectedFrame("binary", "text")


def _parse_json(payload: str | bytes) -> Any:
    try:
        return pydantic_core.from_json(payload)
    except ValueError as exc:
        raise InvalidJSON(str(exc)) from None


def _encode_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> list[list[bytes]]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [[k.lower().encode("latin-1"), v.encode("latin-1")] for k, v in items]


class WebSocket(HTTPConnection):
    """A websocket connection, as a handler sees it.

    The surface is Starlette's (``accept``, ``send_text``, ``receive_json``, ``iter_text`` …),
    with trio underneath and a nursery of its own.

    Args:
        scope: The ASGI ``websocket`` scope.
        receive: The ASGI receive callable.
        send: The ASGI send callable.
    """

    __slots__ = (
        "_accepted",
        "_connect_pending",
        "_guarding",
        "_nursery",
        "_receive",
        "_receiving",
        "_send",
        "accepted_subprotocol",
        "close_code",
        "close_reason",
        "connection_state",
    )

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        super().__init__(scope)
        self._receive = receive
        self._send = send
        self._connect_pending = True
        self._receiving = False
        self._guarding = False
        self._accepted = False
        self._nursery: trio.Nursery | None = None
        #: The connection's state; see :class:`WebSocketState`.
        self.connection_state = WebSocketState.CONNECTING
        #: The subprotocol chosen by ``accept()``, if any.
        self.accepted_subprotocol: str | None = None
        #: The code the connection ended with (sent or received), once it has ended.
        self.close_code: int | None = None
        #: The close reason that went with :attr:`close_code`.
        self.close_reason: str = ""

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def nursery(self) -> trio.Nursery:
        """The connection's own nursery.

        Tasks started here are cancelled when the connection ends (the handler returned, the
        peer left, or an error closed it); they never outlive it. An exception in one of them
        cancels the handler and closes the connection like an exception in the handler itself.
        """
        if self._nursery is None:
            raise WebSocketStateError(
                "websocket.nursery exists only while the App runs this connection's handler"
            )
        return self._nursery

    @property
    def subprotocols(self) -> list[str]:
        """The subprotocols the client offered, in its order of preference."""
        offered: list[str] = self.scope.get("subprotocols", [])
        return offered

    async def accept(
        self,
        subprotocol: str | None = None,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    ) -> None:
        """Complete the handshake.

        Args:
            subprotocol: One of :attr:`subprotocols` to agree on.
            headers: Extra headers for the handshake response.

        Raises:
            WebSocketStateError: The connection is not ``CONNECTING`` (accepted twice, closed…).
            ValueError: ``subprotocol`` was not offered by the client.
            WebSocketDisconnect: The client left during the handshake.
        """
        if self.connection_state is not WebSocketState.CONNECTING:
            raise self._state_error("accept()", WebSocketState.CONNECTING)
        if self._guarding:
            raise WebSocketStateError(
                "a guard cannot accept the connection: return True and let the handler accept"
            )
        if subprotocol is not None and subprotocol not in self.subprotocols:
            raise ValueError(
                f"accept(subprotocol={subprotocol!r}): the client offered {self.subprotocols}"
            )
        if self._connect_pending:
            connect = await self._receive()
            self._connect_pending = False
            if connect["type"] != "websocket.connect":
                self._not_a_connect(connect)
        message: Message = {"type": "websocket.accept", "subprotocol": subprotocol}
        if headers:
            message["headers"] = _encode_headers(headers)
        self.connection_state = WebSocketState.CONNECTED
        self._accepted = True
        self.accepted_subprotocol = subprotocol
        await self._send(message)

    async def close(self, code: int = CloseCode.NORMAL, reason: str | None = None) -> None:
        """Close the connection; a no-op once it has ended.

        Before ``accept()`` the client gets an HTTP 403 instead of a close frame.

        Args:
            code: The close code (1000, or 3000-4999 for applications).
            reason: A short reason; cut to 123 bytes of UTF-8 if longer.
        """
        state = self.connection_state
        if state in _ENDED:
            return
        reason = truncate_reason(reason or "")
        self.connection_state = WebSocketState.CLOSED
        self.close_code = int(code)
        self.close_reason = reason
        await self._send({"type": "websocket.close", "code": code, "reason": reason})

    async def deny(
        self,
        status_code: int = 403,
        body: bytes = b"",
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    ) -> None:
        """Refuse the handshake with an HTTP response.

        Uses the ASGI ``websocket.http.response`` extension; where the server lacks it, the
        connection is closed before accept, which servers answer with HTTP 403.

        Args:
            status_code: The HTTP status.
            body: The response body.
            headers: Response headers (``content-length`` is added).

        Raises:
            WebSocketStateError: The handshake was already answered.
        """
        if self.connection_state is not WebSocketState.CONNECTING:
            raise self._state_error("deny()", WebSocketState.CONNECTING)
        extensions = self.scope.get("extensions") or {}
        if "websocket.http.response" not in extensions:
            await self.close()
            return
        raw = _encode_headers(headers or ())
        raw.append([b"content-length", str(len(body)).encode()])
        self.connection_state = WebSocketState.DENIED
        await self._send(
            {"type": "websocket.http.response.start", "status": status_code, "headers": raw}
        )
        await self._send({"type": "websocket.http.response.body", "body": body})

    # -- receiving -------------------------------------------------------------------------

    async def receive(self) -> Message:
        """The next ASGI message: ``websocket.receive``, or ``websocket.disconnect`` once.

        Raises:
            WebSocketStateError: Called before ``accept()``.
            WebSocketDisconnect: The connection had already ended.
            trio.BusyResourceError: Another task is receiving on this connection.
        """
        # The same checks as _Messages.__anext__, written out in both: each is a hot path (this
        # one for the extra-handler loop), and sharing them would cost a frame per message.
        if self.connection_state is not WebSocketState.CONNECTED:
            self._check_receivable()
        if self._receiving:
            raise trio.BusyResourceError("another task is already receiving on this websocket")
        self._receiving = True
        try:
            message = await self._receive()
        finally:
            self._receiving = False
        if message["type"] == "websocket.disconnect":
            self._peer_left(message)
        return message

    async def receive_text(self) -> str:
        """The next message, which must be a text frame.

        Raises:
            WebSocketDisconnect: The peer closed the connection.
            WebSocketException: 1003 when a binary frame came instead.
        """
        text: str = await _Messages(self, "text", None, False).__anext__()
        return text

    async def receive_bytes(self) -> bytes:
        """The next message, which must be a binary frame.

        Raises:
            WebSocketDisconnect: The peer closed the connection.
            WebSocketException: 1003 when a text frame came instead.
        """
        data: bytes = await _Messages(self, "bytes", None, False).__anext__()
        return data

    async def receive_json(self, mode: Mode = "text") -> Any:
        """The next message parsed as JSON, from a text frame (or binary, with ``mode``).

        Raises:
            WebSocketDisconnect: The peer closed the connection.
            WebSocketException: 1003 for the wrong frame type, 1007 for malformed JSON.
        """
        return await _Messages(self, _KEYS[mode], _parse_json, False).__anext__()

    def iter_text(self) -> AsyncIterator[str]:
        """Text messages until the peer closes; then the iteration simply ends."""
        return _Messages(self, "text", None, True)

    def iter_bytes(self) -> AsyncIterator[bytes]:
        """Binary messages until the peer closes; then the iteration simply ends."""
        return _Messages(self, "bytes", None, True)

    def iter_json(self, mode: Mode = "text") -> AsyncIterator[Any]:
        """JSON messages until the peer closes; then the iteration simply ends."""
        return _Messages(self, _KEYS[mode], _parse_json, True)

    # -- sending ---------------------------------------------------------------------------

    async def send_text(self, data: str) -> None:
        """Send a text frame.

        Raises:
            WebSocketStateError: Before ``accept()`` or after the app closed the connection.
            WebSocketDisconnect: The peer had already left.
        """
        if self.connection_state is not WebSocketState.CONNECTED:
            self._check_sendable()
        if not isinstance(data, str):
            raise TypeError(f"send_text() takes str, got {type(data).__name__}")
        await self._send({"type": "websocket.send", "text": data})

    async def send_bytes(self, data: bytes) -> None:
        """Send a binary frame.

        Raises:
            WebSocketStateError: Before ``accept()`` or after the app closed the connection.
            WebSocketDisconnect: The peer had already left.
        """
        if self.connection_state is not WebSocketState.CONNECTED:
            self._check_sendable()
        if type(data) is not bytes:  # exact bytes (the usual case) is sent as it is
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise TypeError(f"send_bytes() takes bytes, got {type(data).__name__}")
            data = bytes(data)
        await self._send({"type": "websocket.send", "bytes": data})

    async def send_json(self, data: Any, mode: Mode = "text") -> None:
        """Send ``data`` as compact JSON in a text frame (or binary, with ``mode``).

        Anything pydantic can serialise works: dicts, lists, models, dataclasses, datetimes.
        """
        encoded = pydantic_core.to_json(data)
        if mode == "text":
            await self.send_text(encoded.decode("utf-8"))
        else:
            await self.send_bytes(encoded)

    # -- state checks (off the hot path) ---------------------------------------------------

    def _not_a_connect(self, message: Message) -> None:
        """Raise what the first ASGI message means when it is not ``websocket.connect``."""
        if message["type"] == "websocket.disconnect":
            self._peer_left(message)
            raise WebSocketDisconnect(self.close_code or CloseCode.ABNORMAL, self.close_reason)
        if message["type"] != "websocket.connect":
            raise RuntimeError(f"expected ASGI 'websocket.connect', got {message['type']!r}")

    def _peer_left(self, message: Message) -> None:
        if self.connection_state is not WebSocketState.CLOSED:
            self.close_code = int(message.get("code") or CloseCode.NO_STATUS)
            self.close_reason = message.get("reason") or ""
        self.connection_state = WebSocketState.DISCONNECTED

    def _state_error(self, action: str, expected: WebSocketState) -> WebSocketStateError:
        hint = ""
        if self.connection_state is WebSocketState.CONNECTING:
            hint = "; call 'await websocket.accept()' first"
        return WebSocketStateError(
            f"{action} needs the websocket {expected.name}, but it is "
            f"{self.connection_state.name}{hint}"
        )

    def _check_receivable(self) -> None:
        state = self.connection_state
        if state is WebSocketState.DISCONNECTED or state is WebSocketState.CLOSED:
            raise WebSocketDisconnect(self.close_code or CloseCode.NO_STATUS, self.close_reason)
        if state is not WebSocketState.CONNECTED:
            raise self._state_error("receiving", WebSocketState.CONNECTED)

    def _check_sendable(self) -> None:
        if self.connection_state is WebSocketState.DISCONNECTED:
            raise WebSocketDisconnect(self.close_code or CloseCode.NO_STATUS, self.close_reason)
        raise self._state_error("sending", WebSocketState.CONNECTED)
