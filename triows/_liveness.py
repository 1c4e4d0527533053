"""Liveness: pings to the client, and the idle timeout that closes a silent one with 1001."""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from ._logging import logger
from ._state import WebSocketState
from .errors import CloseCode

if TYPE_CHECKING:
    from ._links import Link
    from ._timers import Timer, Timers
    from .websocket import WebSocket

__all__ = ["IdleWatch", "Pinger"]


class IdleWatch:
    """Closes its connection with 1001 once the client has been silent for ``timeout``.

    A timer checks every quarter of the timeout whether the count of frames received moved; it
    closes when it has not for a whole ``timeout``. So a silent client is closed after
    ``timeout`` to ``1.5 * timeout`` seconds of silence, never before.
    """

    __slots__ = ("_quiet_since", "_seen", "_timer", "_timers", "_websocket", "timeout")

    def __init__(self, websocket: WebSocket, timers: Timers, timeout: float) -> None:
        self._websocket = websocket
        self._timers = timers
        self.timeout = timeout
        self._seen = websocket._inbox.frames
        self._quiet_since = trio.current_time()
        self._timer: Timer | None = timers.call_later(timeout / 4, self._check)

    def _check(self) -> None:
        websocket = self._websocket
        if websocket._conn_state is not WebSocketState.CONNECTED:
            self._timer = None
            return
        now = trio.current_time()
        frames = websocket._inbox.frames
        if frames != self._seen:
            self._seen, self._quiet_since = frames, now
        elif now - self._quiet_since >= self.timeout:
            self._timer = None
            websocket._end(CloseCode.GOING_AWAY, "idle timeout")
            return
        self._timer = self._timers.call_later(self.timeout / 4, self._check)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class Pinger:
    """Sends the client a ping every ``interval`` seconds, through the server's link.

    A timer, not a task: nothing runs between pings. A ping still being written (to a client
    that stopped reading) is not followed by another.
    """

    __slots__ = ("_busy", "_link", "_timer", "_timers", "interval")

    def __init__(self, link: Link, timers: Timers, interval: float) -> None:
        self._link = link
        self._timers = timers
        self.interval = interval
        self._busy = False
        self._timer: Timer | None = timers.call_later(interval, self._due)

    def _due(self) -> None:
        if not self._busy:
            self._busy = True
            self._timers.nursery.start_soon(self._ping)
        self._timer = self._timers.call_later(self.interval, self._due)

    async def _ping(self) -> None:
        try:
            await self._link.ping()
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the peer is gone: the connection hears of it from the server
        except Exception:  # a server that changed under us must not take the app down
            logger.exception("a ping failed")
            self.stop()
        finally:
            self._busy = False

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
