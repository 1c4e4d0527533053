"""A websocket client that can misbehave, for fault tests and ``python -m bench.faults``.

wsproto over a trio TCP stream, so a test can do what well-behaved clients never do: flood
without reading, stop reading with a tiny receive buffer, reset the TCP connection, send a text
frame that is not UTF-8, or go silent. Everything it waits for is bounded by ``timeout``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
from collections.abc import Sequence

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.extensions import Extension

__all__ = ["Closed", "RawClient", "Refused"]


class Refused(Exception):
    """The server answered the handshake with an HTTP status instead of 101."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body


class Closed(Exception):
    """The connection ended: the server's close frame (``code``, ``reason``), or 1006."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


class RawClient:
    """One client connection. Open it with :meth:`connect`."""

    def __init__(self, stream: trio.SocketStream, ws: WSConnection, limit: float) -> None:
        self.stream = stream
        self.ws = ws
        #: Default seconds a receive may take.
        self.limit = limit
        self._events: list[Event] = []
        self._parts: list[str | bytes] = []
        self.closed: Closed | None = None
        #: The extensions the server accepted in the handshake.
        self.extensions: list[Extension] = []
        #: Pings received (and answered) so far.
        self.pings = 0

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        path: str,
        headers: Sequence[tuple[str, str]] = (),
        *,
        limit: float = 5.0,
        receive_buffer: int | None = None,
        extensions: Sequence[Extension] = (),
    ) -> RawClient:
        """Open a websocket to ``path``; ``receive_buffer`` shrinks the socket's (stalls).

        ``extensions`` are offered (``PerMessageDeflate()``: as browsers do); those the server
        accepted are in :attr:`extensions` afterwards.

        Raises:
            Refused: The server answered with an HTTP status.
        """
        sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        with trio.fail_after(limit):
            await sock.connect((host, port))
        stream = trio.SocketStream(sock)
        ws = WSConnection(ConnectionType.CLIENT)
        client = cls(stream, ws, limit)
        request = Request(
            host=f"{host}:{port}",
            target=path,
            extra_headers=[(k.encode(), v.encode()) for k, v in headers],
            extensions=list(extensions),
        )
        try:
            await stream.send_all(ws.send(request))
            return await client._handshake(limit)
        except BaseException:
            await stream.aclose()
            raise

    async def _handshake(self, limit: float) -> RawClient:
        stream, ws, client = self.stream, self.ws, self
        status: int | None = None
        body = b""
        with trio.fail_after(limit):
            while True:
                data = await stream.receive_some(65536)
                if not data:
                    raise Refused(status or 0, body)
                ws.receive_data(data)
                accepted = False
                # All of them: frames that came with the 101 (a close right after the accept)
                # are the connection's first events, not lost with the rest of the batch.
                for event in list(ws.events()):
                    if isinstance(event, AcceptConnection):
                        client.extensions = list(event.extensions)
                        accepted = True
                    elif accepted:
                        client._events.append(event)
                    elif isinstance(event, RejectConnection):
                        status = event.status_code
                        if not event.has_body:
                            raise Refused(status, b"")
                    elif isinstance(event, RejectData):
                        body += event.data
                        if event.body_finished:
                            raise Refused(status or 0, body)
                    else:
                        client._events.append(event)
                if accepted:
                    return client

    # -- sending ---------------------------------------------------------------------------

    async def send_text(self, text: str) -> None:
        """Send a text frame."""
        await self.stream.send_all(self.ws.send(TextMessage(data=text)))

    async def send_bytes(self, data: bytes) -> None:
        """Send a binary frame."""
        await self.stream.send_all(self.ws.send(BytesMessage(data=data)))

    async def send_raw_text_frame(self, payload: bytes) -> None:
        """Send a final text frame whose payload is ``payload`` as it is (not UTF-8 checked)."""
        mask = os.urandom(4)
        header = bytearray([0x81])
        length = len(payload)
        if length < 126:
            header.append(0x80 | length)
        elif length < 1 << 16:
            header += bytes([0x80 | 126]) + struct.pack("!H", length)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", length)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        await self.stream.send_all(bytes(header) + mask + masked)

    async def flood(self, count: int, data: bytes) -> int:
        """Send ``count`` binary frames without reading; how many went out before it broke."""
        frame = self.ws.send(BytesMessage(data=data))
        for sent in range(count):
            try:
                await self.stream.send_all(frame)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return sent
        return count

    # -- receiving -------------------------------------------------------------------------

    async def receive(self, within: float | None = None) -> str | bytes:
        """The next data message.

        Raises:
            Closed: The server closed (its code and reason), or the connection was lost (1006).
            trio.TooSlowError: Nothing within the timeout.
        """
        with trio.fail_after(self.limit if within is None else within):
            while True:
                while self._events:
                    event = self._events.pop(0)
                    if isinstance(event, (TextMessage, BytesMessage)):
                        self._parts.append(event.data)
                        if event.message_finished:
                            parts, self._parts = self._parts, []
                            return (
                                "".join(parts)
                                if isinstance(event, TextMessage)
                                else b"".join(parts)
                            )  # type: ignore[arg-type]
                        continue
                    if isinstance(event, CloseConnection):
                        self.closed = Closed(event.code, event.reason or "")
                        if self.ws.state is ConnectionState.REMOTE_CLOSING:  # answer it
                            with contextlib.suppress(
                                trio.BrokenResourceError,
                                trio.BusyResourceError,  # a task of the test is still sending
                                trio.ClosedResourceError,
                            ):
                                await self.stream.send_all(self.ws.send(event.response()))
                        raise self.closed
                    if isinstance(event, Ping):
                        self.pings += 1
                        await self.stream.send_all(self.ws.send(event.response()))
                if self.closed is not None:
                    raise self.closed
                try:
                    data = await self.stream.receive_some(65536)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    data = b""
                if not data:
                    self.closed = Closed(1006)
                    raise self.closed
                self.ws.receive_data(data)
                self._events.extend(self.ws.events())

    async def wait_for_pings(self, count: int, within: float | None = None) -> None:
        """Read (answering pings) until ``count`` pings have come in all.

        Raises:
            Closed: The connection ended first.
            trio.TooSlowError: They did not come within the timeout.
            AssertionError: Something other than a ping came meanwhile.
        """
        with trio.fail_after(self.limit if within is None else within):
            while True:
                while self._events:
                    event = self._events.pop(0)
                    if isinstance(event, Ping):
                        self.pings += 1
                        await self.stream.send_all(self.ws.send(event.response()))
                    elif isinstance(event, CloseConnection):
                        self.closed = Closed(event.code, event.reason or "")
                        raise self.closed
                    else:
                        raise AssertionError(f"expected pings, got {event!r}")
                if self.pings >= count:
                    return
                data = await self.stream.receive_some(65536)
                if not data:
                    self.closed = Closed(1006)
                    raise self.closed
                self.ws.receive_data(data)
                self._events.extend(self.ws.events())

    async def receive_close(self, within: float | None = None) -> Closed:
        """Read (and drop) data until the connection ends; how it ended."""
        try:
            while True:
                await self.receive(within)
        except Closed as closed:
            return closed

    # -- ending ----------------------------------------------------------------------------

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame (the server's answer is left unread)."""
        await self.stream.send_all(self.ws.send(CloseConnection(code=code, reason=reason)))

    async def reset(self) -> None:
        """Drop the TCP connection with a reset (RST), as a crashed client's host would."""
        self.stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await self.stream.aclose()

    async def aclose(self) -> None:
        """Close the TCP connection (FIN), without a close frame."""
        await self.stream.aclose()
