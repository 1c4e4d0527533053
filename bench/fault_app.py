"""The app the fault scenarios run against: ``hypercorn --worker-class trio bench.fault_app:app``.

Written to run on triows before and after the fault-tolerance work (``python -m bench.faults``
measures both), so it uses what the version has: the outbox (``push_text``) where it exists,
the hand-written broadcast loop users wrote before.

- ``/send-loop``: accepts, then sends 4 KiB binary frames in a loop, forever;
- ``/echo``: sends every message back;
- ``/room``: every text message is broadcast to everyone in the room (``push_text`` to each,
  or an ``await send_text`` loop);
- ``/idle``: accepts and waits for messages (a 1 s idle timeout where triows has one);
- ``/json``: a ``use_extra_handler=True`` route validating ``{"name": str, "count": int}``;
- ``GET /stats``: handlers alive per route, close codes seen, and the worker's trio tasks;
- ``GET /health``: ``ok``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pydantic
import trio

import triows
from triows import App, Controller, ControllerBase, WebSocket, WsBody, get, ws_route

#: Whether this triows has the outbox and the route limits (the fault-tolerance work).
NEW = hasattr(triows, "OutboxPolicy")
CHUNK = bytes(4096)
#: Seconds of silence before ``/idle`` connections are closed (where triows can).
IDLE_TIMEOUT = 1.0
#: Frames a ``/room`` member's outbox may hold before it is closed as a slow consumer.
ROOM_OUTBOX = 64

alive: Counter[str] = Counter()
ended: dict[str, list[int | None]] = {}
room: set[WebSocket] = set()


def _record(route: str, websocket: WebSocket) -> None:
    alive[route] -= 1
    ended.setdefault(route, []).append(websocket.close_code)


def _count_tasks() -> int:
    count, pending = 0, [trio.lowlevel.current_root_task()]
    while pending:
        task = pending.pop()
        if task is not None:
            count += 1
            pending.extend(t for n in task.child_nurseries for t in n.child_tasks)
    return count


def _route(path: str, **new: Any) -> Any:
    return ws_route(path, **new) if NEW else ws_route(path)


class Item(pydantic.BaseModel):
    name: str
    count: int


@Controller("")
class FaultController(ControllerBase):
    @get("/health")
    async def health(self) -> str:
        return "ok"

    @get("/stats")
    async def stats(self) -> dict[str, Any]:
        return {"alive": dict(alive), "ended": ended, "tasks": _count_tasks()}

    @ws_route("/send-loop")
    async def send_loop(self, websocket: WebSocket) -> None:
        alive["send-loop"] += 1
        try:
            await websocket.accept()
            while True:
                await websocket.send_bytes(CHUNK)
        finally:
            _record("send-loop", websocket)

    @ws_route("/echo")
    async def echo(self, websocket: WebSocket) -> None:
        alive["echo"] += 1
        try:
            await websocket.accept()
            while True:
                message = await websocket.receive()
                if message["type"] != "websocket.receive":
                    return
                if message.get("text") is not None:
                    await websocket.send_text(message["text"])
                else:
                    await websocket.send_bytes(message["bytes"])
        finally:
            _record("echo", websocket)

    @_route("/room", outbox=triows.OutboxPolicy("close", max_messages=ROOM_OUTBOX) if NEW else None)
    async def room(self, websocket: WebSocket) -> None:
        alive["room"] += 1
        room.add(websocket)
        try:
            await websocket.accept()
            async for text in websocket.iter_text():
                for member in list(room):
                    if NEW:
                        member.push_text(text)
                    else:  # what users wrote before: one stalled member stalls the loop
                        try:
                            await member.send_text(text)
                        except Exception:
                            room.discard(member)
        finally:
            room.discard(websocket)
            _record("room", websocket)

    @_route("/idle", idle_timeout=IDLE_TIMEOUT)
    async def idle(self, websocket: WebSocket) -> None:
        alive["idle"] += 1
        try:
            await websocket.accept()
            async for _ in websocket.iter_text():
                pass
        finally:
            _record("idle", websocket)

    @ws_route("/json", use_extra_handler=True, encoding="json")
    async def json(self, item: Item = WsBody()) -> None:
        websocket = self.context.switch_to_websocket().get_client()
        await websocket.send_json({"ok": item.name})


app = App(controllers=[FaultController])
