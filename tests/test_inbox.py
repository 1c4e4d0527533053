"""The inbox (triows/_inbox.py): what the server delivered and the handler has not taken yet."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from triows._inbox import Inbox, pump


def data(n: int) -> dict[str, Any]:
    return {"type": "websocket.receive", "text": str(n)}


BYE = {"type": "websocket.disconnect", "code": 1000}


def inbox(limit: int = 2, **kwargs: Any) -> tuple[Inbox, list[dict[str, Any]]]:
    ends: list[dict[str, Any]] = []
    return Inbox(limit, ends.append, **kwargs), ends


async def test_a_waiting_handler_is_handed_each_message_without_queueing() -> None:
    box, _ = inbox()
    got: list[Any] = []
    async with trio.open_nursery() as nursery:

        async def take() -> None:
            for _ in range(3):
                got.append(await box.get())

        nursery.start_soon(take)
        for n in range(3):
            await trio.testing.wait_all_tasks_blocked()
            with trio.testing.assert_no_checkpoints():  # the server's reader is not held up
                await box.put(data(n))
            assert box.pending == 0
    assert got == [data(0), data(1), data(2)]


async def test_the_server_waits_for_room_but_never_with_the_end() -> None:
    box, ends = inbox(limit=2)
    await box.put(data(0))
    await box.put(data(1))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(box.put, data(2))
        await trio.testing.wait_all_tasks_blocked()
        assert box.pending == 2  # the third waits: TCP backpressure on a real server
        with trio.testing.assert_no_checkpoints():
            await box.put(BYE)  # the end never waits (a failing send may be delivering it)
    assert ends == [BYE]
    # What came before the end is still there, in order; the one that waited was dropped.
    assert [await box.get(), await box.get(), await box.get()] == [data(0), data(1), BYE]


async def test_room_frees_the_waiting_server_in_order() -> None:
    box, _ = inbox(limit=1)
    await box.put(data(0))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(box.put, data(1))
        await trio.testing.wait_all_tasks_blocked()
        assert await box.get() == data(0)
    assert await box.get() == data(1)


async def test_an_interrupt_wakes_the_handler_and_the_peer_leaving_is_still_recorded() -> None:
    box, ends = inbox()
    decided = {"type": "websocket.disconnect", "code": 1001, "reason": "idle timeout"}
    async with trio.open_nursery() as nursery:

        async def take() -> None:
            assert await box.get() == decided

        nursery.start_soon(take)
        await trio.testing.wait_all_tasks_blocked()
        box.interrupt(decided)
    assert (box.ended, box.peer_left, ends) == (True, False, [])
    await box.put(data(9))  # after the end: dropped
    assert box.pending == 0
    with trio.fail_after(1):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(box.wait_peer_left)
            await trio.testing.wait_all_tasks_blocked()
            await box.put(BYE)
    assert (box.peer_left, ends) == (True, [BYE])
    assert await box.get() == decided  # the first end is what the handler sees


async def test_a_decided_end_drops_what_is_queued_the_peers_end_does_not() -> None:
    box, _ = inbox(limit=10)
    await box.put(data(1))
    box.interrupt({"type": "websocket.disconnect", "code": 1001})
    assert box.pending == 0
    assert (await box.get())["code"] == 1001
    kept, _ = inbox(limit=10)
    await kept.put(data(1))
    await kept.put(BYE)
    assert (await kept.get(), await kept.get()) == (data(1), BYE)


async def test_once_the_handler_stops_reading_the_server_never_waits() -> None:
    box, _ = inbox(limit=1)
    await box.put(data(0))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(box.put, data(1))
        await trio.testing.wait_all_tasks_blocked()
        box.stop_reading()  # the waiting put returns
    with trio.testing.assert_no_checkpoints():
        await box.put(data(2))
    assert box.pending == 0


async def test_two_receivers_are_a_busy_resource_error() -> None:
    box, _ = inbox()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(box.get)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(trio.BusyResourceError):
            await box.get()
        nursery.cancel_scope.cancel()


async def test_a_cancelled_get_loses_nothing() -> None:
    box, _ = inbox()
    with trio.move_on_after(0.01):
        await box.get()
    await box.put(data(1))
    assert await box.get() == data(1)


async def test_over_the_size_limit_a_message_is_not_delivered() -> None:
    too_big: list[bool] = []
    box, _ = inbox(max_size=3, on_too_big=lambda: too_big.append(True))
    await box.put({"type": "websocket.receive", "text": "abc"})
    await box.put({"type": "websocket.receive", "bytes": b"abcd"})
    assert (box.pending, too_big) == (1, [True])


async def test_the_heartbeat_is_answered_not_delivered() -> None:
    box, _ = inbox()
    answered: list[str] = []

    async def answer() -> None:
        answered.append("pong")

    box.heartbeat = ("ping", answer)
    await box.put({"type": "websocket.receive", "text": "ping"})
    await box.put({"type": "websocket.receive", "text": "pinged"})
    assert answered == ["pong"]
    assert box.pending == 1
    assert box.frames == 2  # both count as activity


async def test_direct_mode_receives_in_the_handlers_task() -> None:
    script = [data(1), BYE]

    async def receive() -> dict[str, Any]:
        await trio.lowlevel.checkpoint()
        return script.pop(0)

    box, ends = inbox(direct=receive)
    assert await box.get() == data(1)
    assert await box.get() == BYE
    assert ends == [BYE]
    assert await box.get() == BYE  # and again: the end is what is left


async def test_the_pump_moves_messages_until_the_disconnect() -> None:
    send, receive = trio.open_memory_channel[dict[str, Any]](10)
    for message in (data(1), data(2), BYE, data(3)):
        send.send_nowait(message)
    box, ends = inbox(limit=10)
    with trio.fail_after(1):
        await pump(receive.receive, box)
    assert (box.pending, ends) == (2, [BYE])
    assert receive.receive_nowait() == data(3)  # the pump stopped at the end
