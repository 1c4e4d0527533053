"""Liveness: the idle timeout, the heartbeat, and the timers behind them (triows/_timers.py).

Everything here runs under trio's ``MockClock`` with autojump: minutes of silence take no time,
and the moment each close happens is exact. ``tests/test_faults.py`` checks the same on a real
hypercorn with real time.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
import support
import trio
import trio.testing

from triows import App, Controller, ControllerBase, WebSocket, WebSocketDisconnect, ws_route
from triows._timers import GRID, Timers
from triows.testing import AsyncWebSocketTestSession

#: The idle timeout of the routes here, in (mock) seconds.
IDLE = 60.0


def make_app(ends: list[tuple[float, int | None, str]], **config: Any) -> App:
    @Controller("")
    class Live(ControllerBase):
        @ws_route("/echo")
        async def echo(self, websocket: WebSocket) -> None:
            await websocket.accept()
            try:
                async for text in websocket.iter_text():
                    await websocket.send_text(f"echo {text}")
            finally:
                ended = (websocket.close_code, websocket.close_reason)
                ends.append((trio.current_time(), *ended))

        @ws_route("/fast", idle_timeout=5)
        async def fast(self, websocket: WebSocket) -> None:
            await self.echo(websocket)

    return App(controllers=[Live], config={"WEBSOCKET_IDLE_TIMEOUT": IDLE, **config})


def connected(
    app: App, path: str = "/echo", *, lifespan: bool = True
) -> AbstractAsyncContextManager[AsyncWebSocketTestSession]:
    """A session on ``app`` whose client waits (mock) minutes for a message."""
    return support.connected(app, path, client_timeout=1000, lifespan=lifespan)


@pytest.mark.parametrize("lifespan", [True, False])
async def test_a_silent_client_is_closed_between_one_and_one_and_a_half_timeouts(
    autojump_clock: trio.testing.MockClock, lifespan: bool
) -> None:
    # Without the app's lifespan (no app nursery), the connection keeps a timer task itself.
    ends: list[tuple[float, int | None, str]] = []
    async with connected(make_app(ends), lifespan=lifespan) as ws:
        start = trio.current_time()
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive()
        waited = trio.current_time() - start
    assert (closed.value.code, closed.value.reason) == (1001, "idle timeout")
    assert IDLE <= waited <= IDLE * 1.5
    assert [(code, reason) for _, code, reason in ends] == [(1001, "idle timeout")]


async def test_each_frame_restarts_the_silence(autojump_clock: trio.testing.MockClock) -> None:
    ends: list[tuple[float, int | None, str]] = []
    async with connected(make_app(ends)) as ws:
        for n in range(5):  # every 50 s for 250 s: never silent for 60
            await trio.sleep(IDLE - 10)
            await ws.send_text(str(n))
            assert await ws.receive_text() == f"echo {n}"
        last = trio.current_time()
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive()
    assert closed.value.code == 1001
    assert IDLE <= trio.current_time() - last <= IDLE * 1.5


async def test_a_route_sets_its_own_idle_timeout(autojump_clock: trio.testing.MockClock) -> None:
    ends: list[tuple[float, int | None, str]] = []
    async with connected(make_app(ends), "/fast") as ws:
        start = trio.current_time()
        with pytest.raises(WebSocketDisconnect):
            await ws.receive()
    assert 5 <= trio.current_time() - start <= 7.5


async def test_no_idle_timeout_keeps_a_silent_client(
    autojump_clock: trio.testing.MockClock,
) -> None:
    ends: list[tuple[float, int | None, str]] = []
    async with connected(make_app(ends, WEBSOCKET_IDLE_TIMEOUT=None)) as ws:
        await ws.assert_no_message(within=3600)
        await ws.send_text("still here")
        assert await ws.receive_text() == "echo still here"


async def test_the_heartbeat_is_answered_by_triows_and_keeps_the_client(
    autojump_clock: trio.testing.MockClock,
) -> None:
    ends: list[tuple[float, int | None, str]] = []
    app = make_app(ends, WEBSOCKET_HEARTBEAT=("hb", "hb-ok"))
    async with connected(app) as ws:
        for _ in range(4):
            await trio.sleep(IDLE - 1)
            await ws.send_text("hb")
            assert await ws.receive_text() == "hb-ok"  # not "echo hb": the handler never saw it
        await ws.send_text("hello")
        assert await ws.receive_text() == "echo hello"
    assert [(code, reason) for _, code, reason in ends] == [(1000, "")]


# -- the timers ------------------------------------------------------------------------------


async def test_timers_call_in_time_order_and_skip_cancelled_ones(
    autojump_clock: trio.testing.MockClock,
) -> None:
    timers = Timers()
    calls: list[tuple[str, float]] = []

    def call(name: str) -> None:
        calls.append((name, trio.current_time()))

    async with trio.open_nursery() as nursery:
        await nursery.start(timers.run)
        start = trio.current_time()
        timers.call_later(10, call, "ten")
        timers.call_later(30, call, "thirty")
        skipped = timers.call_later(20, call, "twenty")
        await trio.sleep(5)
        timers.call_later(1, call, "six")  # earlier than what the task sleeps until
        skipped.cancel()
        await trio.sleep(60)
        nursery.cancel_scope.cancel()
    assert [name for name, _ in calls] == ["six", "ten", "thirty"]
    for (_, when), due in zip(calls, (6, 10, 30), strict=True):
        assert start + due <= when <= start + due + GRID  # never early, at most a grid late


async def test_timers_due_in_one_slot_are_called_in_one_wake_up(
    autojump_clock: trio.testing.MockClock,
) -> None:
    timers = Timers()
    calls: list[float] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(timers.run)
        for n in range(100):
            timers.call_later(1 + n * GRID / 200, lambda: calls.append(trio.current_time()))
        await trio.sleep(2)
        nursery.cancel_scope.cancel()
    assert len(calls) == 100
    assert len(set(calls)) <= 2


async def test_cancelled_timers_are_dropped_in_bulk() -> None:
    timers = Timers()
    for _ in range(200):
        timers.call_later(60, print).cancel()
    timers.call_later(60, print)
    assert len(timers._heap) < 100
    assert not timers.running


async def test_a_failing_timer_is_logged_and_the_others_still_run(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    timers = Timers()
    calls: list[str] = []

    def fail() -> None:
        raise RuntimeError("boom")

    async with trio.open_nursery() as nursery:
        await nursery.start(timers.run)
        timers.call_later(1, fail)
        timers.call_later(2, calls.append, "later")
        await trio.sleep(3)
        nursery.cancel_scope.cancel()
    assert calls == ["later"]
    assert [(r.name, r.getMessage()) for r in caplog.records] == [("triows", "a timer failed")]


async def test_lingering_keys_are_called_unless_released_with_one_sweep(
    autojump_clock: trio.testing.MockClock,
) -> None:
    timers = Timers()
    calls: list[tuple[str, float]] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(timers.run)
        start = trio.current_time()
        for name in ("a", "b", "c"):
            timers.linger(name, 5, lambda name=name: calls.append((name, trio.current_time())))
        timers.linger("a", 50, lambda: calls.append(("a again", 0)))  # the first moment stands
        timers.release("b")
        await trio.sleep(2)
        timers.linger("d", 5, lambda: calls.append(("d", trio.current_time())))
        await trio.sleep(10)
        nursery.cancel_scope.cancel()
    assert [name for name, _ in calls] == ["a", "c", "d"]
    assert start + 5 <= calls[0][1] == calls[1][1] <= start + 5 + GRID
    assert start + 7 <= calls[2][1] <= start + 7 + GRID
    assert len(timers._heap) <= 1  # one sweep at a time, not a timer per key


async def test_a_sooner_linger_is_not_kept_waiting_and_a_failing_one_spares_the_rest(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    timers = Timers()
    calls: list[tuple[str, float]] = []

    def fail() -> None:
        raise RuntimeError("boom")

    async with trio.open_nursery() as nursery:
        await nursery.start(timers.run)
        start = trio.current_time()
        timers.linger("late", 60, lambda: calls.append(("late", trio.current_time())))
        timers.linger("soon", 1, lambda: calls.append(("soon", trio.current_time())))
        timers.linger("fails", 2, fail)
        timers.linger("after", 2, lambda: calls.append(("after", trio.current_time())))
        await trio.sleep(61)
        nursery.cancel_scope.cancel()
    assert [(name, round(when - start)) for name, when in calls] == [
        ("soon", 1), ("after", 2), ("late", 60)
    ]  # fmt: skip
    assert [r.getMessage() for r in caplog.records] == ["a timer failed"]
