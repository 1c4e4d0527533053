"""Channels on a real Redis (``redis://``): two apps stand for two workers (or hosts).

Each test starts its own ``redis-server`` (the ``redis_server`` fixture; without the binary the
test is skipped loudly). Members on either app see every message and every presence change;
history and ``since`` work across them; Redis restarts are survived.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest
import trio
from test_channels import ChatController, diff, said, state

from triows import App
from triows.testing import AsyncTestClient, RedisServer

pytestmark = pytest.mark.live

TIMEOUT = 10


def worker(url: str, **config: Any) -> App:
    return App(controllers=[ChatController], config={"CHANNELS_URL": url, **config})


@asynccontextmanager
async def workers(url: str, count: int = 2, **config: Any) -> AsyncIterator[list[AsyncTestClient]]:
    async with AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(AsyncTestClient(worker(url, **config), timeout=TIMEOUT))
            for _ in range(count)
        ]


def member(client: AsyncTestClient, name: str, room: str = "blue", query: str = "") -> Any:
    return client.websocket_connect(f"/chat/{room}/ws?name={name}{query}")


async def test_members_on_two_workers_see_each_other(redis_server: RedisServer) -> None:
    with trio.fail_after(TIMEOUT):
        async with workers(redis_server.url) as (one, two), member(one, "ann") as ann:
            assert await ann.receive_json() == state("ann")
            async with member(two, "bob") as bob:
                assert await bob.receive_json() == state("ann", "bob")
                assert await ann.receive_json() == diff(joins=["bob"])
                for n in range(3):
                    await ann.send_json({"event": "say", "text": f"a{n}"})
                    await bob.send_json({"event": "say", "text": f"b{n}"})
                ann_got = [await ann.receive_json() for _ in range(6)]
                bob_got = [await bob.receive_json() for _ in range(6)]
            assert await ann.receive_json() == diff(leaves=["bob"])
    assert ann_got == bob_got  # one order on both workers: Redis's
    assert [m for m in ann_got if m["name"] == "bob"] == [said("bob", f"b{n}") for n in range(3)]


async def test_a_key_on_two_workers_leaves_with_its_last_connection(
    redis_server: RedisServer,
) -> None:
    with trio.fail_after(TIMEOUT):
        async with workers(redis_server.url) as (one, two), member(one, "ann") as ann:
            assert await ann.receive_json() == state("ann")
            async with member(one, "bob") as phone:
                assert await phone.receive_json() == state("ann", "bob")
                assert await ann.receive_json() == diff(joins=["bob"])
                async with member(two, "bob") as laptop:
                    assert await laptop.receive_json() == state("ann", "bob")
                await ann.send_json({"event": "say", "text": "still bob?"})
                assert await ann.receive_json() == said("ann", "still bob?")  # no leave before
            assert await ann.receive_json() == diff(leaves=["bob"])


async def test_history_and_since_across_workers(redis_server: RedisServer) -> None:
    history = {"room:*": 50}
    with trio.fail_after(TIMEOUT):
        async with workers(redis_server.url, CHANNELS_HISTORY=history) as (one, two):
            async with member(one, "ann") as ann:
                assert await ann.receive_json() == state("ann")
                for n in range(4):
                    await ann.send_json({"event": "say", "text": f"m{n}"})
                got = [await ann.receive_json() for _ in range(4)]
            async with member(two, "bob", query=f"&since={got[1]['id']}") as bob:
                assert await bob.receive_json() == state("bob")
                missed = [await bob.receive_json() for _ in range(2)]
            async with member(two, "cy", query="&last=3") as cy:
                assert await cy.receive_json() == state("cy")
                recent = [await cy.receive_json() for _ in range(3)]
    assert [m["text"] for m in got] == ["m0", "m1", "m2", "m3"]
    assert missed == got[2:]
    assert recent == got[1:]


async def test_after_a_redis_restart_subscriptions_resume_and_lost_history_is_a_gap(
    redis_server: RedisServer,
) -> None:
    history = {"room:*": 50}
    with trio.fail_after(TIMEOUT * 2):
        async with workers(redis_server.url, CHANNELS_HISTORY=history) as (one, two):
            async with member(one, "ann") as ann:
                assert await ann.receive_json() == state("ann")
                async with member(two, "bob") as bob:
                    assert await bob.receive_json() == state("ann", "bob")
                    assert await ann.receive_json() == diff(joins=["bob"])
                    await ann.send_json({"event": "say", "text": "before"})
                    before = await bob.receive_json()
                    assert await ann.receive_json() == before
                    await redis_server.restart(kill=True)  # nothing persisted: history is gone
                    await ann.send_json({"event": "say", "text": "after"})  # retried until back
                    bob_got = [await bob.receive_json() for _ in range(2)]
                    ann_got = [await ann.receive_json() for _ in range(2)]
            async with member(two, "cy", query=f"&since={before['id']}") as cy:
                assert await cy.receive_json() == state("cy")
                cy_got = await cy.receive_json()
    lost = {"event": "gap", "topic": "room:blue", "since": before["id"]}
    # Each worker saw the stream start again: it says what it cannot give, then goes on.
    assert bob_got[0] == ann_got[0] == lost
    assert bob_got[1] == ann_got[1]
    assert strip_epoch(bob_got[1]) == said("ann", "after")
    assert bob_got[1]["id"].split(":")[0] != before["id"].split(":")[0]  # a new epoch
    assert cy_got == lost  # and a client coming back with an id of the old one is told too


def strip_epoch(message: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in message.items() if k != "id"}


async def test_the_channels_url_fixture_runs_a_test_on_each_backend(
    channels_url: str, channels_backend: str
) -> None:
    assert channels_url.startswith(f"{channels_backend}://")
    with trio.fail_after(TIMEOUT):
        async with workers(channels_url, count=1) as (one,), member(one, "ann") as ann:
            assert await ann.receive_json() == state("ann")
            await ann.send_json({"event": "say", "text": "hi"})
            assert await ann.receive_json() == said("ann", "hi")
