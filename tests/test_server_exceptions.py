"""``raise_server_exceptions`` (on by default): the test clients raise what the app's code raised.

Where triows answers a server-side failure with HTTP 500 or close 1011 (and logs it once), the
test sees the handler's, guard's or hook's own exception instead, at the first call that would
have seen the answer; ``raise_server_exceptions=False`` gives back what a real client sees.
The client's own mistakes (a refusal, a validation error) are answers, never raised.
"""

from __future__ import annotations

import pydantic
import pytest
import trio
from support import TIMEOUT, error_records

from triows import (
    App,
    Controller,
    ControllerBase,
    GuardCanActivate,
    Guards,
    HTTPException,
    IExecutionContext,
    WebSocket,
    WebSocketException,
    WsBody,
    get,
    ws_route,
)
from triows.testing import AsyncTestClient, TestClient, WebSocketDenied, WebSocketDisconnect


class Boom(Exception):
    """What the app's code raises here."""


class Exploding(GuardCanActivate):
    async def can_activate(self, context: IExecutionContext) -> bool:
        raise Boom("the guard")


class Message(pydantic.BaseModel):
    n: int


@Controller("/x")
class FailingController(ControllerBase):
    @property
    def ws(self) -> WebSocket:
        return self.context.switch_to_websocket().get_client()

    @ws_route("/before-accept")
    async def before_accept(self) -> None:
        raise Boom("before accept")

    @ws_route("/after-sending")
    async def after_sending(self) -> None:
        await self.ws.accept()
        await self.ws.send_text("first")
        await self.ws.receive_text()
        raise Boom("after sending")

    @ws_route("/in-a-task")
    async def in_a_task(self) -> None:
        await self.ws.accept()

        async def task() -> None:
            await self.ws.receive_text()
            raise Boom("in a task")

        self.ws.nursery.start_soon(task)
        await trio.sleep_forever()

    @ws_route("/guarded")
    @Guards(Exploding)
    async def guarded(self) -> None:
        await self.ws.accept()

    @ws_route("/refusing")
    async def refusing(self) -> None:
        raise HTTPException(401, "login first")

    @ws_route("/closing")
    async def closing(self) -> None:
        await self.ws.accept()
        raise WebSocketException(4003, "nope")

    @ws_route("/loop", use_extra_handler=True, encoding="json")
    async def loop(self, data: Message = WsBody()) -> None:
        await self.ws.send_json({"n": data.n})

    @ws_route("/validated", use_extra_handler=True, encoding="json")
    async def validated(self, data: Message = WsBody()) -> None:
        await self.ws.send_json({"n": data.n})

    @ws_route.disconnect(loop)
    async def loop_left(self, websocket: WebSocket, code: int) -> None:
        raise Boom("the disconnect hook")

    @get("/http")
    async def http(self) -> None:
        raise Boom("an HTTP handler")


def make_app() -> App:
    return App(controllers=[FailingController])


def assert_boom(exc: BaseException, where: str) -> None:
    assert type(exc) is Boom  # as itself: not a group, not a WebSocketDenied beside it
    assert str(exc) == where


# -- websockets ---------------------------------------------------------------------------------


async def test_a_failure_before_accept_is_raised_instead_of_the_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with trio.fail_after(TIMEOUT):
        async with AsyncTestClient(make_app()) as client:
            with pytest.raises(Boom) as raised:
                async with client.websocket_connect("/x/before-accept"):
                    raise AssertionError("the handshake should have failed")
    assert_boom(raised.value, "before accept")
    assert [record.getMessage() for record in error_records(caplog)] == [
        "websocket handler FailingController.before_accept failed "
        "(/x/before-accept from testclient:50000)"
    ]  # still logged, once


async def test_frames_sent_before_a_failure_arrive_then_the_failure_is_raised() -> None:
    with trio.fail_after(TIMEOUT):
        async with (
            AsyncTestClient(make_app()) as client,
            client.websocket_connect("/x/after-sending") as ws,
        ):
            assert await ws.receive_text() == "first"
            await ws.send_text("go")
            with pytest.raises(Boom) as raised:
                await ws.receive_text()
            # Seen once by the test: the end of the block does not raise it again.
    assert_boom(raised.value, "after sending")


async def test_a_failure_in_a_task_of_the_connection_is_raised() -> None:
    with trio.fail_after(TIMEOUT):
        async with (
            AsyncTestClient(make_app()) as client,
            client.websocket_connect("/x/in-a-task") as ws,
        ):
            await ws.send_text("go")
            with pytest.raises(Boom) as raised:
                await ws.assert_no_message(within=TIMEOUT)
    assert_boom(raised.value, "in a task")


