"""The open connections of an app, and the pings they get, for a few bytes each.

Each connection is one entry in one of :data:`PHASES` sets per ping interval (a wheel); the
app's timers sweep one set of the wheel every ``interval / PHASES`` seconds and ping the
accepted connections in it, so every connection is pinged once per interval (at most an eighth
of it late), by one timer per interval for the whole app instead of a timer (or, as hypercorn
does, a task) per connection. The drain (``_drain.py``) walks the same sets.

A ping is written by a task of its own, so that one stuck on a client that stopped reading
holds up no other; a connection whose last ping is still being written is not pinged again.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import trio

from ._logging import logger
from ._state import WebSocketState
from ._timers import GRID

if TYPE_CHECKING:
    from ._timers import Timer, Timers
    from .websocket import WebSocket

__all__ = ["PHASES", "Connections"]

#: Sets per wheel: a sweep pings about ``1 / PHASES`` of the connections at once (fewer sets
#: for an interval under ``PHASES`` timer ticks, so that sweeps are not rounded apart).
PHASES = 8


class _Wheel:
    __slots__ = ("interval", "next", "phases", "step", "timer")

    def __init__(self, interval: float | None) -> None:
        self.interval = interval
        count = PHASES if interval is None else max(1, min(PHASES, int(interval / GRID)))
        self.phases: list[set[WebSocket]] = [set() for _ in range(count)]
        #: Seconds between two sweeps.
        self.step = 0.0 if interval is None else interval / count
        self.next = 0
        self.timer: Timer | None = None

    def phase(self, websocket: WebSocket) -> set[WebSocket]:
        return self.phases[hash(websocket) % len(self.phases)]


class Connections:
    """The open connections of an app (those past the start of their handshake).

    Args:
        timers: The app's timers: they run the sweeps, and their nursery the pings.
    """

    __slots__ = ("_count", "_pinging", "_timers", "_wheels")

    def __init__(self, timers: Timers) -> None:
        self._timers = timers
        self._wheels: dict[float | None, _Wheel] = {}
        self._count = 0
        self._pinging: set[WebSocket] = set()

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[WebSocket]:
        for wheel in self._wheels.values():
            for phase in wheel.phases:
                yield from phase

    def _interval(self, websocket: WebSocket) -> float | None:
        """How often ``websocket`` is pinged: only where the server can (``Link.ping``)."""
        link = websocket._link
        return websocket._settings.ping_interval if link is not None and link.pings else None

    def add(self, websocket: WebSocket) -> None:
        """Count ``websocket`` in (and ping it, once accepted, every ping interval)."""
        interval = self._interval(websocket)
        wheel = self._wheels.get(interval)
        if wheel is None:
            wheel = self._wheels[interval] = _Wheel(interval)
        phase = wheel.phase(websocket)
        if websocket not in phase:
            phase.add(websocket)
            self._count += 1
        if interval is not None and wheel.timer is None and self._timers.running:
            wheel.timer = self._timers.call_later(wheel.step, self._sweep, wheel)

    def discard(self, websocket: WebSocket) -> None:
        """``websocket`` has ended."""
        wheel = self._wheels.get(self._interval(websocket))
        if wheel is not None:
            phase = wheel.phase(websocket)
            if websocket in phase:
                phase.discard(websocket)
                self._count -= 1

    def stop(self) -> None:
        """No more sweeps (the app's timers stop); the sets stay as they are."""
        for wheel in self._wheels.values():
            if wheel.timer is not None:
                wheel.timer.cancel()
                wheel.timer = None

    def _sweep(self, wheel: _Wheel) -> None:
        """A timer: ping the accepted connections of the wheel's next set."""
        phase = wheel.phases[wheel.next]
        wheel.next = (wheel.next + 1) % len(wheel.phases)
        nursery = self._timers.nursery
        pinging = self._pinging
        for websocket in phase:
            if websocket._conn_state is WebSocketState.CONNECTED and websocket not in pinging:
                pinging.add(websocket)
                nursery.start_soon(self._ping, websocket)
        if any(wheel.phases):
            wheel.timer = self._timers.call_later(wheel.step, self._sweep, wheel)
        else:
            wheel.timer = None  # the next connection starts it again

    async def _ping(self, websocket: WebSocket) -> None:
        try:
            link = websocket._link
            if link is not None:
                await link.ping()
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the peer is gone: the connection hears of it from the server
        except Exception:  # a server that changed under us must not take the app down
            logger.exception("a ping failed")
        finally:
            self._pinging.discard(websocket)
