"""What clients in bad weather do to a triows server: ``python -m bench.faults``.

Each scenario starts ``hypercorn --worker-class trio bench.fault_app:app`` afresh (a frozen
worker from one scenario must not spoil the next), plays a misbehaving client against it with
``bench.rawclient``, reads the server's own view over HTTP (``GET /stats``: handlers alive,
close codes, the worker's trio tasks) and its CPU time from ``/proc``, and stops it. Every wait
is bounded; a server that stops answering is reported as such, not waited for.

    python -m bench.faults                  # this checkout
    python -m bench.faults --before REV     # and the triows of git revision REV, side by side
    python -m bench.faults --json FILE      # also write the figures as JSON

``--before`` checks REV out in a temporary git worktree, copies this checkout's
``bench/fault_app.py`` into it (the app is written for both versions) and serves that triows.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import trio

from bench.echo import ROOT, Server, ServerDidNotStart, serve
from bench.rawclient import Closed, RawClient, Refused

HOST = "127.0.0.1"
#: Seconds any one wait of a scenario may take.
LIMIT = 5.0

Figures = dict[str, Any]
Scenario = Callable[[Server], Awaitable[Figures]]


# -- talking to the server ---------------------------------------------------------------------


async def stats(
    server: Server, limit: float = 2.0, client: httpx.AsyncClient | None = None
) -> dict[str, Any] | None:
    """The app's ``/stats``, or ``None`` if the worker did not answer within ``limit``.

    Pass one ``client`` to count the worker's tasks: each new HTTP connection leaves hypercorn
    tasks behind for its keep-alive time, which would be counted too.
    """
    with trio.move_on_after(limit):
        if client is not None:
            response = await client.get("/stats")
        else:
            async with httpx.AsyncClient(base_url=f"http://{HOST}:{server.port}") as fresh:
                response = await fresh.get("/stats")
        data: dict[str, Any] = response.json()
        return data
    return None


async def health_ms(server: Server, limit: float = 2.0) -> float | None:
    """How long ``GET /health`` took, in ms; ``None``: no answer within ``limit``."""
    start = time.perf_counter()
    with trio.move_on_after(limit):
        async with httpx.AsyncClient(base_url=f"http://{HOST}:{server.port}") as client:
            await client.get("/health")
            return (time.perf_counter() - start) * 1000
    return None


async def alive_after(
    server: Server, route: str, limit: float, client: httpx.AsyncClient | None = None
) -> tuple[float | None, int | None]:
    """Seconds until no ``route`` handler is alive (``None``: not within ``limit``), and how many
    are left then (``None``: the worker did not answer)."""
    start = time.perf_counter()
    left: int | None = None
    while time.perf_counter() - start < limit:
        seen = await stats(server, 1.0, client)
        left = None if seen is None else seen["alive"].get(route, 0)
        if left == 0:
            return time.perf_counter() - start, 0
        await trio.sleep(0.02)
    return None, left


def cpu_share(server: Server, seconds: float) -> float | None:
    """The share of one core the server used over the next ``seconds`` (blocking the caller)."""
    before = server.cpu_seconds()
    time.sleep(seconds)
    after = server.cpu_seconds()
    return None if before is None or after is None else (after - before) / seconds


async def connect(server: Server, path: str, **kwargs: Any) -> RawClient:
    return await RawClient.connect(HOST, server.port, path, limit=LIMIT, **kwargs)


# -- the scenarios -----------------------------------------------------------------------------


async def send_loop_then(server: Server, leave: str) -> Figures:
    client = await connect(server, "/send-loop")
    await client.receive()
    if leave == "reset":
        await client.reset()
    else:
        await client.close(4000, "bye")
    ended, _ = await alive_after(server, "send-loop", LIMIT)
    http = await health_ms(server)
    cpu = await trio.to_thread.run_sync(cpu_share, server, 1.0)
    if leave != "reset":
        await client.aclose()
    return {"handler ended after s": ended, "HTTP /health ms": http, "worker CPU": cpu}


async def send_loop_reset(server: Server) -> Figures:
    """A handler sends in a loop; its client resets the TCP connection."""
    return await send_loop_then(server, "reset")


async def send_loop_close(server: Server) -> Figures:
    """A handler sends in a loop; its client closes cleanly (close frame)."""
    return await send_loop_then(server, "close")


async def flood_reset_x20(server: Server) -> Figures:
    """20 clients flood an echo route without reading, then reset."""
    async with httpx.AsyncClient(base_url=f"http://{HOST}:{server.port}") as http:
        return await _flood_reset_x20(server, http)


async def _flood_reset_x20(server: Server, http: httpx.AsyncClient) -> Figures:
    baseline = await stats(server, client=http)
    clients = [await connect(server, "/echo") for _ in range(20)]
    with trio.move_on_after(0.5):  # until their sends block: nobody reads the echoes
        async with trio.open_nursery() as nursery:
            for client in clients:
                nursery.start_soon(client.flood, 4000, bytes(512))
    for client in clients:
        await client.reset()
    ended, left = await alive_after(server, "echo", 3.0, http)
    extra: int | None = None
    if baseline is not None:  # the worker's tasks settle (the stats requests' own included)
        for _ in range(20):
            after = await stats(server, client=http)
            if after is None:
                break
            extra = after["tasks"] - baseline["tasks"]
            if extra <= 0:
                break
            await trio.sleep(0.1)
    return {"handlers left after 3 s": left, "tasks over baseline": extra, "ended after s": ended}


async def stalled_reader(server: Server) -> Figures:
    """19 clients and one that stopped reading share a room; one member publishes 200 messages."""
    healthy = [await connect(server, "/room") for _ in range(19)]
    stalled = await connect(server, "/room", receive_buffer=4096)
    received: list[float] = []
    count, payload = 200, "x" * 2000

    async def listen(client: RawClient) -> None:
        for _ in range(count):
            try:
                text = await client.receive(LIMIT)
            except (Closed, trio.TooSlowError):
                return
            assert isinstance(text, str)
            received.append(time.perf_counter() - float(text.split(" ", 1)[0]))

    with trio.move_on_after(LIMIT + 5):
        async with trio.open_nursery() as nursery:
            for client in healthy[1:]:
                nursery.start_soon(listen, client)
            nursery.start_soon(listen, healthy[0])
            for _ in range(count):
                await healthy[0].send_text(f"{time.perf_counter()} {payload}")
                await trio.sleep(0.005)
    seen = await stats(server)
    await stalled.aclose()
    codes = None if seen is None else [c for c in seen["ended"].get("room", []) if c]
    latencies = sorted(received) or [float("nan")]
    return {
        "delivered to the 19": f"{len(received)}/{19 * count}",
        "p50 ms": statistics.median(latencies) * 1000,
        "p99 ms": latencies[int(len(latencies) * 0.99) - 1 if len(latencies) > 1 else 0] * 1000,
        "stalled client closed with": codes[0] if codes else None,
    }


async def idle_peer(server: Server) -> Figures:
    """A client completes the handshake and goes silent on a route with a 1 s idle timeout."""
    client = await connect(server, "/idle")
    start = time.perf_counter()
    try:
        closed = await client.receive_close(LIMIT)
    except trio.TooSlowError:
        return {"closed after s": None, "code": None}
    return {"closed after s": time.perf_counter() - start, "code": closed.code}


async def size_limit(server: Server) -> Figures:
    """A client sends one 2 MiB message."""
    before = server.rss_kib()
    client = await connect(server, "/echo")
    code: int | str | None = None
    async with trio.open_nursery() as nursery:

        async def send() -> None:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await client.send_bytes(bytes(2 << 20))

        nursery.start_soon(send)
        try:
            answer = await client.receive(LIMIT)
            code = f"none: {len(answer) >> 20} MiB echoed"
        except Closed as closed:
            code = closed.code
        except trio.TooSlowError:
            code = None
    after = server.rss_kib()
    growth = None if before is None or after is None else after - before
    return {"client saw close": code, "worker RSS growth KiB": growth}


async def foreign_origin(server: Server) -> Figures:
    """A browser page on another site opens a websocket (``Origin: https://evil.example``)."""
    try:
        client = await connect(server, "/echo", headers=[("Origin", "https://evil.example")])
    except Refused as refused:
        return {"handshake answered": refused.status}
    await client.aclose()
    return {"handshake answered": 101}


async def invalid_utf8(server: Server) -> Figures:
    """A client sends a text frame whose payload is not UTF-8."""
    client = await connect(server, "/echo")
    await client.send_raw_text_frame(b"\xff\xfe bad")
    try:
        closed = await client.receive_close(LIMIT)
    except trio.TooSlowError:
        return {"client saw close": None}
    return {"client saw close": closed.code}


async def error_frame(server: Server) -> Figures:
    """A client sends a 900 KB JSON message that fails validation."""
    client = await connect(server, "/json")
    await client.send_text('{"name": ["' + "x" * 900_000 + '"], "count": 1}')
    try:
        answer = await client.receive(LIMIT)
    except (Closed, trio.TooSlowError):
        return {"error frame bytes": None}
    return {"error frame bytes": len(answer)}


SCENARIOS: dict[str, Scenario] = {
    "send loop + peer reset": send_loop_reset,
    "send loop + clean close": send_loop_close,
    "flood + reset x20": flood_reset_x20,
    "stalled reader among 20": stalled_reader,
    "silent peer (1 s idle timeout)": idle_peer,
    "2 MiB message": size_limit,
    "foreign Origin": foreign_origin,
    "invalid UTF-8 text frame": invalid_utf8,
    "900 KB invalid JSON message": error_frame,
}


# -- running -----------------------------------------------------------------------------------


def run(cwd: Path, names: list[str]) -> dict[str, Figures]:
    """Every scenario in ``names`` against the triows in ``cwd``, each on a fresh server."""
    results: dict[str, Figures] = {}
    for name in names:
        scenario = SCENARIOS[name]
        try:
            with serve("app", module="bench.fault_app", cwd=cwd) as server:
                results[name] = trio.run(_bounded, scenario, server)
        except ServerDidNotStart as exc:
            results[name] = {"error": str(exc)}
        print(f"  {name}: {_show(results[name])}", file=sys.stderr, flush=True)
    return results


async def _bounded(scenario: Scenario, server: Server) -> Figures:
    with trio.move_on_after(60):
        try:
            return await scenario(server)
        except (Refused, Closed, OSError, trio.TooSlowError) as exc:
            return {"error": repr(exc)}
    return {"error": "the scenario took over 60 s"}


@contextmanager
def checkout(revision: str) -> Iterator[Path]:
    """A worktree of ``revision`` with this checkout's fault app in it."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(tree), revision],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        try:
            shutil.copy(ROOT / "bench" / "fault_app.py", tree / "bench" / "fault_app.py")
            yield tree
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False
            )


def _show(figures: Figures) -> str:
    return ", ".join(f"{k}: {_value(v)}" for k, v in figures.items())


def _value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3g}" if value < 100 else f"{value:.0f}"
    return str(value)


def table(columns: dict[str, dict[str, Figures]]) -> str:
    """A Markdown table: one row per figure, one column per version."""
    names = list(columns)
    lines = ["| scenario | figure | " + " | ".join(names) + " |"]
    lines.append("|---|---|" + "---:|" * len(names))
    for scenario in SCENARIOS:
        keys: list[str] = []
        for figures in columns.values():
            for key in figures.get(scenario, {}):
                if key not in keys:
                    keys.append(key)
        for key in keys:
            cells = [_value(columns[n].get(scenario, {}).get(key)) for n in names]
            lines.append(f"| {scenario} | {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__)
    parser.add_argument("--before", metavar="REV", help="also measure triows at git REV")
    parser.add_argument("--scenarios", nargs="+", choices=list(SCENARIOS), default=list(SCENARIOS))
    parser.add_argument("--json", metavar="FILE", help="write the figures as JSON")
    args = parser.parse_args(argv)
    columns: dict[str, dict[str, Figures]] = {}
    if args.before:
        print(f"triows at {args.before}:", file=sys.stderr)
        with checkout(args.before) as tree:
            columns[f"before ({args.before})"] = run(tree, args.scenarios)
    print("this checkout:", file=sys.stderr)
    columns["now"] = run(ROOT, args.scenarios)
    print(table(columns))
    if args.json:
        Path(args.json).write_text(json.dumps(columns, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
