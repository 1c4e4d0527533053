"""triows on a real server: hypercorn's trio worker in-process, real websocket and HTTP clients.

Everything here goes over 127.0.0.1 sockets: trio-websocket for websockets, httpx for HTTP. The
parity test plays the same scenarios over the in-process ``AsyncTestClient`` and over the wire
and demands the same transcript, so the test clients cannot drift from the server.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import trio
from live import (
    LOGIN_FIRST,
    NOT_FOUND,
    SCENARIOS,
    ScenarioController,
    Server,
    close_reason,
    open_websocket,
    rejection,
    run_in_process,
    run_live,
    serve,
)

from triows import (
    App,
    Controller,
    ControllerBase,
    Request,
    WebSocket,
    WebSocketDisconnect,
    get,
    post,
    ws_route,
)
from triows.testing import AsyncTestClient

pytestmark = pytest.mark.live

#: No test here should come near this; it only stops a hang.
TIMEOUT = 10

WELCOME = "Welcome to our live support room!\nHow can we help you?"


def answer(complaint: str) -> str:
    return (
        f'We have received you complain:<br><br><strong>"{complaint}"</strong>'
        "<br><br>We shall get back to you."
    )


@Controller("/car")
class GuideCarController(ControllerBase):
    """The guide's live-support handler (with its ``assert ws.close()`` fixed to an await)."""

    @ws_route("/live-support")
    async def live_support(self):
        ws = self.context.switch_to_websocket().get_client()
        await ws.accept()
        await ws.send_text("Welcome to our live support room!\nHow can we help you?")

        while True:
            try:
                data = await ws.receive_text()
                await ws.send_text(
                    f'We have received you complain:<br><br><strong>"{data}"</strong><br><br>We shall get back to you.'  # noqa: E501
                )
            except Exception:
                await ws.close()
                break


@Controller("/api")
class ApiController(ControllerBase):
    @get("/health")
    async def health(self, request: Request) -> dict[str, Any]:
        return {"lifespan": request.app.state["lifespan"]}

    @post("/echo")
    async def echo(self, request: Request) -> dict[str, Any]:
        return {"got": await request.json(), "type": request.headers["content-type"]}


@Controller("/probe")
class ProbeController(ControllerBase):
    @ws_route("/disconnect")
    async def disconnect(self, ws: WebSocket) -> None:
        """Report how the client's close reached the app."""
        await ws.accept()
        await ws.send_text("ready")
        try:
            while True:
                await ws.receive_text()
        except WebSocketDisconnect as exc:
            ws.app.state["disconnects"].send_nowait((exc.code, exc.reason))


@asynccontextmanager
async def lifespan(app: App) -> AsyncIterator[None]:
    app.state["lifespan"] = "running"
    yield
    app.state["lifespan"] = "stopped"


def build_app() -> App:
    return App(
        controllers=[ScenarioController, GuideCarController, ApiController, ProbeController],
        lifespan=lifespan,
    )


@pytest.fixture
def app() -> App:
    return build_app()


@pytest.fixture
async def server(app: App) -> AsyncIterator[Server]:
    async with serve(app) as running:
        yield running


# -- the helper itself -------------------------------------------------------------------------


async def test_serve_binds_an_os_chosen_port_and_runs_the_lifespan(app: App) -> None:
    with trio.fail_after(TIMEOUT):
        async with serve(app) as server:
            assert server.url == f"http://127.0.0.1:{server.port}"
            assert server.ws_url == f"ws://127.0.0.1:{server.port}"
            assert server.port != 0
            assert app.state["lifespan"] == "running"
        assert app.state["lifespan"] == "stopped"
        # The port is released: connecting now fails.
        with pytest.raises(OSError, match=r"^all attempts to connect to 127\.0\.0\.1:"):
            await trio.open_tcp_stream("127.0.0.1", server.port)


# -- HTTP ----------------------------------------------------------------------------------------


async def test_http_over_hypercorn(server: Server) -> None:
    with trio.fail_after(TIMEOUT):
        async with httpx.AsyncClient(base_url=server.url) as http:
            health = await http.get("/api/health")
            assert health.status_code == 200
            assert health.headers["content-type"] == "application/json"
            assert health.json() == {"lifespan": "running"}

            echoed = await http.post("/api/echo", json={"a": [1, 2]})
            assert echoed.status_code == 200
            assert echoed.json() == {"got": {"a": [1, 2]}, "type": "application/json"}

            missing = await http.get("/nowhere")
            assert missing.status_code == 404
            assert missing.content == NOT_FOUND

            wrong_method = await http.delete("/api/health")
            assert wrong_method.status_code == 405
            assert wrong_method.headers["allow"] == "GET, HEAD"


