"""An in-process websocket client that talks ASGI messages straight to the app.

It behaves like the real server triows is served by (hypercorn) where a test can see the
difference: closing before accept is an HTTP 403, an app that ends without closing is a 1011
close (or an HTTP 500 during the handshake), and the client's close code reaches the app.
Exceptions the app itself raises are re-raised in the test rather than hidden behind a close;
so are the failures of its handlers and hooks (that triows answers with 1011 or 500), unless
the client was made with ``raise_server_exceptions=False``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from urllib.parse import unquote

import httpx
import trio

from .._inbox import Inbox
from .._logging import SERVER_ERRORS
from .._types import ASGIApp, Message, Scope
from ..errors import CloseCode, WebSocketDisconnect
from ._base import SessionBase
from ._errors import ReceiveTimeout, UnexpectedMessage, WebSocketDenied, collapse_single

__all__ = ["AsyncWebSocketTestSession", "connect_websocket", "encode_headers", "websocket_scope"]

#: Request headers a test passes: a mapping, or ``(name, value)`` pairs of ``str`` or ``bytes``.
HeaderInput = Mapping[str, str] | Sequence[tuple[str, str]] | Sequence[tuple[bytes, bytes]] | None


def encode_headers(headers: HeaderInput) -> list[tuple[bytes, bytes]]:
    """``headers`` as ASGI's lower-case ``(name, value)`` bytes pairs."""
    items = headers.items() if isinstance(headers, Mapping) else (headers or ())
    return [(_latin1(k).lower(), _latin1(v)) for k, v in items]


def _latin1(text: str | bytes) -> bytes:
    return text if isinstance(text, bytes) else text.encode("latin-1")


def websocket_scope(
    base_url: str,
    path: str,
    *,
    subprotocols: Sequence[str] | None,
    headers: HeaderInput,
    denial_response: bool,
) -> Scope:
    """The ASGI scope a server would build for a websocket handshake to ``path``."""
    url = httpx.URL(base_url).join(path)
    https = url.scheme in ("https", "wss")
    port = url.port or (443 if https else 80)
    host = url.host if url.port is None else f"{url.host}:{url.port}"
    # The headers Starlette's test client sends, so that tests ported from it see the same.
    raw: list[tuple[bytes, bytes]] = [
        (b"host", host.encode()),
        (b"accept", b"*/*"),
        (b"accept-encoding", b"gzip, deflate"),
        (b"connection", b"upgrade"),
        (b"sec-websocket-key", b"testserver=="),
        (b"sec-websocket-version", b"13"),
        (b"user-agent", b"testclient"),
    ]
    if subprotocols:
        raw.append((b"sec-websocket-protocol", ", ".join(subprotocols).encode()))
    extra = encode_headers(headers)
    given = {name for name, _ in extra}
    raw = [(name, value) for name, value in raw if name not in given] + extra
    return {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "scheme": "wss" if https else "ws",
        "server": (url.host, port),
        "client": ("testclient", 50000),
        "root_path": "",
        "path": unquote(url.raw_path.split(b"?")[0].decode("ascii")),
        "raw_path": url.raw_path.split(b"?")[0],
        "query_string": url.query,
        "headers": raw,
        "subprotocols": list(subprotocols or ()),
        "extensions": {"websocket.http.response": {}} if denial_response else {},
        "state": {},
    }


