"""The drain: when the server stops, every open websocket is told at once and given time.

One :class:`Drain` per app keeps the app's open connections (``_registry.Connections``, which
also pings them). A drain
begins when the server starts to stop (on hypercorn's trio worker: the moment it stops accepting
connections, the worker event ``context.terminated``; from code: :meth:`App.drain
<triows.App.drain>`):

1. every accepted connection is ended with its route's shutdown code (``1012`` "service
   restart" unless configured): the handler's ``receive`` raises
   :class:`~triows.WebSocketDisconnect` with that code, its sends raise it, and the close frame
   is sent at once by a task of the app, whatever the handler is doing;
2. a handshake still being admitted is refused when its handler ends, and one that arrives
   during the drain is refused with HTTP 503;
3. handlers have until the drain timeout (``WEBSOCKET_DRAIN_TIMEOUT``; at most the server's own
   grace less :data:`MARGIN`, or less a quarter of it if that is smaller) to return: their
   ``finally:`` blocks and disconnect hooks run with the code; then what still runs is
   cancelled and, on hypercorn, its TCP connection is cut (a client that stopped reading cannot
   hold the process).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from ._logging import logger
from ._registry import Connections

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ._timers import Timers
    from .websocket import WebSocket

__all__ = ["MARGIN", "Drain"]

#: Seconds of the server's own grace left for triows to cut what is still running before the
#: server cancels it (which would not end a write stuck on a client that stopped reading).
MARGIN = 0.5

#: The reason of every drain's close frame.
REASON = "server shutting down"


class Drain:
    """The open connections of one app, and telling them all that the server stops.

    Args:
        timers: The app's timers: their nursery runs the close frames and the watch.
        timeout: Seconds handlers get once told (``WEBSOCKET_DRAIN_TIMEOUT``).
    """

    __slots__ = (
        "_cut",
        "_empty",
        "_last_end",
        "_timers",
        "_watching",
        "connections",
        "deadline",
        "timeout",
    )

    def __init__(self, timers: Timers, timeout: float) -> None:
        self._timers = timers
        self.timeout = timeout
        #: The connections past their handshake's start that have not ended.
        self.connections = Connections(timers)
        #: When the drain ends (handlers are cancelled); ``None`` until one begins.
        self.deadline: float | None = None
        self._watching = False
        self._empty = trio.Event()
        self._last_end = 0.0
        self._cut = 0

    def reset(self) -> None:
        """The app starts (again): no drain, and the next server's stop is watched anew."""
        self.deadline = None
        self._cut = 0
        self._watching = False
        self._empty = trio.Event()
        self.connections.stop()  # the sweeps of the earlier run's timers

    @property
    def draining(self) -> bool:
        """Whether a drain has begun."""
        return self.deadline is not None

    def admit(self, websocket: WebSocket) -> bool:
        """Count ``websocket`` in; ``False`` if a drain has begun (refuse it with 503)."""
        if self.deadline is not None:
            return False
        self.connections.add(websocket)
        if not self._watching:
            self._watch(websocket)
        return True

    def discard(self, websocket: WebSocket) -> None:
        """``websocket`` has ended."""
        self.connections.discard(websocket)
        if self.deadline is not None:
            self._last_end = now = trio.current_time()
            if now >= self.deadline:
                self._cut += 1  # it was still running when the drain timed out
            if not self.connections:
                self._empty.set()

    def _watch(self, websocket: WebSocket) -> None:
        """Begin a drain when the server that carries ``websocket`` begins to stop."""
        link = websocket._link
        if link is None or not self._timers.running:
            return
        stopping = link.server_stopping()
        if stopping is None:
            return
        self._watching = True
        wait, grace = stopping
        self._timers.nursery.start_soon(self._on_stop, wait, grace)

    async def _on_stop(self, wait: Callable[[], Awaitable[object]], grace: float) -> None:
        await wait()
        self.begin(max(0.0, min(self.timeout, grace - min(MARGIN, grace / 4))))

    def begin(self, timeout: float | None = None) -> None:
        """Tell every open connection that the server stops; a no-op once begun.

        Args:
            timeout: Seconds until handlers still running are cancelled (default: the app's
                ``WEBSOCKET_DRAIN_TIMEOUT``).
        """
        if self.deadline is not None:
            return
        timeout = self.timeout if timeout is None else timeout
        now = trio.current_time()
        self.deadline = deadline = now + timeout
        connections = list(self.connections)
        logger.info(
            "draining %d websocket connection(s): handlers have %.1f s", len(connections), timeout
        )
        for websocket in connections:
            code = websocket._settings.shutdown_code
            if websocket._shut_down(code, REASON, deadline):
                timers = websocket._timers
                if timers is not None and timers.running:
                    timers.nursery.start_soon(websocket._say_goodbye)
        if not self.connections:
            self._empty.set()
        elif self._timers.running:
            self._timers.nursery.start_soon(self._report, now, len(connections))

    async def _report(self, began: float, count: int) -> None:
        """Say how the drain ended: all handlers returned, or some are cancelled and cut."""
        assert self.deadline is not None
        with trio.move_on_at(self.deadline + MARGIN):
            await self._empty.wait()
        cut = self._cut + len(self.connections)  # cut at the deadline, or not even ended yet
        if cut:
            logger.warning(
                "drain: %d of %d connection(s) still running after %.1f s: cancelled and cut",
                cut,
                count,
                self.deadline - began,
            )
        else:
            took = self._last_end - began
            logger.info("drain: all %d connection(s) ended in %.2f s", count, took)
