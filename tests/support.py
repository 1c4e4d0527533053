"""Test helpers shared by the in-process suites (not part of triows).

An app with one websocket route, an ``AsyncTestClient`` or a websocket session on an app, the
denial a refused handshake ends with, the close a session ends with, and the log records a test
must not (or must) see. The helpers for real servers and server processes are in ``live.py``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

from triows import App, Controller, ControllerBase, WebSocketDisconnect, ws_route
from triows.testing import (
    AsyncTestClient,
    AsyncWebSocketTestSession,
    LiveServer,
    WebSocketDenied,
)

#: Seconds an in-process test may take; also its client's receive and handshake timeout.
TIMEOUT = 3

#: Whatever has ``websocket_connect(path, **kwargs)``: the in-process client or a live server.
Connector = AsyncTestClient | LiveServer


def route_app(
    handler: Callable[..., Awaitable[None]],
    path: str = "/ws",
    *,
    route: dict[str, Any] | None = None,
    **app_kwargs: Any,
) -> App:
    """An App whose one websocket route is ``handler``.

    Args:
        handler: ``async def handler(self, websocket: WebSocket)``, a method of the controller.
        path: The route's path.
        route: Keyword arguments for ``ws_route`` (``outbox=...``, ``idle_timeout=...``).
        **app_kwargs: Keyword arguments for ``App``.
    """
    endpoint = ws_route(path, **(route or {}))(handler)
    controller = type("WSController", (ControllerBase,), {"handler": endpoint})
    return App(controllers=[Controller("")(controller)], **app_kwargs)


@asynccontextmanager
async def client_for(
    app: Any, *, within: float = TIMEOUT, **client_kwargs: Any
) -> AsyncIterator[AsyncTestClient]:
    """An in-process client on ``app``, the whole block bounded by ``within`` seconds.

    Args:
        app: The ASGI app.
        within: Bounds the block, and is the client's receive and handshake timeout.
        **client_kwargs: Keyword arguments for ``AsyncTestClient``.
    """
    with trio.fail_after(within):
        async with AsyncTestClient(app, timeout=within, **client_kwargs) as client:
            yield client


@asynccontextmanager
async def connected(
    app: Any,
    path: str = "/ws",
    *,
    client_timeout: float = TIMEOUT,
    lifespan: bool = True,
    raise_server_exceptions: bool = True,
    **connect_kwargs: Any,
) -> AsyncIterator[AsyncWebSocketTestSession]:
    """One in-process client and one websocket session to ``path`` on ``app``.

    Args:
        app: The ASGI app.
        path: Where to connect.
        client_timeout: The client's receive and handshake timeout (it does not bound the
            block).
        lifespan: Whether the client runs the app's lifespan.
        raise_server_exceptions: The client's: ``False`` to see the 500 or 1011 a real client
            gets when the handler fails.
        **connect_kwargs: Keyword arguments for ``websocket_connect`` (``subprotocols=...``).
    """
    client = AsyncTestClient(
        app,
        timeout=client_timeout,
        lifespan=lifespan,
        raise_server_exceptions=raise_server_exceptions,
    )
    async with (
        client,
        client.websocket_connect(path, **connect_kwargs) as ws,
    ):
        yield ws


async def refusal(client: Connector, path: str, **connect_kwargs: Any) -> WebSocketDenied:
    """The ``WebSocketDenied`` a handshake to ``path`` ends with.

    Args:
        client: An in-process client or a live server.
        path: Where to connect.
        **connect_kwargs: Keyword arguments for ``websocket_connect`` (``headers=...``).

    Raises:
        AssertionError: The handshake was accepted.
    """
    try:
        async with client.websocket_connect(path, **connect_kwargs):
            pass
    except WebSocketDenied as denied:
        return denied
    raise AssertionError(f"the handshake to {path!r} was accepted")


async def refusal_by(
    app: Any, path: str = "/ws", *, client_timeout: float = TIMEOUT, **client_kwargs: Any
) -> WebSocketDenied:
    """:func:`refusal` on a client of its own on ``app``.

    Args:
        app: The ASGI app.
        path: Where to connect.
        client_timeout: The client's receive and handshake timeout.
        **client_kwargs: Keyword arguments for ``AsyncTestClient``
            (``websocket_denial_response=False``).
    """
    async with AsyncTestClient(app, timeout=client_timeout, **client_kwargs) as client:
        return await refusal(client, path)


async def next_close(ws: AsyncWebSocketTestSession) -> WebSocketDisconnect:
    """The close the app sends next: the session's next receive must raise it.

    Raises:
        pytest.fail.Exception: A message came instead (``DID NOT RAISE``).
    """
    with pytest.raises(WebSocketDisconnect) as closed:
        await ws.receive()
    return closed.value


def error_records(
    caplog: pytest.LogCaptureFixture, level: int = logging.ERROR
) -> list[logging.LogRecord]:
    """The records ``caplog`` holds at ``level`` or above (ERROR unless told)."""
    return [record for record in caplog.records if record.levelno >= level]


__all__ = [
    "TIMEOUT",
    "Connector",
    "client_for",
    "connected",
    "error_records",
    "next_close",
    "refusal",
    "refusal_by",
    "route_app",
]