class AsyncWebSocketTestSession(SessionBase):
    """One in-process websocket connection, seen from the client.

    Made by :meth:`AsyncTestClient.websocket_connect`; every ``receive_*`` waits at most
    ``timeout`` seconds (the client's default, or the call's own) and then raises
    :class:`ReceiveTimeout`.
    """

    def __init__(
        self, app: ASGIApp, scope: Scope, timeout: float, raise_server_exceptions: bool = True
    ) -> None:
        self.app = app
        self.scope = scope
        self.timeout = timeout
        if raise_server_exceptions:
            scope["extensions"] = {**scope["extensions"], SERVER_ERRORS: self._server_failed}
        #: The subprotocol the app accepted, if any.
        self.accepted_subprotocol: str | None = None
        #: Extra headers the app sent with ``accept()``, as ``(name, value)`` bytes (Starlette's).
        self.extra_headers: list[tuple[bytes, bytes]] = []
        self._to_app, self._app_inbox = trio.open_memory_channel[Message](math.inf)
        self._app_outbox, self._from_app = trio.open_memory_channel[Message](math.inf)
        self._closed: WebSocketDisconnect | None = None
        #: Where messages for the app go once triows has linked the connection (its inbox).
        self._deliver: Callable[[Message], Awaitable[None]] | None = None
        self._app_finished = trio.Event()
        #: What the app itself raised, if it crashed: every later call raises it, never a close.
        self.app_error: Exception | None = None
        #: The first failure of a handler or hook (``raise_server_exceptions``), and whether the
        #: test has seen it raised (else the end of the session raises it).
        self.server_error: BaseException | None = None
        self._server_error_raised = False

    # -- the app's side --------------------------------------------------------------------

    async def _run_app(self) -> None:
        try:
            await self.app(self.scope, self._app_inbox.receive, self._app_send)
        except Exception as exc:
            self.app_error = exc
            raise
        finally:
            self._app_finished.set()
            self._app_outbox.close()

    async def _app_send(self, message: Message) -> None:
        # A checkpoint, as a real server's send is (it takes the socket's lock and writes).
        await trio.lowlevel.checkpoint_if_cancelled()
        with contextlib.suppress(trio.ClosedResourceError):  # the app sent after returning
            self._app_outbox.send_nowait(message)
        await trio.lowlevel.cancel_shielded_checkpoint()

    async def _tell_app(self, message: Message) -> None:
        if self._app_finished.is_set():
            return
        if self._deliver is not None:
            await self._deliver(message)
        else:
            self._to_app.send_nowait(message)

    def _server_failed(self, exc: BaseException) -> None:
        if self.server_error is None:
            self.server_error = exc

    def __triows_link__(self) -> _SessionLink:
        """Let a triows connection take this session's messages directly (``triows._links``)."""
        return _SessionLink(self)

    # -- handshake and end -----------------------------------------------------------------

    async def _handshake(self) -> None:
        await self._tell_app({"type": "websocket.connect"})
        message = await self._next(self.timeout, "the handshake answer")
        if message is None:
            self._check_crashed()  # the app's own error, as itself, not beside a 500
            raise WebSocketDenied(500, [], b"")  # hypercorn's answer to an app that said nothing
        kind = message["type"]
        if kind == "websocket.accept":
            self.accepted_subprotocol = message.get("subprotocol")
            self.extra_headers = [(bytes(k), bytes(v)) for k, v in message.get("headers") or ()]
            return
        self._check_crashed()  # a handler or guard failed: its exception, not a 500
        if kind == "websocket.close":
            raise WebSocketDenied(403, [], b"")
        if kind == "websocket.http.response.start":
            headers = [(bytes(k), bytes(v)) for k, v in message["headers"]]
            body = b""
            while True:
                part = await self._next(self.timeout, "the denial response body")
                if part is None or part["type"] != "websocket.http.response.body":
                    raise UnexpectedMessage(f"incomplete denial response: got {part!r}")
                body += part.get("body", b"")
                if not part.get("more_body", False):
                    break
            raise WebSocketDenied(message["status"], headers, body)
        raise UnexpectedMessage(f"the app answered the handshake with {kind!r}")

    async def _finish(self, timeout: float) -> bool:
        """Disconnect if still connected, then wait for the app; False if it did not end."""
        if self._closed is None:
            self._closed = WebSocketDisconnect(CloseCode.NORMAL, "")
            await self._tell_app({"type": "websocket.disconnect", "code": CloseCode.NORMAL})
        with trio.move_on_after(timeout):
            await self._app_finished.wait()
        return self._app_finished.is_set()

    async def _next(self, timeout: float, what: str) -> Message | None:
        """The app's next message; ``None`` once the app has returned."""
        with trio.move_on_after(timeout):
            try:
                return await self._from_app.receive()
            except trio.EndOfChannel:
                return None
        raise ReceiveTimeout(f"no message from the app within {timeout}s (waiting for {what})")

    # -- the test's side -------------------------------------------------------------------

    async def receive(self, timeout: float | None = None) -> Message:
        """The app's next ``websocket.send`` message.

        Raises:
            WebSocketDisconnect: The app closed the connection (with its code and reason).
            ReceiveTimeout: Nothing came within the timeout.
        """
        self._check_open()
        message = await self._next(self.timeout if timeout is None else timeout, "a message")
        if message is None:
            self._check_crashed()
            # The app returned without closing: hypercorn closes with 1011.
            self._closed = WebSocketDisconnect(CloseCode.INTERNAL_ERROR, "")
            raise self._closed
        if message["type"] == "websocket.close":
            closed = await self._record_close(message)
            self._check_crashed()  # reported before triows sent the close that answers it
            raise closed
        if message["type"] != "websocket.send":
            raise UnexpectedMessage(f"after accept the app sent {message['type']!r}")
        return message

    async def _record_close(self, message: Message) -> WebSocketDisconnect:
        """The app closed: remember how, and acknowledge it as a client would."""
        code, reason = message.get("code", CloseCode.NORMAL), message.get("reason") or ""
        self._closed = WebSocketDisconnect(code, reason)
        await self._tell_app({"type": "websocket.disconnect", "code": code, "reason": reason})
        return self._closed

    async def assert_no_message(self, within: float = 0.1) -> None:
        """Fail if the app sends anything (or closes) within ``within`` seconds."""
        self._check_crashed()
        if self._closed is not None:
            raise AssertionError(f"the connection is closed: {self._closed!r}")
        with trio.move_on_after(within):
            try:
                message = await self._from_app.receive()
            except trio.EndOfChannel:
                self._check_crashed()
                self._closed = WebSocketDisconnect(CloseCode.INTERNAL_ERROR, "")
                raise AssertionError("the app ended the connection") from None
            if message["type"] == "websocket.close":
                await self._record_close(message)
                self._check_crashed()
            raise AssertionError(f"expected no message, got {message!r}")

    def _check_crashed(self) -> None:
        if self.app_error is not None:
            raise self.app_error
        if self.server_error is not None:
            self._server_error_raised = True
            raise self.server_error

    def _unraised_server_error(self) -> BaseException | None:
        """A handler's or hook's failure the test has not seen yet (raised as the block ends)."""
        return None if self._server_error_raised else self.server_error

    def _check_open(self) -> None:
        self._check_crashed()
        if self._closed is not None:
            raise self._closed

    async def send(self, message: Message) -> None:
        """Send a raw ASGI ``websocket.receive`` message to the app."""
        self._check_open()
        await self._tell_app(message)
        await trio.lowlevel.checkpoint()

    async def send_text(self, data: str) -> None:
        """Send a text frame."""
        await self.send({"type": "websocket.receive", "text": data})

    async def send_bytes(self, data: bytes) -> None:
        """Send a binary frame."""
        await self.send({"type": "websocket.receive", "bytes": data})

    async def close(self, code: int = CloseCode.NORMAL, reason: str | None = None) -> None:
        """Close from the client's side; the app receives ``websocket.disconnect`` with ``code``."""
        if self._closed is not None:
            return
        self._closed = WebSocketDisconnect(code, reason or "")
        await self._tell_app({"type": "websocket.disconnect", "code": code, "reason": reason or ""})
        await trio.lowlevel.checkpoint()


