"""triows on a real server: hypercorn's trio worker in-process, real websocket and HTTP clients.

Everything here goes over 127.0.0.1 sockets: trio-websocket (``live.open_websocket``) and the
live server's own sessions (``LiveServer.websocket_connect``) for websockets, httpx for HTTP. The
parity tests play the same conversations over the in-process ``AsyncTestClient`` and over the
wire, with either client, and demand the same transcript, so the test clients cannot drift from
the server. The rest covers what only a real server has: the port, the lifespan, shutdown, and
connections that come and go by the thousand.
"""

from __future__ import annotations

import gc
import logging
import re
import time
import weakref
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import trio
import trio.testing
from hypercorn.utils import LifespanFailureError
from live import (
    LOGIN_FIRST,
    NOT_FOUND,
    SCENARIOS,
    ScenarioController,
    Server,
    all_tasks,
    close_reason,
    open_websocket,
    rejection,
    run_in_process,
    run_live,
)
from support import Connector, refusal

from triows import (
    App,
    Controller,
    ControllerBase,
    GuardCanActivate,
    Guards,
    HTTPException,
    IExecutionContext,
    Request,
    WebSocket,
    WebSocketDisconnect,
    get,
    post,
    ws_route,
)
from triows.testing import (
    AsyncTestClient,
    AsyncWebSocketTestSession,
    LiveServer,
    LiveWebSocketSession,
    ReceiveTimeout,
    UnexpectedMessage,
    WebSocketDenied,
    serve,
    serve_in,
)

pytestmark = pytest.mark.live

#: No test here should come near this; it only stops a hang.
TIMEOUT = 10


# -- the app: one for every test here --------------------------------------------------------------


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


class Refuse(GuardCanActivate):
    async def can_activate(self, context: IExecutionContext) -> bool:
        return False


