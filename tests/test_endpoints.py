"""How a websocket handler's outcome becomes what the client sees (triows/endpoints.py).

The table in the module docstring of ``triows.endpoints``, row by row, before and after
``accept()``: what the client gets (HTTP denial or close frame, exact code and reason) and what is
logged. Where the handler fails, the test clients are made with ``raise_server_exceptions=False``
to see what a real client gets (``tests/test_server_exceptions.py`` tests the default).
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio
from support import TIMEOUT, connected, error_records, next_close, refusal_by

from triows import (
    App,
    Controller,
    ControllerBase,
    HTTPException,
    WebSocket,
    WebSocketException,
    WebSocketState,
    ws_route,
)
from triows.testing import AsyncTestClient, WebSocketDenied

#: What a handler raised, per route, for the tests to compare with what was logged.
raised: list[BaseException] = []


@pytest.fixture(autouse=True)
def _forget_raised() -> None:
    raised.clear()


def fail(exc: BaseException) -> BaseException:
    raised.append(exc)
    return exc


@Controller("/out")
class OutcomeController(ControllerBase):
    @property
    def ws(self) -> WebSocket:
        return self.context.switch_to_websocket().get_client()

    @ws_route("/return-before-accept")
    async def return_before_accept(self) -> None:
        pass

    @ws_route("/return-after-accept")
    async def return_after_accept(self) -> None:
        await self.ws.accept()
        await self.ws.send_text("hello")

    @ws_route("/ws-exception-before-accept")
    async def ws_exception_before_accept(self) -> None:
        raise WebSocketException(4003, "nope")

    @ws_route("/ws-exception-after-accept")
    async def ws_exception_after_accept(self) -> None:
        await self.ws.accept()
        await self.ws.send_text("about to refuse")
        raise WebSocketException(4003, "nope")

    @ws_route("/ws-exception-long-reason")
    async def ws_exception_long_reason(self) -> None:
        await self.ws.accept()
        raise WebSocketException(4004, "é" * 100)

    @ws_route("/http-exception-before-accept")
    async def http_exception_before_accept(self) -> None:
        raise HTTPException(401, "login first", headers={"WWW-Authenticate": "Bearer"})

    @ws_route("/http-exception-default-detail")
    async def http_exception_default_detail(self) -> None:
        raise HTTPException(429)

    @ws_route("/http-exception-after-accept")
    async def http_exception_after_accept(self) -> None:
        await self.ws.accept()
        raise fail(HTTPException(401, "login first", headers={"WWW-Authenticate": "Bearer"}))

    @ws_route("/crash-before-accept")
    async def crash_before_accept(self) -> None:
        raise fail(RuntimeError("boom"))

    @ws_route("/crash-after-accept")
    async def crash_after_accept(self) -> None:
        await self.ws.accept()
        await self.ws.send_text("one")
        await self.ws.send_bytes(b"two")
        await self.ws.send_json({"three": 3})
        raise fail(RuntimeError("boom"))

    @ws_route("/crash-long-before-accept")
    async def crash_long_before_accept(self) -> None:
        raise fail(ValueError("y" * 300))

    @ws_route("/crash-long-message")
    async def crash_long_message(self) -> None:
        await self.ws.accept()
        raise fail(ValueError("x" * 300))

    @ws_route("/crash-in-background")
    async def crash_in_background(self) -> None:
        async def broken() -> None:
            await trio.lowlevel.checkpoint()
            raise fail(KeyError("gone"))

        await self.ws.accept()
        self.ws.nursery.start_soon(broken)
        await self.ws.receive_text()

    @ws_route("/ws-exception-in-background")
    async def ws_exception_in_background(self) -> None:
        async def refuse() -> None:
            await trio.lowlevel.checkpoint()
            raise WebSocketException(4008, "too slow")

        await self.ws.accept()
        self.ws.nursery.start_soon(refuse)
        await self.ws.receive_text()

    @ws_route("/client-leaves")
    async def client_leaves(self) -> None:
        await self.ws.accept()
        await self.ws.send_text("ready")
        await self.ws.receive_text()  # WebSocketDisconnect goes through

    @ws_route("/echo")
    async def echo(self) -> None:
        await self.ws.accept()
        async for text in self.ws.iter_text():
            await self.ws.send_text(text)


app = App(controllers=[OutcomeController])
debug_app = App(controllers=[OutcomeController], config={"DEBUG": True})


# -- helpers -----------------------------------------------------------------------------------


async def close_of(path: str, the_app: App = app) -> tuple[int, str]:
    """Connect to ``path`` and return the (code, reason) the app closes with, first thing."""
    async with connected(the_app, path, raise_server_exceptions=False) as ws:
        closed = await next_close(ws)
    return closed.code, closed.reason


def assert_logged_once(caplog: pytest.LogCaptureFixture, message: str, exc: BaseException) -> None:
    """Exactly one ERROR record, on the "triows" logger, with ``exc`` and its traceback."""
    (record,) = error_records(caplog)
    assert record.name == "triows"
    assert record.levelno == logging.ERROR
    assert record.getMessage() == message
    assert record.exc_info is not None
    assert record.exc_info[1] is exc
    assert "Traceback (most recent call last)" in caplog.text
    assert f"{type(exc).__name__}: {exc}" in caplog.text


# -- returns -----------------------------------------------------------------------------------


async def test_returning_without_accept_is_a_403(caplog: pytest.LogCaptureFixture) -> None:
    with trio.fail_after(TIMEOUT):
        denied = await refusal_by(app, "/out/return-before-accept")
    assert (denied.status_code, denied.body) == (403, b"")
    assert error_records(caplog) == []


async def test_returning_after_accept_closes_with_1000(caplog: pytest.LogCaptureFixture) -> None:
    with trio.fail_after(TIMEOUT):
        async with connected(app, "/out/return-after-accept") as ws:
            assert await ws.receive_text() == "hello"
            closed = await next_close(ws)
    assert (closed.code, closed.reason) == (1000, "")
    assert error_records(caplog) == []


# -- WebSocketException ------------------------------------------------------------------------


async def test_websocket_exception_after_accept_closes_with_its_code_and_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with trio.fail_after(TIMEOUT):
        async with connected(app, "/out/ws-exception-after-accept") as ws:
            assert await ws.receive_text() == "about to refuse"
            closed = await next_close(ws)
    assert (closed.code, closed.reason) == (4003, "nope")
    assert error_records(caplog) == []


async def test_websocket_exception_before_accept_is_a_403(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with trio.fail_after(TIMEOUT):
        denied = await refusal_by(app, "/out/ws-exception-before-accept")
    assert (denied.status_code, denied.body) == (403, b"")
    assert error_records(caplog) == []


async def test_websocket_exception_reason_is_cut_to_123_bytes() -> None:
    with trio.fail_after(TIMEOUT):
        code, reason = await close_of("/out/ws-exception-long-reason")
    assert (code, reason) == (4004, "é" * 61)


async def test_websocket_exception_in_a_background_task_closes_with_its_code(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with trio.fail_after(TIMEOUT):
        code, reason = await close_of("/out/ws-exception-in-background")
    assert (code, reason) == (4008, "too slow")
    assert error_records(caplog) == []


# -- HTTPException -----------------------------------------------------------------------------


async def test_http_exception_before_accept_is_an_http_denial(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with trio.fail_after(TIMEOUT):
        denied = await refusal_by(app, "/out/http-exception-before-accept")
    assert denied.status_code == 401
    assert denied.json() == {"detail": "login first"}
    assert denied.body == b'{"detail":"login first"}'
    assert dict(denied.headers) == {
        "www-authenticate": "Bearer",
        "content-type": "application/json",
        "content-length": str(len(denied.body)),
    }
    assert error_records(caplog) == []


async def test_http_exception_without_detail_uses_the_status_phrase() -> None:
    with trio.fail_after(TIMEOUT):
        denied = await refusal_by(app, "/out/http-exception-default-detail")
    assert denied.status_code == 429
    assert denied.json() == {"detail": "Too Many Requests"}


async def test_http_exception_without_the_denial_extension_is_a_403() -> None:
    with trio.fail_after(TIMEOUT):
        denied = await refusal_by(
            app, "/out/http-exception-before-accept", websocket_denial_response=False
        )
    assert (denied.status_code, denied.headers, denied.body) == (403, [], b"")


async def test_http_exception_after_accept_closes_with_1011_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with trio.fail_after(TIMEOUT):
        code, reason = await close_of("/out/http-exception-after-accept")
    assert (code, reason) == (1011, "Internal Server Error")
    (exc,) = raised
    assert_logged_once(
        caplog,
        "websocket handler OutcomeController.http_exception_after_accept failed after "
        "accept(); raise WebSocketException to close with a code "
        "(/out/http-exception-after-accept from testclient:50000)",
        exc,
    )


# -- any other exception -----------------------------------------------------------------------


async def test_a_crash_after_accept_closes_with_1011_after_the_frames_sent_before(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with trio.fail_after(TIMEOUT):
        async with AsyncTestClient(app, timeout=TIMEOUT, raise_server_exceptions=False) as client:
            async with client.websocket_connect("/out/crash-after-accept") as ws:
                assert await ws.receive() == {"type": "websocket.send", "text": "one"}
                assert await ws.receive() == {"type": "websocket.send", "bytes": b"two"}
                assert await ws.receive() == {"type": "websocket.send", "text": '{"three":3}'}
                closed = await next_close(ws)
            assert (closed.code, closed.reason) == (1011, "Internal Server Error")
            (exc,) = raised
            assert_logged_once(
                caplog,
                "websocket handler OutcomeController.crash_after_accept failed"
                " (/out/crash-after-accept from testclient:50000)",
                exc,
            )

            # The app keeps serving.
            async with client.websocket_connect("/out/echo") as ws:
                await ws.send_text("still here")
                assert await ws.receive_text() == "still here"
    assert len(error_records(caplog)) == 1


async def test_a_crash_before_accept_is_an_http_500(caplog: pytest.LogCaptureFixture) -> None:
    with trio.fail_after(TIMEOUT):
        denied = await refusal_by(app, "/out/crash-before-accept", raise_server_exceptions=False)
    assert denied.status_code == 500
    assert denied.json() == {"detail": "Internal Server Error"}
    assert dict(denied.headers) == {
        "content-type": "application/json",
        "content-length": str(len(denied.body)),
    }
    (exc,) = raised
    assert_logged_once(
        caplog,
        "websocket handler OutcomeController.crash_before_accept failed"
        " (/out/crash-before-accept from testclient:50000)",
        exc,
    )


async def test_a_crash_before_accept_without_the_denial_extension_is_a_403(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with trio.fail_after(TIMEOUT):
        denied = await refusal_by(
            app,
            "/out/crash-before-accept",
            websocket_denial_response=False,
            raise_server_exceptions=False,
        )
    assert (denied.status_code, denied.body) == (403, b"")
    assert len(error_records(caplog)) == 1


async def test_a_crash_in_a_background_task_closes_with_1011_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with trio.fail_after(TIMEOUT):
        code, reason = await close_of("/out/crash-in-background")
    assert (code, reason) == (1011, "Internal Server Error")
    (exc,) = raised
    assert_logged_once(
        caplog,
        "websocket handler OutcomeController.crash_in_background failed"
        " (/out/crash-in-background from testclient:50000)",
        exc,
    )


@pytest.mark.parametrize("the_app", [app, debug_app], ids=["default", "debug"])
async def test_a_client_leaving_is_not_an_error(
    caplog: pytest.LogCaptureFixture, the_app: App
) -> None:
    with trio.fail_after(TIMEOUT):
        async with connected(the_app, "/out/client-leaves") as ws:
            assert await ws.receive_text() == "ready"
            await ws.close(4000, "bye")
    assert error_records(caplog) == []


# -- DEBUG -------------------------------------------------------------------------------------


async def test_debug_names_the_exception_in_the_1011_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with trio.fail_after(TIMEOUT):
        async with connected(
            debug_app, "/out/crash-after-accept", raise_server_exceptions=False
        ) as ws:
            assert [await ws.receive() for _ in range(3)] == [
                {"type": "websocket.send", "text": "one"},
                {"type": "websocket.send", "bytes": b"two"},
                {"type": "websocket.send", "text": '{"three":3}'},
            ]
            closed = await next_close(ws)
    assert (closed.code, closed.reason) == (1011, "RuntimeError: boom")
    assert len(error_records(caplog)) == 1


async def test_debug_names_the_exception_in_the_500_body() -> None:
    with trio.fail_after(TIMEOUT):
        denied = await refusal_by(
            debug_app, "/out/crash-before-accept", raise_server_exceptions=False
        )
    assert denied.status_code == 500
    body = denied.json()
    assert set(body) == {"detail", "traceback"}
    assert body["detail"] == "RuntimeError: boom"
    assert body["traceback"].startswith("Traceback (most recent call last):\n")
    assert body["traceback"].endswith("RuntimeError: boom\n")


async def test_a_debug_refusal_body_is_not_cut_like_a_close_reason() -> None:
    with trio.fail_after(TIMEOUT):
        denied = await refusal_by(
            debug_app, "/out/crash-long-before-accept", raise_server_exceptions=False
        )
    assert denied.status_code == 500
    assert denied.json()["detail"] == "ValueError: " + "y" * 300


async def test_debug_reason_is_cut_to_123_bytes() -> None:
    with trio.fail_after(TIMEOUT):
        code, reason = await close_of("/out/crash-long-message", debug_app)
    assert code == 1011
    assert reason == ("ValueError: " + "x" * 300)[:123]


async def test_without_debug_the_reason_does_not_leak_the_exception() -> None:
    with trio.fail_after(TIMEOUT):
        code, reason = await close_of("/out/crash-long-message")
    assert (code, reason) == (1011, "Internal Server Error")


# -- unknown paths -----------------------------------------------------------------------------


async def test_an_unknown_path_is_a_404_not_a_500(caplog: pytest.LogCaptureFixture) -> None:
    with trio.fail_after(TIMEOUT):
        denied = await refusal_by(app, "/out/nowhere")
    assert denied.status_code == 404
    assert denied.body == b'{"detail":"Not Found"}'
    assert dict(denied.headers) == {"content-type": "application/json", "content-length": "22"}
    assert error_records(caplog) == []


async def test_an_unknown_path_without_the_denial_extension_is_a_403() -> None:
    with trio.fail_after(TIMEOUT):
        denied = await refusal_by(app, "/out/nowhere", websocket_denial_response=False)
    assert (denied.status_code, denied.body) == (403, b"")


# -- cancelled from outside --------------------------------------------------------------------


async def test_cancelling_the_connection_ends_the_handler_and_its_background_tasks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    background_stopped = trio.Event()
    handler_cancelled = trio.Event()
    kept: list[WebSocket] = []

    async def background(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            task_status.started()
            await trio.sleep_forever()
        finally:
            background_stopped.set()

    @Controller("/")
    class Server(ControllerBase):
        @ws_route("/long")
        async def long(self, websocket: WebSocket) -> None:
            kept.append(websocket)
            await websocket.accept()
            await websocket.nursery.start(background)
            await websocket.send_text("ready")
            try:
                await websocket.receive_text()
            except trio.Cancelled:
                handler_cancelled.set()
                raise

    with trio.fail_after(TIMEOUT):
        async with AsyncTestClient(App(controllers=[Server]), timeout=TIMEOUT) as client:
            with trio.CancelScope() as scope:
                async with client.websocket_connect("/long") as ws:
                    assert await ws.receive_text() == "ready"
                    scope.cancel()  # the app task runs inside this scope too
                    await trio.lowlevel.checkpoint()
            assert scope.cancelled_caught
            await handler_cancelled.wait()
            await background_stopped.wait()
            (websocket,) = kept
            # Cancelling the scope ends the client too, whose goodbye may arrive first; the
            # 1001 close of a live server's shutdown is tested in tests/test_live.py.
            ended = (websocket.connection_state, websocket.close_code, websocket.close_reason)
            assert ended in (
                (WebSocketState.CLOSED, 1001, "server shutting down"),
                (WebSocketState.DISCONNECTED, 1000, ""),
            )

            # The app serves new connections.
            async with client.websocket_connect("/long") as ws:
                assert await ws.receive_text() == "ready"
    assert error_records(caplog) == []


# -- admit: the browser's Origin, before anything else --------------------------------------

guard_calls: list[str] = []


class CountingGuard:
    async def can_activate(self, context: Any) -> bool:
        guard_calls.append("guard")
        return True


def origin_app(config: dict[str, Any] | None = None, **route: Any) -> App:
    from triows import GuardCanActivate, Guards

    class Counting(CountingGuard, GuardCanActivate):
        pass

    @Controller("")
    class Origins(ControllerBase):
        @ws_route("/ws", **route)
        @Guards(Counting)
        async def ws(self, websocket: WebSocket) -> None:
            await websocket.accept()
            await websocket.send_text("in")

    return App(controllers=[Origins], config=config)


FOREIGN = "https://evil.example"
SAME = "http://testserver"


@pytest.mark.parametrize(
    ("config", "route", "origin", "admitted"),
    [
        (None, {}, None, True),  # not a browser: browsers always send Origin
        (None, {}, SAME, True),  # the default is ["same-origin"]
        (None, {}, "HTTP://TestServer:80", True),  # case and the default port do not matter
        (None, {}, FOREIGN, False),
        (None, {}, "http://testserver:8080", False),  # another port is another origin
        (None, {}, "null", False),  # a sandboxed page or a file: not the site
        ({"WEBSOCKET_ALLOWED_ORIGINS": None}, {}, FOREIGN, True),  # no check
        ({"WEBSOCKET_ALLOWED_ORIGINS": ["*"]}, {}, FOREIGN, True),
        ({"WEBSOCKET_ALLOWED_ORIGINS": [FOREIGN]}, {}, FOREIGN.upper(), True),
        ({"WEBSOCKET_ALLOWED_ORIGINS": [FOREIGN]}, {}, SAME, False),
        (None, {"allowed_origins": [FOREIGN, "same-origin"]}, FOREIGN, True),
        ({"WEBSOCKET_ALLOWED_ORIGINS": None}, {"allowed_origins": []}, SAME, False),
    ],
)
async def test_the_origin_is_checked_before_the_guards(
    config: dict[str, Any] | None, route: dict[str, Any], origin: str | None, admitted: bool
) -> None:
    guard_calls.clear()
    headers = {} if origin is None else {"Origin": origin}
    with trio.fail_after(TIMEOUT):
        async with AsyncTestClient(origin_app(config, **route), timeout=TIMEOUT) as client:
            if admitted:
                async with client.websocket_connect("/ws", headers=headers) as ws:
                    assert await ws.receive_text() == "in"
                assert guard_calls == ["guard"]
                return
            with pytest.raises(WebSocketDenied) as denied:
                async with client.websocket_connect("/ws", headers=headers):
                    pass
    assert denied.value.status_code == 403
    assert denied.value.json() == {
        "detail": f"Origin {origin!r} is not allowed: add it to WEBSOCKET_ALLOWED_ORIGINS "
        "(or the route's allowed_origins)"
    }
    assert guard_calls == []  # refused before any guard ran


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"idle_timeout": 0}, "idle_timeout= must be a number of seconds above 0, or None, got 0"),
        ({"max_message_size": "1MB"}, "max_message_size= must be a whole number of at least 1, "
         "got '1MB'"),
        ({"allowed_origins": "same-origin"}, "allowed_origins= must be a list of origins such as "
         '["https://app.example.com", "same-origin"], or None, got \'same-origin\''),
        ({"heartbeat": ("", "pong")}, "heartbeat= must be a (ping, pong) pair of texts such as "
         "(\"ping\", \"pong\"), got ('', 'pong')"),
        ({"outbox": "close"}, "outbox= takes an OutboxPolicy(...), got 'close'"),
    ],
)  # fmt: skip
def test_a_route_setting_is_checked_when_the_handler_is_decorated(
    option: dict[str, Any], message: str
) -> None:
    from triows import ConfigurationError

    with pytest.raises(ConfigurationError) as refused:

        class Bad(ControllerBase):
            @ws_route("/bad", **option)
            async def handler(self, websocket: WebSocket) -> None: ...

    said = str(refused.value)
    assert said.startswith("@ws_route('/bad') on ")
    assert said.endswith(f".Bad.handler: {message}")


def test_an_outbox_policy_field_is_checked_too() -> None:
    from triows import ConfigurationError, OutboxPolicy

    with pytest.raises(ConfigurationError) as refused:

        class Bad(ControllerBase):
            @ws_route("/bad", outbox=OutboxPolicy("drop", max_messages=0))
            async def handler(self, websocket: WebSocket) -> None: ...

    assert str(refused.value).endswith(
        ".Bad.handler: OutboxPolicy(on_full=...) must be one of block, "
        "drop_oldest, drop_newest, close, got 'drop'"
    )
