"""The ASGI apps the benchmarks serve, each one ``hypercorn --worker-class trio bench.apps:NAME``.

Three bare ASGI apps (no framework) are the baselines, the ceiling any framework can reach on the
same server: ``bare_echo`` sends every message back as it came, ``bare_json_echo`` parses each
text message as JSON and sends it back re-encoded, ``bare_accept`` accepts, sends ``welcome`` and
waits for the client to leave. The triows apps do the same work through the framework:

- ``triows_echo``: a plain handler, ``/bytes`` (binary frames) and ``/text`` (text frames).
- ``triows_json_model``: ``/json``, a ``use_extra_handler=True`` route whose messages are
  validated into a pydantic model and sent back with ``send_json``.
- ``triows_events``: ``/events``, the same message as one of 4 typed events (``@ws_route.on``):
  dispatched by its ``event`` field, validated into its model, and sent back as the handler's
  reply (its return value).
- ``triows_guarded``: ``/guarded?name=...``, the handshake with the extras: a guard that reads a
  header, a validated ``Query`` parameter and an injected service; then ``welcome``.
- ``triows_accept``: ``/accept``, the same handshake without them.

For reference, the echo in other frameworks on the same server (trio, through anyio):

- ``starlette_echo``: Starlette, ``/bytes`` and ``/text`` websocket routes.
- ``fastapi_echo``: FastAPI, the same routes.

An app that cannot be built in this version of triows does not take the module down with it: its
name is bound to an ASGI app that fails the lifespan startup with the original error, and the
reason is listed in ``UNAVAILABLE``. ``python -m bench.apps NAME...`` prints, as one JSON line,
``null`` for each app that can be served and the reason for each that cannot; the orchestrator
asks it before measuring and skips what cannot be served.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from pydantic import BaseModel

from triows import (
    App,
    Controller,
    ControllerBase,
    ExecutionContext,
    GuardCanActivate,
    Guards,
    Query,
    WebSocket,
    WsBody,
    injectable,
    ws_route,
)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

#: The apps this module serves.
APPS = (
    "bare_accept",
    "bare_echo",
    "bare_json_echo",
    "fastapi_echo",
    "starlette_echo",
    "triows_accept",
    "triows_echo",
    "triows_guarded",
    "triows_events",
    "triows_json_model",
)
#: The frame every handshake app sends once it has accepted.
WELCOME = "welcome"
#: The header ``triows_guarded``'s guard wants (the load process sends it to every system).
TOKEN_HEADER, TOKEN = "x-token", "secret"
#: Why an app of this module cannot be served in this version of triows, by name.
UNAVAILABLE: dict[str, str] = {}


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _refuse_http(send: Send) -> None:
    await send({"type": "http.response.start", "status": 404, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def bare_echo(scope: Scope, receive: Receive, send: Send) -> None:
    """Accept any websocket and send every message back as it came (text→text, bytes→bytes)."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "websocket":
        await _refuse_http(send)
        return
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "websocket.receive":
            text = message.get("text")
            if text is not None:
                await send({"type": "websocket.send", "text": text})
            else:
                await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})
        elif kind == "websocket.connect":
            await send({"type": "websocket.accept"})
        else:  # websocket.disconnect
            return


async def bare_json_echo(scope: Scope, receive: Receive, send: Send) -> None:
    """Parse each text message as JSON and send it back re-encoded, compact, as text.

    The least a JSON route has to do: the ceiling for ``triows_json_model``.
    """
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "websocket":
        await _refuse_http(send)
        return
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "websocket.receive":
            obj = json.loads(message.get("text") or message.get("bytes") or b"")
            await send({"type": "websocket.send", "text": json.dumps(obj, separators=(",", ":"))})
        elif kind == "websocket.connect":
            await send({"type": "websocket.accept"})
        else:  # websocket.disconnect
            return


async def bare_accept(scope: Scope, receive: Receive, send: Send) -> None:
    """Accept any websocket, send ``welcome`` and wait for the client to leave.

    The least a websocket handshake takes: the baseline for ``triows_guarded``.
    """
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "websocket":
        await _refuse_http(send)
        return
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "websocket.connect":
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.send", "text": WELCOME})
        elif kind == "websocket.disconnect":
            return


@Controller("/")
class EchoController(ControllerBase):
    @ws_route("/bytes")
    async def echo_bytes(self) -> None:
        ws = self.context.switch_to_websocket().get_client()
        await ws.accept()
        async for m in ws.iter_bytes():
            await ws.send_bytes(m)

    @ws_route("/text")
    async def echo_text(self) -> None:
        ws = self.context.switch_to_websocket().get_client()
        await ws.accept()
        async for m in ws.iter_text():
            await ws.send_text(m)


