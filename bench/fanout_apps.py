"""The servers of the fan-out benchmark (``python -m bench.fanout``), one process each.

Every system offers the same two things, so that the load process (``bench.fanclient``) drives
them all in the same way:

- a **subscriber** websocket that joins the room "room" and then only receives;
- a **publisher** websocket: each text message it sends is one JSON object that the server
  fans out, as it came or re-encoded, to every subscriber.

The systems:

``triows_channels``
    ``hypercorn --worker-class trio bench.fanout_apps:triows_channels`` (as every triows system
    of ``bench`` is served): ``/sub`` joins "room" with ``channels.join``; ``/pub`` hands each
    message to ``channels.publish("room", ...)`` (which takes a JSON object: the message is
    parsed, then serialised once by triows).
``triows_loop``
    The same server, hand-written: a module-level set of the ``/sub`` websockets, and on
    ``/pub`` ``for ws in room: await ws.send_text(m)`` (over a copy of the set: it changes
    while the loop awaits).
``socketio_rooms``
    python-socketio's ASGI app on uvicorn (``python -m bench.fanout_apps socketio_rooms``):
    a client that connects without ``role=pub`` in its query enters "room"; an event ``pub``
    from the publisher is ``await sio.emit("m", data, room="room")``. python-socketio's
    defaults (``async_handlers=True``: each event is handled in a task of its own) and uvicorn's
    (``ws="auto"``: the websockets sans-I/O protocol; the asyncio loop: uvloop is not installed).
``websockets_broadcast``
    The ``websockets`` library's asyncio server (``python -m bench.fanout_apps
    websockets_broadcast``): ``/pub``'s messages go to ``websockets.broadcast(subscribers,
    message)``, synchronous and without backpressure: the ceiling of a Python fan-out.

The triows apps are module attributes (for hypercorn); the other two are started by
``python -m bench.fanout_apps NAME``, which listens on a free port of 127.0.0.1 and says so on
stderr the way hypercorn does (``Running on http://127.0.0.1:PORT (...)``), so that
``bench.echo.serve`` finds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
from typing import Any

from triows import (
    App,
    Channels,
    Controller,
    ControllerBase,
    WebSocket,
    WebSocketDisconnect,
    WebSocketStateError,
    ws_route,
)

#: The room every subscriber joins.
ROOM = "room"
#: The systems served by ``python -m bench.fanout_apps NAME`` (the others by hypercorn).
STANDALONE = ("socketio_rooms", "websockets_broadcast")


@Controller("/")
class ChannelsController(ControllerBase):
    @ws_route("/sub")
    async def subscribe(self, websocket: WebSocket, channels: Channels) -> None:
        await websocket.accept()
        async with channels.join(ROOM, websocket):
            async for _ in websocket.iter_text():  # until the client leaves
                pass

    @ws_route("/pub")
    async def publish(self, websocket: WebSocket, channels: Channels) -> None:
        await websocket.accept()
        async for text in websocket.iter_text():
            await channels.publish(ROOM, json.loads(text))


triows_channels = App(controllers=[ChannelsController])

#: ``triows_loop``'s room: the subscribers' websockets.
room: set[WebSocket] = set()


@Controller("/")
class LoopController(ControllerBase):
    @ws_route("/sub")
    async def subscribe(self, websocket: WebSocket) -> None:
        await websocket.accept()
        room.add(websocket)
        try:
            async for _ in websocket.iter_text():
                pass
        finally:
            room.discard(websocket)

    @ws_route("/pub")
    async def publish(self, websocket: WebSocket) -> None:
        await websocket.accept()
        async for m in websocket.iter_text():
            for ws in list(room):
                try:
                    await ws.send_text(m)
                except (WebSocketDisconnect, WebSocketStateError):
                    room.discard(ws)


triows_loop = App(controllers=[LoopController])


def socketio_app() -> Any:
    """python-socketio's ASGI app: subscribers enter "room", ``pub`` events are emitted to it."""
    import socketio

    sio = socketio.AsyncServer(async_mode="asgi", transports=["websocket"])

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        if "role=pub" not in environ.get("QUERY_STRING", ""):
            await sio.enter_room(sid, ROOM)

    @sio.on("pub")
    async def pub(sid: str, data: Any) -> None:
        await sio.emit("m", data, room=ROOM)

    return socketio.ASGIApp(sio, socketio_path="socket.io")


def _listen() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)  # connections wait in the backlog until the server accepts them
    return sock


def _running(sock: socket.socket, what: str) -> None:
    port = sock.getsockname()[1]
    print(f"Running on http://127.0.0.1:{port} ({what})", file=sys.stderr, flush=True)


def serve_socketio() -> None:
    import uvicorn

    sock = _listen()
    config = uvicorn.Config(
        socketio_app(),
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=1,
    )
    _running(sock, "python-socketio on uvicorn")
    uvicorn.Server(config).run(sockets=[sock])


async def _broadcast_server() -> None:
    from websockets.asyncio.server import ServerConnection, broadcast, serve

    subscribers: set[ServerConnection] = set()

    async def handler(connection: ServerConnection) -> None:
        if connection.request is not None and connection.request.path.startswith("/pub"):
            async for message in connection:
                broadcast(subscribers, message)
            return
        subscribers.add(connection)
        try:
            await connection.wait_closed()
        finally:
            subscribers.discard(connection)

    sock = _listen()
    async with serve(handler, sock=sock, compression=None, max_size=None) as server:
        _running(sock, "websockets broadcast")
        await server.serve_forever()


def main(argv: list[str]) -> int:
    if argv == ["socketio_rooms"]:
        serve_socketio()
    elif argv == ["websockets_broadcast"]:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_broadcast_server())
    else:
        print(f"usage: python -m bench.fanout_apps {{{','.join(STANDALONE)}}}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
