"""The app's connections and their pings (``triows/_registry.py``), on a mock clock."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import trio
import trio.testing

from triows._registry import PHASES, Connections
from triows._state import WebSocketState
from triows._timers import Timers


class Link:
    pings = True

    def __init__(self, stuck: bool = False) -> None:
        self.at: list[float] = []
        self.stuck = stuck

    async def ping(self) -> None:
        self.at.append(trio.current_time())
        if self.stuck:  # a write to a client that stopped reading
            await trio.sleep_forever()


class Settings:
    def __init__(self, ping_interval: float | None) -> None:
        self.ping_interval = ping_interval


class Connection:
    """What the registry reads of a ``WebSocket``."""

    def __init__(self, interval: float | None = 1.0, **link: Any) -> None:
        self._link = Link(**link)
        self._settings = Settings(interval)
        self._conn_state = WebSocketState.CONNECTED


async def run_for(seconds: float, *connections: Connection, ended: tuple[Connection, ...] = ()):
    timers = Timers()
    async with trio.open_nursery() as nursery:
        await nursery.start(timers.run)
        registry = Connections(timers)
        for connection in (*connections, *ended):
            registry.add(connection)  # type: ignore[arg-type]
        for connection in ended:
            registry.discard(connection)  # type: ignore[arg-type]
        assert len(registry) == len(connections)
        assert sorted(map(id, registry)) == sorted(map(id, connections))
        await trio.sleep(seconds)
        nursery.cancel_scope.cancel()


async def test_each_connection_is_pinged_once_per_interval(
    autojump_clock: trio.testing.MockClock,
) -> None:
    connections = [Connection(1.0) for _ in range(4 * PHASES)]
    await run_for(10.05, *connections)
    for connection in connections:
        at = connection._link.at
        assert len(at) in (9, 10)
        gaps = {round(b - a, 6) for a, b in itertools.pairwise(at)}
        assert gaps == {1.0}  # exactly the interval
        assert at[0] <= 1.0 + 1.0 / PHASES  # the first within an interval (and an eighth)


async def test_a_ping_still_being_written_is_not_followed_by_another(
    autojump_clock: trio.testing.MockClock,
) -> None:
    stuck = Connection(1.0, stuck=True)
    await run_for(10.0, stuck)
    assert len(stuck._link.at) == 1


async def test_ended_unaccepted_and_unpinged_connections_get_no_ping(
    autojump_clock: trio.testing.MockClock,
) -> None:
    waiting = Connection(1.0)
    waiting._conn_state = WebSocketState.CONNECTING
    closing = Connection(1.0)
    closing._conn_state = WebSocketState.CLOSING
    no_pings = Connection(None)
    ended = Connection(1.0)
    await run_for(5.0, waiting, closing, no_pings, ended=(ended,))
    for connection in (waiting, closing, no_pings, ended):
        assert connection._link.at == []


@pytest.mark.parametrize("interval", [0.25, 0.5, 2.0])
async def test_each_interval_has_its_own_wheel(
    interval: float, autojump_clock: trio.testing.MockClock
) -> None:
    fast, slow = Connection(interval), Connection(interval * 4)
    await run_for(interval * 8 + 0.01, fast, slow)
    assert len(fast._link.at) in (7, 8)
    assert len(slow._link.at) in (1, 2)
    gaps = {round(b - a, 6) for a, b in itertools.pairwise(fast._link.at)}
    assert gaps == {interval}
