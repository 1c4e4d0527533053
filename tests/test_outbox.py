"""The outbox (triows/_outbox.py): push, its limits and policies, the writer, ordering.

The policy rows run against a fake connection whose writes wait until the test lets them go:
a client that stopped reading, made exact. The end-to-end tests push through a real app on the
in-process client; ``tests/test_faults.py`` does it on hypercorn with a stalled socket.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing
from support import TIMEOUT, connected, route_app

from triows import (
    OutboxPolicy,
    WebSocket,
    WebSocketDisconnect,
    WebSocketState,
    WebSocketStateError,
)
from triows._outbox import Outbox
from triows._settings import Outbox as Policy


class FakeConnection:
    """What the outbox needs of a connection; each write waits for ``release()``."""

    def __init__(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        self.written: list[str] = []
        self.ended: tuple[int, str] | None = None
        self._gate = trio.Event()
        self.stuck = True

    def _ending(self) -> bool:
        return self.ended is not None

    def _end(self, code: int, reason: str) -> None:
        self.ended = (code, reason)

    def _disconnect(self) -> WebSocketDisconnect:
        assert self.ended is not None
        return WebSocketDisconnect(*self.ended)

    async def _write_frame(self, message: dict[str, Any]) -> None:
        if self.stuck:
            await self._gate.wait()
        self.written.append(message["text"])

    async def _write_frames(self, frames: list[Any]) -> bool:
        await trio.lowlevel.checkpoint()
        return False  # no server link here: the outbox writes them one by one

    def release(self) -> None:
        self.stuck = False
        self._gate.set()


@asynccontextmanager
async def outbox(**policy: Any) -> AsyncIterator[tuple[Outbox, FakeConnection]]:
    limits = {"on_full": "close", "max_messages": 3, "max_bytes": 1000, "max_lag": None}
    async with trio.open_nursery() as nursery:
        connection = FakeConnection(nursery)
        box = Outbox(connection, Policy(**{**limits, **policy}))  # type: ignore[arg-type]
        yield box, connection
        nursery.cancel_scope.cancel()


def text(value: str) -> dict[str, Any]:
    return {"type": "websocket.send", "text": value}


async def push_all(box: Outbox, values: list[str]) -> list[bool]:
    """Push each value; the first is taken by the writer (stuck in its write) at once."""
    results = [box.push(text(values[0]), len(values[0]))]
    await trio.testing.wait_all_tasks_blocked()
    results += [box.push(text(v), len(v)) for v in values[1:]]
    return results


# -- the policies, one row each ----------------------------------------------------------------


async def test_close_evicts_the_connection_once_over_the_messages_limit() -> None:
    async with outbox(on_full="close") as (box, connection):
        assert await push_all(box, ["a", "b", "c", "d", "e"]) == [True, True, True, True, False]
        assert connection.ended == (1013, "slow consumer: more than 3 messages queued")
        assert box.push(text("f"), 1) is False  # ended: nothing more is queued


async def test_drop_newest_keeps_what_is_queued() -> None:
    async with outbox(on_full="drop_newest") as (box, connection):
        assert await push_all(box, ["a", "b", "c", "d", "e"]) == [True, True, True, True, False]
        connection.release()
        await trio.testing.wait_all_tasks_blocked()
        assert connection.written == ["a", "b", "c", "d"]
        assert connection.ended is None


async def test_drop_oldest_keeps_the_latest() -> None:
    async with outbox(on_full="drop_oldest") as (box, connection):
        assert await push_all(box, ["a", "b", "c", "d", "e", "f"]) == [True] * 6
        connection.release()
        await trio.testing.wait_all_tasks_blocked()
        assert connection.written == ["a", "d", "e", "f"]  # "a" was already being written


async def test_block_refuses_with_would_block_until_drained() -> None:
    async with outbox(on_full="block") as (box, connection):
        await push_all(box, ["a", "b", "c", "d"])
        with pytest.raises(trio.WouldBlock):
            box.push(text("e"), 1)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(box.drain)
            await trio.testing.wait_all_tasks_blocked()
            connection.release()  # drain returns once at most half full
        assert box.push(text("e"), 1) is True
        await trio.testing.wait_all_tasks_blocked()
        assert connection.written == ["a", "b", "c", "d", "e"]


async def test_the_bytes_limit_counts_queued_frames() -> None:
    async with outbox(on_full="close", max_messages=100, max_bytes=10) as (box, connection):
        assert await push_all(box, ["x" * 4, "y" * 6, "z" * 4, "w" * 6]) == [True] * 3 + [False]
        assert connection.ended == (1013, "slow consumer: more than 10 bytes queued")


async def test_one_frame_bigger_than_the_bytes_limit_goes_out_alone() -> None:
    async with outbox(max_bytes=10) as (box, connection):
        connection.release()
        assert box.push(text("x" * 50), 50) is True
        await trio.testing.wait_all_tasks_blocked()
        assert connection.written == ["x" * 50]
        assert connection.ended is None


async def test_a_frame_waiting_past_the_lag_limit_evicts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with outbox(on_full="close", max_messages=100, max_lag=2.0) as (box, connection):
        await push_all(box, ["a", "b"])
        await trio.sleep(1.9)
        assert box.push(text("c"), 1) is True
        await trio.sleep(0.2)
        assert box.push(text("d"), 1) is False
        assert connection.ended == (1013, "slow consumer: a message waited more than 2 s")


async def test_drop_oldest_drops_frames_past_the_lag_limit(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with outbox(on_full="drop_oldest", max_messages=100, max_lag=2.0) as (box, connection):
        await push_all(box, ["a", "b", "c"])
        await trio.sleep(3)
        assert box.push(text("d"), 1) is True
        connection.release()
        await trio.testing.wait_all_tasks_blocked()
        assert connection.written == ["a", "d"]


async def test_an_awaited_send_waits_its_turn_and_is_never_dropped() -> None:
    async with outbox(on_full="drop_oldest") as (box, connection):
        await push_all(box, ["a"])
        async with trio.open_nursery() as nursery:
            nursery.start_soon(box.send, text("awaited"), 7)
            await trio.testing.wait_all_tasks_blocked()
            assert [box.push(text(v), 1) for v in "bcd"] == [True, True, True]
            # Over the limit, the oldest pushed frames make room; the awaited one stays.
            assert box.push(text("e"), 1) is True
            connection.release()
        assert connection.written == ["a", "awaited", "d", "e"]


async def test_an_awaited_send_cancelled_while_queued_is_never_sent() -> None:
    async with outbox() as (box, connection):
        await push_all(box, ["a"])
        with trio.move_on_after(0.01):
            await box.send(text("gave up"), 7)
        connection.release()
        await trio.testing.wait_all_tasks_blocked()
        assert connection.written == ["a"]
        assert (len(box), box.bytes) == (0, 0)


async def test_the_end_fails_the_awaited_sends() -> None:
    async with outbox() as (box, connection):
        await push_all(box, ["a"])
        async with trio.open_nursery() as nursery:

            async def send() -> None:
                with pytest.raises(WebSocketDisconnect) as failed:
                    await box.send(text("late"), 4)
                assert (failed.value.code, failed.value.reason) == (1001, "gone")

            nursery.start_soon(send)
            await trio.testing.wait_all_tasks_blocked()
            connection._end(1001, "gone")
            box.fail()


# -- through an app --------------------------------------------------------------------------


async def test_pushes_and_awaited_sends_arrive_in_the_order_given() -> None:
    async def handler(self: Any, websocket: WebSocket) -> None:
        await websocket.accept()
        assert websocket.push_text("1")
        assert websocket.push_bytes(b"2")
        await websocket.send_text("3")  # queued behind 1 and 2
        assert websocket.push_json({"n": 4})
        await websocket.send_bytes(b"5")
        websocket.push_text("6")  # pushed just before returning: still delivered, then 1000

    with trio.fail_after(TIMEOUT):
        async with connected(route_app(handler)) as ws:
            got = [await ws.receive() for _ in range(6)]
            with pytest.raises(WebSocketDisconnect) as closed:
                await ws.receive()
    assert [m.get("text") or m.get("bytes") for m in got] == [
        "1", b"2", "3", '{"n":4}', b"5", "6"
    ]  # fmt: skip
    assert closed.value.code == 1000


async def test_a_burst_over_the_limit_closes_a_slow_consumer_with_1013() -> None:
    async def handler(self: Any, websocket: WebSocket) -> None:
        await websocket.accept()
        results = [websocket.push_text(str(n)) for n in range(6)]  # faster than any writer
        assert results == [True] * 4 + [False, False]  # the fifth would be over 4
        with pytest.raises(WebSocketDisconnect) as ended:
            await websocket.receive_text()
        assert (ended.value.code, ended.value.reason) == (1013, "slow consumer: " + over)

    over = "more than 4 messages queued"
    with trio.fail_after(TIMEOUT):
        async with connected(
            route_app(handler, route={"outbox": OutboxPolicy(max_messages=4)})
        ) as ws:
            with pytest.raises(WebSocketDisconnect) as closed:
                await ws.receive()  # what was queued is dropped: the close comes first
    assert (closed.value.code, closed.value.reason) == (1013, "slow consumer: " + over)


async def test_push_needs_an_accepted_connection_of_an_app() -> None:
    async def handler(self: Any, websocket: WebSocket) -> None:
        with pytest.raises(WebSocketStateError) as early:
            websocket.push_text("too early")
        assert str(early.value) == (
            "push needs the websocket CONNECTED, but it is CONNECTING; "
            "call 'await websocket.accept()' first"
        )
        await websocket.accept()
        await websocket.close()
        assert websocket.push_text("too late") is False

    with trio.fail_after(TIMEOUT):
        async with connected(route_app(handler)) as ws:
            with pytest.raises(WebSocketDisconnect):
                await ws.receive()

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, Any]) -> None:
        pass

    bare = WebSocket({"type": "websocket", "headers": []}, receive, send)
    await bare.accept()
    with pytest.raises(WebSocketStateError, match="need a connection served by an App route"):
        bare.push_text("no nursery")


async def test_a_push_after_the_handler_ended_is_refused_not_raised() -> None:
    # A publisher in another connection may push while this one is closing.
    kept: list[WebSocket] = []

    async def handler(self: Any, websocket: WebSocket) -> None:
        await websocket.accept()
        kept.append(websocket)

    with trio.fail_after(TIMEOUT):
        async with connected(route_app(handler)) as ws:
            with pytest.raises(WebSocketDisconnect):
                await ws.receive()
    websocket = kept[0]
    assert websocket.push_text("late") is False
    # Between the handler's end (its nursery, and so the writer, gone) and the close frame the
    # connection is still CONNECTED: a push then is refused too, not an error for the pusher.
    websocket._conn_state = WebSocketState.CONNECTED
    websocket._outbox = None
    assert websocket.push_text("in between") is False
