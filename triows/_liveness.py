"""The idle timeout: a connection whose client has gone silent is closed with 1001."""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from ._state import WebSocketState
from .errors import CloseCode

if TYPE_CHECKING:
    from ._timers import Timer, Timers
    from .websocket import WebSocket

__all__ = ["IdleWatch"]


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
