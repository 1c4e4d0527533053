"""The load process: a closed loop of websocket echoes against one server, reported as JSON.

N connections each send a message and wait for its echo, again and again. The connections are
opened first, then they run for a warm-up (not counted) and for the measured seconds; a round
trip counts when its echo arrives inside the measured window. Every echo is compared with what
was sent, so a server that answers wrongly (or not at all) shows up as errors, not as speed.

    python -m bench.client --url ws://127.0.0.1:PORT/path --connections 64 --seconds 3 \
        --payload bytes256

It prints one JSON line: messages per second over all connections, the p50 and p99 round-trip
latency in microseconds, and the number of errors (with a few samples). It uses the
``websockets`` asyncio client (``pip install -e '.[bench]'``), without compression.
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

#: Seconds for a handshake, and for the round trips still in flight when the time is up.
TIMEOUT = 10.0
#: Never a proxy, whatever the environment says (websockets >= 15 reads it; older ones never do).
NO_PROXY: dict[str, Any] = (
    {"proxy": None} if "proxy" in inspect.signature(connect).parameters else {}
)
#: What ``--marks`` writes on stderr when the measured window starts and ends.
MARK_START = "bench.client: window start"
MARK_END = "bench.client: window end"
#: Error messages kept for the report.
MAX_ERROR_SAMPLES = 5


def _json250() -> str:
    """About 250 bytes of compact JSON, valid for the ``Message`` model of ``bench.apps``.

    ASCII only and in the model's field order, so a server that re-encodes it compactly
    (``json.dumps(..., separators=(",", ":"))`` or pydantic) sends back exactly these bytes.
    """
    message = {
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
    messages: int = 0
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
            tally.messages += 1
            tally.latencies_ns.append(done - sent)


async def _open(url: str, tally: Tally) -> ClientConnection | None:
    try:
        return await connect(
            url,
            compression=None,
            **NO_PROXY,
            open_timeout=TIMEOUT,
            ping_interval=None,
            close_timeout=2,
            max_size=None,
        )
    except Exception as exc:  # refused, rejected, timed out: all count
        tally.error(f"connect failed: {type(exc).__name__}: {exc}")
        return None


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
    latencies = sorted(tally.latencies_ns)
    return {
        "url": url,
        "payload": payload_name,
        "payload_bytes": len(payload.encode() if isinstance(payload, str) else payload),
        "connections": connections,
        "connected": len(sockets),
        "seconds": seconds,
        "warmup": warmup,
        "messages": tally.messages,
        "msgs_per_s": tally.messages / seconds,
        "p50_us": _percentile(latencies, 0.50),
        "p99_us": _percentile(latencies, 0.99),
        "errors": tally.errors,
        "error_samples": tally.error_samples,
        # Near 1.0 means the client had a whole core busy: it may be what limits the rate.
        "client_cpu": cpu.result() if cpu.done() else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="ws://127.0.0.1:PORT/path")
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=3.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=0.5, help="seconds before measuring")
    parser.add_argument("--payload", choices=sorted(PAYLOADS), default="bytes256")
    parser.add_argument("--marks", action="store_true", help="announce the window on stderr")
    args = parser.parse_args(argv)
    if not args.url.startswith("ws://127.0.0.1:"):
        parser.error("--url must be ws://127.0.0.1:PORT/...: the benchmark stays on this host")
    if not 1 <= args.connections <= 1024 or not 0 < args.seconds <= 600 or args.warmup < 0:
        parser.error("need 1 <= --connections <= 1024, 0 < --seconds <= 600, --warmup >= 0")
    result = asyncio.run(
        measure(args.url, args.connections, args.seconds, args.payload, args.warmup, args.marks)
    )
    print(json.dumps(result), flush=True)
    return 0 if result["connected"] else 1


if __name__ == "__main__":
    sys.exit(main())
