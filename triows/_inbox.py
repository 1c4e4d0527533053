"""What the server has delivered to one connection and its handler has not taken yet.

How it works: the server hands every message to :meth:`Inbox.put` the moment it has it. On
hypercorn's trio worker that is hypercorn's own reader task calling it in place of its queue
(see ``_hypercorn.py``); on any other server a small task of the connection (:func:`pump`)
receives from the ASGI ``receive`` and puts. So a ``websocket.disconnect`` is seen when it
happens, whatever the handler is doing: sending in a loop, awaiting something else, or
nothing. A handler waiting in :meth:`get` is handed the message directly; otherwise up to
``limit`` messages wait here, and then the server's reader waits in ``put`` (TCP backpressure
slows the client down) — except that the end of the connection never waits: it is the message
a blocked send may itself be delivering (hypercorn reports a failed write from inside the
send).

Once the connection has ended, data messages still queued are given to the handler before the
end; whatever arrives after the end is dropped.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import trio
from outcome import Value

from ._types import Message, Receive

__all__ = ["Inbox", "pump"]


class Inbox:
    """The messages of one connection between the server and the handler.

    Args:
        limit: How many data messages may wait for the handler before ``put`` waits.
        on_end: Called with the ``websocket.disconnect`` message when the server delivers it.
        max_size: Data messages longer than this (bytes, or characters for text) are not
            delivered: ``on_too_big`` is called instead. ``None`` when the server enforces it.
        on_too_big: See ``max_size``.
        direct: Receive straight from this ASGI ``receive`` instead, in the handler's task
            (for a ``WebSocket`` that no App route serves: nothing is taken ahead of it).
    """

    __slots__ = (
        "_busy",
        "_deaf",
        "_direct",
        "_ended",
        "_final_event",
        "_left_event",
        "_limit",
        "_max_size",
        "_on_end",
        "_on_too_big",
        "_peer_left",
        "_queue",
        "_space",
        "_waiter",
        "end_taken",
        "final",
        "frames",
        "heartbeat",
    )

    def __init__(
        self,
        limit: int,
        on_end: Callable[[Message], None],
        max_size: int | None = None,
        on_too_big: Callable[[], None] | None = None,
        direct: Receive | None = None,
    ) -> None:
        self._limit = limit
        self._on_end = on_end
        self._max_size = max_size
        self._on_too_big = on_too_big
        self._queue: deque[Message] | None = None  # made on first need: most never queue
        self._space: trio.lowlevel.ParkingLot | None = None
        self._waiter: trio.lowlevel.Task | None = None
        self._busy = False
        self._deaf = False
        self._ended: Message | None = None
        self._peer_left: Message | None = None
        self._left_event: trio.Event | None = None
        self._final_event: trio.Event | None = None
        #: Whether the server has delivered the end of the stream (it is done with it).
        self.final = False
        self._direct = direct
        #: Whether ``receive()`` has returned the end message (it does so once).
        self.end_taken = False
        #: Frames received so far (data, and on hypercorn pings and pongs): liveness reads it.
        self.frames = 0
        #: ``(ping, answer)``: a text message ``ping`` is answered, not delivered.
        self.heartbeat: tuple[str, Callable[[], Any]] | None = None

    @property
    def pending(self) -> int:
        """Data messages waiting for the handler."""
        return len(self._queue) if self._queue else 0

    @property
    def ended(self) -> bool:
        """Whether the end of the connection has been delivered (or decided)."""
        return self._ended is not None

    # -- the server's side -----------------------------------------------------------------

    async def put(self, message: Message) -> None:
        """Deliver one ASGI message from the server.

        Not a schedule point unless it must wait for room: the server's reader goes straight
        back to its socket, which is a checkpoint of its own.
        """
        if message["type"] != "websocket.receive":
            self.end(message)
            return
        self.frames += 1
        if self._ended is not None or self._deaf:  # after the end, or nobody reads: dropped
            return
        if self._max_size is not None and _size(message) > self._max_size:
            assert self._on_too_big is not None
            self._on_too_big()
            return
        heartbeat = self.heartbeat
        if heartbeat is not None and message.get("text") == heartbeat[0]:
            await heartbeat[1]()
            return
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            trio.lowlevel.reschedule(waiter, Value(message))
            return
        queue = self._queue
        if queue is None:
            queue = self._queue = deque()
        while len(queue) >= self._limit:
            if self._space is None:
                self._space = trio.lowlevel.ParkingLot()
            await self._space.park()
            if self._closed_for_data():  # it may have changed while we waited
                return
        queue.append(message)

    def _closed_for_data(self) -> bool:
        return self._ended is not None or self._deaf

    def end(self, message: Message, *, final: bool = True) -> None:
        """The server reports the end of the connection (``message``, a disconnect).

        With ``final=False`` the peer's close frame has arrived but the server is still
        answering it (hypercorn): the peer counts as gone (``on_end`` is called, sends stop) but
        a waiting handler is woken only by the final end, once the server is done with the
        stream. The first message is the one the handler gets (it has the real close code).
        """
        first = self._peer_left is None
        if first:
            self._peer_left = message
            if self._left_event is not None:
                self._left_event.set()
            self._on_end(message)
        if final and not self.final:
            self.final = True
            if self._final_event is not None:
                self._final_event.set()
            assert self._peer_left is not None
            self.interrupt(self._peer_left, drop=False)

    def interrupt(self, message: Message, *, drop: bool = True) -> None:
        """The connection is over (triows decided it): wake the handler with ``message``.

        What arrives from now on is not queued; with ``drop``, what is queued is dropped too
        (the peer's own end keeps it: what the client sent before leaving is delivered).
        """
        if self._ended is not None:
            return
        self._ended = message
        if drop and self._queue:
            self._queue.clear()
        if self._space is not None:
            self._space.unpark_all()
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            trio.lowlevel.reschedule(waiter, Value(message))

    @property
    def peer_left(self) -> bool:
        """Whether the server has reported that the peer left."""
        return self._peer_left is not None

    async def wait_final(self) -> None:
        """Wait until the server is done with the stream (it has delivered its end)."""
        if not self.final:
            if self._final_event is None:
                self._final_event = trio.Event()
            await self._final_event.wait()

    async def wait_peer_left(self) -> None:
        """Wait until the peer has left (its close answered ours, say)."""
        if self._peer_left is None:
            if self._left_event is None:
                self._left_event = trio.Event()
            await self._left_event.wait()

    def stop_reading(self) -> None:
        """The handler will not read any more (it closed, or ended): nothing waits for room.

        Queued data is dropped and data that comes is dropped, so the server's reader is never
        left parked in :meth:`put` (it must go on reading, to see the client's close).
        """
        self._deaf = True
        if self._queue:
            self._queue.clear()
        if self._space is not None:
            self._space.unpark_all()

    def detach(self) -> None:
        """The connection is done with this inbox: drop the callbacks into it (and the cycle)."""
        self.stop_reading()
        self._on_end = _nothing
        self._on_too_big = None
        self._max_size = None
        self.heartbeat = None

    # -- the handler's side ----------------------------------------------------------------

    async def get(self) -> Message:
        """The next message: queued data first, then the end (as often as asked).

        Raises:
            trio.BusyResourceError: Another task is already waiting here.
        """
        if self._busy or self._waiter is not None:
            raise trio.BusyResourceError("another task is already receiving on this websocket")
        queue = self._queue
        if queue:
            await trio.lowlevel.checkpoint_if_cancelled()
            message = queue.popleft()
            if self._space is not None:
                self._space.unpark()
            self._busy = True
            try:
                await trio.lowlevel.cancel_shielded_checkpoint()
            finally:
                self._busy = False
            return message
        if self._ended is not None:
            await trio.lowlevel.checkpoint()
            return self._ended
        if self._direct is not None:
            return await self._receive_directly(self._direct)
        self._waiter = trio.lowlevel.current_task()
        delivered: Message = await trio.lowlevel.wait_task_rescheduled(self._abort)
        return delivered

    async def _receive_directly(self, receive: Receive) -> Message:
        self._busy = True
        try:
            message = await receive()
        finally:
            self._busy = False
        if message["type"] == "websocket.disconnect":
            self.end(message)
        return message

    def _abort(self, _: Any) -> trio.lowlevel.Abort:
        self._waiter = None
        return trio.lowlevel.Abort.SUCCEEDED


def _nothing(_: Message) -> None:
    pass


def _size(message: Message) -> int:
    text = message.get("text")
    if text is not None:
        return len(text)
    data = message.get("bytes")
    return len(data) if data is not None else 0


async def pump(receive: Receive, inbox: Inbox) -> None:
    """Move messages from an ASGI ``receive`` into ``inbox`` until the disconnect."""
    while True:
        message = await receive()
        await inbox.put(message)
        if message["type"] != "websocket.receive":
            return
