"""The ``WebSocket`` class (triows/websocket.py): every method, state and state error.

Most tests run a one-route app through the in-process ``AsyncTestClient``; a handler records
what it saw into a list the test inspects once the connection is over. A few tests drive a bare
``WebSocket`` over a fake ASGI pair, where the point is what it sends (or does not send).
"""

from __future__ import annotations

import gc
import uuid
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pydantic
import pydantic_core
import pytest
import trio
import trio.testing
from live import all_tasks
from support import TIMEOUT, connected, error_records, next_close, refusal_by, route_app

import triows
import triows._state
from triows import (
    App,
    Controller,
    ControllerBase,
    PlainTextResponse,
    WebSocket,
    WebSocketDisconnect,
    WebSocketState,
    WebSocketStateError,
    ws_route,
)
from triows._timers import GRID
from triows.datastructures import URL
from triows.testing import AsyncTestClient, AsyncWebSocketTestSession, TestClient

NOT_ACCEPTED = "; call 'await websocket.accept()' first"


# -- helpers -----------------------------------------------------------------------------------


async def failure_of(awaitable: Awaitable[Any]) -> Exception | None:
    """Await ``awaitable``; the exception it raised, or None."""
    try:
        await awaitable
    except Exception as exc:
        return exc
    return None


class FakeASGI:
    """A bare ASGI receive/send pair: scripted inbound messages, and a list of what was sent."""

    def __init__(self, *inbound: dict[str, Any]) -> None:
        self.inbound = list(inbound)
        self.sent: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        await trio.lowlevel.checkpoint()
        return self.inbound.pop(0)

    async def send(self, message: dict[str, Any]) -> None:
        await trio.lowlevel.checkpoint()
        self.sent.append(message)

    def websocket(self) -> WebSocket:
        scope = {"type": "websocket", "path": "/ws", "headers": [], "subprotocols": []}
        return WebSocket(scope, self.receive, self.send)


CONNECT = {"type": "websocket.connect"}
ACCEPT = {"type": "websocket.accept", "subprotocol": None}


class Item(pydantic.BaseModel):
    name: str
    n: int


# -- accept ------------------------------------------------------------------------------------


async def test_accept_agrees_on_the_subprotocol_and_sends_extra_headers() -> None:
    seen: list[Any] = []

    async def handler(self: Any, websocket: WebSocket) -> None:
        seen.append(list(websocket.subprotocols))
        await websocket.accept("b", headers={"X-Server": "triows", "x-other": "1"})
        seen.append(websocket.accepted_subprotocol)
        await websocket.send_text("hi")

    with trio.fail_after(TIMEOUT):
        async with connected(route_app(handler), subprotocols=["a", "b"]) as ws:
            assert ws.accepted_subprotocol == "b"
            assert ws.extra_headers == [(b"x-server", b"triows"), (b"x-other", b"1")]
            assert await ws.receive_text() == "hi"
            closed = await next_close(ws)
            assert (closed.code, closed.reason) == (1000, "")
    assert seen == [["a", "b"], "b"]