class _SessionLink:
    """How a triows connection hooks into an in-process session (see ``triows._links``).

    The session then hands the app's messages straight to the connection's inbox (with the
    inbox's backpressure, as a real server's reader has), and the app's abort of a connection
    reaches the client as a connection lost (1006).
    """

    close_frame = None
    #: The session sends what it is given; the connection checks the size itself.
    limits_size = False
    #: The in-process client has no ping frames.
    pings = False

    def __init__(self, session: AsyncWebSocketTestSession) -> None:
        self._session = session

    def first_message(self) -> Message:
        return self._session._app_inbox.receive_nowait()

    def install(
        self,
        inbox: Inbox,
        max_message_size: int,
        on_too_big: Callable[[], None],
        compression: str | None,
    ) -> None:
        self._session._deliver = inbox.put

    def write_now(self, text: str) -> bytes | None:
        return None  # the session takes each frame as the app sends it

    async def send_raw(self, data: bytes) -> None:  # pragma: no cover - write_now gives none
        raise AssertionError("the in-process session never has frame bytes to write")

    def unsent(self) -> int | None:
        return None

    async def send_many(self, messages: Sequence[Message]) -> bool:
        await trio.lowlevel.checkpoint()
        return False  # one by one, as the app sends them

    async def ping(self) -> None:
        await trio.lowlevel.checkpoint()  # the in-process client has no ping frames

    def server_stopping(self) -> None:
        return None  # the test client stops with its app; app.drain() begins a drain

    def sync(self, inbox: Inbox) -> None:
        pass  # the session always delivers its end

    def detach(self) -> None:
        self._session._deliver = None

    async def abort(self) -> None:
        session = self._session
        with contextlib.suppress(trio.ClosedResourceError):
            session._app_outbox.send_nowait(
                {"type": "websocket.close", "code": CloseCode.ABNORMAL, "reason": ""}
            )
        await trio.lowlevel.checkpoint()


@asynccontextmanager
async def connect_websocket(
    app: ASGIApp, scope: Scope, timeout: float, raise_server_exceptions: bool = True
) -> AsyncIterator[AsyncWebSocketTestSession]:
    """Open a session: run the app in a nursery, shake hands, and clean up at the end.

    Raises:
        WebSocketDenied: The app refused the handshake.
        RuntimeError: The app was still running ``timeout`` seconds after the client left.
        Exception: With ``raise_server_exceptions``, what a handler or hook raised.
    """
    session = AsyncWebSocketTestSession(app, scope, timeout, raise_server_exceptions)
    with collapse_single():
        async with _run_session(session, timeout) as running:
            yield running


@asynccontextmanager
async def _run_session(
    session: AsyncWebSocketTestSession, timeout: float
) -> AsyncIterator[AsyncWebSocketTestSession]:
    scope = session.scope
    async with trio.open_nursery() as nursery:
        nursery.start_soon(session._run_app)
        failed = True
        try:
            await session._handshake()
            yield session
            failed = False
        finally:
            with trio.CancelScope(shield=failed):
                finished = await session._finish(timeout)
            if not finished:
                nursery.cancel_scope.cancel()
        if not finished:
            raise RuntimeError(
                f"the app was still running {timeout}s after the client disconnected from "
                f"{scope['path']!r}: does the handler ignore WebSocketDisconnect?"
            )
        unseen = session._unraised_server_error()
        if unseen is not None:
            session._server_error_raised = True
            raise unseen
