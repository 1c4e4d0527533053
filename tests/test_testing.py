"""The in-process test clients (``triows.testing``): what a test sees, and what the app sees.

Sync tests drive ``TestClient`` (a trio loop in a background thread); async tests drive
``AsyncTestClient`` in the test's own loop. Timeouts are exercised under trio's ``MockClock``
where the client runs in the test's loop, so a five-second default costs no real time.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest
import trio
import trio.testing
from live import LOGIN_FIRST, SCENARIOS, Scenario, ScenarioController, run_in_process

from triows import (
    App,
    Controller,
    ControllerBase,
    HTTPException,
    Request,
    Response,
    WebSocket,
    WebSocketDisconnect,
    delete,
    get,
    patch,
    post,
    put,
    ws_route,
)
from triows.testing import (
    AsyncTestClient,
    LifespanError,
    ReceiveTimeout,
    Test,
    TestClient,
    TestingModule,
    UnexpectedMessage,
    WebSocketDenied,
)

#: Bounds every async test; none comes near it.
TIMEOUT = 10


@Controller("/t")
class TestingController(ControllerBase):
    @ws_route("/echo")
    async def echo(self, ws: WebSocket) -> None:
        await ws.accept()
        async for text in ws.iter_text():
            await ws.send_text(f"echo: {text}")

    @ws_route("/silent")
    async def silent(self, ws: WebSocket) -> None:
        await ws.accept()
        async for _ in ws.iter_text():
            pass

    @ws_route("/binary")
    async def binary(self, ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_bytes(b"\x00\x01")
        await ws.send_text("after")
        await ws.send_json({"n": 1})
        async for _ in ws.iter_text():
            pass

    @ws_route("/stubborn")
    async def stubborn(self, ws: WebSocket) -> None:
        await ws.accept()
        try:
            await ws.receive_text()
        except WebSocketDisconnect:
            await trio.sleep_forever()  # ignores the disconnect: a handler bug

    @ws_route("/mute-handshake")
    async def mute_handshake(self, ws: WebSocket) -> None:
        await trio.sleep_forever()  # never answers the handshake

    @ws_route("/hello")
    async def hello(self, ws: WebSocket) -> None:
        chosen = ws.subprotocols[-1] if ws.subprotocols else None
        await ws.accept(subprotocol=chosen, headers={"X-Server": "triows"})
        await ws.send_json(
            {
                "url": str(ws.url),
                "token": ws.headers.get("x-token"),
                "q": ws.query_params.get("q"),
                "offered": ws.subprotocols,
            }
        )
        async for _ in ws.iter_text():
            pass

    @ws_route("/probe")
    async def probe(self, ws: WebSocket) -> None:
        """Record how the connection ended, as the app saw it."""
        await ws.accept()
        await ws.send_text("ready")
        try:
            while True:
                await ws.receive_text()
        except WebSocketDisconnect as exc:
            ws.app.state.setdefault("disconnects", []).append((exc.code, exc.reason))

    @ws_route("/receives-json")
    async def receives_json(self, ws: WebSocket) -> None:
        await ws.accept()
        data = await ws.receive_json()
        raw = await ws.receive_json(mode="binary")
        await ws.send_json({"text": data, "binary": raw})
        await ws.send_json([1, 2], mode="binary")

    @get("/health")
    async def health(self) -> dict[str, str]:
        return {"status": "ok"}

    @post("/json")
    async def post_json(self, request: Request) -> dict[str, Any]:
        return {"got": await request.json(), "content_type": request.headers["content-type"]}

    @put("/raw")
    async def put_raw(self, request: Request) -> Response:
        body = await request.body()
        return Response(body[::-1], 201, {"X-Length": str(len(body))}, "application/octet-stream")

    @patch("/query")
    async def patch_query(self, request: Request) -> dict[str, Any]:
        return {"a": request.query_params.getlist("a"), "h": request.headers.get("x-h")}

    @delete("/gone")
    async def gone(self) -> None:
        raise HTTPException(410, "gone for good", headers={"X-Why": "test"})


def make_app(**kwargs: Any) -> App:
    return App(controllers=[TestingController, ScenarioController], **kwargs)


def recording_lifespan(events: list[str]) -> Callable[[App], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        events.append("startup")
        yield
        events.append("shutdown")

    return lifespan


def client_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "triows-testclient"}


# -- TestClient, the guide's way and the with-block way -----------------------------------------


def test_sync_client_without_with_block_as_the_guide_uses_it() -> None:
    events: list[str] = []
    module = Test.create_test_module(
        controllers=[TestingController], lifespan=recording_lifespan(events)
    )
    client = module.get_test_client()
    assert events == []  # nothing runs until the client is used
    try:
        with client.websocket_connect("/t/echo") as ws:
            ws.send_text("hi")
            assert ws.receive_text() == "echo: hi"
        assert events == ["startup"]
        response = client.get("/t/health")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        with client.websocket_connect("/t/echo") as ws:  # a second connection, same loop
            ws.send_text("again")
            assert ws.receive_text() == "echo: again"
        assert events == ["startup"]
    finally:
        client.close()
    assert events == ["startup", "shutdown"]
    client.close()  # closing twice is harmless
    assert events == ["startup", "shutdown"]


def test_sync_client_left_open_stops_its_thread_when_collected() -> None:
    before = client_threads()
    client = TestClient(make_app())
    assert client.get("/t/health").status_code == 200
    (thread,) = client_threads() - before
    del client
    gc.collect()
    thread.join(timeout=TIMEOUT)  # the finalizer stops the loop without waiting for it
    assert not thread.is_alive()


def test_sync_client_with_block_runs_the_lifespan_around_it() -> None:
    events: list[str] = []
    with TestClient(make_app(lifespan=recording_lifespan(events))) as client:
        assert events == ["startup"]
        with client.websocket_connect("/t/echo") as ws:
            ws.send_text("hi")
            assert ws.receive_text() == "echo: hi"
        assert client.get("/t/health").json() == {"status": "ok"}
    assert events == ["startup", "shutdown"]


def test_sync_client_without_lifespan() -> None:
    events: list[str] = []
    with TestClient(make_app(lifespan=recording_lifespan(events)), lifespan=False) as client:
        assert client.get("/t/health").status_code == 200
    assert events == []


def test_sync_handshake_carries_path_query_headers_and_subprotocols() -> None:
    with (
        TestClient(make_app()) as client,
        client.websocket_connect(
            "/t/hello?q=1", subprotocols=["a", "b"], headers={"X-Token": "abc"}
        ) as ws,
    ):
        assert ws.accepted_subprotocol == "b"
        assert ws.extra_headers == [(b"x-server", b"triows")]
        assert ws.receive_json() == {
            "url": "ws://testserver/t/hello?q=1",
            "token": "abc",
            "q": "1",
            "offered": ["a", "b"],
        }


async def test_async_handshake_carries_path_query_headers_and_subprotocols() -> None:
    with trio.fail_after(TIMEOUT):
        async with (
            AsyncTestClient(make_app(), base_url="https://example.org:8443") as client,
            client.websocket_connect("/t/hello", headers=[("X-Token", "t")]) as ws,
        ):
            assert ws.accepted_subprotocol is None
            assert ws.extra_headers == [(b"x-server", b"triows")]
            assert await ws.receive_json() == {
                "url": "wss://example.org:8443/t/hello",
                "token": "t",
                "q": None,
                "offered": [],
            }


# -- Test.create_test_module ---------------------------------------------------------------------


def test_create_test_module_builds_one_app_and_its_clients() -> None:
    module = Test.create_test_module(
        controllers=[TestingController],
        config_module=dict(REDIRECT_SLASHES=True),  # noqa: C408 (the guide's spelling)
    )
    assert isinstance(module, TestingModule)
    app = module.create_application()
    assert isinstance(app, App)
    assert module.create_application() is app
    assert app.config.REDIRECT_SLASHES is True

    client = module.get_test_client(timeout=2.5)
    assert isinstance(client, TestClient)
    assert client.app is app
    assert client.timeout == 2.5
    try:
        redirect = client.get("/t/health/", follow_redirects=False)
        assert redirect.status_code == 307
        assert redirect.headers["location"] == "/t/health"
        assert client.get("/t/health/", follow_redirects=True).json() == {"status": "ok"}
    finally:
        client.close()

    async_client = module.get_async_client()
    assert isinstance(async_client, AsyncTestClient)
    assert async_client.app is app
    assert async_client.timeout == 5.0


async def test_create_test_module_async_client_works() -> None:
    module = Test.create_test_module(
        controllers=[TestingController],
        config_module=dict(REDIRECT_SLASHES=True),  # noqa: C408 (the guide's spelling)
    )
    with trio.fail_after(TIMEOUT):
        async with module.get_async_client() as client:
            redirect = await client.get("/t/health/")
            assert redirect.status_code == 307
            assert redirect.headers["location"] == "/t/health"
            async with client.websocket_connect("/t/echo") as ws:
                await ws.send_text("hi")
                assert await ws.receive_text() == "echo: hi"


# -- receive timeouts ----------------------------------------------------------------------------


async def test_async_receive_times_out_after_the_default_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    assert issubclass(ReceiveTimeout, TimeoutError)
    with trio.fail_after(60):
        async with (
            AsyncTestClient(make_app()) as client,
            client.websocket_connect("/t/silent") as ws,
        ):
            start = trio.current_time()
            with pytest.raises(
                ReceiveTimeout,
                match=r"^no message from the app within 5.0s \(waiting for a message\)$",
            ):
                await ws.receive_text()
            assert trio.current_time() - start == 5.0

            start = trio.current_time()
            with pytest.raises(ReceiveTimeout, match=r"within 0.05s"):
                await ws.receive_text(timeout=0.05)
            assert trio.current_time() - start == pytest.approx(0.05)

            # The connection is still usable after a timeout.
            await ws.send_text("x")
            await ws.assert_no_message(within=1)


async def test_async_timeouts_come_from_client_then_connection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(60):
        async with AsyncTestClient(make_app(), timeout=2) as client:
            async with client.websocket_connect("/t/silent") as ws:
                start = trio.current_time()
                with pytest.raises(ReceiveTimeout):
                    await ws.receive_bytes()
                assert trio.current_time() - start == 2.0
            async with client.websocket_connect("/t/silent", timeout=7) as ws:
                start = trio.current_time()
                with pytest.raises(ReceiveTimeout):
                    await ws.receive_json()
                assert trio.current_time() - start == 7.0


async def test_async_handshake_that_never_answers_times_out(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(60):
        async with AsyncTestClient(make_app()) as client:
            start = trio.current_time()
            with pytest.raises(ReceiveTimeout, match=r"waiting for the handshake answer"):
                async with client.websocket_connect("/t/mute-handshake"):
                    pytest.fail("the handshake cannot succeed")
            # 5 s for the answer, then 5 s for the app to end before it is cancelled.
            assert trio.current_time() - start == 10.0


def test_sync_receive_times_out() -> None:
    with TestClient(make_app()) as client, client.websocket_connect("/t/silent") as ws:
        with pytest.raises(ReceiveTimeout, match=r"^no message from the app within 0.05s"):
            ws.receive_text(timeout=0.05)
        with pytest.raises(TimeoutError):
            ws.receive(timeout=0.01)
        ws.send_text("still open")


# -- denials -------------------------------------------------------------------------------------


def test_sync_denial_carries_status_headers_and_body() -> None:
    with TestClient(make_app()) as client:
        with pytest.raises(WebSocketDenied) as denied, client.websocket_connect("/s/private"):
            pytest.fail("the handshake should have been refused")
        assert denied.value.status_code == 401
        assert denied.value.headers == [
            ("content-type", "application/json"),
            ("www-authenticate", "Bearer"),
            ("content-length", str(len(LOGIN_FIRST))),
        ]
        assert denied.value.body == LOGIN_FIRST
        assert denied.value.json() == {"detail": "login first"}
        assert (
            str(denied.value)
            == 'WebSocketDenied(status_code=401, body=b\'{"detail":"login first"}\')'
        )

        with pytest.raises(WebSocketDenied) as missing, client.websocket_connect("/nowhere"):
            pytest.fail("the handshake should have been refused")
        assert missing.value.status_code == 404
        assert missing.value.json() == {"detail": "Not Found"}


async def test_async_denial_carries_status_headers_and_body() -> None:
    with trio.fail_after(TIMEOUT):
        async with AsyncTestClient(make_app()) as client:
            with pytest.raises(WebSocketDenied) as denied:
                async with client.websocket_connect("/s/private"):
                    pytest.fail("the handshake should have been refused")
    assert denied.value.status_code == 401
    assert dict(denied.value.headers)["www-authenticate"] == "Bearer"
    assert denied.value.json() == {"detail": "login first"}


def test_denial_without_the_http_response_extension_is_403() -> None:
    with (
        TestClient(make_app(), websocket_denial_response=False) as client,
        pytest.raises(WebSocketDenied) as denied,
        client.websocket_connect("/s/private"),
    ):
        pytest.fail("the handshake should have been refused")
    assert denied.value.status_code == 403
    assert denied.value.headers == []
    assert denied.value.body == b""


# -- closing -------------------------------------------------------------------------------------


def test_sync_server_close_raises_on_every_later_receive_and_send() -> None:
    with TestClient(make_app()) as client, client.websocket_connect("/s/goodbye") as ws:
        assert ws.receive_text() == "bye"
        for _ in range(2):
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_text()
            assert (closed.value.code, closed.value.reason) == (4001, "go away")
        for send in (
            lambda: ws.send_text("x"),
            lambda: ws.send_bytes(b"x"),
            lambda: ws.send_json({"x": 1}),
        ):
            with pytest.raises(WebSocketDisconnect) as closed:
                send()
            assert (closed.value.code, closed.value.reason) == (4001, "go away")
        ws.close()  # a no-op once closed


async def test_async_server_close_raises_on_every_later_receive_and_send() -> None:
    with trio.fail_after(TIMEOUT):
        async with (
            AsyncTestClient(make_app()) as client,
            client.websocket_connect("/s/goodbye") as ws,
        ):
            assert await ws.receive_text() == "bye"
            with pytest.raises(WebSocketDisconnect) as closed:
                await ws.receive_bytes()
            assert (closed.value.code, closed.value.reason) == (4001, "go away")
            with pytest.raises(WebSocketDisconnect) as again:
                await ws.send_text("x")
            assert again.value is closed.value


def test_client_close_code_and_reason_reach_the_app() -> None:
    """What hypercorn 0.18 gets wrong (tests/test_live.py): the app sees the client's code."""
    app = make_app()
    with TestClient(app) as client:
        with client.websocket_connect("/t/probe") as ws:
            assert ws.receive_text() == "ready"
            ws.close(4000, "bye")
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_text()
            assert (closed.value.code, closed.value.reason) == (4000, "bye")
        with client.websocket_connect("/t/probe") as ws:
            assert ws.receive_text() == "ready"
        # Leaving the block closes normally.
    assert app.state["disconnects"] == [(4000, "bye"), (1000, "")]


