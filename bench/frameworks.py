"""The echo apps of other frameworks, for reference: ``bench.apps`` imports this when asked.

Apart from ``bench.apps`` so that a server for another system never imports Starlette or
FastAPI, and without ``from __future__ import annotations``: FastAPI reads the handlers'
annotations at runtime to find the ``WebSocket`` parameter (Starlette's class, which is
FastAPI's). ``fastapi()`` builds the FastAPI app, so Starlette alone is enough for
``starlette_echo``.

Both serve ``/bytes`` (binary frames) and ``/text`` (text frames), as ``triows_echo`` does, and
run on trio through anyio under ``hypercorn --worker-class trio``.
"""

from typing import Any

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket


async def _echo_bytes(ws: WebSocket) -> None:
    await ws.accept()
    async for m in ws.iter_bytes():
        await ws.send_bytes(m)


async def _echo_text(ws: WebSocket) -> None:
    await ws.accept()
    async for m in ws.iter_text():
        await ws.send_text(m)


starlette_echo = Starlette(
    routes=[WebSocketRoute("/bytes", _echo_bytes), WebSocketRoute("/text", _echo_text)]
)


def fastapi() -> Any:
    from fastapi import FastAPI

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.add_api_websocket_route("/bytes", _echo_bytes)  # the same handlers: FastAPI's
    app.add_api_websocket_route("/text", _echo_text)  # WebSocket is Starlette's
    return app