async def test_accept_without_subprotocol_and_with_header_pairs() -> None:
    async def handler(self: Any, websocket: WebSocket) -> None:
        await websocket.accept(headers=[("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])
        await websocket.close()

    with trio.fail_after(TIMEOUT):
        async with connected(route_app(handler), subprotocols=["a"]) as ws:
            assert ws.accepted_subprotocol is None
            assert ws.extra_headers == [(b"set-cookie", b"a=1"), (b"set-cookie", b"b=2")]
            assert (await next_close(ws)).code == 1000


async def test_accepting_a_subprotocol_the_client_did_not_offer_is_a_value_error() -> None:
    errors: list[Exception | None] = []

    async def handler(self: Any, websocket: WebSocket) -> None:
        errors.append(await failure_of(websocket.accept("c")))
        errors.append(await failure_of(websocket.accept("a")))  # still CONNECTING: works

    with trio.fail_after(TIMEOUT):
        async with connected(route_app(handler), subprotocols=["a", "b"]) as ws:
            assert ws.accepted_subprotocol == "a"
    error, ok = errors
    assert isinstance(error, ValueError)
    assert str(error) == "accept(subprotocol='c'): the client offered ['a', 'b']"
    assert ok is None


async def test_accepting_twice_names_the_expected_and_actual_state() -> None:
    errors: list[Exception | None] = []

    async def handler(self: Any, websocket: WebSocket) -> None:
        await websocket.accept()
        errors.append(await failure_of(websocket.accept()))
        errors.append(await failure_of(websocket.deny(401)))
        await websocket.send_text("still open")

    with trio.fail_after(TIMEOUT):
        async with connected(route_app(handler)) as ws:
            assert await ws.receive_text() == "still open"
    twice, deny = errors
    assert isinstance(twice, WebSocketStateError)
    assert str(twice) == "accept() needs the websocket CONNECTING, but it is CONNECTED"
    assert isinstance(deny, WebSocketStateError)
    assert str(deny) == "deny() needs the websocket CONNECTING, but it is CONNECTED"


async def test_accept_after_closing_before_accept_is_a_state_error() -> None:
    errors: list[Exception | None] = []

    async def handler(self: Any, websocket: WebSocket) -> None:
        await websocket.close()
        errors.append(await failure_of(websocket.accept()))

    with trio.fail_after(TIMEOUT):
        denied = await refusal_by(route_app(handler))
    assert denied.status_code == 403
    (error,) = errors
    assert isinstance(error, WebSocketStateError)
    assert str(error) == "accept() needs the websocket CONNECTING, but it is CLOSED"


# -- state errors on send / receive ------------------------------------------------------------


async def test_send_and_receive_before_accept_are_state_errors() -> None:
    errors: list[Exception | None] = []
    first: list[Any] = []

    async def handler(self: Any, websocket: WebSocket) -> None:
        errors.append(await failure_of(websocket.send_text("x")))
        errors.append(await failure_of(websocket.send_bytes(b"x")))
        errors.append(await failure_of(websocket.send_json({"x": 1})))
        first.append(await websocket.receive())  # as in Starlette: the connect message, once
        errors.append(await failure_of(websocket.receive()))
        errors.append(await failure_of(websocket.receive_text()))
        errors.append(await failure_of(websocket.receive_bytes()))
        errors.append(await failure_of(websocket.receive_json()))
        await websocket.accept()  # none of the above spoiled the handshake
        await websocket.send_text("accepted")

    with trio.fail_after(TIMEOUT):
        async with connected(route_app(handler)) as ws:
            assert await ws.receive_text() == "accepted"
    assert first == [{"type": "websocket.connect"}]
    assert all(isinstance(e, WebSocketStateError) for e in errors), errors
    messages = [str(e) for e in errors]
    sending = "sending needs the websocket CONNECTED, but it is CONNECTING" + NOT_ACCEPTED
    receiving = "receiving needs the websocket CONNECTED, but it is CONNECTING" + NOT_ACCEPTED
    assert messages == [sending] * 3 + [receiving] * 4


async def test_send_after_the_app_closed_is_a_state_error() -> None:
    errors: list[Exception | None] = []

    async def handler(self: Any, websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.close(4001, "go away")
        errors.append(await failure_of(websocket.send_text("late")))
        errors.append(await failure_of(websocket.send_bytes(b"late")))
        errors.append(await failure_of(websocket.send_json([])))
        errors.append(await failure_of(websocket.receive_text()))

    with trio.fail_after(TIMEOUT):
        async with connected(route_app(handler)) as ws:
            closed = await next_close(ws)
            assert (closed.code, closed.reason) == (4001, "go away")
    *sends, receive = errors
    assert all(isinstance(e, WebSocketStateError) for e in sends), sends
    assert [str(e) for e in sends] == [
        "sending needs the websocket CONNECTED, but it is CLOSED"
    ] * 3
    # Receiving after the app closed: the connection has ended, with the app's own code.
    assert isinstance(receive, WebSocketDisconnect)
    assert (receive.code, receive.reason) == (4001, "go away")


async def test_send_after_the_peer_disconnected_raises_its_disconnect() -> None:
    errors: list[Exception | None] = []
    states: list[Any] = []

    async def handler(self: Any, websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("ready")
        errors.append(await failure_of(websocket.receive_text()))
        errors.append(await failure_of(websocket.send_text("late")))
        errors.append(await failure_of(websocket.send_bytes(b"late")))
        errors.append(await failure_of(websocket.send_json({"late": True})))
        states.append((websocket.connection_state, websocket.close_code, websocket.close_reason))

    with trio.fail_after(TIMEOUT):
        async with connected(route_app(handler)) as ws:
            assert await ws.receive_text() == "ready"
            await ws.close(4000, "bye")
    assert all(isinstance(e, WebSocketDisconnect) for e in errors), errors
    assert [(e.code, e.reason) for e in errors] == [(4000, "bye")] * 4  # type: ignore[union-attr]
    assert states == [(WebSocketState.DISCONNECTED, 4000, "bye")]


async def test_client_close_code_and_reason_reach_the_handler() -> None:
    seen: list[WebSocketDisconnect] = []

    async def handler(self: Any, websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            await websocket.receive_text()
        except WebSocketDisconnect as exc:
            seen.append(exc)

    with trio.fail_after(TIMEOUT):
        async with connected(route_app(handler)) as ws:
            await ws.close(4000, "bye")
    assert [(e.code, e.reason) for e in seen] == [(4000, "bye")]


# -- sending -----------------------------------------------------------------------------------


async def test_send_methods_deliver_exact_frames() -> None:
    uid = uuid.UUID("12345678-1234-5678-1234-567812345678")

    async def handler(self: Any, websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("héllo")
        await websocket.send_text("")
        await websocket.send_bytes(b"\x00\xff")
        await websocket.send_bytes(bytearray(b"array"))
        await websocket.send_bytes(memoryview(b"view"))
        await websocket.send_json({"a": 1, "b": [1, 2], "é": None})
        await websocket.send_json({"a": 1}, mode="binary")
        await websocket.send_json(Item(name="x", n=1))
        await websocket.send_json(Item(name="y", n=2), mode="binary")
        await websocket.send_json({"id": uid})

    expected = [
        {"type": "websocket.send", "text": "héllo"},
        {"type": "websocket.send", "text": ""},
        {"type": "websocket.send", "bytes": b"\x00\xff"},
        {"type": "websocket.send", "bytes": b"array"},
        {"type": "websocket.send", "bytes": b"view"},
        {"type": "websocket.send", "text": '{"a":1,"b":[1,2],"é":null}'},
        {"type": "websocket.send", "bytes": b'{"a":1}'},
        {"type": "websocket.send", "text": '{"name":"x","n":1}'},
        {"type": "websocket.send", "bytes": b'{"name":"y","n":2}'},
        {"type": "websocket.send", "text": f'{{"id":"{uid}"}}'},
    ]
    with trio.fail_after(TIMEOUT):
        async with connected(route_app(handler)) as ws:
            assert [await ws.receive() for _ in expected] == expected
            assert (await next_close(ws)).code == 1000


async def test_send_methods_reject_the_wrong_type() -> None:
    errors: list[Exception | None] = []

    async def handler(self: Any, websocket: WebSocket) -> None:
        await websocket.accept()
        errors.append(await failure_of(websocket.send_text(b"bytes")))  # type: ignore[arg-type]
        errors.append(await failure_of(websocket.send_bytes("text")))  # type: ignore[arg-type]
        await websocket.send_text("after")

    with trio.fail_after(TIMEOUT):
        async with connected(route_app(handler)) as ws:
            assert await ws.receive() == {"type": "websocket.send", "text": "after"}
    assert [(type(e), str(e)) for e in errors] == [
        (TypeError, "send_text() takes str, got bytes"),
        (TypeError, "send_bytes() takes bytes, got str"),
    ]


# -- receiving ---------------------------------------------------------------------------------


async def test_receive_methods_return_what_the_client_sent() -> None:
    got: list[Any] = []

    async def handler(self: Any, websocket: WebSocket) -> None:
        await websocket.accept()
        got.append(await websocket.receive_text())
        got.append(await websocket.receive_bytes())
        got.append(await websocket.receive_json())
        got.append(await websocket.receive_json(mode="binary"))
        got.append(await websocket.receive())
        got.append(await websocket.receive())
        await websocket.send_text("done")

    with trio.fail_after(TIMEOUT):
        async with connected(route_app(handler)) as ws:
            await ws.send_text("héllo")
            await ws.send_bytes(b"\x00\x01")
            await ws.send_json({"k": [1, "two"]})
            await ws.send_json([True, None], mode="binary")
            await ws.send_text("raw")
            await ws.send_bytes(b"raw")
            assert await ws.receive_text() == "done"
    assert got == [
        "héllo",
        b"\x00\x01",
        {"k": [1, "two"]},
        [True, None],
        {"type": "websocket.receive", "text": "raw"},
        {"type": "websocket.receive", "bytes": b"raw"},
    ]


async def test_receive_returns_the_disconnect_message_once_then_refuses() -> None:
    got: list[Any] = []

    async def handler(self: Any, websocket: WebSocket) -> None:
        await websocket.accept()
        got.append(await websocket.receive())
        got.append(websocket.connection_state)
        got.append(await failure_of(websocket.receive()))

    with trio.fail_after(TIMEOUT):
        async with connected(route_app(handler)) as ws:
            await ws.close(4000, "bye")
    message, state, error = got
    assert message == {"type": "websocket.disconnect", "code": 4000, "reason": "bye"}
    assert state is WebSocketState.DISCONNECTED
    # As Starlette's: the raw message comes once; asking again is a programming error.
    assert isinstance(error, WebSocketStateError)
    assert str(error) == 'Cannot call "receive" once a disconnect message has been received.'


@pytest.mark.parametrize(
    ("method", "mode", "messages"),
    [
        ("iter_text", None, ["a", "", "ü"]),
        ("iter_bytes", None, [b"a", b"", b"\xff"]),
        ("iter_json", "text", [{"a": 1}, [1, 2], "s"]),
        ("iter_json", "binary", [{"b": 2}, None, 3.5]),
    ],
)
async def test_iterators_end_cleanly_when_the_client_closes(
    method: str, mode: str | None, messages: list[Any]
) -> None:
    got: list[Any] = []
    ended: list[Any] = []

    async def handler(self: Any, websocket: WebSocket) -> None:
        await websocket.accept()
        iterator = getattr(websocket, method)(mode) if mode else getattr(websocket, method)()
        async for message in iterator:
            got.append(message)
        ended.append((websocket.connection_state, websocket.close_code))

    with trio.fail_after(TIMEOUT):
        async with connected(route_app(handler)) as ws:
            for message in messages:
                if method == "iter_text":
                    await ws.send_text(message)
                elif method == "iter_bytes":
                    await ws.send_bytes(message)
                else:
                    await ws.send_json(message, mode=mode or "text")
            await ws.close(4000)
    assert got == messages
    assert ended == [(WebSocketState.DISCONNECTED, 4000)]


async def test_leaving_an_iterator_early_leaves_no_unfinished_generator() -> None:
    # A handler that stops reading on a command ("quit") breaks out of iter_text(). Nothing may
    # be left for the garbage collector to finalise: trio warns (ResourceWarning) about an async
    # generator collected before it was exhausted, which filterwarnings=error turns into an error.
    got: list[str] = []

    async def handler(self: Any, websocket: WebSocket) -> None:
        await websocket.accept()
        async for text in websocket.iter_text():
            if text == "quit":
                break
            got.append(text)
        await websocket.close(4010, "quit")

    with warnings.catch_warnings(record=True) as caught, trio.fail_after(TIMEOUT):
        warnings.simplefilter("always")
        async with connected(route_app(handler)) as ws:
            await ws.send_text("a")
            await ws.send_text("quit")
            closed = await next_close(ws)
        gc.collect()
    assert (closed.code, closed.reason) == (4010, "quit")
    assert got == ["a"]
    assert [str(w.message) for w in caught] == []


async def _send_text(ws: AsyncWebSocketTestSession, data: str) -> None:
    await ws.send_text(data)


async def _send_bytes(ws: AsyncWebSocketTestSession, data: str) -> None:
    await ws.send_bytes(data.encode())


WANT_TEXT = "expected a text frame, got binary"
WANT_BINARY = "expected a binary frame, got text"
BAD_FRAMES = [
    ("receive_text", {}, _send_bytes, "data", 1003, WANT_TEXT),
    ("receive_bytes", {}, _send_text, "data", 1003, WANT_BINARY),
    ("receive_json", {}, _send_bytes, "{}", 1003, WANT_TEXT),
    ("receive_json", {"mode": "binary"}, _send_text, "[]", 1003, WANT_BINARY),
    ("receive_json", {}, _send_text, "{not json", 1007, "invalid JSON: "),
    ("receive_json", {"mode": "binary"}, _send_bytes, "{not json", 1007, "invalid JSON: "),
]


@pytest.mark.parametrize(("method", "kwargs", "send", "payload", "code", "reason"), BAD_FRAMES)
async def test_a_wrong_frame_closes_with_a_code_and_reason_and_logs_nothing(
    caplog: pytest.LogCaptureFixture,
    method: str,
    kwargs: dict[str, Any],
    send: Callable[[AsyncWebSocketTestSession, str], Awaitable[None]],
    payload: str,
    code: int,
    reason: str,
) -> None:
    async def handler(self: Any, websocket: WebSocket) -> None:
        await websocket.accept()
        await getattr(websocket, method)(**kwargs)
        await websocket.send_text("should not get here")

    with trio.fail_after(TIMEOUT):
        async with connected(route_app(handler)) as ws:
            await send(ws, payload)
            closed = await next_close(ws)
    assert closed.code == code
    if code == 1007:
        assert closed.reason.startswith(reason)
        with pytest.raises(ValueError, match="line 1 column") as parser:
            pydantic_core.from_json(payload)
        assert closed.reason == f"invalid JSON: {parser.value}"  # the parser's own words
    else:
        assert closed.reason == reason
    assert error_records(caplog) == []


async def test_iter_text_does_not_swallow_a_wrong_frame(caplog: pytest.LogCaptureFixture) -> None:
    got: list[str] = []

    async def handler(self: Any, websocket: WebSocket) -> None:
        await websocket.accept()
        async for text in websocket.iter_text():
            got.append(text)

    with trio.fail_after(TIMEOUT):
        async with connected(route_app(handler)) as ws:
            await ws.send_text("fine")
            await ws.send_bytes(b"not fine")
            closed = await next_close(ws)
    assert (closed.code, closed.reason) == (1003, "expected a text frame, got binary")
    assert got == ["fine"]
    assert error_records(caplog) == []


# -- closing -----------------------------------------------------------------------------------


async def test_app_close_code_and_reason_reach_the_client() -> None:
    states: list[Any] = []

    async def handler(self: Any, websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("bye soon")
        await websocket.close(4001, "go away")
        states.append((websocket.connection_state, websocket.close_code, websocket.close_reason))

    with trio.fail_after(TIMEOUT):
        async with connected(route_app(handler)) as ws:
            assert await ws.receive_text() == "bye soon"
            closed = await next_close(ws)
            assert (closed.code, closed.reason) == (4001, "go away")
            again = await next_close(ws)  # the session stays closed
            assert (again.code, again.reason) == (4001, "go away")
    assert states == [(WebSocketState.CLOSED, 4001, "go away")]


@pytest.mark.parametrize(
    ("reason", "sent"),
    [
        ("y" * 123, "y" * 123),
        ("x" * 200, "x" * 123),
        ("é" * 100, "é" * 61),  # 2-byte characters: 122 bytes, the 62nd would be split
        ("a" + "€" * 50, "a" + "€" * 40),  # 3-byte characters: 121 bytes
    ],
)
async def test_a_long_close_reason_is_cut_to_123_bytes_of_utf8(reason: str, sent: str) -> None:
    async def handler(self: Any, websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.close(4002, reason)

    with trio.fail_after(TIMEOUT):
        async with connected(route_app(handler)) as ws:
            closed = await next_close(ws)
    assert (closed.code, closed.reason) == (4002, sent)
    assert len(closed.reason.encode()) <= 123


async def test_close_after_the_client_left_is_a_no_op() -> None:
    seen: list[Any] = []

    async def handler(self: Any, websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            await websocket.receive_text()
        except WebSocketDisconnect:
            # The guide's disconnect hook: close() once the client has gone.
            seen.append(await failure_of(websocket.close()))
            seen.append(await failure_of(websocket.close(4000, "again")))
            seen.append((websocket.connection_state, websocket.close_code))

    with trio.fail_after(TIMEOUT):
        async with connected(route_app(handler)) as ws:
            await ws.close(1001)
    assert seen == [None, None, (WebSocketState.DISCONNECTED, 1001)]


async def test_close_once_ended_sends_nothing() -> None:
    with trio.fail_after(TIMEOUT):
        peer_left = FakeASGI(CONNECT, {"type": "websocket.disconnect", "code": 1001})
        ws = peer_left.websocket()
        await ws.accept()
        with pytest.raises(WebSocketDisconnect):
            await ws.receive_text()
        await ws.close()
        await ws.close(4000, "again")
        assert peer_left.sent == [ACCEPT]

        closed_twice = FakeASGI(CONNECT)
        ws = closed_twice.websocket()
        await ws.accept()
        await ws.close(4001, "first")
        await ws.close(4002, "second")
        assert closed_twice.sent == [
            ACCEPT,
            {"type": "websocket.close", "code": 4001, "reason": "first"},
        ]
        assert (ws.close_code, ws.close_reason) == (4001, "first")


# -- refusing the handshake --------------------------------------------------------------------


@pytest.mark.parametrize("denial_response", [True, False])
async def test_close_before_accept_is_an_http_403(denial_response: bool) -> None:
    states: list[Any] = []

    async def handler(self: Any, websocket: WebSocket) -> None:
        await websocket.close(4005, "not you")
        states.append((websocket.connection_state, websocket.close_code))

    with trio.fail_after(TIMEOUT):
        denied = await refusal_by(route_app(handler), websocket_denial_response=denial_response)
    assert (denied.status_code, denied.body) == (403, b"")
    assert states == [(WebSocketState.CLOSED, 4005)]


async def test_deny_answers_with_status_body_and_headers() -> None:
    states: list[Any] = []

    async def handler(self: Any, websocket: WebSocket) -> None:
        await websocket.deny(401, b"no entry", {"X-Reason": "test", "www-authenticate": "Basic"})
        states.append(websocket.connection_state)

    with trio.fail_after(TIMEOUT):
        denied = await refusal_by(route_app(handler))
    assert denied.status_code == 401
    assert denied.body == b"no entry"
    assert denied.headers == [
        ("x-reason", "test"),
        ("www-authenticate", "Basic"),
        ("content-length", "8"),
    ]
    assert states == [WebSocketState.DENIED]


async def test_deny_defaults_to_an_empty_403() -> None:
    async def handler(self: Any, websocket: WebSocket) -> None:
        await websocket.deny()

    with trio.fail_after(TIMEOUT):
        denied = await refusal_by(route_app(handler))
    assert (denied.status_code, denied.headers, denied.body) == (
        403,
        [("content-length", "0")],
        b"",
    )


async def test_deny_without_the_denial_extension_falls_back_to_close_403() -> None:
    states: list[Any] = []

    async def handler(self: Any, websocket: WebSocket) -> None:
        await websocket.deny(401, b"no entry", {"x-reason": "test"})
        states.append(websocket.connection_state)

    with trio.fail_after(TIMEOUT):
        denied = await refusal_by(route_app(handler), websocket_denial_response=False)
    assert (denied.status_code, denied.headers, denied.body) == (403, [], b"")
    assert states == [WebSocketState.CLOSED]


# -- concurrency -------------------------------------------------------------------------------


async def test_two_tasks_receiving_at_once_is_a_busy_resource_error() -> None:
    async def handler(self: Any, websocket: WebSocket) -> None:
        await websocket.accept()
        reader_got: list[str] = []
        reader_done = trio.Event()

        async def reader() -> None:
            reader_got.append(await websocket.receive_text())
            reader_done.set()

        websocket.nursery.start_soon(reader)
        await trio.testing.wait_all_tasks_blocked()  # the reader is parked in receive
        error = await failure_of(websocket.receive_text())
        await websocket.send_text(f"{type(error).__name__}: {error}")
        await reader_done.wait()
        await websocket.send_text(f"reader got {reader_got[0]}")
        await websocket.send_text(f"handler got {await websocket.receive_text()}")

    with trio.fail_after(TIMEOUT):
        async with connected(route_app(handler)) as ws:
            assert await ws.receive_text() == (
                "BusyResourceError: another task is already receiving on this websocket"
            )
            await ws.send_text("one")
            assert await ws.receive_text() == "reader got one"
            await ws.send_text("two")  # the failed receive did not leave the socket busy
            assert await ws.receive_text() == "handler got two"


async def test_one_reader_and_one_writer_work_concurrently() -> None:
    async def handler(self: Any, websocket: WebSocket) -> None:
        await websocket.accept()
        go = trio.Event()

        async def ticker() -> None:
            await go.wait()
            for n in range(3):
                await websocket.send_json({"tick": n})

        websocket.nursery.start_soon(ticker)
        assert await websocket.receive_text() == "start"
        go.set()
        # The ticker sends while this task is parked in receive: the client only sends
        # "ping" once it has all three ticks.
        assert await websocket.receive_text() == "ping"
        await websocket.send_text("pong")

    with trio.fail_after(TIMEOUT):
        async with connected(route_app(handler)) as ws:
            await ws.send_text("start")
            assert [await ws.receive_json() for _ in range(3)] == [
                {"tick": 0},
                {"tick": 1},
                {"tick": 2},
            ]
            await ws.send_text("ping")
            assert await ws.receive_text() == "pong"
            assert (await next_close(ws)).code == 1000


async def test_a_hundred_concurrent_clients_each_get_their_own_echoes_in_order() -> None:
    async def handler(self: Any, websocket: WebSocket) -> None:
        await websocket.accept()
        async for text in websocket.iter_text():
            await websocket.send_text(text)

    finished: list[int] = []
    with trio.fail_after(TIMEOUT):
        async with AsyncTestClient(route_app(handler), timeout=TIMEOUT) as client:

            async def one(i: int) -> None:
                async with client.websocket_connect("/ws") as ws:
                    for j in range(3):
                        await ws.send_text(f"{i}:{j}")
                    assert [await ws.receive_text() for _ in range(3)] == [
                        f"{i}:0",
                        f"{i}:1",
                        f"{i}:2",
                    ]
                    await ws.send_text(f"{i}:last")
                    assert await ws.receive_text() == f"{i}:last"
                finished.append(i)

            async with trio.open_nursery() as nursery:
                for i in range(100):
                    nursery.start_soon(one, i)
    assert sorted(finished) == list(range(100))


# -- the connection's nursery ------------------------------------------------------------------


def _background(stopped: trio.Event) -> Callable[..., Awaitable[None]]:
    """A task for ``nursery.start`` that runs until cancelled, then sets ``stopped``."""

    async def background(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            task_status.started()
            await trio.sleep_forever()
        finally:
            stopped.set()

    return background


async def test_nursery_tasks_are_cancelled_when_the_client_leaves() -> None:
    stopped = trio.Event()

    async def handler(self: Any, websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.nursery.start(_background(stopped))
        await websocket.send_text("started")
        await websocket.receive_text()  # raises WebSocketDisconnect when the client leaves

    with trio.fail_after(TIMEOUT):
        async with connected(route_app(handler)) as ws:
            assert await ws.receive_text() == "started"
            assert not stopped.is_set()
            await ws.close(1001)
            await stopped.wait()  # cancelled while the session is still open: not by its end


async def test_nursery_tasks_are_cancelled_when_the_handler_returns() -> None:
    stopped = trio.Event()

    async def handler(self: Any, websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.nursery.start(_background(stopped))
        await websocket.send_text("started")

    with trio.fail_after(TIMEOUT):
        async with connected(route_app(handler)) as ws:
            assert await ws.receive_text() == "started"
            await stopped.wait()
            closed = await next_close(ws)
            assert (closed.code, closed.reason) == (1000, "")


async def test_an_exception_in_a_nursery_task_closes_with_1011(
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler_cancelled = trio.Event()

    async def broken(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await trio.lowlevel.checkpoint()
        raise RuntimeError("ticker broke")

    async def handler(self: Any, websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("started")
        await websocket.nursery.start(broken)
        try:
            await websocket.receive_text()
        except trio.Cancelled:
            handler_cancelled.set()
            raise

    with trio.fail_after(TIMEOUT):
        async with connected(route_app(handler), raise_server_exceptions=False) as ws:
            assert await ws.receive_text() == "started"
            closed = await next_close(ws)
            assert (closed.code, closed.reason) == (1011, "Internal Server Error")
            await handler_cancelled.wait()
    (record,) = error_records(caplog)
    assert record.name == "triows"
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)
    assert str(record.exc_info[1]) == "ticker broke"


def test_nursery_outside_a_handler_is_a_state_error() -> None:
    ws = FakeASGI(CONNECT).websocket()
    with pytest.raises(WebSocketStateError) as info:
        _ = ws.nursery
    assert str(info.value) == (
        "websocket.nursery exists only while the App runs this connection's handler"
    )


async def test_nursery_after_the_handler_ended_is_a_state_error() -> None:
    kept: list[WebSocket] = []
    during: list[bool] = []

    async def handler(self: Any, websocket: WebSocket) -> None:
        kept.append(websocket)
        during.append(isinstance(websocket.nursery, trio.Nursery))
        await websocket.accept()

    with trio.fail_after(TIMEOUT):
        async with connected(route_app(handler)) as ws:
            assert (await next_close(ws)).code == 1000
    assert during == [True]
    with pytest.raises(WebSocketStateError, match="exists only while the App runs"):
        _ = kept[0].nursery


# -- state and properties ----------------------------------------------------------------------


async def test_connection_state_transitions() -> None:
    states: dict[str, list[Any]] = {}

    async def handler(self: Any, websocket: WebSocket) -> None:
        seen = states.setdefault(websocket.query_params["case"], [])
        seen.append(websocket.connection_state)
        await websocket.accept()
        seen.append(websocket.connection_state)
        if websocket.query_params["case"] == "app-closes":
            await websocket.close(4001, "done")
        else:
            await websocket.send_text("ready")  # the client leaves once it has this
            assert isinstance(await failure_of(websocket.receive_text()), WebSocketDisconnect)
        seen.append((websocket.connection_state, websocket.close_code, websocket.close_reason))

    app = route_app(handler)
    with trio.fail_after(TIMEOUT):
        async with AsyncTestClient(app, timeout=TIMEOUT) as client:
            async with client.websocket_connect("/ws?case=app-closes") as ws:
                assert (await next_close(ws)).code == 4001
            async with client.websocket_connect("/ws?case=client-leaves") as ws:
                assert await ws.receive_text() == "ready"
                await ws.close(4000, "bye")
    assert states == {
        "app-closes": [
            WebSocketState.CONNECTING,
            WebSocketState.CONNECTED,
            (WebSocketState.CLOSED, 4001, "done"),
        ],
        "client-leaves": [
            WebSocketState.CONNECTING,
            WebSocketState.CONNECTED,
            (WebSocketState.DISCONNECTED, 4000, "bye"),
        ],
    }


UID = uuid.UUID("0f8fad5b-d9cb-469f-a165-70867728950e")


async def test_handshake_properties() -> None:
    seen: dict[str, Any] = {}

    async def handler(self: Any, websocket: WebSocket, num: int, uid: uuid.UUID) -> None:
        seen["args"] = (num, uid)
        seen["url"] = (websocket.url, websocket.url.scheme, websocket.url.path, websocket.url.query)
        seen["header"] = (websocket.headers["x-tag"], websocket.headers["X-TAG"])
        seen["headers"] = websocket.headers.getlist("X-Tag")
        seen["query"] = (websocket.query_params["a"], websocket.query_params.getlist("a"))
        seen["query_b"] = websocket.query_params["b"]
        seen["path_params"] = websocket.path_params
        seen["cookies"] = websocket.cookies
        seen["client"] = (websocket.client, websocket.client and websocket.client.host)
        seen["subprotocols"] = websocket.subprotocols
        seen["app"] = websocket.app
        websocket.state.user = "ann"
        seen["state"] = (websocket.state.user, websocket.state is websocket.state)
        await websocket.accept()

    app = route_app(handler, "/items/{num:int}/{uid:uuid}")
    path = f"/items/7/{UID}?a=1&a=2&b=two"
    headers = [("X-Tag", "one"), ("x-tag", "two"), ("Cookie", 'session=abc; theme="dark"')]
    with trio.fail_after(TIMEOUT):
        async with connected(app, path, headers=headers, subprotocols=["v2", "v1"]) as ws:
            assert (await next_close(ws)).code == 1000
    assert seen == {
        "args": (7, UID),
        "url": (
            f"ws://testserver/items/7/{UID}?a=1&a=2&b=two",
            "ws",
            f"/items/7/{UID}",
            "a=1&a=2&b=two",
        ),
        "header": ("two", "two"),
        "headers": ["one", "two"],
        "query": ("2", ["1", "2"]),
        "query_b": "two",
        "path_params": {"num": 7, "uid": UID},
        "cookies": {"session": "abc", "theme": "dark"},
        "client": (("testclient", 50000), "testclient"),
        "subprotocols": ["v2", "v1"],
        "app": app,
        "state": ("ann", True),
    }
    assert type(seen["args"][0]) is int


async def test_a_path_that_does_not_convert_is_not_found() -> None:
    async def handler(self: Any, websocket: WebSocket, num: int) -> None:
        await websocket.accept()

    with trio.fail_after(TIMEOUT):
        denied = await refusal_by(route_app(handler, "/items/{num:int}"), "/items/seven")
    assert denied.status_code == 404
    assert denied.json() == {"detail": "Not Found"}


# -- the controller style and the sync client --------------------------------------------------


@Controller("/chat")
class ChatController(ControllerBase):
    @ws_route("/room")
    async def room(self) -> None:
        ws = self.context.switch_to_websocket().get_client()
        chosen = "chat.v2" if "chat.v2" in ws.subprotocols else None
        await ws.accept(subprotocol=chosen)
        while (message := await ws.receive_json()) != "quit":
            await ws.send_json({"echo": message})
        await ws.close(4010, "quit")


def test_sync_client_echo_subprotocol_and_close() -> None:
    with (
        TestClient(App(controllers=[ChatController]), timeout=TIMEOUT) as client,
        client.websocket_connect("/chat/room", subprotocols=["chat.v1", "chat.v2"]) as ws,
    ):
        assert ws.accepted_subprotocol == "chat.v2"
        ws.send_json({"n": 1})
        assert ws.receive_json() == {"echo": {"n": 1}}
        ws.send_json([1, 2])
        assert ws.receive() == {"type": "websocket.send", "text": '{"echo":[1,2]}'}
        ws.send_json("quit")
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
        assert (closed.value.code, closed.value.reason) == (4010, "quit")


def _await_chain(coro: Any) -> list[tuple[str, str]]:
    """``(qualname, filename)`` of each frame of a suspended coroutine chain, outermost first."""
    chain = []
    while coro is not None:
        code = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None)
        if code is None:
            break
        chain.append((getattr(code, "co_qualname", code.co_name), code.co_filename))
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return chain


async def test_an_idle_connection_keeps_five_frames_of_triows() -> None:
    # What an idle connection costs (memory, and cache lines per message) is mostly its
    # suspended await chain: the App, the endpoint (admit, drive and conclude are steps of
    # its one frame; a driver returns the handler's coroutine rather than adding a frame), the
    # handler, the receive, and the inbox it waits on. The inbox took the place of the
    # server's channel receive, so the chain is as deep as before it. This pins it, so a new
    # layer is a decision; bench.instructions measures what a layer costs.
    async def handler(self: Any, websocket: WebSocket) -> None:
        await websocket.accept()
        async for message in websocket.iter_bytes():
            await websocket.send_bytes(message)

    with trio.fail_after(TIMEOUT):
        async with connected(route_app(handler)) as ws:
            await ws.send_bytes(b"ping")
            assert await ws.receive_bytes() == b"ping"  # the handler is back in its receive
            await trio.testing.wait_all_tasks_blocked()
            package = Path(triows.__file__).parent
            core = [
                [name.rsplit("<locals>.", 1)[-1] for name, filename in chain
                 if Path(filename).parent == package or filename == __file__]
                for chain in map(_await_chain, (task.coro for task in all_tasks()))
            ]  # fmt: skip
            [ours] = [names for names in core if "WebSocketEndpoint.__call__" in names]
            assert ours == [
                "App.__call__",
                "WebSocketEndpoint.__call__",
                "handler",
                "Messages.__anext__",
                "Inbox.get",
            ]


# -- the state machine, row by row ---------------------------------------------------------

S, E = WebSocketState, triows._state.Event
ROWS = {
    (S.CONNECTING, E.ACCEPT): S.CONNECTED,
    (S.CONNECTING, E.DENY): S.DENIED,
    (S.CONNECTING, E.CLOSE): S.CLOSED,
    (S.CONNECTING, E.END): S.CLOSING,
    (S.CONNECTING, E.PEER_LEFT): S.DISCONNECTED,
    (S.CONNECTED, E.CLOSE): S.CLOSED,
    (S.CONNECTED, E.END): S.CLOSING,
    (S.CONNECTED, E.PEER_LEFT): S.DISCONNECTED,
    (S.CLOSING, E.DENY): S.DENIED,
    (S.CLOSING, E.CLOSE): S.CLOSED,
    (S.CLOSING, E.END): S.CLOSING,
    (S.CLOSING, E.PEER_LEFT): S.CLOSING,
    **{
        (s, e): s
        for s in (S.CLOSED, S.DENIED, S.DISCONNECTED)
        for e in (E.CLOSE, E.END, E.PEER_LEFT)
    },
}  # fmt: skip


def test_the_state_table_is_the_one_documented() -> None:
    assert triows._state.TRANSITIONS == ROWS


@pytest.mark.parametrize(("state", "event"), [(s, e) for s in S for e in E])
def test_each_state_and_event(state: WebSocketState, event: Any) -> None:
    ws = FakeASGI().websocket()
    ws._conn_state = state
    ws.close_code, ws.close_reason = 4999, "earlier"
    if (state, event) not in ROWS:
        with pytest.raises(WebSocketStateError) as refused:
            ws._move(event, 4000, "now")
        assert str(refused.value) == (
            f"cannot take {event.value!r} when the websocket is {state.name}"
        )
        assert ws.connection_state is state
        return
    ws._move(event, 4000, "now")
    after = ROWS[state, event]
    assert ws.connection_state is after
    # Leaving CONNECTING or CONNECTED for an end records how it ended; a deny records nothing,
    # and once it has ended, later facts do not overwrite the first.
    recorded = state in (S.CONNECTING, S.CONNECTED) and after not in (S.CONNECTED, S.DENIED)
    assert (ws.close_code, ws.close_reason) == ((4000, "now") if recorded else (4999, "earlier"))
    assert ws._accepted is (event is E.ACCEPT)


def test_the_connection_state_is_read_only() -> None:
    ws = FakeASGI().websocket()
    with pytest.raises(AttributeError):
        ws.connection_state = WebSocketState.CONNECTED  # type: ignore[misc]
    assert ws.connection_state is WebSocketState.CONNECTING


async def test_what_the_client_sent_before_leaving_is_still_received() -> None:
    got: list[Any] = []
    left = trio.Event()

    async def handler(self: Any, websocket: WebSocket) -> None:
        await websocket.accept()
        await left.wait()
        got.append(websocket.connection_state)
        with pytest.raises(WebSocketDisconnect):
            await websocket.send_text("too late")  # the peer is gone: sends know at once
        got.extend([await websocket.receive_text(), await websocket.receive_text()])
        got.append(await websocket.receive())
        got.append(await failure_of(websocket.receive_text()))  # after the end: the close

    with trio.fail_after(TIMEOUT):
        async with connected(route_app(handler)) as ws:
            await ws.send_text("one")
            await ws.send_text("two")
            await ws.close(4001, "bye")
            left.set()
    assert got[:4] == [WebSocketState.DISCONNECTED, "one", "two", {
        "type": "websocket.disconnect", "code": 4001, "reason": "bye"
    }]  # fmt: skip
    assert isinstance(got[4], WebSocketDisconnect)
    assert (got[4].code, got[4].reason) == (4001, "bye")


async def test_a_handler_that_ignores_its_ended_connection_is_cancelled_in_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    ends: list[tuple[str, float]] = []

    async def handler(self: Any, websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            await trio.sleep_forever()  # not receiving, not sending
        except trio.Cancelled:
            ends.append(("cancelled", trio.current_time()))
            raise

    app = route_app(handler, config={"WEBSOCKET_CLOSE_TIMEOUT": 2.0})
    with trio.fail_after(TIMEOUT * 10):
        async with connected(app) as ws:  # the client waits (3 s at most) for the app to end
            start = trio.current_time()
            await ws.close()
    [(what, when)] = ends
    assert what == "cancelled"
    assert start + 2.0 <= when <= start + 2.0 + GRID  # timers keep a grid of GRID seconds


async def test_on_an_unknown_server_a_pump_takes_the_messages_as_they_come() -> None:
    # Neither hypercorn nor the test client: plain ASGI callables. The connection then runs a
    # task of its own that receives, so a handler that only sends still learns its peer left.
    to_app, app_receive = trio.open_memory_channel[dict[str, Any]](100)
    sent: list[dict[str, Any]] = []
    ended: list[int | None] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)  # returns without a checkpoint, as hypercorn does once closed

    async def handler(self: Any, websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            while True:
                with trio.testing.assert_checkpoints():
                    await websocket.send_text("tick")
        finally:
            ended.append(websocket.close_code)

    app = route_app(handler)
    scope = {"type": "websocket", "path": "/ws", "headers": [], "query_string": b"",
             "subprotocols": [], "extensions": {}}  # fmt: skip
    to_app.send_nowait({"type": "websocket.connect"})
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(app, scope, app_receive.receive, send)
            while len(sent) < 100:
                await trio.lowlevel.checkpoint()
            to_app.send_nowait({"type": "websocket.disconnect", "code": 4002})
    assert ended == [4002]
    assert sent[0] == {"type": "websocket.accept", "subprotocol": None}


# -- Starlette's surface -----------------------------------------------------------------------


async def test_the_url_has_its_port_host_and_security() -> None:
    seen: list[Any] = []

    async def handler(self: Any, websocket: WebSocket) -> None:
        url = websocket.url
        seen.append((url.scheme, url.hostname, url.port, url.is_secure, url.path, url.query))
        await websocket.accept()

    with trio.fail_after(TIMEOUT):
        async with connected(route_app(handler), "/ws?room=1"):
            pass
    assert seen == [("ws", "testserver", None, False, "/ws", "room=1")]
    scope = {"scheme": "wss", "path": "/ws", "headers": [(b"host", b"Example.org:8443")]}
    url = URL.from_scope(scope)
    assert (url, url.hostname, url.port, url.is_secure) == (
        "wss://Example.org:8443/ws",
        "example.org",
        8443,
        True,
    )


async def test_a_websocket_is_a_mapping_over_its_scope_compared_by_identity() -> None:
    seen: list[Any] = []

    async def handler(self: Any, websocket: WebSocket) -> None:
        scope = websocket.scope
        seen.append(websocket["subprotocols"] == scope["subprotocols"] == ["chat"])
        seen.append(("path" in websocket, len(websocket) == len(scope)))
        seen.append(list(websocket) == list(scope))
        seen.append(dict(websocket) == scope)
        other = WebSocket(scope, websocket._receive, websocket._send)
        seen.append((websocket == websocket, websocket == other, len({websocket, other})))
        await websocket.accept("chat")

    with trio.fail_after(TIMEOUT):
        async with connected(route_app(handler), subprotocols=["chat"]):
            pass
    assert seen == [True, (True, True), True, True, (True, False, 2)]


async def test_raw_send_covers_accept_send_and_close() -> None:
    async def handler(self: Any, websocket: WebSocket) -> None:
        assert await websocket.receive() == {"type": "websocket.connect"}
        await websocket.send({"type": "websocket.accept", "headers": [(b"x-room", b"1")]})
        await websocket.send({"type": "websocket.send", "text": "hi"})
        await websocket.send({"type": "websocket.send", "bytes": b"\x00"})
        with pytest.raises(RuntimeError) as raised:
            await websocket.send({"type": "websocket.ping"})
        assert str(raised.value) == "a websocket cannot send the ASGI message 'websocket.ping'"
        await websocket.send({"type": "websocket.close", "code": 4001, "reason": "bye"})

    with trio.fail_after(TIMEOUT):
        async with connected(route_app(handler)) as ws:
            assert ws.extra_headers == [(b"x-room", b"1")]  # Starlette's bytes pairs work
            assert await ws.receive_text() == "hi"
            assert await ws.receive_bytes() == b"\x00"
            with pytest.raises(WebSocketDisconnect) as closed:
                await ws.receive_text()
    assert (closed.value.code, closed.value.reason) == (4001, "bye")


async def test_raw_send_of_a_denial() -> None:
    async def handler(self: Any, websocket: WebSocket) -> None:
        start = {"type": "websocket.http.response.start", "status": 418, "headers": []}
        await websocket.send(start)
        await websocket.send({"type": "websocket.http.response.body", "body": b"teapot"})

    with trio.fail_after(TIMEOUT):
        denied = await refusal_by(route_app(handler))
    assert (denied.status_code, denied.body) == (418, b"teapot")


@pytest.mark.parametrize("method", ["send_json", "receive_json", "iter_json"])
async def test_an_unknown_json_mode_is_a_runtime_error(method: str) -> None:
    errors: list[Exception | None] = []

    async def handler(self: Any, websocket: WebSocket) -> None:
        await websocket.accept()
        call = getattr(websocket, method)
        args = ({"a": 1}, "invalid") if method == "send_json" else ("invalid",)
        try:
            if method == "iter_json":
                await anext(call(*args))
            else:
                await call(*args)
        except RuntimeError as exc:
            errors.append(exc)

    with trio.fail_after(TIMEOUT):
        async with connected(route_app(handler)):
            pass
    [error] = errors
    assert isinstance(error, RuntimeError)
    assert str(error) == 'The "mode" argument should be "text" or "binary".'


@pytest.mark.parametrize("step", ["accept", "send", "close"])
async def test_an_oserror_from_the_servers_send_means_the_client_left(step: str) -> None:
    class Gone(FakeASGI):
        async def send(self, message: dict[str, Any]) -> None:
            await trio.lowlevel.checkpoint()
            if message["type"] == f"websocket.{step}":
                raise OSError("connection reset by peer")
            self.sent.append(message)

    async def steps(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("x")
        await websocket.close()

    with trio.fail_after(TIMEOUT), pytest.raises(WebSocketDisconnect) as gone:
        await steps(Gone(CONNECT).websocket())
    assert gone.value.code == 1006


async def test_raw_send_of_a_denial_in_parts_and_twice_started() -> None:
    errors: list[Exception | None] = []

    async def handler(self: Any, websocket: WebSocket) -> None:
        start = {"type": "websocket.http.response.start", "status": 404, "headers": []}
        await websocket.send(start)
        errors.append(await failure_of(websocket.send(start)))
        for part, more in ((b"not ", True), (b"here", False)):
            body = {"type": "websocket.http.response.body", "body": part, "more_body": more}
            await websocket.send(body)

    with trio.fail_after(TIMEOUT):
        denied = await refusal_by(route_app(handler))
    assert (denied.status_code, denied.body) == (404, b"not here")
    [error] = errors
    assert isinstance(error, RuntimeError)
    assert str(error) == (
        'Expected ASGI message "websocket.http.response.body", '
        "but got 'websocket.http.response.start'"
    )


async def test_a_raw_send_before_accept_is_a_state_error() -> None:
    errors: list[Exception | None] = []

    async def handler(self: Any, websocket: WebSocket) -> None:
        errors.append(await failure_of(websocket.send({"type": "websocket.send", "bytes": b"x"})))
        errors.append(await failure_of(websocket.send({"type": "websocket.send"})))
        await websocket.accept()

    with trio.fail_after(TIMEOUT):
        async with connected(route_app(handler)):
            pass
    assert [type(e) for e in errors] == [WebSocketStateError, WebSocketStateError]


async def test_send_denial_response_refuses_with_a_response() -> None:
    async def handler(self: Any, websocket: WebSocket) -> None:
        await websocket.send_denial_response(PlainTextResponse("no room", status_code=409))

    with trio.fail_after(TIMEOUT):
        denied = await refusal_by(route_app(handler))
    assert (denied.status_code, denied.content, denied.body) == (409, b"no room", b"no room")
    assert ("content-type", "text/plain; charset=utf-8") in denied.headers.multi_items()
    assert denied.headers.get_list("content-length") == ["7"]  # once


async def test_send_denial_response_needs_the_servers_extension() -> None:
    asgi = FakeASGI(CONNECT)
    websocket = asgi.websocket()  # its scope has no websocket.http.response extension
    with trio.fail_after(TIMEOUT), pytest.raises(RuntimeError) as raised:
        await websocket.send_denial_response(PlainTextResponse("x"))
    assert str(raised.value) == (
        "The server doesn't support the Websocket Denial Response extension."
    )


async def test_starlettes_application_and_client_states_follow_the_connection() -> None:
    seen: list[tuple[str, WebSocketState, WebSocketState]] = []

    def note(when: str, websocket: WebSocket) -> None:
        seen.append((when, websocket.application_state, websocket.client_state))

    async def handler(self: Any, websocket: WebSocket) -> None:
        note("handshake", websocket)
        await websocket.accept()
        note("accepted", websocket)
        assert await websocket.receive_text() == "hi"
        message = await websocket.receive()
        assert message["type"] == "websocket.disconnect"
        note("client left", websocket)

    async def closing(self: Any, websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.close()
        note("app closed", websocket)

    async def refusing(self: Any, websocket: WebSocket) -> None:
        await websocket.deny(401)
        note("refused", websocket)

    with trio.fail_after(TIMEOUT):
        async with connected(route_app(handler)) as ws:
            await ws.send_text("hi")
            await ws.close()
        async with connected(route_app(closing)) as ws:
            with pytest.raises(triows.WebSocketDisconnect):
                await ws.receive_text()
        assert (await refusal_by(route_app(refusing))).status_code == 401
    S = WebSocketState
    assert seen == [
        ("handshake", S.CONNECTING, S.CONNECTED),
        ("accepted", S.CONNECTED, S.CONNECTED),
        ("client left", S.CONNECTED, S.DISCONNECTED),  # the app has not closed it
        ("app closed", S.DISCONNECTED, S.CONNECTED),  # the client has not answered yet
        ("refused", S.RESPONSE, S.DISCONNECTED),
    ]
    assert S.RESPONSE is S.DENIED  # Starlette's name, the same member
