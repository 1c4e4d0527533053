"""triows on hypercorn's trio worker: mending, per connection, what the server gets wrong.

Read from hypercorn's source (0.17 and 0.18: ``protocol/ws_stream.py``, ``trio/tcp_server.py``,
``trio/task_group.py``). The ASGI ``send`` an app gets is the bound method
``WSStream.app_send``; ``receive`` is a trio memory channel's ``receive``, which hypercorn's
reader task fills through ``WSStream.app_put`` (the channel's ``send``; 10 messages at most).
From that:

- **the self-deadlock**: a write that fails reports the disconnect *from inside that write*,
  with ``app_put``; when the app's queue is full (a client flooded, then vanished), the app's own
  send never returns;
- **the spin**: once the stream is closed, ``app_send`` returns at once, without a checkpoint,
  and the app is not told until it receives;
- **lost close codes**: a client's close frame reaches the app as 1006; a frame wsproto cannot
  parse (invalid UTF-8 in a text frame, a protocol error) ends the TCP connection with no close
  frame at all, which the client sees as 1006;
- **unbounded writes**: ``send_all`` is shielded from cancellation, so only closing the stream
  ends a write to a client that stopped reading.

When ``send.__self__`` is such a stream, :func:`attach` returns a :class:`HypercornLink`; the
connection uses it (and otherwise falls back to a portable design, see ``_inbox.pump``):

1. ``stream.app_put`` becomes the connection's :meth:`Inbox.put <triows._inbox.Inbox.put>`:
   the disconnect is seen the moment hypercorn knows it, never waits for room, and each message
   costs hypercorn's reader one task switch less than its queue did;
2. ``stream.buffer.max_length`` becomes the route's message limit, so hypercorn itself refuses a
   bigger message with 1009 as it arrives, instead of buffering up to its 16 MiB;
3. the wsproto connection hypercorn makes at the handshake has its ``events`` watched: every
   frame counts as activity (pongs to hypercorn's pings included); a close frame ends the
   connection for the app at once, with the client's real code; a message growing past the
   limit ends it with 1009 before hypercorn's own close goes out (so no send spins meanwhile);
   and a frame wsproto rejects is answered with a close frame carrying wsproto's code and reason
   (1007 for invalid UTF-8) instead of a bare TCP close;
4. permessage-deflate is the app's decision, not hypercorn's (which accepts any offer, with a
   32 KiB window kept per direction: ~100 KiB per idle connection): the client's offer is
   dropped before hypercorn's accept reads it (``WEBSOCKET_COMPRESSION = None``), or made to
   ask for no context takeover both ways (``"deflate"``: wsproto then keeps no compressor
   between messages), or left as it is (``"deflate-context"``); either way only one offer, one
   wsproto can take, reaches it (see :func:`_offer`);
5. the worker's ``context.terminated``, which hypercorn sets when it begins to stop, tells the
   app to drain its connections (:meth:`HypercornLink.server_stopping`);
6. :meth:`Link.abort` sends hypercorn the ``StreamClosed`` it sends itself when an app ends,
   which closes the TCP connection (or the HTTP/2 stream) and so ends a stuck write at once.

Everything here depends on hypercorn's internals; ``tests/test_faults.py`` pins each of them on
the installed version, and :func:`attach` checks the shape it relies on before using it.
"""

from __future__ import annotations

import fcntl
import sys
import termios
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, cast

import trio
from wsproto.connection import ConnectionState
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage

from ._inbox import Inbox
from ._types import Message, Receive, Send

__all__ = ["HypercornLink", "attach"]


