"""The server side of one websocket connection.

How it works: a :class:`WebSocket` owns one state machine (the table of ``_state.py``, in the
manner of h11's) with Starlette's methods on top. Everything that changes the state goes
through :meth:`WebSocket._move`; the endpoint drives the connection with methods (``_open``,
``_begin_admission``, ``_end``, ``_settle``, ``_finish``), never by writing fields. Receiving
is ``_receive.py``, the outbox ``_outbox.py``, the idle timeout ``_liveness.py``.

The connection always knows whether its peer is there: the server's messages are taken the
moment they arrive (``_inbox.py``), not when the handler next receives, so once the client has
left the next send raises :class:`~triows.WebSocketDisconnect` with the code it left with,
whatever the handler is doing. Data the client sent before leaving is still received, in order,
before the end.

Errors follow trio's split: calling a method in a state that forbids it is a programming
error (:class:`~triows.WebSocketStateError`, naming the expected and the actual state); the
connection having ended is not (:class:`~triows.WebSocketDisconnect` with its code); a client
sending the wrong kind of frame or malformed JSON raises a :class:`~triows.WebSocketException`
(1003, 1007) that closes with that code if the handler lets it through; two tasks receiving at
once raise :class:`trio.BusyResourceError`. One reader and any number of writers may work
concurrently.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pydantic_core
import trio

from ._inbox import Inbox, pump
from ._links import Link, attach
from ._liveness import IdleWatch
from ._logging import logger, where
from ._outbox import Outbox
from ._receive import KEYS, Messages, Mode, parse_json
from ._settings import BARE, ConnectionSettings
from ._state import OPEN, TRANSITIONS, Event, WebSocketState
from ._types import Message, Receive, Scope, Send
from .errors import CloseCode, WebSocketDisconnect, WebSocketStateError, truncate_reason
from .requests import HTTPConnection

if TYPE_CHECKING:
    from ._timers import Timer, Timers
    from .responses import Response

__all__ = ["WebSocket", "WebSocketState"]


HeaderPairs = Mapping[str, str] | Iterable[tuple[str, str]] | Iterable[tuple[bytes, bytes]]


def _latin1(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("latin-1")


def _encode_headers(headers: HeaderPairs) -> list[list[bytes]]:
    """ASGI header pairs from a mapping or pairs of ``str`` (or of ``bytes``, as Starlette's)."""
    items: Iterable[tuple[str | bytes, str | bytes]]
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [[_latin1(k).lower(), _latin1(v)] for k, v in items]


def _bad_mode() -> RuntimeError:
    """The error of a JSON ``mode`` that is neither ``"text"`` nor ``"binary"`` (Starlette's)."""
    return RuntimeError('The "mode" argument should be "text" or "binary".')


def _key(mode: str) -> str:
    """The ASGI message key of a JSON ``mode``."""
    key = KEYS.get(mode)
    if key is None:
        raise _bad_mode()
    return key


#: States in which ``accept()`` raises ``WebSocketDisconnect``: not the handler's mistake.
_ENDED_FOR_ACCEPT = frozenset({WebSocketState.DISCONNECTED, WebSocketState.CLOSING})

#: The subprotocol a client offers to learn why its handshake was refused (``triows.js`` does):
#: browsers cannot see a refused handshake's HTTP status, so for such a client :meth:`deny`
#: accepts and closes at once with ``REFUSED_BASE`` + the status and the refusal's detail.
RELAY_SUBPROTOCOL = "triows.v1"
#: What a relayed refusal is accepted with when the client offered it too (``triows.js`` does):
#: the client then knows at once that the close follows, and never shows the page "open".
REFUSED_SUBPROTOCOL = "triows.refused"
#: The close code of a relayed refusal is this plus the HTTP status (4403, 4404, 4422...).
REFUSED_BASE = 4000


def _refusal_reason(status_code: int, body: bytes) -> str:
    """A close reason for a refusal: the JSON body's ``detail``, else the body, else the status."""
    try:
        detail: Any = json.loads(body)
    except ValueError:
        detail = body.decode("utf-8", "replace")
    if isinstance(detail, dict):
        detail = detail.get("detail", "")
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        first = detail[0]  # a RequestValidationError's first error: where and what
        where = ".".join(str(part) for part in first.get("loc", ()))
        detail = f"{where}: {first.get('msg', '')}" if where else first.get("msg", "")
    return truncate_reason(str(detail) if detail else f"HTTP {status_code}")


#: ``connection_state`` as Starlette's ``application_state`` would say it.
_APPLICATION_VIEW = {
    WebSocketState.CONNECTING: WebSocketState.CONNECTING,
    WebSocketState.CONNECTED: WebSocketState.CONNECTED,
    WebSocketState.CLOSING: WebSocketState.CONNECTED,  # the close frame has not gone out yet
    WebSocketState.CLOSED: WebSocketState.DISCONNECTED,
    WebSocketState.DENIED: WebSocketState.RESPONSE,
    WebSocketState.DISCONNECTED: WebSocketState.CONNECTED,  # the app has not closed it
}


class WebSocket(HTTPConnection):
    """A websocket connection, as a handler sees it.

    The surface is Starlette's (``accept``, ``send_text``, ``receive_json``, ``iter_text`` …),
    with trio underneath, a nursery of its own, and an outbox for sends that must not wait
    (``push_text`` …).

    Args:
        scope: The ASGI ``websocket`` scope.
        receive: The ASGI receive callable.
        send: The ASGI send callable.
    """

    __slots__ = (
        "_accepted",
        "_admitting",
        "_conn_state",
        "_connect_given",
        "_connect_pending",
        "_deadline",
        "_denial",
        "_finished",
        "_idle",
        "_inbox",
        "_link",
        "_nursery",
        "_on_end",
        "_outbox",
        "_receive",
        "_relayed",
        "_send",
        "_settings",
        "_timers",
        "_write",
        "accepted_subprotocol",
        "close_code",
        "close_reason",
    )

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        super().__init__(scope)
        self._receive = receive
        self._send = send
        #: What writes a frame: the server's send (with a checkpoint added where needed).
        self._write: Send = send
        self._conn_state = WebSocketState.CONNECTING
        self._accepted = False
        self._admitting = False
        self._relayed = False
        self._finished = False
        self._connect_pending = True
        #: ``receive()`` before ``accept()`` has returned the ``websocket.connect`` message.
        self._connect_given = False
        #: A ``websocket.http.response.start`` given to :meth:`send`, until its body comes.
        self._denial: Message | None = None
        self._settings: ConnectionSettings = BARE
        # Outside an App route (a bare ASGI use) the handler receives from the server itself.
        self._inbox = Inbox(BARE.inbox_size, self._peer_left, direct=receive)
        self._link: Link | None = None
        self._nursery: trio.Nursery | None = None
        self._outbox: Outbox | None = None
        #: Called once, when the connection leaves CONNECTING/CONNECTED (channel memberships).
        self._on_end: list[Callable[[], None]] | None = None
        self._timers: Timers | None = None
        self._idle: IdleWatch | None = None
        #: When a drain (the server stopping) ends this connection at the latest.
        self._deadline: float | None = None
        #: The subprotocol chosen by ``accept()``, if any.
        self.accepted_subprotocol: str | None = None
        #: The code the connection ended with (sent or received), once it has ended.
        self.close_code: int | None = None
        #: The close reason that went with :attr:`close_code`.
        self.close_reason: str = ""

    # -- the state machine -----------------------------------------------------------------

    @property
    def connection_state(self) -> WebSocketState:
        """The connection's state (see :class:`WebSocketState`); read-only."""
        return self._conn_state

    @property
    def application_state(self) -> WebSocketState:
        """Starlette's view of the app's side of the connection; read-only.

        ``CONNECTING``, ``CONNECTED``, ``DISCONNECTED`` (the app closed it) or ``RESPONSE`` (it
        refused the handshake). Ported code's
        ``if websocket.application_state == WebSocketState.CONNECTED:`` works;
        :attr:`connection_state` says more (``CLOSING``, who ended it).
        """
        return _APPLICATION_VIEW[self._conn_state]

    @property
    def client_state(self) -> WebSocketState:
        """Starlette's view of the client's side of the connection; read-only.

        ``CONNECTED`` until the client has left or was refused, then ``DISCONNECTED``.
        """
        state = self._conn_state
        gone = state is WebSocketState.DISCONNECTED or state is WebSocketState.DENIED
        if gone or self._inbox.end_taken:
            return WebSocketState.DISCONNECTED
        return WebSocketState.CONNECTED

    def _move(self, event: Event, code: int | None = None, reason: str = "") -> None:
        """Take ``event``; the first end records the close code and reason.

        Raises:
            WebSocketStateError: ``event`` cannot happen in the current state.
        """
        state = self._conn_state
        after = TRANSITIONS.get((state, event))
        if after is None:
            raise WebSocketStateError(
                f"cannot take {event.value!r} when the websocket is {state.name}"
            )
        if event is Event.ACCEPT:
            self._accepted = True
        elif state in OPEN and after not in OPEN and event is not Event.DENY:
            self.close_code = code
            self.close_reason = reason
        self._conn_state = after
        if self._on_end is not None and after not in OPEN:
            self._ended()

    def _when_ended(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` once, as soon as the connection has ended (or at once if so).

        Raises:
            WebSocketStateError: Before ``accept()``.
        """
        state = self._conn_state
        if state is WebSocketState.CONNECTING:
            raise self._state_error("joining a channel", WebSocketState.CONNECTED)
        if state is not WebSocketState.CONNECTED or self._nursery is None:
            callback()
            return
        if self._on_end is None:
            self._on_end = []
        self._on_end.append(callback)

    def _ended(self) -> None:
        callbacks, self._on_end = self._on_end or [], None
        for callback in callbacks:
            try:
                callback()
            except Exception:  # one failing callback must not keep the others from running
                logger.exception("a callback at the end of %s failed", where(self.scope))

    def _ending(self) -> bool:
        """Whether the connection is past ``CONNECTED`` (or not yet there)."""
        return self._conn_state is not WebSocketState.CONNECTED

    def _disconnect(self) -> WebSocketDisconnect:
        """The ``WebSocketDisconnect`` for how this connection ended."""
        return WebSocketDisconnect(self.close_code or CloseCode.NO_STATUS, self.close_reason)

    # -- the endpoint's side -----------------------------------------------------------------

    async def _open(
        self, nursery: trio.Nursery, settings: ConnectionSettings, timers: Timers
    ) -> None:
        """Start serving this connection in ``nursery`` (called once, by the endpoint).

        Reads the ``websocket.connect`` message, and from then on takes every message the
        server delivers as it arrives: on hypercorn through the server's own reader, elsewhere
        with a task of ``nursery``.
        """
        self._nursery = nursery
        self._settings = settings
        self._timers = timers
        link = attach(self._receive, self._send)
        inbox = Inbox(
            settings.inbox_size,
            self._peer_left,
            max_size=None if link is not None and link.limits_size else settings.max_message_size,
            on_too_big=self._too_big,
        )
        if settings.heartbeat is not None:
            inbox.heartbeat = (settings.heartbeat[0], self._answer_heartbeat)
        self._inbox = inbox
        self._connect_pending = False
        if link is not None:
            self._link = link
            first = link.first_message()
            link.install(inbox, settings.max_message_size, self._too_big, settings.compression)
        else:
            first = await self._receive()
            self._write = self._checkpointed(self._send)
            nursery.start_soon(pump, self._receive, inbox)
        if first["type"] == "websocket.disconnect":
            inbox.end(first)
        elif first["type"] != "websocket.connect":
            raise RuntimeError(f"expected ASGI 'websocket.connect', got {first['type']!r}")

    def _begin_admission(self) -> None:
        """Guards run from now on: they may not accept the connection."""
        self._admitting = True

    def _end_admission(self) -> None:
        self._admitting = False

    def _end(self, code: int, reason: str, grace: float | None = None) -> None:
        """Triows ends the connection: a limit, a timeout, a drain (see the state table).

        The handler's receive wakes with :class:`~triows.WebSocketDisconnect` of ``code`` and
        its sends raise it; the close frame goes out when it ends. If it has not ended after
        ``grace`` (default: the close timeout) it is cancelled, and on hypercorn the TCP
        connection is cut (a write to a client that stopped reading cannot be cancelled
        otherwise).
        """
        if self._conn_state not in OPEN:
            return
        reason = truncate_reason(reason)
        self._move(Event.END, code, reason)
        self._inbox.interrupt({"type": "websocket.disconnect", "code": code, "reason": reason})
        self._stop_sending(grace)

    def _shut_down(self, code: int, reason: str, deadline: float) -> bool:
        """The server stops: end the connection, its handler cancelled at ``deadline``.

        Returns:
            Whether the close frame should be sent now (the connection was accepted); a
            handshake not yet answered is refused when its handler ends.
        """
        self._deadline = deadline
        grace = max(0.0, deadline - trio.current_time())
        if self._conn_state not in OPEN:
            # Already ending (the client left, a limit): its handler's grace ends no later.
            if not self._finished and self._nursery is not None and self._timers is not None:
                self._timers.linger(self, grace, self._grace_over)
            return False
        accepted = self._conn_state is WebSocketState.CONNECTED
        self._end(code, reason, grace)
        return accepted

    async def _say_goodbye(self) -> None:
        """Send the close frame of a drain now, whatever the handler is doing.

        Shielded (it must go out even as the connection's tasks are cancelled) and bounded by
        the drain's deadline; a client that stopped reading is cut then (:meth:`_reap`).
        """
        deadline = self._deadline if self._deadline is not None else trio.current_time()
        timers, timer = self._timers, None
        if self._link is not None and timers is not None and timers.running:
            # hypercorn's write cannot be cancelled: a close frame stuck on a client that
            # stopped reading is ended by cutting the connection at the deadline.
            timer = timers.call_at(deadline, self._cut)
        gone = (OSError, WebSocketDisconnect, trio.BrokenResourceError, trio.ClosedResourceError)
        try:
            with trio.CancelScope(deadline=deadline, shield=True), contextlib.suppress(*gone):
                await self.close()
        finally:
            if timer is not None:
                timer.cancel()

    def _cut(self) -> None:
        """A timer: cut the connection now, whatever is still writing to it."""
        if self._link is not None and self._timers is not None:
            self._timers.nursery.start_soon(self._link.abort)

    def _close_deadline(self) -> float:
        """When a close of ours stops waiting: the close timeout, or a drain's end if sooner."""
        limit = trio.current_time() + self._settings.close_timeout
        return limit if self._deadline is None else min(limit, self._deadline)

    def _peer_left(self, message: Message) -> None:
        """The server reported that the peer left (the inbox's ``on_end``)."""
        if self._conn_state in OPEN:
            code = int(message.get("code") or CloseCode.NO_STATUS)
            reason = message.get("reason") or ""
            link = self._link
            if link is not None and link.close_frame is not None:  # hypercorn says 1006
                code, reason = link.close_frame
            self._move(Event.PEER_LEFT, code, reason)
        self._stop_sending()

    def _stop_sending(self, grace: float | None = None) -> None:
        """The connection has ended: no more frames, no more idle checks, and a grace.

        A handler that goes on regardless (awaiting something else) is cancelled once the close
        timeout has passed; one stuck in a write to a client that stopped reading is freed by
        cutting the TCP connection (hypercorn's writes cannot be cancelled otherwise).
        """
        if self._outbox is not None:
            self._outbox.fail()
        if self._idle is not None:
            self._idle.stop()
        timers = self._timers
        if self._nursery is not None and timers is not None and not self._finished:
            delay = self._settings.close_timeout if grace is None else grace
            timers.linger(self, delay, self._grace_over)

    def _grace_over(self) -> None:
        """A timer: the connection ended a close timeout ago; end what still runs."""
        nursery = self._nursery
        if nursery is not None:
            nursery.cancel_scope.cancel()
        self._reap()

    def _too_big(self) -> None:
        size = self._settings.max_message_size
        self._end(CloseCode.MESSAGE_TOO_BIG, f"message over {size} bytes")

    def _reap(self) -> None:
        """A timer: a close did not complete in time; cut the connection if it still runs."""
        if not self._finished and self._link is not None and self._timers is not None:
            self._timers.nursery.start_soon(self._link.abort)

    async def _answer_heartbeat(self) -> None:
        heartbeat = self._settings.heartbeat
        if heartbeat is not None and self._conn_state is WebSocketState.CONNECTED:
            await self._write_frame({"type": "websocket.send", "text": heartbeat[1]})

    async def _settle(self) -> None:
        """Before the connection's nursery closes: let queued frames go out, in time.

        Shielded (the nursery may be cancelled already) and bounded by the close timeout.
        """
        outbox = self._outbox
        if outbox is None or not outbox.busy:
            return
        with trio.CancelScope(shield=True):
            with trio.move_on_after(self._settings.close_timeout):
                await outbox.flush()
            if outbox.writing and outbox.writer_alive and self._link is not None:
                await self._link.abort()  # the writer is stuck in a write nothing else can end
        if outbox.busy:  # the writer was cancelled with the nursery (a failure, a shutdown)
            outbox.fail()

    async def _finish(self, code: int, reason: str, *, linger: bool = True) -> None:
        """Close if still open, ignoring a vanished peer; called once the handler has ended.

        After a close frame of ours the peer's answer is awaited (at most the close timeout):
        hypercorn drops the TCP connection as soon as the app returns, which, while the client
        is still sending (a message over the limit, say), resets it before the client could
        read why. On hypercorn a close that cannot complete (a client that stopped reading) is
        cut after the close timeout by a timer, as no cancel scope can interrupt its write.
        """
        state = self._conn_state
        if state is WebSocketState.CONNECTING:
            code, reason = CloseCode.NORMAL, ""
        elif state is WebSocketState.CLOSING and not self._accepted:
            # The server stops during the handshake: 503 says "try again", a 403 would not.
            body = pydantic_core.to_json({"detail": self.close_reason})
            with trio.move_on_at(self._close_deadline()):
                await self.deny(503, body, {"content-type": "application/json"})
            self._done()
            return
        elif state is not WebSocketState.CONNECTED and state is not WebSocketState.CLOSING:
            inbox = self._inbox
            if self._link is not None and inbox.peer_left and not inbox.final:
                # The peer's close frame came while the handler sent; hypercorn answers it
                # still, and would drop the TCP connection unanswered if the app returned now.
                with trio.move_on_at(self._close_deadline()):
                    await inbox.wait_final()
            elif linger and self._deadline is not None and self._accepted and not inbox.peer_left:
                # A drain sent the close frame: wait for the client's answer as for our own.
                with trio.move_on_at(self._close_deadline()):
                    await inbox.wait_peer_left()
            self._done()
            return
        timers = self._timers
        timer: Timer | None = None
        if self._link is not None and timers is not None and timers.running:
            timer = timers.call_later(self._close_deadline() - trio.current_time(), self._reap)
        self._inbox.stop_reading()  # the handler has ended: its reader must not wait for room
        try:
            # Bounded and cancellable: on HTTP/2 hypercorn's write waits (cancellably) for the
            # client's flow-control window; on HTTP/1.1 a stuck write is ended by the timer.
            with trio.move_on_at(self._close_deadline()):
                await self.close(code, reason)
                if linger and self._accepted and not self._inbox.peer_left:
                    await self._inbox.wait_peer_left()
        except (OSError, WebSocketDisconnect, trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the peer is gone; there is nobody left to tell
        finally:
            self._done()
            if timer is not None:
                timer.cancel()

    def _done(self) -> None:
        """The connection is over for good: drop the timers that still refer to it."""
        self._finished = True
        if self._timers is not None:
            self._timers.release(self)

    def _detach(self) -> None:
        """The endpoint is done with the connection: drop the references that make cycles.

        The connection, its inbox, outbox, idle watch and the server's stream refer to each
        other while it runs; dropped here, all of it is freed by reference counting when the
        server lets go, instead of waiting for (and costing) a cyclic garbage collection.
        """
        if self._on_end is not None:
            self._ended()
        self._inbox.detach()
        if self._link is not None:
            self._link.detach()
        self._outbox = None
        self._idle = None

    def _closed_nursery(self) -> None:
        self._nursery = None

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
        headers: HeaderPairs | None = None,
    ) -> None:
        """Complete the handshake.

        Args:
            subprotocol: One of :attr:`subprotocols` to agree on. Left out, a client that
                offered ``triows.v1`` (``triows.js``) gets that one on the wire: browsers refuse
                a handshake that offered subprotocols and got none.
            headers: Extra headers for the handshake response.

        Raises:
            WebSocketStateError: The connection is not ``CONNECTING`` (accepted twice, closed…).
            ValueError: ``subprotocol`` was not offered by the client.
            WebSocketDisconnect: The client left during the handshake.
        """
        if self._conn_state is not WebSocketState.CONNECTING:
            if self._conn_state in _ENDED_FOR_ACCEPT:  # the client left, or the server stops
                raise self._disconnect()
            raise self._state_error("accept()", WebSocketState.CONNECTING)
        if self._admitting:
            raise WebSocketStateError(
                "a guard cannot accept the connection: return True and let the handler accept"
            )
        if subprotocol is not None and subprotocol not in self.subprotocols:
            raise ValueError(
                f"accept(subprotocol={subprotocol!r}): the client offered {self.subprotocols}"
            )
        if self._connect_pending:  # a bare WebSocket reads the connect message itself
            self._connect_pending = False
            connect = await self._inbox.get()
            if connect["type"] != "websocket.connect":
                self._not_a_connect(connect)
        wire = subprotocol
        if wire is None and RELAY_SUBPROTOCOL in self.subprotocols:
            # Browsers fail a handshake that offered subprotocols and got none: a triows.js
            # client that the handler accepts without one agrees on triows' own.
            wire = RELAY_SUBPROTOCOL
        message: Message = {"type": "websocket.accept", "subprotocol": wire}
        if headers:
            message["headers"] = _encode_headers(headers)
        self._move(Event.ACCEPT)
        self.accepted_subprotocol = subprotocol
        await self._write_frame(message)
        if self._link is not None:
            self._link.sync(self._inbox)
        timeout = self._settings.idle_timeout
        if timeout is not None and self._timers is not None:
            self._idle = IdleWatch(self, self._timers, timeout)

    async def close(self, code: int = CloseCode.NORMAL, reason: str | None = None) -> None:
        """Close the connection; a no-op once it has ended.

        Before ``accept()`` the client gets an HTTP 403 instead of a close frame (a ``triows.v1``
        client: close 4403 with ``reason``, as :meth:`deny` relays). Frames queued by
        ``push_*`` go out first.

        Args:
            code: The close code (1000, or 3000-4999 for applications).
            reason: A short reason; cut to 123 bytes of UTF-8 if longer.
        """
        state = self._conn_state
        if state is WebSocketState.CONNECTING and RELAY_SUBPROTOCOL in self.subprotocols:
            # A close before accept is a 403 refusal: relayed to a triows.js client.
            await self._relay_refusal(403, b"", reason or None)
            return
        if state is WebSocketState.CLOSING:  # triows ended it: this sends its close frame
            code, reason = self.close_code or code, self.close_reason
        elif state not in OPEN:
            return
        reason = truncate_reason(reason or "")
        outbox = self._outbox
        if state is WebSocketState.CONNECTED and outbox is not None and outbox.busy:
            await outbox.flush()  # what was pushed before the close goes out before it
            if self._conn_state is not state:  # it ended meanwhile
                return
        self._move(Event.CLOSE, int(code), reason)
        self._inbox.stop_reading()
        await self._write_frame({"type": "websocket.close", "code": code, "reason": reason})
        if self._outbox is not None:
            self._outbox.fail()
        if self._idle is not None:
            self._idle.stop()

    async def deny(
        self,
        status_code: int = 403,
        body: bytes = b"",
        headers: HeaderPairs | None = None,
    ) -> None:
        """Refuse the handshake with an HTTP response.

        Uses the ASGI ``websocket.http.response`` extension; where the server lacks it, the
        connection is closed before accept, which servers answer with HTTP 403. A client that
        offered the subprotocol ``triows.v1`` (``triows.js``) cannot see an HTTP status: it is
        accepted and closed at once with ``4000 + status_code`` and the body's ``detail`` as
        the reason (``docs/client.md``).

        Args:
            status_code: The HTTP status.
            body: The response body.
            headers: Response headers (``content-length`` is added).

        Raises:
            WebSocketStateError: The handshake was already answered.
        """
        if self._conn_state is not WebSocketState.CONNECTING:
            if self._conn_state is WebSocketState.DISCONNECTED:
                return  # the client left: nobody to refuse
            if self._conn_state is not WebSocketState.CLOSING or self._accepted:
                raise self._state_error("deny()", WebSocketState.CONNECTING)
            # A drain began during the handshake: the refusal the handler chose still goes out.
        elif RELAY_SUBPROTOCOL in self.subprotocols and 400 <= status_code < 600:
            await self._relay_refusal(status_code, body)
            return
        extensions = self.scope.get("extensions") or {}
        if "websocket.http.response" not in extensions:
            await self.close()
            return
        raw = _encode_headers(headers or ())
        raw.append([b"content-length", str(len(body)).encode()])
        self._move(Event.DENY)
        await self._write_frame(
            {"type": "websocket.http.response.start", "status": status_code, "headers": raw}
        )
        await self._write_frame({"type": "websocket.http.response.body", "body": body})

    async def _relay_refusal(
        self, status_code: int, body: bytes, reason: str | None = None
    ) -> None:
        """Refuse a ``triows.v1`` client: accept, then close with 4000 + ``status_code``."""
        self._admitting = False  # a guard's own deny(): the refusal is triows' accept
        self._relayed = True  # refused: no disconnect hook, as for an HTTP refusal
        offered = REFUSED_SUBPROTOCOL in self.subprotocols
        await self.accept(REFUSED_SUBPROTOCOL if offered else RELAY_SUBPROTOCOL)
        why = truncate_reason(reason) if reason else _refusal_reason(status_code, body)
        await self.close(REFUSED_BASE + status_code, why)

    async def send_denial_response(self, response: Response) -> None:
        """Refuse the handshake with ``response``, as Starlette's method of this name.

        Raises:
            RuntimeError: The server lacks the ASGI ``websocket.http.response`` extension
                (where :meth:`deny` closes before accepting instead).
            WebSocketStateError: The handshake was already answered.
        """
        if "websocket.http.response" not in (self.scope.get("extensions") or {}):
            raise RuntimeError(
                "The server doesn't support the Websocket Denial Response extension."
            )
        headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in response.raw_headers
            if k != b"content-length"  # deny() adds it
        ]
        await self.deny(response.status_code, response.body, headers)

    # -- receiving -------------------------------------------------------------------------

    async def receive(self) -> Message:
        """The next ASGI message: ``websocket.receive``, or ``websocket.disconnect`` once.

        As in Starlette, the first call before ``accept()`` returns the ``websocket.connect``
        message.

        Raises:
            WebSocketStateError: Called before ``accept()`` (after that first time), or again
                after it returned the ``websocket.disconnect`` message.
            WebSocketDisconnect: The connection had already ended.
            RuntimeError: The server sent a message a websocket cannot receive.
            trio.BusyResourceError: Another task is receiving on this connection.
        """
        state = self._conn_state
        if state is not WebSocketState.CONNECTED:  # one check on the path of every message
            if state is WebSocketState.CONNECTING and not self._connect_given:
                return await self._connect_message()
            await self._check_receivable(False, raw=True)
        message = await self._inbox.get()
        kind = message["type"]
        if kind != "websocket.receive":
            if kind != "websocket.disconnect":
                raise RuntimeError(
                    'Expected ASGI message "websocket.receive" or "websocket.disconnect", '
                    f"but got {kind!r}"
                )
            self._inbox.end_taken = True
        return message

    async def _connect_message(self) -> Message:
        """The ``websocket.connect`` message, for the first ``receive()`` before ``accept()``."""
        self._connect_given = True
        if self._connect_pending:  # a bare WebSocket: the server's first message
            self._connect_pending = False
            connect = await self._inbox.get()
            if connect["type"] != "websocket.connect":
                self._not_a_connect(connect)
            return connect
        await trio.lowlevel.checkpoint()
        return {"type": "websocket.connect"}

    async def send(self, message: Message) -> None:
        """Send a raw ASGI message, as Starlette's ``WebSocket.send``.

        ``websocket.accept``, ``websocket.send``, ``websocket.close`` and the denial pair
        (``websocket.http.response.start`` then ``.body``) are the same as :meth:`accept`,
        :meth:`send_text`/:meth:`send_bytes`, :meth:`close` and :meth:`deny`, state checks
        included.

        Raises:
            RuntimeError: A message type a websocket cannot send.
            WebSocketStateError: The message does not fit the connection's state.
            WebSocketDisconnect: The client has left.
        """
        kind = message.get("type")
        if kind == "websocket.send":
            data = message.get("bytes")
            if data is not None:
                await self.send_bytes(bytes(data))
            else:
                await self.send_text(message.get("text") or "")
        elif kind == "websocket.accept":
            await self.accept(message.get("subprotocol"), message.get("headers") or None)
        elif kind == "websocket.close":
            await self.close(message.get("code", CloseCode.NORMAL), message.get("reason"))
        elif kind == "websocket.http.response.start":
            if self._denial is not None:
                raise RuntimeError(
                    'Expected ASGI message "websocket.http.response.body", '
                    "but got 'websocket.http.response.start'"
                )
            if self._conn_state is not WebSocketState.CONNECTING:
                raise self._state_error("a denial", WebSocketState.CONNECTING)
            self._denial = {**message, "body": b""}
        elif kind == "websocket.http.response.body" and self._denial is not None:
            denial = self._denial
            denial["body"] += bytes(message.get("body", b""))
            if not message.get("more_body", False):  # the whole body: the denial goes out
                self._denial = None
                await self.deny(denial.get("status", 403), denial["body"], denial.get("headers"))
        else:
            raise RuntimeError(f"a websocket cannot send the ASGI message {kind!r}")

    async def receive_text(self) -> str:
        """The next message, which must be a text frame.

        Raises:
            WebSocketDisconnect: The connection has ended.
            WebSocketException: 1003 when a binary frame came instead.
        """
        text: str = await Messages(self, "text", None, False).__anext__()
        return text

    async def receive_bytes(self) -> bytes:
        """The next message, which must be a binary frame.

        Raises:
            WebSocketDisconnect: The connection has ended.
            WebSocketException: 1003 when a text frame came instead.
        """
        data: bytes = await Messages(self, "bytes", None, False).__anext__()
        return data

    async def receive_json(self, mode: Mode = "text") -> Any:
        """The next message parsed as JSON, from a text frame (or binary, with ``mode``).

        Raises:
            WebSocketDisconnect: The connection has ended.
            WebSocketException: 1003 for the wrong frame type, 1007 for malformed JSON.
        """
        return await Messages(self, _key(mode), parse_json, False).__anext__()

    def iter_text(self) -> AsyncIterator[str]:
        """Text messages until the connection ends; then the iteration simply ends."""
        return Messages(self, "text", None, True)

    def iter_bytes(self) -> AsyncIterator[bytes]:
        """Binary messages until the connection ends; then the iteration simply ends."""
        return Messages(self, "bytes", None, True)

    def iter_json(self, mode: Mode = "text") -> AsyncIterator[Any]:
        """JSON messages until the connection ends; then the iteration simply ends."""
        return Messages(self, _key(mode), parse_json, True)

    # -- sending ---------------------------------------------------------------------------

    async def send_text(self, data: str) -> None:
        """Send a text frame; return once the server has taken it.

        Raises:
            WebSocketStateError: Before ``accept()`` or after the app closed the connection.
            WebSocketDisconnect: The connection has ended (the peer left, or triows ended it).
        """
        if self._conn_state is not WebSocketState.CONNECTED:
            await self._refuse_send()
        if not isinstance(data, str):
            raise TypeError(f"send_text() takes str, got {type(data).__name__}")
        await self._transmit({"type": "websocket.send", "text": data}, len(data))

    async def send_bytes(self, data: bytes) -> None:
        """Send a binary frame; return once the server has taken it.

        Raises:
            WebSocketStateError: Before ``accept()`` or after the app closed the connection.
            WebSocketDisconnect: The connection has ended (the peer left, or triows ended it).
        """
        if self._conn_state is not WebSocketState.CONNECTED:
            await self._refuse_send()
        if type(data) is not bytes:  # exact bytes (the usual case) is sent as it is
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise TypeError(f"send_bytes() takes bytes, got {type(data).__name__}")
            data = bytes(data)
        await self._transmit({"type": "websocket.send", "bytes": data}, len(data))

    async def send_json(self, data: Any, mode: Mode = "text") -> None:
        """Send ``data`` as compact JSON in a text frame (or binary, with ``mode``).

        Anything pydantic can serialise works: dicts, lists, models, dataclasses, datetimes.
        """
        if mode == "text":
            await self.send_text(pydantic_core.to_json(data).decode("utf-8"))
        elif mode == "binary":
            await self.send_bytes(pydantic_core.to_json(data))
        else:
            raise _bad_mode()

    async def _transmit(self, message: Message, size: int) -> None:
        outbox = self._outbox
        if outbox is not None and outbox.busy:  # queued frames go first
            await outbox.send(message, size)
        else:
            await self._write_frame(message)

    async def _write_frame(self, message: Message) -> None:
        try:
            await self._write(message)
        except OSError:  # ASGI: the client is gone
            raise self._client_gone() from None

    async def _write_rest(self, data: bytes) -> None:
        """Write what the socket did not take of a fan-out's frame (:meth:`_fan_out`)."""
        assert self._link is not None
        try:
            await self._link.send_raw(data)
        except OSError:
            raise self._client_gone() from None

    def _client_gone(self) -> WebSocketDisconnect:
        """A write failed: the client is gone. What the write raises."""
        self._inbox.end({"type": "websocket.disconnect", "code": CloseCode.ABNORMAL})
        if self._conn_state is WebSocketState.DISCONNECTED:  # with the code it left with
            return self._disconnect()
        return WebSocketDisconnect(CloseCode.ABNORMAL)  # during our own close

    async def _write_frames(self, frames: list[Any]) -> bool:
        """Write the outbox's ``frames`` in one write, where the server's link can.

        Returns:
            ``False`` if it cannot (nothing was written: write them one by one).

        Raises:
            WebSocketDisconnect: The client is gone.
        """
        link = self._link
        if link is None:
            return False
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            written = await link.send_many([frame.message for frame in frames])
        except OSError:  # ASGI: the client is gone
            raise self._client_gone() from None
        await trio.lowlevel.cancel_shielded_checkpoint()
        return written

    @staticmethod
    def _checkpointed(send: Send) -> Send:
        """``send`` made a checkpoint, for servers whose send may return without one."""

        async def checkpointed(message: Message) -> None:
            await trio.lowlevel.checkpoint_if_cancelled()
            await send(message)
            await trio.lowlevel.cancel_shielded_checkpoint()

        return checkpointed

    # -- sending without waiting -----------------------------------------------------------

    def _fan_out(self, text: str) -> bool:
        """``push_text`` for a channel's fan-out: into an idle connection, written at once.

        Where the server's link can (hypercorn, plain TCP), a frame for a connection with
        nothing queued is written to its socket without waking the outbox's writer; what the
        socket does not take is queued first in the outbox. Otherwise it is pushed.
        """
        link = self._link
        outbox = self._outbox
        if (
            link is not None
            and self._conn_state is WebSocketState.CONNECTED
            and self._nursery is not None
            and (outbox is None or not outbox.busy)
        ):
            rest = link.write_now(text)
            if rest is not None:
                if rest:
                    message = {"type": "triows.rest", "data": rest}
                    if outbox is None:
                        outbox = self._outbox = Outbox(self, self._settings.outbox)
                    outbox.push(message, len(rest))  # into an empty outbox: never refused
                elif outbox is not None:
                    outbox.progressed_at = trio.current_time()
                return True
        return self.push_text(text)

    def push_text(self, data: str) -> bool:
        """Queue a text frame in the connection's outbox and return at once.

        For fan-out: one task can push to many connections without waiting for any. A writer
        task of the connection sends queued frames in order; the route's outbox policy decides
        what happens when a client cannot keep up (``docs/limits.md``).

        Returns:
            Whether the frame was queued: ``False`` if the policy dropped it or the connection
            has ended (it is closed as a slow consumer with the ``close`` policy).

        Raises:
            WebSocketStateError: Before ``accept()``, or outside a connection an App serves.
            trio.WouldBlock: The policy is ``block`` and the outbox is over a limit.
        """
        if not isinstance(data, str):
            raise TypeError(f"push_text() takes str, got {type(data).__name__}")
        return self._push({"type": "websocket.send", "text": data}, len(data))

    def push_bytes(self, data: bytes) -> bool:
        """Queue a binary frame in the outbox and return at once; see :meth:`push_text`."""
        if type(data) is not bytes:
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise TypeError(f"push_bytes() takes bytes, got {type(data).__name__}")
            data = bytes(data)
        return self._push({"type": "websocket.send", "bytes": data}, len(data))

    def push_json(self, data: Any, mode: Mode = "text") -> bool:
        """Queue ``data`` as compact JSON; see :meth:`push_text`.

        To push one message to many connections, serialise it once and ``push_text`` it.
        """
        if mode == "text":
            return self.push_text(pydantic_core.to_json(data).decode("utf-8"))
        if mode == "binary":
            return self.push_bytes(pydantic_core.to_json(data))
        raise _bad_mode()

    def _push(self, message: Message, size: int) -> bool:
        if self._conn_state is WebSocketState.CONNECTING:
            raise self._state_error("push", WebSocketState.CONNECTED)
        if self._nursery is None and self._timers is not None:
            return False  # the handler has ended: its writer is gone, the close comes next
        outbox = self._outbox
        if outbox is None:
            if self._conn_state is not WebSocketState.CONNECTED:
                return False
            outbox = self._outbox = Outbox(self, self._settings.outbox)
        return outbox.push(message, size)

    async def drain(self) -> None:
        """Wait until the outbox is at most half full (or the connection has ended).

        With the ``block`` policy, ``await websocket.drain()`` before ``push_*`` waits for
        room instead of getting ``trio.WouldBlock``.
        """
        if self._outbox is None:
            await trio.lowlevel.checkpoint()
            return
        await self._outbox.drain()

    # -- state checks (off the hot path) ---------------------------------------------------

    def _not_a_connect(self, message: Message) -> None:
        """Raise what the first ASGI message means when it is not ``websocket.connect``."""
        if message["type"] == "websocket.disconnect":
            raise self._disconnect()
        raise RuntimeError(f"expected ASGI 'websocket.connect', got {message['type']!r}")

    def _state_error(self, action: str, expected: WebSocketState) -> WebSocketStateError:
        hint = ""
        if self._conn_state is WebSocketState.CONNECTING:
            hint = "; call 'await websocket.accept()' first"
        return WebSocketStateError(
            f"{action} needs the websocket {expected.name}, but it is {self._conn_state.name}{hint}"
        )

    async def _check_receivable(self, iterating: bool, raw: bool) -> None:
        """Return if a receive may go on although the connection is not ``CONNECTED``.

        What the client sent before it left is still delivered, then (to ``receive()``) its
        disconnect once; every other receive on an ended connection ends the iteration or
        raises :class:`~triows.WebSocketDisconnect`.
        """
        state = self._conn_state
        if state is WebSocketState.CONNECTING or state is WebSocketState.DENIED:
            raise self._state_error("receiving", WebSocketState.CONNECTED)
        inbox = self._inbox
        if state is WebSocketState.DISCONNECTED and inbox.pending:
            return
        if raw:
            if inbox.end_taken:
                # As Starlette: the raw disconnect message comes once; asking again is a bug.
                await trio.lowlevel.checkpoint()
                raise WebSocketStateError(
                    'Cannot call "receive" once a disconnect message has been received.'
                )
            if state is not WebSocketState.CLOSED:
                return
        if state is WebSocketState.DISCONNECTED and not inbox.final:
            return  # the server is still answering the peer's close: its end comes next
        if iterating:
            raise StopAsyncIteration  # the loop ends: nothing to spin on
        await trio.lowlevel.checkpoint()  # a loop that catches this must still yield
        raise self._disconnect()

    async def _refuse_send(self) -> None:
        state = self._conn_state
        if (
            state is WebSocketState.DISCONNECTED
            or state is WebSocketState.CLOSING
            or (state is WebSocketState.CLOSED and self._deadline is not None)  # a drain's close
        ):
            await trio.lowlevel.checkpoint()  # a loop that catches this must still yield
            raise self._disconnect()
        raise self._state_error("sending", WebSocketState.CONNECTED)
