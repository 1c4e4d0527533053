"""Server instructions per operation, counted by valgrind: a framework's cost without the noise.

Rates on a shared 2-core VM move by a few per cent from minute to minute; instruction counts
do not. Each system is served by hypercorn's trio worker **in one process** (``hypercorn.trio.
serve``, so the app runs where valgrind counts) under ``valgrind --tool=callgrind``, and a load
loop in this process drives a fixed number of operations: handshakes (16 concurrent loops of
connect, receive ``welcome``, close), echoes (64 connections, 256 B binary frames) or JSON
echoes (64 connections, the 250-byte JSON message of ``bench.client``: the one-model route
against 4 typed events, issue #14). Each
system runs twice, with N and with 2N operations, from a fresh process each time; the
difference of the two totals over N is the cost of one operation in a warm server, start-up and
warm-up cancelled out.

    python -m bench.instructions                         # all systems, N = 300 / 3000
    python -m bench.instructions --systems bare_accept triows_guarded --n 500

Needs valgrind (Debian's package) and the ``bench`` extra. About 40 s per system. The cyclic
garbage collector runs at moments that depend on timing, which moves the echo figures by up to
~3%; ``--no-gc`` disables it in the server to compare code paths alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from functools import partial
from typing import Any

from bench.client import PAYLOADS

#: system -> (workload, websocket path); the first of each workload is its baseline.
SYSTEMS: dict[str, tuple[str, str]] = {
    "bare_accept": ("handshake", "/"),
    "triows_accept": ("handshake", "/accept"),
    "triows_guarded": ("handshake", "/guarded?name=bench"),
    "bare_echo": ("echo", "/"),
    "triows_echo": ("echo", "/bytes"),
    "starlette_echo": ("echo", "/bytes"),
    "triows_json_model": ("json", "/json"),
    "triows_events": ("json", "/events"),
}
BASELINES = {"handshake": "bare_accept", "echo": "bare_echo", "json": "triows_json_model"}
DEFAULT_N = {"handshake": 300, "echo": 3000, "json": 3000}
PAYLOAD = bytes(range(256))


def serve(app_name: str, port: int, no_gc: bool) -> None:
    """Serve ``bench.apps:APP`` on 127.0.0.1:PORT in this process until SIGTERM."""
    import gc

    import trio
    from hypercorn.config import Config
    from hypercorn.trio import serve as hypercorn_serve

    from bench import apps

    if no_gc:
        gc.disable()
    app = getattr(apps, app_name)
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.graceful_timeout = 1

    async def main() -> None:
        with trio.open_signal_receiver(signal.SIGTERM) as signals:

            async def stop() -> None:
                async for _ in signals:
                    return

            async with trio.open_nursery() as nursery:
                serving = partial(hypercorn_serve, app, config, shutdown_trigger=stop)
                await nursery.start(serving)
                print("READY", flush=True)  # listening: the load may connect

    trio.run(main)


async def _handshakes(url: str, n: int) -> None:
    from websockets.asyncio.client import connect

    from bench.apps import TOKEN, TOKEN_HEADER, WELCOME

    left = n

    async def loop() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            async with connect(url, additional_headers=[(TOKEN_HEADER, TOKEN)]) as ws:
                if await ws.recv() != WELCOME:
                    raise RuntimeError("wrong welcome")

    await asyncio.gather(*(loop() for _ in range(16)))


async def _echoes(url: str, n: int, payload: str | bytes = PAYLOAD) -> None:
    from websockets.asyncio.client import connect

    left = n
    sockets = [await connect(url, compression=None) for _ in range(64)]

    async def loop(ws: Any) -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await ws.send(payload)
            if await ws.recv() != payload:
                raise RuntimeError("wrong echo")

    await asyncio.gather(*(loop(ws) for ws in sockets))
    for ws in sockets:
        await ws.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def drive(system: str, n: int, no_gc: bool = False, prefix: Sequence[str] = ()) -> None:
    """Serve ``system`` in a fresh process (run under ``prefix``), drive ``n`` operations, stop it.

    Every welcome and echo is checked: a wrong answer raises rather than counting.
    """
    workload, path = SYSTEMS[system]
    port = _free_port()
    command = [*prefix, sys.executable, "-m", "bench.instructions", "--serve", system, str(port)]
    command += ["--no-gc"] if no_gc else []
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    ) as server:
        try:
            assert server.stdout is not None
            if server.stdout.readline().strip() != "READY":
                raise RuntimeError(f"{system}: the server did not start")
            url = f"ws://127.0.0.1:{port}{path}"
            if workload == "handshake":
                asyncio.run(_handshakes(url, n))
            else:
                payload = PAYLOAD if workload == "echo" else PAYLOADS["json250"]
                asyncio.run(_echoes(url, n, payload))
            server.send_signal(signal.SIGTERM)
            if server.wait(timeout=120) != 0:
                raise RuntimeError(f"{system}: the server exited with {server.returncode}")
        finally:
            if server.poll() is None:
                server.kill()


def totals(callgrind_output: str) -> int:
    """The instruction total of a callgrind output file's text."""
    found = re.search(r"^totals:\s+(\d+)", callgrind_output, re.MULTILINE)
    if found is None:
        raise ValueError("no totals line in the callgrind output")
    return int(found.group(1))


def count(system: str, n: int, no_gc: bool) -> int:
    """Instructions the server executed, start to exit, serving ``n`` operations."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        valgrind = ["valgrind", "--tool=callgrind", "--dump-instr=no"]
        drive(system, n, no_gc, [*valgrind, f"--callgrind-out-file={out}"])
        with open(out) as results:
            return totals(results.read())


def main(argv: Sequence[str] | None = None) -> int:
    """Count each system at N and 2N operations; print the table and one JSON line."""
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__)
    parser.add_argument("--systems", nargs="+", choices=list(SYSTEMS), default=list(SYSTEMS))
    parser.add_argument("--n", type=int, help="operations in the shorter run (2N in the other)")
    parser.add_argument("--no-gc", action="store_true", help="gc.disable() in the servers")
    parser.add_argument("--serve", nargs=2, metavar=("APP", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve[0], int(args.serve[1]), args.no_gc)
        return 0
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed (apt-get install valgrind)")
    per_op: dict[str, float] = {}
    for system in args.systems:
        workload = SYSTEMS[system][0]
        n = args.n or DEFAULT_N[workload]
        short, long = count(system, n, args.no_gc), count(system, 2 * n, args.no_gc)
        per_op[system] = (long - short) / n
        baseline = per_op.get(BASELINES[workload])
        versus = f"{per_op[system] / baseline - 1:+.1%}" if baseline else "-"
        print(f"{system:16} {workload:9} {per_op[system]:12,.0f} instructions/op  {versus}")
    print(json.dumps({"instructions_per_op": per_op, "no_gc": args.no_gc}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
