"""A live server for tests: the app on real hypercorn, in the test's own trio loop.

``async with serve(app) as server:`` binds hypercorn's trio worker to an OS-chosen port on
127.0.0.1 and shuts it down gracefully (bounded in time) at the end of the block;
``server = await nursery.start(serve_in, app)`` does the same for as long as the nursery (or the
cancel scope around it) runs. ``server.websocket_connect(path)`` opens a real connection with
trio-websocket and gives it the methods of the in-process
:class:`~triows.testing.AsyncWebSocketTestSession`, so one test body can run over either. For
HTTP, use ``httpx.AsyncClient(base_url=server.url)``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, cast
from urllib.parse import urlsplit

import trio
import trio_websocket
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve

from .._types import ASGIApp, Message
from ..errors import CloseCode, WebSocketDisconnect
from ._base import SessionBase
from ._errors import ReceiveTimeout, WebSocketDenied, collapse_single
from ._session import HeaderInput, encode_headers

__all__ = ["LiveServer", "LiveWebSocketSession", "serve", "serve_in"]

#: Default seconds a receive or the handshake may take (as for the in-process clients).
DEFAULT_TIMEOUT = 5.0
#: Default seconds hypercorn may take to start, and again to stop once asked to.
SERVER_TIMEOUT = 10.0
#: Default seconds hypercorn lets open connections run after shutdown starts (then cancels them).
GRACEFUL_TIMEOUT = 1.0

#: Headers of the 101 answer that hypercorn adds itself (``extra_headers`` leaves them out).
_SERVER_ADDED = (b"date", b"server")


class LiveWebSocketSession(SessionBase):
    """One real websocket connection to a :class:`LiveServer`, seen from the client.

    Made by :meth:`LiveServer.websocket_connect`. It has the methods of the in-process
    :class:`~triows.testing.AsyncWebSocketTestSession`, with the same exceptions: the server's
    close raises :class:`~triows.WebSocketDisconnect` (after every frame sent before it), a
    receive with nothing in time raises :class:`ReceiveTimeout`, and a text receive that gets
    bytes (or the reverse) raises :class:`UnexpectedMessage`. What the app raises stays in the
    server (hypercorn logs it); the client sees the close it leads to.
    """

    def __init__(
        self,
        connection: trio_websocket.WebSocketConnection,
        stream: trio.SocketStream,
        timeout: float,
    ) -> None:
        self.timeout = timeout
        #: The subprotocol the app accepted, if any.
        self.accepted_subprotocol: str | None = connection.subprotocol
        #: Every header of the server's 101 answer except the handshake's own (``upgrade``,
        #: ``connection``, ``sec-websocket-*``), as ``(name, value)`` bytes.
        self.response_headers: list[tuple[bytes, bytes]] = [
            (bytes(k), bytes(v)) for k, v in connection.handshake_headers
        ]
        #: Extra headers the app sent with ``accept()``: ``response_headers`` without the
        #: ``date`` and ``server`` headers hypercorn adds to every answer.
        self.extra_headers: list[tuple[bytes, bytes]] = [
            (k, v) for k, v in self.response_headers if k not in _SERVER_ADDED
        ]
        self._connection = connection
        self._stream = stream
        self._closed: WebSocketDisconnect | None = None

    @property
    def connection(self) -> trio_websocket.WebSocketConnection:
        """The underlying trio-websocket connection (for ``ping()`` and the like)."""
        return self._connection

    # -- receiving ---------------------------------------------------------------------------

    async def receive(self, timeout: float | None = None) -> Message:
        """The server's next message, as ``{"type": "websocket.send", "text" | "bytes": ...}``.

        Raises:
            WebSocketDisconnect: The server closed the connection (with its code and reason).
            ReceiveTimeout: Nothing came within the timeout.
        """
        self._check_open()
        limit = self.timeout if timeout is None else timeout
        with trio.move_on_after(limit):
            try:
                data = await self._connection.get_message()
            except trio_websocket.ConnectionClosed as exc:
                raise self._record_close(exc.reason) from None
            return _as_message(data)
        raise ReceiveTimeout(f"no message from the server within {limit}s")

    async def assert_no_message(self, within: float = 0.1) -> None:
        """Fail if the server sends anything (or closes) within ``within`` seconds."""
        if self._closed is not None:
            raise AssertionError(f"the connection is closed: {self._closed!r}")
        with trio.move_on_after(within):
            try:
                data = await self._connection.get_message()
            except trio_websocket.ConnectionClosed as exc:
                closed = self._record_close(exc.reason)
                message: Message = {
                    "type": "websocket.close",
                    "code": closed.code,
                    "reason": closed.reason,
                }
            else:
                message = _as_message(data)
            raise AssertionError(f"expected no message, got {message!r}")

    # -- sending -----------------------------------------------------------------------------

    async def send(self, message: Message) -> None:
        """Send a raw ASGI ``websocket.receive`` message (or ``websocket.disconnect``)."""
        if message["type"] == "websocket.disconnect":
            await self.close(message.get("code", CloseCode.NORMAL), message.get("reason"))
            return
        if message["type"] != "websocket.receive":
            raise ValueError(f"a client cannot send {message['type']!r}")
        text = message.get("text")
        await self._send(text if text is not None else message["bytes"])

    async def send_text(self, data: str) -> None:
        """Send a text frame."""
        await self._send(data)

    async def send_bytes(self, data: bytes) -> None:
        """Send a binary frame."""
        await self._send(bytes(data))

    async def _send(self, data: str | bytes) -> None:
        """Send a frame.

        Raises:
            WebSocketDisconnect: The connection is closed. Frames the server sent before its
                close can still be received.
        """
        self._check_open()
        try:
            await self._connection.send_message(data)
        except trio_websocket.ConnectionClosed as exc:
            raise _disconnect(exc.reason) from None

    # -- ending ------------------------------------------------------------------------------

    async def close(self, code: int = CloseCode.NORMAL, reason: str | None = None) -> None:
        """Close from the client's side: send a close frame and wait (bounded) for the answer."""
        if self._closed is not None:
            return
        self._closed = WebSocketDisconnect(code, reason or "")
        try:
            with trio.move_on_after(self.timeout):
                await self._connection.aclose(code, reason)
        finally:
            await self._stream.aclose()

    async def abort(self) -> None:
        """Drop the TCP connection without a close handshake, as a vanished client would.

        The app sees ``websocket.disconnect`` with 1006 (``CloseCode.ABNORMAL``).
        """
        if self._closed is None:
            self._closed = WebSocketDisconnect(CloseCode.ABNORMAL, "")
        await self._stream.aclose()

    def _record_close(self, reason: trio_websocket.CloseReason | None) -> WebSocketDisconnect:
        self._closed = _disconnect(reason)
        return self._closed

    def _check_open(self) -> None:
        if self._closed is not None:
            raise self._closed

    async def _finish(self) -> None:
        """Close normally if still open (bounded), and close the TCP stream in any case."""
        try:
            if self._closed is None:
                await self.close()
        finally:
            # trio-websocket 0.12 leaves its socket open after a close the server started; closing
            # the stream also ends the reader task if the server has not.
            await self._stream.aclose()