triows_echo = App(controllers=[EchoController])


class Message(BaseModel):
    event: Literal["message"] = "message"
    user: str
    text: str
    seq: int
    tags: list[str] = []


class Typing(BaseModel):
    event: Literal["typing"]
    user: str


class Join(BaseModel):
    event: Literal["join"]
    user: str
    room: str


class Leave(BaseModel):
    event: Literal["leave"]
    user: str
    room: str


@Controller("/")
class JsonController(ControllerBase):
    @ws_route("/json", use_extra_handler=True, encoding="json")
    async def on_message(self, message: Message = WsBody()) -> None:
        await self.context.switch_to_websocket().get_client().send_json(message)


@Controller("/")
class EventsController(ControllerBase):
    @ws_route("/events", use_extra_handler=True)
    async def events(self) -> None: ...

    @ws_route.on(events)
    async def on_message(self, message: Message) -> Message:
        return message

    @ws_route.on(events)
    async def on_typing(self, message: Typing) -> None: ...

    @ws_route.on(events)
    async def on_join(self, message: Join) -> None: ...

    @ws_route.on(events)
    async def on_leave(self, message: Leave) -> None: ...


@injectable
class Greeter:
    """The service ``triows_guarded`` injects."""

    def welcome(self, name: str) -> str:
        return WELCOME if name else ""


class TokenGuard(GuardCanActivate):
    async def can_activate(self, context: ExecutionContext) -> bool:
        return context.switch_to_websocket().get_client().headers.get(TOKEN_HEADER) == TOKEN


@Controller("/")
class GuardedController(ControllerBase):
    @ws_route("/guarded")
    @Guards(TokenGuard)
    async def guarded(
        self, websocket: WebSocket, greeter: Greeter, name: str = Query(min_length=1)
    ) -> None:
        await websocket.accept()
        await websocket.send_text(greeter.welcome(name))
        async for _ in websocket.iter_text():  # until the client leaves
            pass


triows_guarded = App(controllers=[GuardedController])


@Controller("/")
class AcceptController(ControllerBase):
    @ws_route("/accept")
    async def accept(self, websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(WELCOME)
        async for _ in websocket.iter_text():
            pass


triows_accept = App(controllers=[AcceptController])


def _unavailable(name: str, error: Exception) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """An app that refuses to start, saying why ``name`` could not be built."""
    reason = f"{type(error).__name__}: {error}"
    UNAVAILABLE[name] = reason

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.failed", "message": f"{name}: {reason}"})
            return
        raise RuntimeError(f"bench.apps:{name} cannot be served: {reason}")

    return app


try:
    triows_json_model: Any = App(controllers=[JsonController])
except Exception as exc:  # the feature may not have landed in this version of triows
    triows_json_model = _unavailable("triows_json_model", exc)

try:
    triows_events: Any = App(controllers=[EventsController])
except Exception as exc:  # typed events may not have landed in this version of triows
    triows_events = _unavailable("triows_events", exc)


def _starlette() -> Any:
    from bench import frameworks

    return frameworks.starlette_echo


def _fastapi() -> Any:
    from bench import frameworks

    return frameworks.fastapi()


class _Lazy:
    """An app built on first use, at the lifespan startup.

    So a server for another system does not import Starlette or FastAPI. If it cannot be built
    (say, it is not installed), the startup fails saying why.
    """

    def __init__(self, name: str, build: Callable[[], Any]) -> None:
        self.name = name
        self._build = build
        self._app: Any = None

    def build(self) -> Any:
        if self._app is None:
            self._app = self._build()
        return self._app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._app is None:
            try:
                self.build()
            except Exception as exc:  # not installed is as good a reason as any
                await _unavailable(self.name, exc)(scope, receive, send)
                return
        await self._app(scope, receive, send)


starlette_echo = _Lazy("starlette_echo", _starlette)
fastapi_echo = _Lazy("fastapi_echo", _fastapi)


def main(names: list[str]) -> int:
    """Print ``{NAME: null, or why it cannot be served}`` for each name, as one JSON line."""
    status: dict[str, str | None] = {}
    for name in names:
        app = globals().get(name) if name in APPS else None
        if isinstance(app, _Lazy):
            try:
                app.build()
            except Exception as exc:
                _unavailable(name, exc)
        if name in UNAVAILABLE:
            status[name] = UNAVAILABLE[name]
        elif name not in APPS:
            status[name] = f"bench.apps has no app called {name!r}"
        else:
            status[name] = None
    print(json.dumps(status))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