@Controller("/t")
class ServerTestController(ControllerBase):
    @ws_route("/json")
    async def json(self, ws: WebSocket) -> None:
        await ws.accept()
        async for data in ws.iter_json():
            await ws.send_json({"echo": data})

    @ws_route("/mixed")
    async def mixed(self, ws: WebSocket) -> None:
        """Answers each text with a binary frame and the reverse."""
        await ws.accept()
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await ws.send_bytes(message["text"].encode())
            else:
                await ws.send_text(message["bytes"].decode())

    @ws_route("/quiet")
    async def quiet(self, ws: WebSocket) -> None:
        """Says nothing until spoken to."""
        await ws.accept()
        async for text in ws.iter_text():
            await ws.send_text(f"pong: {text}")

    @ws_route("/headers")
    async def headers(self, ws: WebSocket) -> None:
        await ws.accept(headers={"x-room": "blue"})
        await ws.send_text(ws.headers.get("x-token", "-"))

    @ws_route("/guarded")
    @Guards(Refuse)
    async def guarded(self, ws: WebSocket) -> None:
        raise AssertionError("the guard refuses first")

    @ws_route("/teapot")
    async def teapot(self, ws: WebSocket) -> None:
        raise HTTPException(418, "short and stout", headers={"X-Pot": "tea"})

    @ws_route("/counted")
    async def counted(self, ws: WebSocket) -> None:
        """Echoes; ``app.state["seen"]`` holds every connection, ``["active"]`` counts them."""
        state = ws.app.state
        state["seen"].add(ws)
        state["active"] += 1
        try:
            await ws.accept()
            async for text in ws.iter_text():
                await ws.send_text(text)
        finally:
            state["active"] -= 1
            state["ended"] += 1

    @ws_route("/forever")
    async def forever(self, ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text("ready")
        async for _ in ws.iter_text():
            pass

    @get("/health")
    async def health(self) -> dict[str, str]:
        return {"status": "up"}


@asynccontextmanager
async def lifespan(app: App) -> AsyncIterator[None]:
    app.state["lifespan"] = "running"
    yield
    app.state["lifespan"] = "stopped"


def build_app() -> App:
    app = App(
        controllers=[
            ScenarioController,
            GuideCarController,
            ApiController,
            ProbeController,
            ServerTestController,
        ],
        lifespan=lifespan,
    )
    app.state.update(seen=weakref.WeakSet(), active=0, ended=0)
    return app


@pytest.fixture
def app() -> App:
    return build_app()


@pytest.fixture
async def server(app: App) -> AsyncIterator[Server]:
    async with serve(app) as running:
        yield running


# -- serve(): the port, the lifespan, shutdown -----------------------------------------------------


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


async def test_serve_listens_on_an_os_chosen_port_and_runs_the_lifespan(app: App) -> None:
    with trio.fail_after(TIMEOUT):
        async with serve(app) as server:
            assert server.port != 0
            assert server.host == "127.0.0.1"
            assert server.url == f"http://127.0.0.1:{server.port}"
            assert server.ws_url == f"ws://127.0.0.1:{server.port}"
            assert repr(server) == f"LiveServer('http://127.0.0.1:{server.port}')"
            assert str(server) == server.url  # as pytest-django's live_server
            assert app.state["lifespan"] == "running"
            async with httpx.AsyncClient(base_url=server.url) as http:
                response = await http.get("/t/health")
            assert response.status_code == 200
            assert response.json() == {"status": "up"}
            assert response.headers["server"] == "hypercorn-h11"
        assert app.state["lifespan"] == "stopped"
        with pytest.raises(OSError, match=r"^all attempts to connect to 127\.0\.0\.1:"):
            await trio.open_tcp_stream("127.0.0.1", server.port)


async def test_serve_in_with_nursery_start_stops_when_cancelled(app: App) -> None:
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(serve_in, app)
            assert isinstance(server, LiveServer)
            async with server.websocket_connect("/t/json") as ws:
                await ws.send_json([1])
                assert await ws.receive_json() == {"echo": [1]}
            nursery.cancel_scope.cancel()
        assert app.state["lifespan"] == "stopped"  # cancelling is a graceful stop
    with pytest.raises(OSError, match=r"^all attempts to connect to 127\.0\.0\.1:"):
        await trio.open_tcp_stream("127.0.0.1", server.port)


async def test_a_failing_lifespan_startup_fails_serve() -> None:
    @asynccontextmanager
    async def broken(app: App) -> AsyncIterator[None]:
        raise RuntimeError("database down")
        yield

    with trio.fail_after(TIMEOUT), pytest.raises(LifespanFailureError, match="database down"):
        async with serve(App(lifespan=broken)):
            await trio.sleep_forever()


async def test_a_shutdown_that_hangs_is_cut_short_and_reported() -> None:
    @asynccontextmanager
    async def stuck(app: App) -> AsyncIterator[None]:
        yield
        await trio.sleep_forever()

    with trio.fail_after(TIMEOUT):
        started = trio.current_time()
        with pytest.raises(TimeoutError, match=r"^hypercorn did not shut down within 0\.2s$"):
            async with serve(App(lifespan=stuck), server_timeout=0.2):
                pass
        assert trio.current_time() - started < 0.2 + 2


async def test_graceful_shutdown_with_a_connection_open(app: App) -> None:
    """hypercorn stops: the app drains at once (1012), well within ``graceful_timeout``."""
    graceful = 1.0
    outcome: list[tuple[int, str]] = []

    async def hold(server: LiveServer, task_status: trio.TaskStatus[None]) -> None:
        async with server.websocket_connect("/t/forever") as ws:
            assert await ws.receive_text() == "ready"
            task_status.started()
            with pytest.raises(WebSocketDisconnect) as closed:
                await ws.receive_text(timeout=TIMEOUT)
            outcome.append((closed.value.code, closed.value.reason))

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as clients:
            async with serve(app, graceful_timeout=graceful) as server:
                await clients.start(hold, server)
                stopping = time.monotonic()
            stopped_after = time.monotonic() - stopping
    assert outcome == [(1012, "server shutting down")]
    assert stopped_after < graceful
    assert app.state["lifespan"] == "stopped"
    assert app.state["active"] == 0


# -- HTTP ------------------------------------------------------------------------------------------


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


# -- websockets with a raw client (trio-websocket) -------------------------------------------------


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


# -- websockets with the live server's sessions ----------------------------------------------------


async def test_the_denial_is_the_real_http_response(server: LiveServer) -> None:
    with trio.fail_after(TIMEOUT):
        denied = await refusal(server, "/s/private")
    assert denied.status_code == 401
    assert denied.json() == {"detail": "login first"}
    headers = dict(denied.headers)
    assert headers["www-authenticate"] == "Bearer"
    assert headers["content-type"] == "application/json"
    assert headers["server"] == "hypercorn-h11"  # it went through hypercorn


async def test_response_headers_include_what_hypercorn_adds(server: LiveServer) -> None:
    with trio.fail_after(TIMEOUT):
        async with server.websocket_connect("/t/headers") as ws:
            assert await ws.receive_text() == "-"
    names = [name for name, _ in ws.response_headers]
    assert sorted(names) == [b"date", b"server", b"x-room"]
    assert ws.extra_headers == [(b"x-room", b"blue")]


async def test_receive_timeout_is_a_timeout_error(server: LiveServer) -> None:
    with trio.fail_after(TIMEOUT):
        async with server.websocket_connect("/t/quiet", timeout=0.05) as ws:
            started = trio.current_time()
            with pytest.raises(TimeoutError) as raised:
                await ws.receive_text()
            assert trio.current_time() - started >= 0.05
            assert isinstance(raised.value, ReceiveTimeout)
            await ws.assert_no_message(within=0.01)
            await ws.send_text("still there?")
            assert await ws.receive_text(timeout=TIMEOUT) == "pong: still there?"


async def test_handshake_timeout() -> None:
    @Controller("/slow")
    class SlowController(ControllerBase):
        @ws_route("/accept")
        async def accept_later(self, ws: WebSocket) -> None:
            await ws.app.state["go"].wait()

    slow = App(controllers=[SlowController])
    slow.state["go"] = trio.Event()
    with trio.fail_after(TIMEOUT):
        async with serve(slow) as server:
            with pytest.raises(ReceiveTimeout, match=r"^no handshake answer from ws://"):
                async with server.websocket_connect("/slow/accept", timeout=0.05):
                    raise AssertionError("the handshake should not have finished")
            slow.state["go"].set()


async def test_several_clients_at_once(server: LiveServer) -> None:
    async def one(n: int) -> None:
        async with server.websocket_connect("/t/json") as ws:
            for i in range(3):
                await ws.send_json([n, i])
                assert await ws.receive_json() == {"echo": [n, i]}

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            for n in range(20):
                nursery.start_soon(one, n)


async def test_abort_reaches_the_app_as_1006() -> None:
    @Controller("/probe")
    class ProbeController(ControllerBase):
        @ws_route("/abort")
        async def abort(self, ws: WebSocket) -> None:
            await ws.accept()
            try:
                await ws.receive_text()
            except WebSocketDisconnect as exc:
                ws.app.state["codes"].send_nowait(exc.code)

    probe = App(controllers=[ProbeController])
    sender, codes = trio.open_memory_channel[int](1)
    probe.state["codes"] = sender
    with trio.fail_after(TIMEOUT):
        async with serve(probe) as probed, probed.websocket_connect("/probe/abort") as ws:
            await ws.abort()
            assert await codes.receive() == 1006
            with pytest.raises(WebSocketDisconnect) as closed:
                await ws.receive()
    assert (closed.value.code, closed.value.reason) == (1006, "")


# -- parity: in-process and over the wire, the same transcript -------------------------------------


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_in_process_client_agrees_with_hypercorn(server: Server, name: str) -> None:
    scenario = SCENARIOS[name]
    with trio.fail_after(TIMEOUT):
        # Its own app and lifespan; a failing handler shows as a real client sees it (1011, 500).
        async with AsyncTestClient(build_app(), raise_server_exceptions=False) as client:
            in_process = await run_in_process(client, scenario)
        over_the_wire = await run_live(server, scenario)
    assert in_process == over_the_wire == scenario.expected


#: Both sessions have the same methods (and both connectors, ``support.Connector``, the same
#: ``websocket_connect``).
Session = AsyncWebSocketTestSession | LiveWebSocketSession


#: A step: ("text", s) / ("bytes", b) / ("json", obj) send; ("receive",) / ("receive_text",) /
#: ("receive_bytes",) / ("receive_json",) record what arrives; ("timeout", s) expects nothing
#: within s seconds from a receive; ("quiet", s) is assert_no_message(within=s); ("close", code,
#: reason) closes from the client's side.
Step = tuple[Any, ...]


@dataclass(frozen=True)
class Case:
    path: str
    steps: Sequence[Step]
    expected: list[tuple[Any, ...]]
    subprotocols: Sequence[str] = ()
    headers: dict[str, str] | None = None


async def play_step(ws: Session, step: Step) -> tuple[Any, ...] | None:
    kind = step[0]
    if kind == "text":
        await ws.send_text(step[1])
    elif kind == "bytes":
        await ws.send_bytes(step[1])
    elif kind == "json":
        await ws.send_json(step[1])
    elif kind == "close":
        await ws.close(step[1], step[2])
    elif kind == "receive":
        message = await ws.receive()
        text = message.get("text")
        return ("text", text) if text is not None else ("bytes", message["bytes"])
    elif kind == "receive_text":
        return ("text", await ws.receive_text())
    elif kind == "receive_bytes":
        return ("bytes", await ws.receive_bytes())
    elif kind == "receive_json":
        return ("json", await ws.receive_json())
    elif kind == "timeout":
        with pytest.raises(ReceiveTimeout, match=rf"^no message from the \w+ within {step[1]}s"):
            await ws.receive(timeout=step[1])
        return ("timed out",)
    elif kind == "quiet":
        try:
            await ws.assert_no_message(within=step[1])
        except AssertionError as exc:
            return ("not quiet", str(exc))
        return ("quiet",)
    else:
        raise AssertionError(f"unknown step {step!r}")
    return None


async def play(connector: Connector, case: Case) -> list[tuple[Any, ...]]:
    """Play ``case`` through ``connector``'s sessions; the transcript it saw."""
    seen: list[tuple[Any, ...]] = []
    try:
        async with connector.websocket_connect(
            case.path, subprotocols=case.subprotocols, headers=case.headers
        ) as ws:
            seen.append(("accepted", ws.accepted_subprotocol, ws.extra_headers))
            for step in case.steps:
                try:
                    outcome = await play_step(ws, step)
                except WebSocketDisconnect as exc:
                    outcome = ("closed", exc.code, exc.reason)
                except UnexpectedMessage as exc:
                    outcome = ("unexpected", str(exc))
                if outcome is not None:
                    seen.append(outcome)
    except WebSocketDenied as exc:
        seen.append(("denied", exc.status_code, exc.body))
    return seen


def from_live_scenarios() -> dict[str, Case]:
    """``live.SCENARIOS`` (played with the raw clients above) as cases."""
    cases = {}
    for name, scenario in SCENARIOS.items():
        expected = [
            ("accepted", entry[1], []) if entry[0] == "accepted" else entry
            for entry in scenario.expected
        ]
        cases[name] = Case(scenario.path, scenario.steps, expected, scenario.subprotocols)
    return cases


FORBIDDEN = b'{"detail":"Forbidden"}'
GOODBYE_CLOSE = "{'type': 'websocket.close', 'code': 4001, 'reason': 'go away'}"

CASES: dict[str, Case] = {
    **from_live_scenarios(),
    "guard refuses": Case("/t/guarded", [], [("denied", 403, FORBIDDEN)]),
    "HTTPException with a custom status": Case(
        "/t/teapot", [], [("denied", 418, b'{"detail":"short and stout"}')]
    ),
    "json both ways": Case(
        "/t/json",
        [("json", {"a": [1, 2]}), ("receive_json",), ("json", None), ("receive_json",)],
        [("accepted", None, []), ("json", {"echo": {"a": [1, 2]}}), ("json", {"echo": None})],
    ),
    "wrong frame type": Case(
        "/t/mixed",
        [("text", "hi"), ("receive_text",), ("bytes", b"yo"), ("receive_bytes",)],
        [
            ("accepted", None, []),
            ("unexpected", "expected a text message, got bytes b'hi'"),
            ("unexpected", "expected a binary message, got text 'yo'"),
        ],
    ),
    "receive timeout, then an answer": Case(
        "/t/quiet",
        [("timeout", 0.05), ("quiet", 0.05), ("text", "ping"), ("receive_text",)],
        [("accepted", None, []), ("timed out",), ("quiet",), ("text", "pong: ping")],
    ),
    "request and accept headers": Case(
        "/t/headers",
        [("receive_text",)],
        [("accepted", None, [(b"x-room", b"blue")]), ("text", "abc")],
        headers={"X-Token": "abc"},
    ),
    "assert_no_message sees the close": Case(
        "/s/goodbye",
        [("receive_text",), ("quiet", TIMEOUT), ("receive",), ("text", "late")],
        [
            ("accepted", None, []),
            ("text", "bye"),
            ("not quiet", f"expected no message, got {GOODBYE_CLOSE}"),
            ("closed", 4001, "go away"),
            ("closed", 4001, "go away"),
        ],
    ),
    "sends after the server's close": Case(
        "/s/goodbye",
        [("receive_text",), ("receive_text",), ("text", "late"), ("json", 1), ("bytes", b"")],
        [("accepted", None, []), ("text", "bye")] + [("closed", 4001, "go away")] * 4,
    ),
    "client closes, then receives": Case(
        "/t/quiet",
        [("close", 4000, "done"), ("receive",), ("text", "late")],
        [("accepted", None, []), ("closed", 4000, "done"), ("closed", 4000, "done")],
    ),
}


@pytest.mark.parametrize("name", list(CASES))
async def test_live_sessions_agree_with_in_process_sessions(server: LiveServer, name: str) -> None:
    case = CASES[name]
    with trio.fail_after(TIMEOUT):
        # Its own app and lifespan; a failing handler shows as a real client sees it (1011, 500).
        async with AsyncTestClient(build_app(), raise_server_exceptions=False) as client:
            in_process = await play(client, case)
        live = await play(server, case)
    assert in_process == live == case.expected


# -- connections by the thousand -------------------------------------------------------------------


def count_tasks() -> int:
    """Every task in this trio run (``live.all_tasks``)."""
    return len(all_tasks())


async def settle(app: App, baseline: int) -> int:
    """Wait (bounded) until the app holds no connection and the task count is back to
    ``baseline``; the task count then, or when the wait gave up."""
    tasks = count_tasks()
    with trio.move_on_after(TIMEOUT):
        while app.state["active"] or tasks > baseline:
            await trio.testing.wait_all_tasks_blocked(0.01)
            tasks = count_tasks()
    return tasks


async def test_a_thousand_connect_and_abort_cycles_leave_nothing_running(
    app: App, server: LiveServer
) -> None:
    cycles = 1000
    async with server.websocket_connect("/t/counted") as ws:  # starts the drain's watch task
        await ws.close()
    with trio.fail_after(TIMEOUT):
        while app.state["active"]:
            await trio.testing.wait_all_tasks_blocked(0.01)
    await trio.testing.wait_all_tasks_blocked()
    baseline = count_tasks()
    during = 0
    with trio.fail_after(TIMEOUT * 2):
        for n in range(cycles):
            async with server.websocket_connect("/t/counted") as ws:
                if n % 4 == 0:  # a round trip first
                    await ws.send_text(str(n))
                    assert await ws.receive_text() == str(n)
                    during = max(during, count_tasks())
                if n % 2:
                    await ws.abort()  # the TCP connection just ends: no close handshake
                else:
                    await ws.close()  # a close handshake
        after = await settle(app, baseline)
    print(f"trio tasks: {baseline} before, {during} with a connection, {after} after {cycles}")
    assert during > baseline  # the count sees the server's (and the client's) connection tasks
    assert after == baseline
    assert app.state["active"] == 0
    assert app.state["ended"] == cycles + 1
    gc.collect()
    assert len(app.state["seen"]) == 0
