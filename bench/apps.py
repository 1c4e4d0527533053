"""The ASGI apps ``bench.echo`` serves, each one ``hypercorn --worker-class trio bench.apps:NAME``.

Two bare ASGI apps (no framework) are the baselines, the ceiling any framework can reach on the
same server: ``bare_echo`` sends every message back as it came, ``bare_json_echo`` parses each
text message as JSON and sends it back re-encoded. The triows apps do the same work through the
framework:

- ``triows_echo``: a plain handler, ``/bytes`` (binary frames) and ``/text`` (text frames).
- ``triows_json_model``: ``/json``, a ``use_extra_handler=True`` route whose messages are
  validated into a pydantic model and sent back with ``send_json``.

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
from typing import Any

from pydantic import BaseModel

from triows import App, Controller, ControllerBase, WsBody, ws_route

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

#: The apps this module serves.
APPS = ("bare_echo", "bare_json_echo", "triows_echo", "triows_json_model")
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
    user: str
    text: str
    seq: int
    tags: list[str] = []


@Controller("/")
class JsonController(ControllerBase):
    @ws_route("/json", use_extra_handler=True, encoding="json")
    async def on_message(self, message: Message = WsBody()) -> None:
        await self.context.switch_to_websocket().get_client().send_json(message)


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


def main(names: list[str]) -> int:
    """Print ``{NAME: null, or why it cannot be served}`` for each name, as one JSON line."""
    status: dict[str, str | None] = {}
    for name in names:
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