def _as_message(data: str | bytes) -> Message:
    if isinstance(data, str):
        return {"type": "websocket.send", "text": data}
    return {"type": "websocket.send", "bytes": data}


def _disconnect(reason: trio_websocket.CloseReason | None) -> WebSocketDisconnect:
    if reason is None:  # pragma: no cover - trio-websocket always records one
        return WebSocketDisconnect(CloseCode.ABNORMAL, "")
    return WebSocketDisconnect(int(reason.code), reason.reason or "")


class LiveServer:
    """Where a live server listens, and a client for its websockets.

    Args:
        url: ``http://HOST:PORT``.
        timeout: Default seconds for a websocket handshake or receive.
    """

    def __init__(self, url: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname or parts.port is None:
            raise ValueError(f"expected http://HOST:PORT, got {url!r}")
        #: ``http://HOST:PORT``: the base URL for an HTTP client.
        self.url = f"http://{parts.netloc}"
        #: The host the server listens on (``127.0.0.1``).
        self.host: str = parts.hostname
        #: The port the OS chose.
        self.port: int = parts.port
        self.timeout = timeout

    @property
    def ws_url(self) -> str:
        """``ws://HOST:PORT``: the base URL for a websocket client."""
        return "ws" + self.url.removeprefix("http")

    def __repr__(self) -> str:
        return f"LiveServer({self.url!r})"

    def __str__(self) -> str:
        """The base URL, as pytest-django's ``live_server`` converts (``f"{live_server}/x"``)."""
        return self.url

    @asynccontextmanager
    async def websocket_connect(
        self,
        path: str,
        subprotocols: Sequence[str] | None = None,
        headers: HeaderInput = None,
        *,
        timeout: float | None = None,
    ) -> AsyncIterator[LiveWebSocketSession]:
        """Open a real websocket to ``path`` (query string included) with trio-websocket.

        At the end of the block the connection is closed with 1000 if still open (waiting at
        most ``timeout`` seconds for the server's answer), and its socket is closed in any case.

        Raises:
            WebSocketDenied: The server refused the handshake (with its real HTTP status).
            ReceiveTimeout: The server did not answer the handshake within ``timeout`` seconds.
            OSError: Nothing listens on the server's port.
        """
        limit = self.timeout if timeout is None else timeout
        netloc = self.url.removeprefix("http://")
        stream = await trio.open_tcp_stream(self.host, self.port)
        try:
            with collapse_single():
                async with trio.open_nursery() as nursery:
                    with trio.move_on_after(limit) as waiting:
                        connection = await trio_websocket.wrap_client_stream(
                            nursery,
                            stream,
                            netloc,
                            path,
                            subprotocols=subprotocols,
                            extra_headers=encode_headers(headers),
                        )
                    if waiting.cancelled_caught:
                        raise ReceiveTimeout(
                            f"no handshake answer from {self.ws_url}{path} within {limit}s"
                        )
                    session = LiveWebSocketSession(connection, stream, limit)
                    try:
                        yield session
                    finally:
                        await session._finish()
        except trio_websocket.ConnectionRejected as exc:
            raise WebSocketDenied(exc.status_code, exc.headers, exc.body or b"") from None
        finally:
            await stream.aclose()


class _ShieldWhenStarted:
    """Forwards hypercorn's ``started()``, then shields hypercorn from outside cancellation.

    Cancelling :func:`serve_in` then starts a graceful shutdown instead of killing hypercorn
    mid-flight; the shutdown itself is bounded by ``server_timeout``.
    """

    def __init__(self, scope: trio.CancelScope, task_status: trio.TaskStatus[list[str]]) -> None:
        self._scope = scope
        self._task_status = task_status

    def started(self, value: list[str]) -> None:
        self._task_status.started(value)
        self._scope.shield = True


async def serve_in(
    app: ASGIApp,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    timeout: float = DEFAULT_TIMEOUT,
    graceful_timeout: float = GRACEFUL_TIMEOUT,
    server_timeout: float = SERVER_TIMEOUT,
    task_status: trio.TaskStatus[LiveServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run ``app`` on hypercorn (trio worker) until cancelled, as ``nursery.start(serve_in, app)``.

    ``task_status.started(server)`` is called once hypercorn listens (and the app's lifespan has
    started); the :class:`LiveServer` says where. Cancelling the task (its nursery or a scope
    around it) shuts hypercorn down gracefully: it stops accepting, lets open connections run for
    ``graceful_timeout`` seconds and then cancels them (a triows handler then closes with 1001),
    and runs the app's lifespan shutdown.

    Args:
        app: The ASGI app (a :class:`~triows.App`).
        host: The address to listen on.
        port: The port; 0 lets the OS choose a free one.
        timeout: The server's default seconds for a websocket handshake or receive.
        graceful_timeout: Seconds open connections get once shutdown starts.
        server_timeout: Seconds hypercorn may take to start, and again to stop.
        task_status: Given by ``nursery.start``.

    Raises:
        TimeoutError: hypercorn did not start, or stop, within ``server_timeout`` seconds.
    """
    config = Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.graceful_timeout = graceful_timeout
    shutdown = trio.Event()
    stopped = trio.Event()
    hypercorn_scope = trio.CancelScope()

    async def run(task_status: trio.TaskStatus[list[str]]) -> None:
        try:
            with hypercorn_scope:
                await hypercorn_serve(
                    cast(Any, app),
                    config,
                    shutdown_trigger=shutdown.wait,
                    task_status=cast(Any, _ShieldWhenStarted(hypercorn_scope, task_status)),
                )
        finally:
            stopped.set()

    with collapse_single():
        async with trio.open_nursery() as nursery:
            with trio.move_on_after(server_timeout) as starting:
                binds: list[str] = await nursery.start(run)
            if starting.cancelled_caught:
                raise TimeoutError(f"hypercorn did not start within {server_timeout}s")
            try:
                task_status.started(LiveServer(binds[0], timeout=timeout))
                await trio.sleep_forever()
            finally:
                shutdown.set()
                with trio.CancelScope(shield=True):
                    with trio.move_on_after(server_timeout):
                        await stopped.wait()
                    if not stopped.is_set():
                        hypercorn_scope.cancel()
                        raise TimeoutError(f"hypercorn did not shut down within {server_timeout}s")


@asynccontextmanager
async def serve(
    app: ASGIApp,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    timeout: float = DEFAULT_TIMEOUT,
    graceful_timeout: float = GRACEFUL_TIMEOUT,
    server_timeout: float = SERVER_TIMEOUT,
) -> AsyncIterator[LiveServer]:
    """Run ``app`` on hypercorn (trio worker) for the block; shut it down gracefully after.

    ``async with serve(app) as server:`` listens on ``server.url`` (``http://127.0.0.1:PORT``,
    the port chosen by the OS) in the current trio loop. Arguments as for :func:`serve_in`.

    Raises:
        TimeoutError: hypercorn did not start, or stop, within ``server_timeout`` seconds.
    """
    with collapse_single():
        async with trio.open_nursery() as nursery:
            server: LiveServer = await nursery.start(
                partial(
                    serve_in,
                    app,
                    host=host,
                    port=port,
                    timeout=timeout,
                    graceful_timeout=graceful_timeout,
                    server_timeout=server_timeout,
                )
            )
            try:
                yield server
            finally:
                nursery.cancel_scope.cancel()
