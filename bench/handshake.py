"""Per-handshake cost of guards, parameters and injection, measured in-process.

Two websocket routes do the same work (accept, send one frame, return); one takes nothing, the
other resolves three parameters (Query, Header, Path), runs one guard and gets one injected
service. Each handshake is driven straight through the ASGI app with in-memory ``receive`` and
``send`` — no server, no client — so the figure is the framework's own cost.

Every round runs each variant in a fresh process (A B A B …) and reports the median
microseconds per handshake; the difference is what the extras cost.

    python -m bench.handshake [--rounds 5] [--handshakes 20000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from typing import Any

import trio

from triows import (
    App,
    Controller,
    ControllerBase,
    ExecutionContext,
    GuardCanActivate,
    Guards,
    Header,
    Path,
    Query,
    WebSocket,
    injectable,
    ws_route,
)


@injectable
class Rooms:
    def describe(self, room: int) -> str:
        return f"room {room}"


class TokenGuard(GuardCanActivate):
    async def can_activate(self, context: ExecutionContext) -> bool:
        return context.switch_to_websocket().get_client().headers.get("x-token") == "secret"


@Controller("/")
class BenchController(ControllerBase):
    @ws_route("/bare")
    async def bare(self, websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("hi")

    @ws_route("/rooms/{room:int}")
    @Guards(TokenGuard)
    async def full(
        self,
        websocket: WebSocket,
        rooms: Rooms,
        room: int = Path(ge=1),
        name: str = Query("John", min_length=1),
        token: str = Header(alias="x-token"),
    ) -> None:
        await websocket.accept()
        await websocket.send_text("hi")


PATHS = {"bare": "/bare", "full": "/rooms/7"}


def _scope(path: str) -> dict[str, Any]:
    return {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "scheme": "ws",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"name=ellar",
        "headers": [(b"host", b"localhost"), (b"x-token", b"secret")],
        "subprotocols": [],
        "extensions": {"websocket.http.response": {}},
        "state": {},
    }


async def _measure(variant: str, handshakes: int) -> float:
    app = App(controllers=[BenchController])
    template = _scope(PATHS[variant])
    connect = {"type": "websocket.connect"}
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return connect

    async def one() -> None:
        sent.clear()
        await app(dict(template), receive, send)

    await one()
    if [m["type"] for m in sent] != ["websocket.accept", "websocket.send", "websocket.close"]:
        raise RuntimeError(f"{variant}: unexpected exchange {sent}")
    start = time.perf_counter()
    for _ in range(handshakes):
        await one()
    return (time.perf_counter() - start) / handshakes * 1e6


def _child(variant: str, handshakes: int) -> None:
    print(json.dumps({"variant": variant, "us": trio.run(_measure, variant, handshakes)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--handshakes", type=int, default=20000)
    parser.add_argument("--child", choices=sorted(PATHS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.handshakes)
        return
    results: dict[str, list[float]] = {name: [] for name in PATHS}
    for _ in range(args.rounds):
        for variant in PATHS:
            out = subprocess.run(
                [sys.executable, "-m", "bench.handshake", "--child", variant,
                 "--handshakes", str(args.handshakes)],
                check=True, capture_output=True, text=True,
            ).stdout  # fmt: skip
            results[variant].append(json.loads(out)["us"])
    bare, full = (statistics.median(results[v]) for v in ("bare", "full"))
    for variant, values in results.items():
        print(
            f"{variant:>5}: median {statistics.median(values):7.2f} µs/handshake "
            f"(min {min(values):.2f}, max {max(values):.2f}, {args.rounds} rounds)"
        )
    print(f"3 params + 1 guard + 1 service cost {full - bare:.2f} µs per handshake "
          f"({full / bare:.2f}x the bare handshake)")  # fmt: skip


if __name__ == "__main__":
    main()
