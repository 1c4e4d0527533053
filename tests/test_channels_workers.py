"""Channels across processes on one real Redis: workers of one server, and two "hosts".

The app is ``tests/fixtures/channels_app.py`` (its members are told their worker's pid), run
as a user runs it: ``triows run --workers 2``, plain ``hypercorn --workers 2``, or two
``triows run`` processes on two ports. The clients are ``bench.rawclient``'s.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from live import Command, command

from bench.rawclient import RawClient
from triows.testing import RedisServer

pytestmark = pytest.mark.live

ROOT = Path(__file__).resolve().parent.parent
TARGET = "tests.fixtures.channels_app:app"
TIMEOUT = 40


def triows_run(*flags: str) -> list[str]:
    return [sys.executable, "-m", "triows", "run", TARGET, "--port", "0", "--no-access-log", *flags]


def hypercorn(*flags: str) -> list[str]:
    return [sys.executable, "-m", "hypercorn", "--worker-class", "trio", "--bind", "127.0.0.1:0"]


@asynccontextmanager
async def server(
    args: list[str], redis: RedisServer, workers: int = 1
) -> AsyncIterator[tuple[Command, int]]:
    os.environ["TRIOWS_CHANNELS_URL"] = redis.url  # the process inherits it
    try:
        async with command(args, ROOT) as running:
            # Every worker serving (each says "Running on"), not only the first.
            await running.wait_for(r"Running on http://\S+", count=workers, within=TIMEOUT / 2)
            url = await running.url(within=TIMEOUT / 2)
            yield running, int(url.rsplit(":", 1)[1])
    finally:
        os.environ.pop("TRIOWS_CHANNELS_URL", None)


class Member:
    """A raw client in the room, and the frames it got, by kind."""

    def __init__(self, client: RawClient, pid: int) -> None:
        self.client = client
        self.pid = pid

    @classmethod
    async def join(cls, port: int, name: str, since: str | None = None) -> Member:
        path = f"/room?name={name}" + (f"&since={since}" if since else "")
        client = await RawClient.connect("127.0.0.1", port, path)
        hello = json.loads(await client.receive(TIMEOUT))
        assert hello["event"] == "worker"
        state = json.loads(await client.receive(TIMEOUT))
        assert state["event"] == "presence_state"
        return cls(client, hello["pid"])

    async def next(self, event: str) -> dict[str, Any]:
        """The next frame of ``event`` (others, presence diffs say, are passed over)."""
        while True:
            frame = json.loads(await self.client.receive(TIMEOUT))
            if frame["event"] == event:
                return frame
            assert frame["event"] != "gap", frame

    async def messages(self, count: int) -> list[str]:
        return [(await self.next("message"))["text"] for _ in range(count)]


async def members_on_two_workers(port: int, stack: AsyncExitStack) -> list[Member]:
    """Members until both workers have some: the workers share one listening socket, and the
    kernel tends to wake the same one, so connections are opened ten at once."""
    members: list[Member] = []

    async def one(name: str) -> None:
        member = await Member.join(port, name)
        stack.push_async_callback(member.client.aclose)
        members.append(member)

    for batch in range(8):
        async with trio.open_nursery() as nursery:
            for n in range(10):
                nursery.start_soon(one, f"m{batch}-{n}")
        if len({m.pid for m in members}) == 2:
            return members
    raise AssertionError(f"{len(members)} connections, all on one worker: {members[0].pid}")


@pytest.mark.parametrize("runner", ["triows run", "hypercorn"])
async def test_with_two_workers_every_member_gets_every_message(
    redis_server: RedisServer, runner: str
) -> None:
    args = triows_run("--workers", "2") if runner == "triows run" else hypercorn()
    if runner == "hypercorn":
        args += ["--workers", "2", TARGET]
    with trio.fail_after(TIMEOUT):
        async with server(args, redis_server, 2) as (_, port), AsyncExitStack() as stack:
            members = await members_on_two_workers(port, stack)
            for text in ("one", "two", "three"):
                await members[0].client.send_text(text)
            for member in members:
                assert await member.messages(3) == ["one", "two", "three"], member.pid


async def test_two_hosts_share_messages_and_a_dead_hosts_members_leave_in_time(
    redis_server: RedisServer,
) -> None:
    with trio.fail_after(TIMEOUT):
        async with (
            server(triows_run(), redis_server) as (first, port_a),
            server(triows_run(), redis_server) as (_, port_b),
        ):
            ann = await Member.join(port_a, "ann")
            bob = await Member.join(port_b, "bob")
            assert await ann.next("presence_diff") == {
                "event": "presence_diff",
                "joins": ["bob"],
                "leaves": [],
            }
            await ann.client.send_text("from host a")
            assert await bob.messages(1) == ["from host a"]
            await bob.client.send_text("from host b")
            assert await ann.messages(2) == ["from host a", "from host b"]  # hers too
            os.killpg(first.process.pid, signal.SIGKILL)  # host a vanishes: no goodbye
            killed = trio.current_time()
            assert await bob.next("presence_diff") == {
                "event": "presence_diff",
                "joins": [],
                "leaves": ["ann"],
            }
            purged_within = trio.current_time() - killed
            await bob.client.aclose()
            await ann.client.aclose()
    # CHANNELS_PRESENCE_TIMEOUT is 1 s in the app: purged within it and a quarter more.
    assert purged_within < 1.25 + 0.5, purged_within


async def test_no_message_is_lost_across_a_redis_restart_with_history(
    tmp_path: Path,
) -> None:
    persistent = RedisServer(
        directory=tmp_path, args=["--appendonly", "yes", "--appendfsync", "always"]
    )
    count, restart_at = 300, 100
    with trio.fail_after(TIMEOUT * 2):
        async with (
            persistent,
            server(triows_run(), persistent) as (_, port_a),
            server(triows_run(), persistent) as (_, port_b),
        ):
            ann = await Member.join(port_a, "ann")
            bob = await Member.join(port_b, "bob")
            got: dict[str, list[str]] = {"ann": [], "bob": []}

            async def listen(member: Member, name: str) -> None:
                got[name] = await member.messages(count)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(listen, ann, "ann")
                nursery.start_soon(listen, bob, "bob")
                for n in range(count):
                    if n == restart_at:
                        await persistent.restart(kill=True)  # SIGKILL; the AOF has it all
                    await ann.client.send_text(f"m{n}")
                    await trio.sleep(0.005)  # a steady 200 messages/s
            await ann.client.aclose()
            await bob.client.aclose()
    expected = [f"m{n}" for n in range(count)]
    assert got["ann"] == expected  # every one, once, in order: no gap frame either
    assert got["bob"] == expected
