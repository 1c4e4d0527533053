"""Channels on a real hypercorn, with clients in bad weather (``docs/channels.md``).

A member that stops reading is closed by its outbox policy and delays nobody; a burst from one
publisher reaches every member that keeps up, and evicts none of them. The clients are
``bench.rawclient``'s (wsproto over a raw socket: one of them can stop reading for real).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
from live import serve

from bench.rawclient import RawClient
from triows import (
    App,
    Channels,
    Controller,
    ControllerBase,
    OutboxPolicy,
    WebSocket,
    ws_route,
)
from triows.testing import LiveServer

pytestmark = [pytest.mark.live, pytest.mark.faults]

TIMEOUT = 20


class Ends:
    """How each member's connection ended, as the handler saw it."""

    def __init__(self) -> None:
        self.seen: list[tuple[int | None, str]] = []
        self._send, self._receive = trio.open_memory_channel[tuple[int | None, str]](1000)

    def end(self, websocket: WebSocket) -> None:
        ended = (websocket.close_code, websocket.close_reason)
        self.seen.append(ended)
        self._send.send_nowait(ended)

    async def next(self) -> tuple[int | None, str]:
        return await self._receive.receive()


@Controller("/")
class RoomController(ControllerBase):
    @ws_route("/small", outbox=OutboxPolicy("close", max_messages=32))
    async def small(self, websocket: WebSocket, channels: Channels) -> None:
        await self.member(websocket, channels)

    @ws_route("/default")
    async def default(self, websocket: WebSocket, channels: Channels) -> None:
        await self.member(websocket, channels)

    async def member(self, websocket: WebSocket, channels: Channels) -> None:
        await websocket.accept()
        try:
            await channels.join("room", websocket)
            await websocket.send_text("joined")
            async for text in websocket.iter_text():
                if text.startswith("burst "):
                    count, size = (int(part) for part in text.split()[1:])
                    for n in range(count):
                        await channels.publish("room", {"n": n, "pad": "x" * size})
                else:
                    await channels.publish("room", {"text": text})
        finally:
            websocket.app.state["ends"].end(websocket)


@pytest.fixture
async def live() -> AsyncIterator[tuple[LiveServer, Ends]]:
    ends = Ends()
    app = App(controllers=[RoomController], config={"WEBSOCKET_CLOSE_TIMEOUT": 1.0})
    app.state["ends"] = ends
    async with serve(app) as server:
        yield server, ends


async def join(server: LiveServer, path: str, **kwargs: Any) -> RawClient:
    client = await RawClient.connect(server.host, server.port, path, **kwargs)
    assert await client.receive(TIMEOUT) == "joined"
    return client


async def test_a_stalled_member_is_closed_and_delays_no_other(
    live: tuple[LiveServer, Ends],
) -> None:
    server, ends = live
    count = 150
    with trio.fail_after(TIMEOUT):
        healthy = [await join(server, "/small") for _ in range(9)]
        stalled = await join(server, "/small", receive_buffer=4096)
        got = [0] * len(healthy)

        async def listen(index: int) -> None:
            for n in range(count):
                with trio.fail_after(1):  # each message reaches each healthy member promptly
                    assert await healthy[index].receive() == f'{{"text":"{n} {"x" * 4000}"}}'
                got[index] += 1

        async with trio.open_nursery() as nursery:
            for index in range(len(healthy)):
                nursery.start_soon(listen, index)
            for n in range(count):
                await healthy[0].send_text(f"{n} " + "x" * 4000)
                await trio.sleep(0.002)  # a steady publisher, not a burst
        assert got == [count] * len(healthy)
        assert await ends.next() == (1013, "slow consumer: more than 32 messages queued")
        closed = await stalled.receive_close(2.0)  # cut after the close timeout at the latest
        assert closed.code in (1013, 1006)
        for client in [*healthy, stalled]:
            await client.aclose()


@pytest.mark.parametrize("members", [10])
async def test_a_burst_of_2000_reaches_every_member_and_evicts_none(
    live: tuple[LiveServer, Ends], members: int
) -> None:
    server, ends = live
    count, size = 2000, 200
    with trio.fail_after(TIMEOUT):
        # Small receive buffers: the members' sockets fill, so the burst outruns them.
        clients = [await join(server, "/small", receive_buffer=16384) for _ in range(members)]
        got = [0] * members

        async def listen(index: int) -> None:
            for n in range(count):
                text = await clients[index].receive(TIMEOUT)
                assert text == f'{{"n":{n},"pad":"{"x" * size}"}}'
                got[index] += 1
                await trio.sleep(0.0005)  # a member that keeps up, but slower than the burst

        async with trio.open_nursery() as nursery:
            for index in range(members):
                nursery.start_soon(listen, index)
            await clients[0].send_text(f"burst {count} {size}")
        assert got == [count] * members
        assert ends.seen == []  # nobody was closed
        for client in clients:
            await client.aclose()