class HypercornLink:
    """One hypercorn websocket stream, as its triows connection uses it.

    Args:
        stream: hypercorn's ``WSStream``.
        channel: The memory channel hypercorn's ``receive`` reads.
    """

    __slots__ = (
        "_accept",
        "_app_put",
        "_compression",
        "_connection",
        "_events",
        "_inbox",
        "_max_size",
        "_on_too_big",
        "_server",
        "_size",
        "channel",
        "close_frame",
        "stream",
    )

    #: hypercorn refuses a message over ``stream.buffer.max_length`` itself.
    limits_size = True
    #: :meth:`ping` sends a ping frame.
    pings = True

    def __init__(self, stream: Any, channel: trio.MemoryReceiveChannel[Message]) -> None:
        self.stream = stream
        self.channel = channel
        #: The ``(code, reason)`` of the client's close frame (or of wsproto's refusal).
        self.close_frame: tuple[int, str] | None = None
        self._size = 0
        self._app_put: Any = None
        self._accept: Any = None
        self._connection: Any = None
        self._events: Any = None
        self._compression: str | None = None
        #: hypercorn's TCP server of this connection, for :meth:`write_now` (plain TCP only).
        self._server: Any = _tcp_server(stream)

    def first_message(self) -> Message:
        """The ``websocket.connect`` hypercorn queued before the app started."""
        return self.channel.receive_nowait()

    def install(
        self,
        inbox: Inbox,
        max_message_size: int,
        on_too_big: Callable[[], None],
        compression: str | None,
    ) -> None:
        """From now on, hypercorn delivers to ``inbox`` and refuses oversized messages.

        wsproto's connection is watched (:meth:`_watched`) from the moment hypercorn makes it,
        inside the accept, before any frame of the client can be read. Bound methods rather
        than closures: an idle connection keeps them, and a closure with its cells costs more.
        """
        stream = self.stream
        stream.buffer.max_length = max_message_size
        if stream.closed:  # the client left before the app ran: its disconnect is queued
            while True:
                try:
                    message = self.channel.receive_nowait()
                except trio.WouldBlock:
                    break
                if message["type"] == "websocket.disconnect":
                    inbox.end(message)
            self.sync(inbox)  # closed without a disconnect: the 400 of an early frame
            return
        self._inbox = inbox
        self._max_size = max_message_size
        self._on_too_big = on_too_big
        self._compression = compression
        self._app_put = stream.app_put
        stream.app_put = inbox.put
        handshake = stream.handshake
        self._accept = handshake.accept
        handshake.accept = self._accepting

    def sync(self, inbox: Inbox) -> None:
        """Tell ``inbox`` if hypercorn closed the stream without saying so.

        hypercorn answers a frame that comes before the handshake is accepted (sent together
        with the request, say) with HTTP 400 and closes the stream, telling the app nothing:
        every send would then return at once, without a checkpoint, and a receive wait forever.
        """
        if self.stream.closed and not inbox.peer_left:
            inbox.end({"type": "websocket.disconnect", "code": 1006})

    def _accepting(self, *args: Any) -> Any:
        """Hypercorn's ``Handshake.accept`` on the offers the app allows, then the watch."""
        handshake = self.stream.handshake
        offers = handshake.extensions
        if offers:
            compression = self._compression
            bounded = compression == "deflate"
            handshake.extensions = None if compression is None else _offer(offers, bounded)
        status, headers, connection = self._accept(*args)
        self._connection = connection
        self._events = connection.events
        connection.events = self._watched
        return status, headers, connection

    def _watched(self) -> Iterator[Any]:
        """Wsproto's ``events()``, seen on the way to hypercorn.

        Every event counts as activity; a close frame (the client's, or the one wsproto makes up
        when it cannot parse the client's frames) ends the inbox with its real code at once; a
        message growing past the limit calls ``on_too_big`` before hypercorn sees that part of
        it (hypercorn then closes with 1009 itself).
        """
        inbox = self._inbox
        for event in self._events():
            inbox.frames += 1
            if isinstance(event, (TextMessage, BytesMessage)):
                self._size += len(event.data)
                if self._size > self._max_size:
                    self._on_too_big()
                if event.message_finished:
                    self._size = 0
            elif type(event) is CloseConnection:
                code, reason = event.code, event.reason or ""
                self.close_frame = (code, reason)
                connection = self._connection
                if connection.state is ConnectionState.OPEN:
                    # wsproto could not parse the client's frames and yields a close of its own
                    # without changing state; hypercorn answers a close only in REMOTE_CLOSING
                    # (otherwise it drops the TCP connection unannounced).
                    connection._state = ConnectionState.REMOTE_CLOSING
                # The peer is gone for the app at once (no send may spin meanwhile), but the
                # handler is woken when hypercorn is done answering (its own disconnect).
                ended = {"type": "websocket.disconnect", "code": code, "reason": reason}
                inbox.end(ended, final=False)
            yield event

    def detach(self) -> None:
        """The app is done with the connection: give hypercorn its own methods back.

        Until then hypercorn's objects and the connection's refer to each other; afterwards
        both are freed by reference counting the moment they are dropped, not by the cyclic
        garbage collector later (which costs a collection's traversal per connection).
        """
        stream = self.stream
        if self._app_put is not None:
            stream.app_put = self._app_put
        stream.handshake.__dict__.pop("accept", None)
        if self._connection is not None:
            self._connection.__dict__.pop("events", None)
        self._app_put = self._accept = self._connection = self._events = None
        self._on_too_big = _nothing  # a frame being read still ends up here, harmlessly

    async def ping(self) -> None:
        """Send a ping frame, as hypercorn's own ping task would (``websocket_ping_interval``).

        hypercorn's task sleeps on after the connection has closed and keeps it (and the
        worker's graceful stop) waiting for up to an interval; triows' pings are timers.
        """
        stream = self.stream
        if not stream.closed and self._connection is not None:
            await stream._send_wsproto_event(Ping())

    def write_now(self, text: str) -> bytes | None:
        """Encode a text frame and write it to the socket at once, without waiting.

        For a fan-out into an idle connection: what ``websockets.broadcast`` does, instead of
        waking a writer task per member. Only on a plain TCP connection over HTTP/1.1 whose
        writes hypercorn is not in the middle of (its send lock is free), and only what the
        socket takes now: the rest of the frame is returned, to be written before anything
        else (the outbox's next frame).

        Returns:
            ``b""`` once it is all written, the bytes still to write, or ``None`` if it could
            not begin (nothing was encoded).
        """
        server = self._server
        stream = self.stream
        if server is None or stream.closed or server.send_lock.locked():
            return None
        from hypercorn.protocol.ws_stream import ASGIWebsocketState
        from wsproto.events import TextMessage
        from wsproto.utilities import LocalProtocolError

        if stream.state != ASGIWebsocketState.CONNECTED:
            return None
        try:
            data: bytes = stream.connection.send(TextMessage(data=text))
        except LocalProtocolError:
            return None
        try:
            sent: int = server.stream.socket._sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            return data  # the peer is gone: the writer's write of the rest will say so
        return data[sent:]

    def unsent(self) -> int | None:
        """Bytes the kernel still holds for this connection's socket (Linux ``SIOCOUTQ``).

        A member whose frames wait in the kernel, not in its outbox, shows it is reading when
        this shrinks: how a paced publisher tells it from a client that stopped.
        """
        server = self._server
        if server is None:
            return None
        try:
            raw = bytearray(4)
            fcntl.ioctl(server.stream.socket._sock.fileno(), termios.TIOCOUTQ, raw)
        except (OSError, ValueError):
            return None
        return int.from_bytes(raw, sys.byteorder)

    async def send_raw(self, data: bytes) -> None:
        """Write bytes of a frame :meth:`write_now` began, through hypercorn's own lock."""
        from hypercorn.protocol.events import Data

        stream = self.stream
        await stream.send(Data(stream_id=stream.stream_id, data=data))

    async def send_many(self, messages: Sequence[Message]) -> bool:
        """Encode several ``websocket.send`` messages and give hypercorn their bytes at once.

        What hypercorn's ``app_send`` does for each (wsproto encodes the frame, compression
        included), with one write of the stream for all of them instead of one each.
        """
        from hypercorn.protocol.events import Data
        from hypercorn.protocol.ws_stream import ASGIWebsocketState
        from wsproto.events import BytesMessage, TextMessage
        from wsproto.utilities import LocalProtocolError

        stream = self.stream
        if stream.closed or stream.state != ASGIWebsocketState.CONNECTED:
            return False
        connection = stream.connection
        parts = []
        try:
            for message in messages:
                data = message.get("bytes")
                if data is not None:
                    parts.append(connection.send(BytesMessage(data=bytes(data))))
                else:
                    parts.append(connection.send(TextMessage(data=message["text"])))
        except LocalProtocolError:
            if not parts:
                return False
            # The connection began closing while encoding: what was encoded still goes.
        await stream.send(Data(stream_id=stream.stream_id, data=b"".join(parts)))
        return True

    def server_stopping(self) -> tuple[Callable[[], Awaitable[object]], float] | None:
        """The wait for hypercorn's worker to begin stopping, and its ``graceful_timeout``."""
        wait = getattr(
            getattr(getattr(self.stream, "context", None), "terminated", None), "wait", None
        )
        if wait is None:
            return None
        limit = getattr(getattr(self.stream, "config", None), "graceful_timeout", None)
        return wait, float(limit) if isinstance(limit, (int, float)) else 3.0

    async def abort(self) -> None:
        """Close the stream now, as hypercorn does when an app ends (no close frame)."""
        from hypercorn.protocol.events import StreamClosed

        stream = self.stream
        if not stream.closed:
            await stream.send(StreamClosed(stream_id=stream.stream_id))


