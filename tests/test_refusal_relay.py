"""A refused handshake, told to a browser: ``triows.v1`` clients get 4000 + status and a reason.

Browsers give a page no HTTP status for a refused websocket handshake (only 1006, the same as a
dead server), so ``triows.js`` could not tell "do not come back" from "try again". A client that
offers the subprotocol ``triows.v1`` is accepted and closed at once with ``4000 + status`` and
the refusal's detail; every other client still gets the HTTP refusal. In process and over
hypercorn.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
from live import close_reason, open_websocket, rejection, serve
from support import TIMEOUT, client_for, error_records, next_close

from triows import (
    App,
    Controller,
    ControllerBase,
    GuardCanActivate,
    Guards,
    HTTPException,
    Query,
    WebSocket,
    WsBody,
    ws_route,
)
from triows.testing import WebSocketDenied

RELAY = "triows.v1"


class Refuse(GuardCanActivate):
    async def can_activate(self, context: object) -> bool:
        return False


class DeniesItself(GuardCanActivate):
    """A guard that answers the handshake itself, then says no."""

    async def can_activate(self, context: Any) -> bool:
        await context.switch_to_websocket().get_client().deny(409, b'{"detail": "taken"}')
        return False


#: What the disconnect hook of /hooked saw.
HOOKS: list[int] = []


class Unauthorized(GuardCanActivate):
    async def can_activate(self, context: object) -> bool:
        raise HTTPException(401, "log in first", headers={"www-authenticate": "Bearer"})


@Controller("")
class RefusingController(ControllerBase):
    @ws_route("/guarded")
    @Guards(Refuse)
    async def guarded(self, websocket: WebSocket) -> None:
        raise AssertionError("refused before the handler")

    @ws_route("/login")
    @Guards(Unauthorized)
    async def login(self, websocket: WebSocket) -> None:
        raise AssertionError("refused before the handler")

    @ws_route("/named")
    async def named(self, websocket: WebSocket, name: str = Query(min_length=2)) -> None:
        await websocket.accept(RELAY if RELAY in websocket.subprotocols else None)
        await websocket.send_text(f"hello {name}")

    @ws_route("/teapot")
    async def teapot(self, websocket: WebSocket) -> None:
        await websocket.deny(418, json.dumps({"detail": "short and stout"}).encode())

    @ws_route("/closes")
    async def closes(self, websocket: WebSocket) -> None:
        await websocket.close(1008, "go away")  # before accept: Starlette's refusal

    @ws_route("/hooked", use_extra_handler=True, encoding="text")
    async def hooked(self, data: str = WsBody()) -> None: ...

    @ws_route.connect(hooked)
    async def hooked_open(self, websocket: WebSocket) -> None:
        await websocket.deny(403, b'{"detail": "not you"}')

    @ws_route.disconnect(hooked)
    async def hooked_close(self, websocket: WebSocket, code: int) -> None:
        HOOKS.append(code)

    @ws_route("/self-denied")
    @Guards(DeniesItself)
    async def self_denied(self, websocket: WebSocket) -> None:
        raise AssertionError("refused before the handler")


APP = App(
    controllers=[RefusingController], config={"WEBSOCKET_ALLOWED_ORIGINS": ["https://ok.example"]}
)

CASES = [
    ("/guarded", {}, 4403, "Forbidden"),
    ("/login", {}, 4401, "log in first"),
    ("/named?name=a", {}, 4422, "query.name: String should have at least 2 characters"),
    ("/nowhere", {}, 4404, "Not Found"),
    ("/teapot", {}, 4418, "short and stout"),
    ("/closes", {}, 4403, "go away"),
    ("/hooked", {}, 4403, "not you"),
    ("/self-denied", {}, 4409, "taken"),
    (
        "/named?name=ann",
        {"origin": "https://evil.example"},
        4403,
        "Origin 'https://evil.example' is not allowed: add it to WEBSOCKET_ALLOWED_ORIGINS (or "
        "the route's allowed_origins)",
    ),
]


@pytest.mark.parametrize(("path", "headers", "code", "reason"), CASES)
async def test_a_relay_client_is_told_the_status_and_why(
    path: str, headers: dict[str, str], code: int, reason: str
) -> None:
    async with (
        client_for(APP) as client,
        client.websocket_connect(path, subprotocols=["chat", RELAY], headers=headers) as ws,
    ):
        assert ws.accepted_subprotocol == RELAY
        closed = await next_close(ws)
    assert (closed.code, closed.reason) == (code, reason[:123])


async def test_a_client_that_offers_triows_refused_is_refused_with_it() -> None:
    protocols = ["chat", RELAY, "triows.refused"]  # what triows.js offers
    async with (
        client_for(APP) as client,
        client.websocket_connect("/guarded", subprotocols=protocols) as ws,
    ):
        assert ws.accepted_subprotocol == "triows.refused"
        closed = await next_close(ws)
    assert (closed.code, closed.reason) == (4403, "Forbidden")
    async with (
        client_for(APP) as client,
        client.websocket_connect("/named?name=ann", subprotocols=protocols) as ws,
    ):
        assert ws.accepted_subprotocol == RELAY  # accepted: never triows.refused
        assert await ws.receive_text() == "hello ann"


@pytest.mark.parametrize(("path", "headers", "code", "reason"), CASES)
async def test_other_clients_still_get_the_http_refusal(
    path: str, headers: dict[str, str], code: int, reason: str
) -> None:
    async with client_for(APP) as client:
        with pytest.raises(WebSocketDenied) as denied:
            async with client.websocket_connect(path, subprotocols=["chat"], headers=headers):
                pass
    assert denied.value.status_code == code - 4000


async def test_a_relayed_refusal_is_no_connection_and_no_server_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    HOOKS.clear()
    for path in ("/hooked", "/self-denied"):
        async with (
            client_for(APP) as client,
            client.websocket_connect(path, subprotocols=[RELAY, "triows.refused"]) as ws,
        ):
            await next_close(ws)
    assert HOOKS == []  # refused: never connected, so no disconnect hook (as over HTTP)
    assert error_records(caplog) == []


async def test_an_accepted_relay_client_is_served_as_any_other() -> None:
    async with (
        client_for(APP) as client,
        client.websocket_connect("/named?name=ann", subprotocols=[RELAY]) as ws,
    ):
        assert await ws.receive_text() == "hello ann"


async def test_over_hypercorn_a_browser_like_client_gets_the_close_code() -> None:
    with trio.fail_after(TIMEOUT * 3):
        async with serve(APP) as server:
            async with open_websocket(server, "/guarded", subprotocols=[RELAY]) as ws:
                assert ws.subprotocol == RELAY
                reason = await close_reason(ws)
            assert (reason.code, reason.reason) == (4403, "Forbidden")
            async with open_websocket(server, "/named?name=a", subprotocols=[RELAY]) as ws:
                reason = await close_reason(ws)
            assert reason.code == 4422
            rejected = await rejection(server, "/guarded")
            assert rejected.status_code == 403