# -- websockets ----------------------------------------------------------------------------------


async def test_guide_live_support_handler(server: Server) -> None:
    with trio.fail_after(TIMEOUT):
        async with open_websocket(server, "/car/live-support") as ws:
            assert await ws.get_message() == WELCOME
            await ws.send_message("Message from client")
            assert await ws.get_message() == answer("Message from client")
            await ws.send_message("and another")
            assert await ws.get_message() == answer("and another")


async def test_unknown_path_is_rejected_with_404(server: Server) -> None:
    with trio.fail_after(TIMEOUT):
        rejected = await rejection(server, "/car/nowhere")
    assert rejected.status_code == 404
    assert rejected.body == NOT_FOUND
    headers = dict(rejected.headers)
    assert headers[b"content-type"] == b"application/json"
    assert headers[b"content-length"] == str(len(NOT_FOUND)).encode()


async def test_close_before_accept_is_rejected_with_403(server: Server) -> None:
    with trio.fail_after(TIMEOUT):
        rejected = await rejection(server, "/s/refuse")
    assert rejected.status_code == 403
    assert not rejected.body


async def test_http_exception_before_accept_is_its_status_with_body(server: Server) -> None:
    with trio.fail_after(TIMEOUT):
        rejected = await rejection(server, "/s/private")
    assert rejected.status_code == 401
    assert rejected.body == LOGIN_FIRST
    headers = dict(rejected.headers)
    assert headers[b"www-authenticate"] == b"Bearer"
    assert headers[b"content-type"] == b"application/json"


async def test_app_close_code_and_reason_reach_the_client(server: Server) -> None:
    with trio.fail_after(TIMEOUT):
        async with open_websocket(server, "/s/goodbye") as ws:
            assert await ws.get_message() == "bye"
            reason = await close_reason(ws)
    assert reason.code == 4001
    assert reason.reason == "go away"


async def test_handler_exception_closes_with_1011(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    with trio.fail_after(TIMEOUT):
        async with open_websocket(server, "/s/crash") as ws:
            assert await ws.get_message() == "one"
            assert await ws.get_message() == b"two"
            reason = await close_reason(ws)
    assert reason.code == 1011
    assert reason.reason == "Internal Server Error"
    failures = [r for r in caplog.records if r.name == "triows" and r.levelno == logging.ERROR]
    assert len(failures) == 1
    assert re.fullmatch(
        r"websocket handler ScenarioController\.crash failed \(/s/crash from 127\.0\.0\.1:\d+\)",
        failures[0].getMessage(),
    )
    assert failures[0].exc_info is not None
    assert repr(failures[0].exc_info[1]) == "RuntimeError('boom')"


async def test_subprotocol_negotiation(server: Server) -> None:
    with trio.fail_after(TIMEOUT):
        async with open_websocket(
            server, "/s/protocols", subprotocols=["chat.v1", "chat.v2"]
        ) as ws:
            assert ws.subprotocol == "chat.v2"
            assert await ws.get_message() == "chat.v1,chat.v2"
        async with open_websocket(server, "/s/protocols", subprotocols=["x"]) as ws:
            assert ws.subprotocol is None
            assert await ws.get_message() == "x"


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_in_process_client_agrees_with_hypercorn(server: Server, name: str) -> None:
    scenario = SCENARIOS[name]
    with trio.fail_after(TIMEOUT):
        async with AsyncTestClient(build_app()) as client:  # its own app, its own lifespan
            in_process = await run_in_process(client, scenario)
        over_the_wire = await run_live(server, scenario)
    assert in_process == over_the_wire == scenario.expected


async def test_the_clients_close_code_reaches_the_handler_over_hypercorn(
    app: App, server: Server
) -> None:
    """hypercorn 0.18 tells the app 1006 whatever close code the client sent, and no reason
    (https://github.com/pgjones/hypercorn/issues/127); triows reads the close frame itself, so
    the handler sees what the in-process clients deliver (``tests/test_testing.py``).
    ``tests/test_faults.py`` pins hypercorn's own behaviour.
    """
    sender, disconnects = trio.open_memory_channel[tuple[int, str]](1)
    app.state["disconnects"] = sender
    with trio.fail_after(TIMEOUT):
        async with open_websocket(server, "/probe/disconnect") as ws:
            assert await ws.get_message() == "ready"
            await ws.aclose(4000, "bye")
        code, reason = await disconnects.receive()
    assert (code, reason) == (4000, "bye")