async def test_async_client_close_code_reaches_the_app() -> None:
    app = make_app()
    with trio.fail_after(TIMEOUT):
        async with (
            AsyncTestClient(app) as client,
            client.websocket_connect("/t/probe") as ws,
        ):
            assert await ws.receive_text() == "ready"
            await ws.close(4999)
    assert app.state["disconnects"] == [(4999, "")]


# -- assert_no_message ---------------------------------------------------------------------------


def test_sync_assert_no_message() -> None:
    with TestClient(make_app()) as client, client.websocket_connect("/t/echo") as ws:
        ws.assert_no_message(within=0.02)
        ws.send_text("hi")
        with pytest.raises(AssertionError) as failed:
            ws.assert_no_message(within=1)
        assert str(failed.value) == (
            "expected no message, got {'type': 'websocket.send', 'text': 'echo: hi'}"
        )


async def test_async_assert_no_message(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        async with AsyncTestClient(make_app()) as client:
            async with client.websocket_connect("/t/echo") as ws:
                start = trio.current_time()
                await ws.assert_no_message(within=3)
                assert trio.current_time() - start == 3.0
                await ws.send_text("hi")
                with pytest.raises(AssertionError, match=r"^expected no message, got .*echo: hi"):
                    await ws.assert_no_message()
            async with client.websocket_connect("/s/goodbye") as ws:
                assert await ws.receive_text() == "bye"
                with pytest.raises(WebSocketDisconnect):
                    await ws.receive()
                with pytest.raises(AssertionError, match=r"^the connection is closed: "):
                    await ws.assert_no_message()
            async with client.websocket_connect("/s/returns") as ws:
                assert await ws.receive_text() == "done"
                with pytest.raises(AssertionError, match=r"expected no message, got .*1000"):
                    await ws.assert_no_message()


async def test_assert_no_message_does_not_lose_the_close_it_fails_on() -> None:
    with trio.fail_after(TIMEOUT):
        async with (
            AsyncTestClient(make_app()) as client,
            client.websocket_connect("/s/goodbye") as ws,
        ):
            assert await ws.receive_text() == "bye"
            with pytest.raises(AssertionError, match=r"expected no message, got .*4001"):
                await ws.assert_no_message()
            # The connection is closed, and says how, like after any other look at the close.
            with pytest.raises(WebSocketDisconnect) as closed:
                await ws.receive()
            assert (closed.value.code, closed.value.reason) == (4001, "go away")


# -- message kinds -------------------------------------------------------------------------------


def test_sync_receive_of_the_wrong_kind_is_unexpected_message() -> None:
    assert issubclass(UnexpectedMessage, AssertionError)
    with TestClient(make_app()) as client, client.websocket_connect("/t/binary") as ws:
        with pytest.raises(UnexpectedMessage) as wrong:
            ws.receive_text()
        assert str(wrong.value) == "expected a text message, got bytes b'\\x00\\x01'"
        with pytest.raises(UnexpectedMessage) as wrong:
            ws.receive_bytes()
        assert str(wrong.value) == "expected a binary message, got text 'after'"
        assert ws.receive_json() == {"n": 1}


async def test_async_receive_of_the_wrong_kind_is_unexpected_message() -> None:
    with trio.fail_after(TIMEOUT):
        async with (
            AsyncTestClient(make_app()) as client,
            client.websocket_connect("/t/binary") as ws,
        ):
            with pytest.raises(UnexpectedMessage, match=r"got bytes b'\\x00\\x01'"):
                await ws.receive_text()
            assert await ws.receive() == {"type": "websocket.send", "text": "after"}


def test_sync_json_both_ways_in_text_and_binary_frames() -> None:
    with TestClient(make_app()) as client, client.websocket_connect("/t/receives-json") as ws:
        ws.send_json({"a": 1})
        ws.send_json(["b"], mode="binary")
        assert ws.receive_json() == {"text": {"a": 1}, "binary": ["b"]}
        assert ws.receive_json(mode="binary") == [1, 2]


# -- a handler that will not end -----------------------------------------------------------------


def test_sync_handler_ignoring_the_disconnect_is_reported() -> None:
    with TestClient(make_app()) as client:
        with (
            pytest.raises(RuntimeError) as stuck,
            client.websocket_connect("/t/stubborn", timeout=0.05),
        ):
            pass
        assert str(stuck.value) == (
            "the app was still running 0.05s after the client disconnected from '/t/stubborn': "
            "does the handler ignore WebSocketDisconnect?"
        )
        # The stuck handler was cancelled; the client still works.
        with client.websocket_connect("/t/echo") as ws:
            ws.send_text("ok")
            assert ws.receive_text() == "echo: ok"


async def test_async_handler_ignoring_the_disconnect_is_reported(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(60):
        async with AsyncTestClient(make_app()) as client:
            start = trio.current_time()
            with pytest.raises(RuntimeError, match=r"still running 5.0s after"):
                async with client.websocket_connect("/t/stubborn"):
                    pass
            assert trio.current_time() - start == 5.0


# -- a handler that fails ------------------------------------------------------------------------
# With raise_server_exceptions=False the clients show what a real client gets; the default (the
# handler's exception raised in the test) is tested in test_server_exceptions.py.


def test_sync_frames_sent_before_a_failure_arrive_before_the_1011_close(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with (
        TestClient(make_app(), raise_server_exceptions=False) as client,
        client.websocket_connect("/s/crash") as ws,
    ):
        assert ws.receive_text() == "one"
        assert ws.receive_bytes() == b"two"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive()
    assert (closed.value.code, closed.value.reason) == (1011, "Internal Server Error")
    errors = [r for r in caplog.records if r.name == "triows" and r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == [
        "websocket handler ScenarioController.crash failed (/s/crash from testclient:50000)"
    ]


async def test_async_failure_reason_names_the_error_in_debug_mode() -> None:
    with trio.fail_after(TIMEOUT):
        async with (
            AsyncTestClient(
                make_app(config={"DEBUG": True}), raise_server_exceptions=False
            ) as client,
            client.websocket_connect("/s/crash") as ws,
        ):
            assert await ws.receive() == {"type": "websocket.send", "text": "one"}
            assert await ws.receive() == {"type": "websocket.send", "bytes": b"two"}
            with pytest.raises(WebSocketDisconnect) as closed:
                await ws.receive()
    assert (closed.value.code, closed.value.reason) == (1011, "RuntimeError: boom")


# -- sync and async clients agree ----------------------------------------------------------------


def run_sync(client: TestClient, scenario: Scenario) -> list[tuple[Any, ...]]:
    """``live.run_in_process``, over the sync client."""
    seen: list[tuple[Any, ...]] = []
    try:
        with client.websocket_connect(scenario.path, subprotocols=scenario.subprotocols) as ws:
            seen.append(("accepted", ws.accepted_subprotocol))
            for step in scenario.steps:
                if step[0] == "text":
                    ws.send_text(step[1])
                elif step[0] == "bytes":
                    ws.send_bytes(step[1])
                elif step[0] == "close":
                    ws.close(step[1], step[2])
                else:
                    try:
                        message = ws.receive()
                    except WebSocketDisconnect as exc:
                        seen.append(("closed", exc.code, exc.reason))
                    else:
                        text = message.get("text")
                        frame = ("text", text) if text is not None else ("bytes", message["bytes"])
                        seen.append(frame)
    except WebSocketDenied as exc:
        seen.append(("denied", exc.status_code, exc.body))
    return seen


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_sync_and_async_clients_agree(name: str) -> None:
    scenario = SCENARIOS[name]
    app = make_app()

    async def run_async() -> list[tuple[Any, ...]]:
        with trio.fail_after(TIMEOUT):
            async with AsyncTestClient(app, raise_server_exceptions=False) as client:
                return await run_in_process(client, scenario)

    with TestClient(app, raise_server_exceptions=False) as client:
        over_sync = run_sync(client, scenario)
    over_async = trio.run(run_async)
    assert over_sync == over_async == scenario.expected


# -- lifespan errors -----------------------------------------------------------------------------


@asynccontextmanager
async def failing_startup(app: App) -> AsyncIterator[None]:
    raise RuntimeError("no database")
    yield  # pragma: no cover


@asynccontextmanager
async def failing_shutdown(app: App) -> AsyncIterator[None]:
    yield
    raise RuntimeError("cannot flush")


STARTUP_FAILED = r"^startup failed: RuntimeError: no database$"
SHUTDOWN_FAILED = r"^shutdown failed: RuntimeError: cannot flush$"


# With raise_server_exceptions=False the clients say what a server says (the lifespan's failure
# message); by default they raise the app's own exception.


def test_sync_lifespan_startup_failure_is_lifespan_error() -> None:
    assert issubclass(LifespanError, RuntimeError)
    before = client_threads()
    with (
        pytest.raises(LifespanError, match=STARTUP_FAILED),
        TestClient(make_app(lifespan=failing_startup), raise_server_exceptions=False),
    ):
        pytest.fail("startup failed")
    # Without a with-block the first use fails the same way.
    client = TestClient(make_app(lifespan=failing_startup), raise_server_exceptions=False)
    with pytest.raises(LifespanError, match=STARTUP_FAILED):
        client.get("/t/health")
    assert client_threads() - before == set()  # the failed clients stopped their loops


def test_sync_lifespan_shutdown_failure_is_lifespan_error() -> None:
    client = TestClient(make_app(lifespan=failing_shutdown), raise_server_exceptions=False)
    assert client.get("/t/health").status_code == 200
    with pytest.raises(LifespanError, match=SHUTDOWN_FAILED):
        client.close()


async def test_async_lifespan_errors_are_lifespan_errors() -> None:
    with trio.fail_after(TIMEOUT):
        app = make_app(lifespan=failing_startup)
        with pytest.raises(LifespanError, match=STARTUP_FAILED):
            async with AsyncTestClient(app, raise_server_exceptions=False):
                pytest.fail("startup failed")
        app = make_app(lifespan=failing_shutdown)
        with pytest.raises(LifespanError, match=SHUTDOWN_FAILED):
            async with AsyncTestClient(app, raise_server_exceptions=False) as client:
                assert (await client.get("/t/health")).status_code == 200


def test_lifespan_failures_raise_the_apps_own_exception_by_default() -> None:
    with pytest.raises(RuntimeError) as startup, TestClient(make_app(lifespan=failing_startup)):
        pytest.fail("startup failed")
    client = TestClient(make_app(lifespan=failing_shutdown))
    assert client.get("/t/health").status_code == 200
    with pytest.raises(RuntimeError) as shutdown:
        client.close()
    # As themselves: not a LifespanError, not a group.
    assert (type(startup.value), str(startup.value)) == (RuntimeError, "no database")
    assert (type(shutdown.value), str(shutdown.value)) == (RuntimeError, "cannot flush")


# -- HTTP ----------------------------------------------------------------------------------------


def test_sync_http_methods_return_httpx_responses() -> None:
    with TestClient(make_app()) as client:
        health = client.get("/t/health")
        assert isinstance(health, httpx.Response)
        assert health.status_code == 200
        assert health.headers["content-type"] == "application/json"
        assert health.json() == {"status": "ok"}
        assert str(health.request.url) == "http://testserver/t/health"

        posted = client.post("/t/json", json={"a": [1, "é"]})
        assert posted.json() == {"got": {"a": [1, "é"]}, "content_type": "application/json"}

        raw = client.put("/t/raw", content=b"abc\x00")
        assert raw.status_code == 201
        assert raw.content == b"\x00cba"
        assert raw.headers["x-length"] == "4"
        assert raw.headers["content-type"] == "application/octet-stream"

        patched = client.patch("/t/query", params=[("a", "1"), ("a", "2")], headers={"X-H": "v"})
        assert patched.json() == {"a": ["1", "2"], "h": "v"}

        gone = client.delete("/t/gone")
        assert gone.status_code == 410
        assert gone.json() == {"detail": "gone for good"}
        assert gone.headers["x-why"] == "test"

        head = client.head("/t/health")
        assert head.status_code == 200
        assert head.content == b""
        assert head.headers["content-length"] == str(len(health.content))

        options = client.options("/t/health")
        assert options.status_code == 405
        assert options.headers["allow"] == "GET, HEAD"

        bad = client.post("/t/json", content=b"{nope")
        assert bad.status_code == 400
        assert bad.json()["detail"].startswith("request body is not valid JSON: ")


async def test_async_http_methods_return_httpx_responses() -> None:
    with trio.fail_after(TIMEOUT):
        async with AsyncTestClient(make_app()) as client:
            health = await client.get("/t/health")
            assert isinstance(health, httpx.Response)
            assert health.json() == {"status": "ok"}
            posted = await client.post("/t/json", json=[1, 2])
            assert posted.json() == {"got": [1, 2], "content_type": "application/json"}
            raw = await client.put("/t/raw", content=b"xyz")
            assert (raw.status_code, raw.content) == (201, b"zyx")
            missing = await client.get("/nowhere")
            assert missing.status_code == 404
            assert missing.json() == {"detail": "Not Found"}


@pytest.mark.parametrize("lifespan", [True, False])
async def test_async_client_lets_the_tests_own_exceptions_through(lifespan: bool) -> None:
    # pytest.raises(...) around a whole client block must see the test's own exception, not an
    # ExceptionGroup from the client's internal nursery, whether the lifespan runs or not.
    with trio.fail_after(TIMEOUT), pytest.raises(KeyError, match="from the test body"):
        async with AsyncTestClient(make_app(), lifespan=lifespan):
            raise KeyError("from the test body")
    with trio.fail_after(TIMEOUT), pytest.raises(WebSocketDenied):
        async with (
            AsyncTestClient(make_app(), lifespan=lifespan) as client,
            client.websocket_connect("/s/private"),
        ):
            pytest.fail("the handshake should have been refused")


async def test_async_client_requires_async_with_for_http() -> None:
    client = AsyncTestClient(make_app())
    with pytest.raises(RuntimeError, match=r"use the client as 'async with client:'"):
        await client.get("/t/health")


# -- exceptions escaping the app itself ----------------------------------------------------------


async def raw_app_that_crashes(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A bare ASGI app (no triows App around it) failing after accept: a framework bug."""
    assert scope["type"] == "websocket"
    assert await receive() == {"type": "websocket.connect"}
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": "before"})
    message = await receive()
    raise ValueError(f"framework bug on {message['text']!r}")


def test_sync_exception_escaping_the_app_is_raised_in_the_test() -> None:
    with TestClient(raw_app_that_crashes, lifespan=False) as client:
        for _ in range(2):  # the client survives it
            with (  # noqa: PT012
                pytest.raises(ValueError, match=r"^framework bug on 'boom'$"),
                client.websocket_connect("/") as ws,
            ):
                assert ws.receive_text() == "before"
                ws.send_text("boom")
                ws.receive_text()


def test_sync_client_does_not_report_a_crashed_app_as_a_close() -> None:
    """After the app crashed, the next call raises the crash, never a close nobody sent.

    (The async client cancels the test body at once, so it cannot show a made-up close.)
    """
    made_up: list[WebSocketDisconnect] = []
    with TestClient(raw_app_that_crashes, lifespan=False) as client:
        for _ in range(5):
            with (  # noqa: PT012
                pytest.raises(ValueError, match=r"^framework bug on 'boom'$"),
                client.websocket_connect("/") as ws,
            ):
                assert ws.receive_text() == "before"
                ws.send_text("boom")
                try:
                    ws.receive_text()
                except WebSocketDisconnect as exc:
                    made_up.append(exc)
    assert made_up == []


async def test_async_exception_escaping_the_app_is_raised_in_the_test() -> None:
    # Whether the test's receive or the app's crash is scheduled first is up to trio's
    # (deliberately randomised) scheduler: repeat, so that either order is exercised.
    with trio.fail_after(TIMEOUT):
        async with AsyncTestClient(raw_app_that_crashes, lifespan=False) as client:
            for _ in range(30):
                with pytest.raises(ValueError, match=r"^framework bug on 'boom'$"):  # noqa: PT012
                    async with client.websocket_connect("/") as ws:
                        assert await ws.receive_text() == "before"
                        await ws.send_text("boom")
                        await ws.receive_text()
                        pytest.fail("the crash cancels the test body")


async def test_an_app_that_crashes_before_answering_the_handshake_raises_as_itself() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        await receive()  # websocket.connect
        raise ValueError("broken before the handshake")

    with trio.fail_after(5):
        async with AsyncTestClient(app) as client:
            with pytest.raises(ValueError, match="broken before the handshake"):
                async with client.websocket_connect("/"):
                    pass  # pragma: no cover - the handshake fails


def test_a_bare_websocket_app_without_lifespan_support_is_served_without_one() -> None:
    # The app knows only websockets (as Starlette's own test apps): the lifespan scope makes it
    # raise before it says anything, which servers take as "no lifespan support".
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        websocket = WebSocket(scope, receive, send)
        await websocket.accept()
        await websocket.send_text("hello")
        await websocket.close()

    with TestClient(app) as client, client.websocket_connect("/") as ws:
        assert ws.receive_text() == "hello"
