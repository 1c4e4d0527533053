"""The load process: closed loops of websocket work against one server, reported as JSON.

Three modes, each a closed loop (a connection's next step waits for the server's answer):

``echo``
    N connections each send a message and wait for its echo, again and again. The connections
    are opened first, then they run for a warm-up (not counted) and for the measured seconds; a
    round trip counts when its echo arrives inside the measured window. Every echo is compared
    with what was sent, so a server that answers wrongly (or not at all) shows up as errors, not
    as speed.
``handshake``
    N loops each open a connection (sending the ``x-token`` header), receive the ``welcome``
    frame, close, and start over; a handshake counts when its close completes inside the
    window, and its latency is the whole cycle.
``idle``
    Opens ``--warm`` connections, then ``--connections`` more, each echoing one message (so that
    state a connection allocates lazily, such as a compressor, exists) and then staying idle.
    After each batch it writes a mark on stderr and waits for a line on stdin: the orchestrator
    reads the server's memory in between. Then it closes them all.

    python -m bench.client --url ws://127.0.0.1:PORT/path --connections 64 --seconds 3 \
        --payload bytes256
    python -m bench.client --mode handshake --url 'ws://127.0.0.1:PORT/guarded?name=bench' \
        --connections 16 --seconds 2
    python -m bench.client --mode idle --url ws://127.0.0.1:PORT/text --connections 2000 \
        --compression deflate < /dev/null

It prints one JSON line: for ``echo`` and ``handshake``, ``count`` and ``per_s`` (echoed messages
or completed handshakes, over all connections), the p50 and p99 latency in microseconds and the
number of errors (with a few samples); for ``idle``, how many connections opened and what was
negotiated. It uses the ``websockets`` asyncio client (``pip install -e '.[bench]'``), without
compression unless ``--compression deflate``.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench import MARK_ALL, MARK_END, MARK_START, MARK_WARM, raise_fd_limit

#: Seconds for a handshake, and for the round trips still in flight when the time is up.
TIMEOUT = 10.0
#: Never a proxy, whatever the environment says (websockets >= 15 reads it; older ones never do).
NO_PROXY: dict[str, Any] = (
    {"proxy": None} if "proxy" in inspect.signature(connect).parameters else {}
)
#: The frame the handshake apps send once they have accepted (``bench.apps.WELCOME``), and the
#: header ``bench.apps:triows_guarded``'s guard wants; every system is sent the same request.
WELCOME = "welcome"
TOKEN_HEADER = ("x-token", "secret")
#: Handshakes in flight at once while ``--mode idle`` opens its connections.
OPEN_CONCURRENCY = 32
#: Error messages kept for the report.
MAX_ERROR_SAMPLES = 5


def _json250() -> str:
    """About 250 bytes of compact JSON, valid for the ``Message`` model of ``bench.apps``.

    Its ``event`` field is the one-model route's too, so that the typed-events route
    (``triows_events``) gets the same bytes and sends back the same bytes.

    ASCII only and in the model's field order, so a server that re-encodes it compactly
    (``json.dumps(..., separators=(",", ":"))`` or pydantic) sends back exactly these bytes.
    """
    message = {
        "event": "message",
        "user": "ada.lovelace",
        "text": "The engine might compose elaborate and scientific pieces of music of any "
        "degree of complexity or extent. " + "x" * 46,
        "seq": 1234567,
        "tags": ["bench", "json", "echo", "websocket", "triows"],
    }
    return json.dumps(message, separators=(",", ":"))


PAYLOADS: dict[str, str | bytes] = {
    "bytes256": bytes(range(256)),
    "bytes4k": bytes(range(256)) * 16,
    "json250": _json250(),
    "text256": ("triows echo " * 22)[:256],
}


@dataclass
class Tally:
    """What the connections measured, shared by all of them (one event loop, no locks)."""

    start: float = 0.0  # perf_counter at the start of the measured window
    end: float = 0.0
    count: int = 0  # echoed messages, or completed handshakes
    latencies_ns: list[int] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)

    def error(self, text: str) -> None:
        self.errors += 1
        if len(self.error_samples) < MAX_ERROR_SAMPLES:
            self.error_samples.append(text)


def _same(payload: str | bytes, echo: str | bytes) -> bool:
    if echo == payload:
        return True
    if isinstance(payload, str) and isinstance(echo, str) and payload.startswith("{"):
        # A JSON server may re-encode the same object differently (key order, spacing).
        try:
            return bool(json.loads(echo) == json.loads(payload))
        except ValueError:
            return False
    return False


async def _run_connection(ws: ClientConnection, payload: str | bytes, tally: Tally) -> None:
    clock = time.perf_counter_ns
    start_ns, end_ns = int(tally.start * 1e9), int(tally.end * 1e9)
    while True:
        sent = clock()
        if sent >= end_ns:
            return
        try:
            await ws.send(payload)
            echo = await ws.recv()
        except ConnectionClosed as exc:
            tally.error(f"connection closed: {exc}")
            return
        done = clock()
        if not _same(payload, echo):
            tally.error(f"wrong echo: {len(echo)} {type(echo).__name__} for {len(payload)}")
            continue
        if start_ns <= done <= end_ns:
            tally.count += 1
            tally.latencies_ns.append(done - sent)


def _connect(url: str, compression: str | None = None) -> Any:
    return connect(
        url,
        compression=compression,
        additional_headers=[TOKEN_HEADER],
        **NO_PROXY,
        open_timeout=TIMEOUT,
        ping_interval=None,
        close_timeout=2,
        max_size=None,
    )


async def _open(url: str, tally: Tally, compression: str | None = None) -> ClientConnection | None:
    try:
        ws: ClientConnection = await _connect(url, compression)
    except Exception as exc:  # refused, rejected, timed out: all count
        tally.error(f"connect failed: {type(exc).__name__}: {exc}")
        return None
    return ws


def _percentile(ordered: list[int], fraction: float) -> float | None:
    """Nearest-rank percentile of sorted nanoseconds, in microseconds."""
    if not ordered:
        return None
    rank = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[rank] / 1000


async def _cpu_share(tally: Tally, marks: bool) -> float:
    """The share of one core this process used during the measured window.

    With ``marks``, the window's start and end are also announced on stderr (``MARK_START``,
    ``MARK_END`` lines) so that the orchestrator can read the server's CPU time at both ends.
    """
    await asyncio.sleep(max(0.0, tally.start - time.perf_counter()))
    if marks:
        print(MARK_START, file=sys.stderr, flush=True)
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.sleep(max(0.0, tally.end - wall))
    if marks:
        print(MARK_END, file=sys.stderr, flush=True)
    return round((time.process_time() - cpu) / (time.perf_counter() - wall), 3)


async def measure(
    url: str,
    connections: int,
    seconds: float,
    payload_name: str,
    warmup: float,
    marks: bool = False,
) -> dict[str, Any]:
    """``--mode echo``."""
    payload = PAYLOADS[payload_name]
    tally = Tally()
    opened = await asyncio.gather(*(_open(url, tally) for _ in range(connections)))
    sockets = [ws for ws in opened if ws is not None]
    tally.start = time.perf_counter() + warmup
    tally.end = tally.start + seconds
    cpu = asyncio.ensure_future(_cpu_share(tally, marks))
    try:
        # Bounded even if the server stalls: the last round trips get TIMEOUT seconds.
        loops = asyncio.gather(*(_run_connection(ws, payload, tally) for ws in sockets))
        await asyncio.wait_for(loops, warmup + seconds + TIMEOUT)
    except asyncio.TimeoutError:  # builtin TimeoutError from 3.11
        tally.error(f"some echoes never came: the run did not end within {TIMEOUT}s of its end")
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return {
        "mode": "echo",
        "url": url,
        "payload": payload_name,
        "payload_bytes": len(payload.encode() if isinstance(payload, str) else payload),
        "connections": connections,
        "connected": len(sockets),
        **_rates(tally, "msg", seconds, warmup, cpu),
    }


def _rates(
    tally: Tally, unit: str, seconds: float, warmup: float, cpu: asyncio.Future[float]
) -> dict[str, Any]:
    latencies = sorted(tally.latencies_ns)
    return {
        "seconds": seconds,
        "warmup": warmup,
        "unit": unit,
        "count": tally.count,
        "per_s": tally.count / seconds,
        "p50_us": _percentile(latencies, 0.50),
        "p99_us": _percentile(latencies, 0.99),
        "errors": tally.errors,
        "error_samples": tally.error_samples,
        # Near 1.0 means the client had a whole core busy: it may be what limits the rate.
        "client_cpu": cpu.result() if cpu.done() else None,
    }


async def _handshake_loop(url: str, tally: Tally) -> None:
    clock = time.perf_counter_ns
    start_ns, end_ns = int(tally.start * 1e9), int(tally.end * 1e9)
    while True:
        begun = clock()
        if begun >= end_ns:
            return
        try:
            ws = await _connect(url)
            try:
                welcome = await asyncio.wait_for(ws.recv(), TIMEOUT)
            finally:
                await ws.close()
        except Exception as exc:  # refused, rejected, closed early, timed out: all count
            tally.error(f"handshake failed: {type(exc).__name__}: {exc}")
            await asyncio.sleep(0.01)  # a server that refuses everything must not spin us
            continue
        done = clock()
        if welcome != WELCOME:
            tally.error(f"wrong welcome: {welcome!r:.40}")
        elif start_ns <= done <= end_ns:
            tally.count += 1
            tally.latencies_ns.append(done - begun)


async def handshakes(
    url: str, concurrency: int, seconds: float, warmup: float, marks: bool = False
) -> dict[str, Any]:
    """``--mode handshake``: connect, receive the welcome, close; again and again."""
    tally = Tally()
    tally.start = time.perf_counter() + warmup
    tally.end = tally.start + seconds
    cpu = asyncio.ensure_future(_cpu_share(tally, marks))
    try:
        loops = asyncio.gather(*(_handshake_loop(url, tally) for _ in range(concurrency)))
        await asyncio.wait_for(loops, warmup + seconds + 3 * TIMEOUT)
    except asyncio.TimeoutError:
        tally.error(f"some handshakes never ended: the run did not end within {3 * TIMEOUT}s")
    return {
        "mode": "handshake",
        "url": url,
        "connections": concurrency,
        **_rates(tally, "handshake", seconds, warmup, cpu),
    }


async def _mark_and_wait(mark: str) -> None:
    """Write ``mark`` on stderr, then wait for a line (or the end) on stdin."""
    print(mark, file=sys.stderr, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


async def idle(url: str, connections: int, warm: int, compression: str | None) -> dict[str, Any]:
    """``--mode idle``: open ``warm``, then ``connections`` more, each echoing one message."""
    raise_fd_limit(warm + connections + 256)
    tally = Tally()
    sockets: list[ClientConnection] = []
    gate = asyncio.Semaphore(OPEN_CONCURRENCY)

    async def open_one() -> None:
        async with gate:
            ws = await _open(url, tally, compression)
            if ws is None:
                return
            sockets.append(ws)
            try:
                await ws.send("idle")
                echo = await asyncio.wait_for(ws.recv(), TIMEOUT)
            except Exception as exc:
                tally.error(f"echo failed: {type(exc).__name__}: {exc}")
                return
            if echo != "idle":
                tally.error(f"wrong echo: {echo!r:.40}")

    try:
        await asyncio.gather(*(open_one() for _ in range(warm)))
        await _mark_and_wait(MARK_WARM)
        began = time.perf_counter()
        await asyncio.gather(*(open_one() for _ in range(connections)))
        opening = time.perf_counter() - began
        # Still open? A server that dropped some shows it here.
        still = sum(1 for ws in sockets if ws.state.name == "OPEN")
        await _mark_and_wait(MARK_ALL)
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    extensions = [type(e).__name__ for e in sockets[0].protocol.extensions] if sockets else []
    return {
        "mode": "idle",
        "url": url,
        "compression": compression or "none",
        "extensions": extensions,
        "warm": warm,
        "connections": connections,
        "connected": len(sockets),
        "open_at_mark": still,
        "open_s": round(opening, 3),
        "errors": tally.errors,
        "error_samples": tally.error_samples,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("echo", "handshake", "idle"), default="echo")
    parser.add_argument("--url", required=True, help="ws://127.0.0.1:PORT/path")
    parser.add_argument(
        "--connections", type=int, default=1, help="connections (idle: beyond --warm)"
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=0.5, help="seconds before measuring")
    parser.add_argument("--payload", choices=sorted(PAYLOADS), default="bytes256")
    parser.add_argument("--marks", action="store_true", help="announce the window on stderr")
    parser.add_argument("--warm", type=int, default=100, help="idle: connections opened first")
    parser.add_argument("--compression", choices=("deflate", "none"), default="none")
    args = parser.parse_args(argv)
    if not args.url.startswith("ws://127.0.0.1:"):
        parser.error("--url must be ws://127.0.0.1:PORT/...: the benchmark stays on this host")
    most = 10_000 if args.mode == "idle" else 1024
    if not 1 <= args.connections <= most or not 0 < args.seconds <= 600 or args.warmup < 0:
        parser.error(f"need 1 <= --connections <= {most}, 0 < --seconds <= 600, --warmup >= 0")
    if not 0 <= args.warm <= 10_000:
        parser.error("need 0 <= --warm <= 10000")
    result: dict[str, Any]
    if args.mode == "idle":
        compression = None if args.compression == "none" else args.compression
        result = asyncio.run(idle(args.url, args.connections, args.warm, compression))
        ok = result["connected"] == args.warm + args.connections
    elif args.mode == "handshake":
        result = asyncio.run(
            handshakes(args.url, args.connections, args.seconds, args.warmup, args.marks)
        )
        ok = result["count"] > 0
    else:
        result = asyncio.run(
            measure(args.url, args.connections, args.seconds, args.payload, args.warmup, args.marks)
        )
        ok = result["connected"] > 0
    print(json.dumps(result), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
