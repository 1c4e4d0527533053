"""Cross-worker publish-to-deliver latency of channels on Redis (issue #13's acceptance).

    python -m bench.channels_redis [--rate 1000] [--seconds 10] [--rounds 3] [--subscribers 5]

Starts a throw-away ``redis-server`` and two ``triows run`` processes on it (two "hosts": a
worker cannot be chosen on one server, a host can). A publisher on host A sends ``rate``
messages a second for ``seconds``; each is published to the room, and ``subscribers`` members
on host B (and the publisher itself, on A) receive it. The load client stamps each message when
it sends it and each member notes when it arrives (one clock: the load process's): the
latency is the whole trip, client -> A -> Redis -> B -> client. The first second (or half the
run) warms up and is not measured. Prints p50, p99 and max per
round and their medians, the messages lost, and the servers' CPU per delivery.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import trio

from bench.rawclient import RawClient
from triows.testing import RedisServer

ROOT = Path(__file__).resolve().parent.parent
APP = "bench.channels_redis_app:app"


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its children that have been waited for."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(f) for f in fields[11:15]) / ticks


async def start_host(redis_url: str) -> tuple[trio.Process, int]:
    env = {**os.environ, "TRIOWS_CHANNELS_URL": redis_url}
    args = [sys.executable, "-m", "triows", "run", APP, "--port", "0", "--no-access-log"]
    process = await trio.lowlevel.open_process(
        args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert process.stderr is not None
    seen = b""
    with trio.fail_after(20):
        while b"Running on http://127.0.0.1:" not in seen:
            chunk = await process.stderr.receive_some()
            if not chunk:
                raise RuntimeError(f"the host did not start:\n{seen.decode()}")
            seen += chunk
    port = int(seen.split(b"Running on http://127.0.0.1:", 1)[1].split(b" ", 1)[0])
    return process, port


async def one_round(rate: int, seconds: float, subscribers: int) -> dict[str, Any]:
    async with RedisServer() as redis:
        host_a, port_a = await start_host(redis.url)
        host_b, port_b = await start_host(redis.url)
        try:
            return await measure(port_a, port_b, rate, seconds, subscribers, host_a, host_b)
        finally:
            for process in (host_a, host_b):
                process.kill()
                await process.wait()


async def join(port: int) -> RawClient:
    client = await RawClient.connect("127.0.0.1", port, "/room", limit=30)
    assert json.loads(await client.receive())["event"] == "joined"
    return client


async def measure(
    port_a: int,
    port_b: int,
    rate: int,
    seconds: float,
    subscribers: int,
    host_a: trio.Process,
    host_b: trio.Process,
) -> dict[str, Any]:
    publisher = await join(port_a)
    members = [await join(port_b) for _ in range(subscribers)]
    count = int(rate * seconds)
    #: The first second is a warm-up (connections, Lua scripts, caches): not measured.
    warmup = min(rate, count // 2)
    sent: list[float] = [0.0] * count
    latencies: list[float] = []
    received = [0] * (subscribers + 1)

    async def listen(index: int, client: RawClient) -> None:
        with trio.move_on_after(seconds + 5):
            while received[index] < count:
                frame = json.loads(await client.receive())
                if frame.get("event") != "message":
                    continue
                arrived = time.monotonic()
                received[index] += 1
                if index > 0 and frame["n"] >= warmup:  # its own copies go A -> Redis -> A
                    latencies.append(arrived - sent[frame["n"]])

    cpu_before = cpu_seconds(host_a.pid) + cpu_seconds(host_b.pid)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(listen, 0, publisher)
        for index, member in enumerate(members, start=1):
            nursery.start_soon(listen, index, member)
        start = time.monotonic()
        for n in range(count):
            due = start + n / rate
            delay = due - time.monotonic()
            if delay > 0:
                await trio.sleep(delay)
            sent[n] = time.monotonic()
            await publisher.send_text(str(n))
    cpu = cpu_seconds(host_a.pid) + cpu_seconds(host_b.pid) - cpu_before
    for client in (publisher, *members):
        await client.aclose()
    latencies.sort()
    deliveries = sum(received)
    return {
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
        "max_ms": 1000 * latencies[-1],
        "lost": count * (subscribers + 1) - deliveries,
        "cpu_us_per_delivery": 1e6 * cpu / max(1, deliveries),
        "achieved_rate": count / (time.monotonic() - start),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.channels_redis", description=__doc__)
    parser.add_argument("--rate", type=int, default=1000, help="messages per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--subscribers", type=int, default=5, help="members on host B")
    options = parser.parse_args(argv)
    rounds = []
    for number in range(1, options.rounds + 1):
        result = trio.run(one_round, options.rate, options.seconds, options.subscribers)
        rounds.append(result)
        print(
            f"round {number}: p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms, "
            f"max {result['max_ms']:.1f} ms, lost {result['lost']}, "
            f"{result['cpu_us_per_delivery']:.0f} us server CPU per delivery, "
            f"{result['achieved_rate']:.0f} msg/s"
        )
    medians = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    print(
        f"median of {len(rounds)}: p50 {medians['p50_ms']:.2f} ms, p99 {medians['p99_ms']:.2f} ms"
        f", max {medians['max_ms']:.1f} ms, lost {int(medians['lost'])}, "
        f"{medians['cpu_us_per_delivery']:.0f} us server CPU per delivery "
        f"(target: p99 <= 20 ms at 1,000 messages/s)"
    )
    return 0 if all(r["lost"] == 0 for r in rounds) else 1


if __name__ == "__main__":
    raise SystemExit(main())