async def test_a_failing_guard_is_raised_instead_of_the_500() -> None:
    with trio.fail_after(TIMEOUT):
        async with AsyncTestClient(make_app()) as client:
            with pytest.raises(Boom) as raised:
                async with client.websocket_connect("/x/guarded"):
                    raise AssertionError("the guard should have failed")
    assert_boom(raised.value, "the guard")


async def test_a_failing_disconnect_hook_is_raised_when_the_block_ends() -> None:
    with trio.fail_after(TIMEOUT):
        async with AsyncTestClient(make_app()) as client:

            async def talk_and_leave() -> None:
                async with client.websocket_connect("/x/loop") as ws:
                    await ws.send_json({"n": 1})
                    assert await ws.receive_json() == {"n": 1}
                # leaving closes with 1000; the hook then fails

            with pytest.raises(Boom) as raised:
                await talk_and_leave()
    assert_boom(raised.value, "the disconnect hook")


async def test_the_clients_mistakes_are_answers_not_exceptions() -> None:
    with trio.fail_after(TIMEOUT):
        async with AsyncTestClient(make_app()) as client:
            with pytest.raises(WebSocketDenied) as denied:
                async with client.websocket_connect("/x/refusing"):
                    raise AssertionError("the handler should have refused")
            async with client.websocket_connect("/x/closing") as ws:
                with pytest.raises(WebSocketDisconnect) as closed:
                    await ws.receive_text()
            async with client.websocket_connect("/x/validated") as ws:
                await ws.send_json({"n": "not a number"})
                invalid = await ws.receive_json()
                with pytest.raises(WebSocketDisconnect) as failed_validation:
                    await ws.receive_text()
    assert (denied.value.status_code, denied.value.json()) == (401, {"detail": "login first"})
    assert (closed.value.code, closed.value.reason) == (4003, "nope")
    assert invalid["code"] == 1008
    assert [error["loc"] for error in invalid["errors"]] == [["body", "n"]]
    assert failed_validation.value.code == 1008


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/x/before-accept", ("denied", 500)),
        ("/x/guarded", ("denied", 500)),
        ("/x/after-sending", ("closed", 1011)),
    ],
)
async def test_without_it_the_test_sees_what_a_real_client_sees(
    path: str, expected: tuple[str, int]
) -> None:
    seen: tuple[str, int] | None = None
    with trio.fail_after(TIMEOUT):
        async with AsyncTestClient(make_app(), raise_server_exceptions=False) as client:
            try:
                async with client.websocket_connect(path) as ws:
                    assert await ws.receive_text() == "first"
                    await ws.send_text("go")
                    await ws.receive_text()
            except WebSocketDenied as exc:
                seen = ("denied", exc.status_code)
            except WebSocketDisconnect as exc:
                seen = ("closed", exc.code)
    assert seen == expected


def test_the_sync_client_raises_it_too() -> None:
    with TestClient(make_app()) as client:
        with pytest.raises(Boom) as before, client.websocket_connect("/x/before-accept"):
            raise AssertionError("the handshake should have failed")
        with client.websocket_connect("/x/after-sending") as ws:
            assert ws.receive_text() == "first"
            ws.send_text("go")
            with pytest.raises(Boom) as after:
                ws.receive_text()
    assert_boom(before.value, "before accept")
    assert_boom(after.value, "after sending")


# -- HTTP ---------------------------------------------------------------------------------------


async def test_an_http_handlers_failure_is_raised_by_the_request() -> None:
    async with AsyncTestClient(make_app()) as client:
        with pytest.raises(Boom) as raised:
            await client.get("/x/http")
        missing = await client.get("/x/nowhere")  # a client's mistake stays an answer
    assert_boom(raised.value, "an HTTP handler")
    assert missing.status_code == 404


def test_the_sync_client_raises_an_http_failure_too() -> None:
    with (
        TestClient(make_app()) as client,
        pytest.raises(Boom) as raised,
    ):
        client.get("/x/http")
    assert_boom(raised.value, "an HTTP handler")


async def test_without_it_an_http_failure_is_the_500() -> None:
    async with AsyncTestClient(make_app(), raise_server_exceptions=False) as client:
        response = await client.get("/x/http")
    assert (response.status_code, response.json()) == (500, {"detail": "Internal Server Error"})


def test_without_it_the_sync_client_gets_the_500_too() -> None:
    with TestClient(make_app(), raise_server_exceptions=False) as client:
        response = client.get("/x/http")
    assert (response.status_code, response.json()) == (500, {"detail": "Internal Server Error"})