def _nothing() -> None:
    pass


def _tcp_server(stream: Any) -> Any:
    """The hypercorn ``TCPServer`` behind ``stream`` if it is plain TCP over HTTP/1.1, else None.

    ``WSStream.send`` is ``H11Protocol.stream_send``, whose ``send`` is the server's
    ``protocol_send``; a TLS or HTTP/2 connection (or another hypercorn) has another shape.
    """
    import socket

    protocol = getattr(getattr(stream, "send", None), "__self__", None)
    server = getattr(getattr(protocol, "send", None), "__self__", None)
    lock = getattr(server, "send_lock", None)
    raw = getattr(getattr(getattr(server, "stream", None), "socket", None), "_sock", None)
    if (
        type(protocol).__name__ != "H11Protocol"
        or lock is None
        or not isinstance(raw, socket.socket)
    ):
        return None
    return server


#: The parameters of a permessage-deflate offer (RFC 7692, section 7).
_WINDOW_BITS = ("client_max_window_bits", "server_max_window_bits")
_NO_TAKEOVER = ("client_no_context_takeover", "server_no_context_takeover")


def _offer(offers: list[str], bounded: bool) -> list[str] | None:
    """The first permessage-deflate offer wsproto can take, written plainly; ``None``: none.

    wsproto (1.3) trusts what it is offered: a quoted value (``client_max_window_bits="10"``,
    which RFC 6455 allows) raises inside hypercorn's accept, and with several offers it answers
    the last one with settings left over from the others. So only one offer goes to it, with
    unquoted values it accepts; an offer with an unknown, repeated or out-of-range parameter is
    declined (RFC 7692 section 5), and the next one considered. With ``bounded``, the offer asks
    for no context takeover both ways, which wsproto then grants: neither side keeps its LZ77
    window between messages, and wsproto drops its compressor and decompressor after each one
    (a server may answer with both parameters whatever the client offered).
    """
    for offer in offers:
        name, *parts = (part.strip() for part in offer.split(";"))
        if name.lower() != "permessage-deflate":
            continue
        parameters: dict[str, str | None] = {}
        for part in parts:
            key, equals, value = part.partition("=")
            key, value = key.strip().lower(), value.strip().strip('"')
            if key in parameters:
                break
            if key in _WINDOW_BITS:
                if equals and not (value.isdigit() and 9 <= int(value) <= 15):
                    break  # wsproto takes 9 to 15 (RFC 7692 also allows 8)
                if not equals and key == "server_max_window_bits":
                    break  # its value is required
                parameters[key] = value if equals else None
            elif key in _NO_TAKEOVER and not equals:
                parameters[key] = None
            else:
                break
        else:
            if bounded:
                for key in _NO_TAKEOVER:
                    parameters.setdefault(key, None)
            written = (
                key if value is None else f"{key}={value}" for key, value in parameters.items()
            )
            return ["; ".join(["permessage-deflate", *written])]
    return None


#: The classes :func:`attach` has checked the shape of: (hypercorn's stream, the channel).
_checked: tuple[type, type] | None = None


def attach(receive: Receive, send: Send) -> HypercornLink | None:
    """The link of a connection served by hypercorn's trio worker, or ``None``."""
    global _checked
    stream = getattr(send, "__self__", None)
    channel = getattr(receive, "__self__", None)
    kinds = (type(stream), type(channel))
    if kinds == _checked:  # every connection after the first
        return HypercornLink(stream, cast("trio.MemoryReceiveChannel[Message]", channel))
    kind = kinds[0]
    if kind.__name__ != "WSStream" or kind.__module__ != "hypercorn.protocol.ws_stream":
        return None
    if not isinstance(channel, trio.MemoryReceiveChannel):
        return None
    buffer = getattr(stream, "buffer", None)
    needed = ("app_put", "closed", "handshake", "send", "stream_id", "_send_wsproto_event")
    if not all(hasattr(stream, name) for name in needed) or not hasattr(buffer, "max_length"):
        return None
    _checked = kinds
    return HypercornLink(stream, channel)
