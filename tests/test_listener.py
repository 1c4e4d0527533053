"""The extra-handler loop (``@ws_route(..., use_extra_handler=True)``), against its contract.

Each row of the error table is played over the in-process ``AsyncTestClient``, and then over it
and a real socket (hypercorn's trio worker in-process, trio-websocket as the client) in the same
test, which demands the same transcript from both, as ``tests/test_live.py`` does. Everything
else runs in-process. Every disconnect hook here reports the code it was given to the app's
:class:`Recorder`, so each test can say how often it ran and with which code."""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pydantic
import pytest
import trio
from live import Scenario, open_websocket, run_in_process, run_live, serve
from support import error_records

from triows import (
    App,
    ConfigurationError,
    Controller,
    ControllerBase,
    GuardCanActivate,
    Guards,
    Header,
    IExecutionContext,
    Path,
    Query,
    WebSocket,
    WebSocketException,
    WebSocketStateError,
    WsBody,
    injectable,
    ws_route,
)
from triows.testing import (
    AsyncTestClient,
    AsyncWebSocketTestSession,
    WebSocketDenied,
    WebSocketDisconnect,
)

#: No test here comes near this; it only stops a hang.
TIMEOUT = 10


# -- what the hooks and handlers saw ----------------------------------------------------------


@dataclass
class Event:
    """One call of a hook or the message handler."""

    kind: str
    instance: Any
    #: The hook's ``websocket`` argument (``None`` for the message handler).
    argument: WebSocket | None
    #: ``self.context.switch_to_websocket().get_client()`` at the time.
    client: WebSocket
    task: trio.lowlevel.Task
    #: How many tasks ran in ``websocket.nursery`` (``None`` once the nursery is gone).
    nursery_tasks: int | None


@dataclass
class Recorder:
    """Per app: the codes its disconnect hooks were given, and what its probes saw."""

    events: list[Event] = field(default_factory=list)
    worker_cancelled: trio.Event = field(default_factory=trio.Event)

    def __post_init__(self) -> None:
        self._send, self._ends = trio.open_memory_channel[int](math.inf)

    def ended(self, code: int) -> None:
        self._send.send_nowait(code)

    async def next_end(self) -> int:
        """The next disconnect-hook code, waiting for it."""
        return await self._ends.receive()

    def ends_so_far(self) -> list[int]:
        """Every disconnect-hook code not yet taken (without waiting)."""
        codes = []
        while True:
            try:
                codes.append(self._ends.receive_nowait())
            except trio.WouldBlock:
                return codes


def recorder_of(websocket: WebSocket) -> Recorder:
    recorder: Recorder = websocket.app.state["recorder"]
    return recorder


def client_of(controller: ControllerBase) -> WebSocket:
    return controller.context.switch_to_websocket().get_client()


def note(controller: ControllerBase, kind: str, argument: WebSocket | None) -> None:
    client = client_of(controller)
    try:
        tasks: int | None = len(client.nursery.child_tasks)
    except WebSocketStateError:  # the disconnect hook runs after the nursery has closed
        tasks = None
    event = Event(kind, controller, argument, client, trio.lowlevel.current_task(), tasks)
    recorder_of(client).events.append(event)


# -- the controllers ----------------------------------------------------------------------------


class Move(pydantic.BaseModel):
    x: int
    y: int


@Controller("/t")
class TableController(ControllerBase):
    """One route per row of the error table."""

    @ws_route("/text", use_extra_handler=True, encoding="text")
    async def text(self, data: str = WsBody()) -> None:
        await client_of(self).send_text(f"text: {data}")

    @ws_route.disconnect(text)
    async def text_ended(self, websocket: WebSocket, code: int) -> None:
        recorder_of(websocket).ended(code)

    @ws_route("/bytes", use_extra_handler=True, encoding="bytes")
    async def binary(self, data: bytes = WsBody()) -> None:
        await client_of(self).send_bytes(data[::-1])

    @ws_route.disconnect(binary)
    async def binary_ended(self, websocket: WebSocket, code: int) -> None:
        recorder_of(websocket).ended(code)

    @ws_route("/move", use_extra_handler=True)  # encoding="json" is the default
    async def move(self, move: Move = WsBody()) -> None:
        await client_of(self).send_json({"at": [move.x, move.y]})

    @ws_route.disconnect(move)
    async def move_ended(self, websocket: WebSocket, code: int) -> None:
        recorder_of(websocket).ended(code)

    @ws_route("/chat", use_extra_handler=True, encoding="json", on_invalid="reply")
    async def chat(self, room: str = WsBody(), text: str = WsBody(min_length=1)) -> None:
        await client_of(self).send_json({room: text})

    @ws_route.disconnect(chat)
    async def chat_ended(self, websocket: WebSocket, code: int) -> None:
        recorder_of(websocket).ended(code)

    @ws_route("/kick", use_extra_handler=True, encoding="text")
    async def kick(self, data: str = WsBody()) -> None:
        raise WebSocketException(4001, "nope")

    @ws_route.disconnect(kick)
    async def kick_ended(self, websocket: WebSocket, code: int) -> None:
        recorder_of(websocket).ended(code)

    @ws_route("/kick-on-connect", use_extra_handler=True, encoding="text")
    async def kick_on_connect(self, data: str = WsBody()) -> None:
        raise AssertionError("the connect hook closed the connection: no message is handled")

    @ws_route.connect(kick_on_connect)
    async def kick_on_connect_opened(self, websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("accepted")
        raise WebSocketException(4001, "nope")

    @ws_route.disconnect(kick_on_connect)
    async def kick_on_connect_ended(self, websocket: WebSocket, code: int) -> None:
        recorder_of(websocket).ended(code)

    @ws_route("/refuse-on-connect", use_extra_handler=True, encoding="text")
    async def refuse_on_connect(self, data: str = WsBody()) -> None:
        raise AssertionError("the connect hook refused the connection: no message is handled")

    @ws_route.connect(refuse_on_connect)
    async def refuse_on_connect_opened(self, websocket: WebSocket) -> None:
        raise WebSocketException(4001, "nope")  # before accept(): the handshake is refused

    @ws_route.disconnect(refuse_on_connect)
    async def refuse_on_connect_ended(self, websocket: WebSocket, code: int) -> None:
        recorder_of(websocket).ended(code)

    @ws_route("/crash", use_extra_handler=True, encoding="text")
    async def crash(self, data: str = WsBody()) -> None:
        await client_of(self).send_text(f"about to fail on {data}")
        raise RuntimeError(f"boom: {data}")

    @ws_route.disconnect(crash)
    async def crash_ended(self, websocket: WebSocket, code: int) -> None:
        recorder_of(websocket).ended(code)


def describe(value: Any) -> str:
    return f"{type(value).__name__}: {value!r}"


@Controller("/v")
class VariantsController(ControllerBase):
    """One route per kind of ``WsBody``; each answers with the type and value it received."""

    @ws_route("/str", use_extra_handler=True, encoding="text")
    async def text(self, data: str = WsBody()) -> None:
        await client_of(self).send_text(describe(data))

    @ws_route("/bytes", use_extra_handler=True, encoding="bytes")
    async def binary(self, data: bytes = WsBody()) -> None:
        await client_of(self).send_text(describe(data))

    @ws_route("/raw", use_extra_handler=True, encoding=None)
    async def raw(self, data: Any = WsBody()) -> None:
        await client_of(self).send_text(describe(data))

    @ws_route("/raw-text", use_extra_handler=True, encoding=None)
    async def raw_text(self, data: str = WsBody(max_length=3)) -> None:
        await client_of(self).send_text(describe(data))

    @ws_route("/bytes-short", use_extra_handler=True, encoding="bytes")
    async def short_binary(self, data: bytes = WsBody(max_length=2)) -> None:
        await client_of(self).send_text(describe(data))

    @ws_route("/dict", use_extra_handler=True, encoding="json")
    async def mapping(self, data: dict[str, Any] = WsBody()) -> None:
        await client_of(self).send_text(describe(data))

    @ws_route("/list", use_extra_handler=True, encoding="json")
    async def numbers(self, data: list[int] = WsBody()) -> None:
        await client_of(self).send_text(describe(data))

    @ws_route("/model", use_extra_handler=True, encoding="json")
    async def model(self, data: Move = WsBody()) -> None:
        await client_of(self).send_text(describe(data))

    @ws_route("/union", use_extra_handler=True, encoding="json")
    async def union(self, data: int | Move = WsBody()) -> None:
        await client_of(self).send_text(describe(data))

    @ws_route("/short", use_extra_handler=True, encoding="text")
    async def short(self, data: str = WsBody(min_length=3)) -> None:
        await client_of(self).send_text(describe(data))

    @ws_route("/two", use_extra_handler=True, encoding="json")
    async def two(self, name: str = WsBody(), text: str = WsBody(alias="msg")) -> None:
        await client_of(self).send_text(f"{describe(name)} / {describe(text)}")

    @ws_route("/embed", use_extra_handler=True, encoding="json")
    async def embed(self, move: Move = WsBody(embed=True)) -> None:
        await client_of(self).send_text(describe(move))


@injectable(scope="request")
class Tally:
    """A per-connection service that counts how often it is built."""

    built = 0

    def __init__(self) -> None:
        Tally.built += 1
        self.serial = Tally.built


@Controller("/h")
class HandshakeController(ControllerBase):
    @ws_route("/{room}", use_extra_handler=True, encoding="text")
    async def room(
        self,
        tally: Tally,
        room: str = Path(),
        who: str = Query(),
        agent: str = Header(alias="x-agent"),
        data: str = WsBody(),
    ) -> None:
        await client_of(self).send_text(f"{room}|{who}|{agent}|tally #{tally.serial}|{data}")


@Controller("/probe")
class ProbeController(ControllerBase):
    """Records every hook and message call: instance, connection, task, nursery."""

    @ws_route("/", use_extra_handler=True, encoding="text")
    async def message(self, data: str = WsBody()) -> None:
        note(self, "message", None)
        await client_of(self).send_text(f"seen: {data}")

    @ws_route.connect(message)
    async def opened(self, websocket: WebSocket) -> None:
        note(self, "connect", websocket)
        await websocket.accept()

    @ws_route.disconnect(message)
    async def closed(self, websocket: WebSocket, code: int) -> None:
        note(self, "disconnect", websocket)
        recorder_of(websocket).ended(code)


class Refuse(GuardCanActivate):
    async def can_activate(self, context: IExecutionContext) -> bool:
        return False


@Controller("/guarded")
class GuardedController(ControllerBase):
    @ws_route("/", use_extra_handler=True, encoding="text")
    @Guards(Refuse())
    async def message(self, data: str = WsBody()) -> None:
        note(self, "message", None)

    @ws_route.connect(message)
    async def opened(self, websocket: WebSocket) -> None:
        note(self, "connect", websocket)
        await websocket.accept()

    @ws_route.disconnect(message)
    async def closed(self, websocket: WebSocket, code: int) -> None:
        note(self, "disconnect", websocket)
        recorder_of(websocket).ended(code)


@Controller("/work")
class WorkerController(ControllerBase):
    """``start`` starts a worker on ``websocket.nursery``; ``job:X`` hands it work."""

    jobs: trio.MemorySendChannel[str]

    @ws_route("/", use_extra_handler=True, encoding="text")
    async def message(self, data: str = WsBody()) -> None:
        websocket = client_of(self)
        if data == "start":
            self.jobs, jobs = trio.open_memory_channel[str](math.inf)
            await websocket.nursery.start(self.worker, websocket, jobs)
            await websocket.send_text(f"started ({len(websocket.nursery.child_tasks)} task)")
        elif data.startswith("job:"):
            self.jobs.send_nowait(data.removeprefix("job:"))
        else:
            await websocket.send_text(f"echo: {data}")

    @ws_route.disconnect(message)
    async def closed(self, websocket: WebSocket, code: int) -> None:
        recorder_of(websocket).ended(code)

    async def worker(
        self,
        websocket: WebSocket,
        jobs: trio.MemoryReceiveChannel[str],
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        task_status.started()
        try:
            async for job in jobs:
                await websocket.send_text(f"worker: {job}")
        except trio.Cancelled:
            recorder_of(websocket).worker_cancelled.set()
            raise


CONTROLLERS = [
    TableController,
    VariantsController,
    HandshakeController,
    ProbeController,
    GuardedController,
    WorkerController,
]


def build_app() -> tuple[App, Recorder]:
    app = App(controllers=CONTROLLERS)
    recorder = Recorder()
    app.state["recorder"] = recorder
    return app, recorder


@dataclass
class Harness:
    client: AsyncTestClient
    recorder: Recorder


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    app, recorder = build_app()
    # The contract is what a client gets (a handler's failure: 1011), as over hypercorn.
    async with AsyncTestClient(app, raise_server_exceptions=False) as client:
        yield Harness(client, recorder)


# -- the error table, in-process and over hypercorn ---------------------------------------------

ACCEPTED = ("accepted", None)

#: pydantic's error for ``{"x": "left", "y": 0}`` against ``Move``, as the client receives it.
MOVE_ERROR = (
    '{"code":1008,"errors":[{"type":"int_parsing","loc":["body","x"],'
    '"msg":"Input should be a valid integer, unable to parse string as an integer",'
    '"input":"left"}]}'
)
#: ``{"room": "lobby", "text": ""}`` against ``text: str = WsBody(min_length=1)``.
CHAT_ERROR = (
    '{"code":1008,"errors":[{"type":"string_too_short","loc":["body","text"],'
    '"msg":"String should have at least 1 character","input":"","ctx":{"min_length":1}}]}'
)


@dataclass(frozen=True)
class Row:
    """A conversation, its transcript, and what the disconnect hook must be told."""

    scenario: Scenario
    #: The disconnect hook's code; ``None``: it must not run (never connected).
    ended: int | None
    #: How many server errors each transport logs.
    logged: int = 0


ROWS: dict[str, Row] = {
    "text route gets a binary frame": Row(
        Scenario(
            "/t/text",
            [("text", "hi"), ("receive",), ("bytes", b"\x00hi"), ("receive",)],
            [ACCEPTED, ("text", "text: hi"), ("closed", 1003, "expected a text frame, got binary")],
        ),
        ended=1003,
    ),
    "bytes route gets a text frame": Row(
        Scenario(
            "/t/bytes",
            [("bytes", b"abc"), ("receive",), ("text", "abc"), ("receive",)],
            [ACCEPTED, ("bytes", b"cba"), ("closed", 1003, "expected a binary frame, got text")],
        ),
        ended=1003,
    ),
    "malformed JSON": Row(
        Scenario(
            "/t/move",
            [("text", '{"x": 1,'), ("receive",)],
            [
                ACCEPTED,
                ("closed", 1007, "invalid JSON: EOF while parsing a value at line 1 column 8"),
            ],
        ),
        ended=1007,
    ),
    "JSON in binary frames, then a validation failure": Row(
        Scenario(
            "/t/move",
            [
                ("bytes", b'{"x": 3, "y": 4}'),
                ("receive",),
                ("text", '{"x": 1, "y": 2}'),
                ("receive",),
                ("bytes", b'{"x": "left", "y": 0}'),
                ("receive",),
                ("receive",),
            ],
            [
                ACCEPTED,
                ("text", '{"at":[3,4]}'),
                ("text", '{"at":[1,2]}'),
                ("text", MOVE_ERROR),
                ("closed", 1008, "message failed validation"),
            ],
        ),
        ended=1008,
    ),
    "on_invalid='reply' stays open": Row(
        Scenario(
            "/t/chat",
            [
                ("text", '{"room": "lobby", "text": ""}'),
                ("receive",),
                ("text", '{"room": "lobby", "text": "still here"}'),
                ("receive",),
                ("text", "nope"),  # malformed JSON still closes
                ("receive",),
            ],
            [
                ACCEPTED,
                ("text", CHAT_ERROR),
                ("text", '{"lobby":"still here"}'),
                ("closed", 1007, "invalid JSON: expected ident at line 1 column 2"),
            ],
        ),
        ended=1007,
    ),
    "WebSocketException from the handler": Row(
        Scenario(
            "/t/kick",
            [("text", "x"), ("receive",), ("receive",)],
            [ACCEPTED, ("closed", 4001, "nope"), ("closed", 4001, "nope")],
        ),
        ended=4001,
    ),
    "WebSocketException from the connect hook": Row(
        Scenario(
            "/t/kick-on-connect",
            [("text", "ignored"), ("receive",), ("receive",)],
            [ACCEPTED, ("text", "accepted"), ("closed", 4001, "nope")],
        ),
        ended=4001,
    ),
    "WebSocketException from the connect hook before accept": Row(
        Scenario("/t/refuse-on-connect", [], [("denied", 403, b"")]),
        ended=None,
    ),
    "any other exception in the handler": Row(
        Scenario(
            "/t/crash",
            [("text", "x"), ("receive",), ("receive",)],
            [ACCEPTED, ("text", "about to fail on x"), ("closed", 1011, "Internal Server Error")],
        ),
        ended=1011,
        logged=1,
    ),
}


Outcome = tuple[list[tuple[Any, ...]], list[int]]


def expected_outcome(row: Row) -> Outcome:
    """The transcript, and the codes the disconnect hook must be told (once, or never)."""
    return row.scenario.expected, [] if row.ended is None else [row.ended]


def expected_logs(row: Row) -> list[tuple[str, str]]:
    return [("triows", f"websocket handler TableController.{row.scenario.path[3:]} failed")] * (
        row.logged
    )


def logged_failures(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    """Each failure's logger and message, without where it happened (the client's port)."""
    where = re.compile(r" \(/t/\w+ from (testclient:50000|127\.0\.0\.1:\d+)\)$")
    found = []
    for record in error_records(caplog):
        message = record.getMessage()
        assert where.search(message), message
        found.append((record.name, where.sub("", message)))
    return found


async def play_in_process(row: Row) -> Outcome:
    app, recorder = build_app()
    async with AsyncTestClient(app, raise_server_exceptions=False) as client:
        transcript = await run_in_process(client, row.scenario)
    # The session waited for the app to finish: every hook has run.
    return transcript, recorder.ends_so_far()


async def play_over_hypercorn(row: Row) -> Outcome:
    app, recorder = build_app()
    async with serve(app) as server:
        transcript = await run_live(server, row.scenario)
        ends = [await recorder.next_end()] if row.ended is not None else []
    # hypercorn has shut down: no hook can run any more.
    return transcript, ends + recorder.ends_so_far()


@pytest.mark.parametrize("name", list(ROWS))
async def test_error_table_in_process(name: str, caplog: pytest.LogCaptureFixture) -> None:
    row = ROWS[name]
    with trio.fail_after(TIMEOUT):
        outcome = await play_in_process(row)
    assert outcome == expected_outcome(row)
    assert logged_failures(caplog) == expected_logs(row)


@pytest.mark.live
@pytest.mark.parametrize("name", list(ROWS))
async def test_error_table_in_process_and_over_hypercorn_agree(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    row = ROWS[name]
    with trio.fail_after(TIMEOUT):
        in_process = await play_in_process(row)
        over_the_wire = await play_over_hypercorn(row)
    assert in_process == over_the_wire == expected_outcome(row)
    # Client mistakes are logged by neither; a server error once by each.
    assert logged_failures(caplog) == expected_logs(row) * 2


# -- the error table, details (in-process) -------------------------------------------------------


async def test_a_handler_failure_is_logged_once_with_its_traceback(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    with trio.fail_after(TIMEOUT):
        async with harness.client.websocket_connect("/t/crash") as ws:
            await ws.send_text("x")
            assert await ws.receive_text() == "about to fail on x"
            with pytest.raises(WebSocketDisconnect) as closed:
                await ws.receive_text()
    assert (closed.value.code, closed.value.reason) == (1011, "Internal Server Error")
    assert harness.recorder.ends_so_far() == [1011]
    failures = error_records(caplog)
    assert len(failures) == 1
    record = failures[0]
    assert (record.name, record.levelname) == ("triows", "ERROR")
    assert record.getMessage() == (
        "websocket handler TableController.crash failed (/t/crash from testclient:50000)"
    )
    assert record.exc_info is not None
    assert repr(record.exc_info[1]) == "RuntimeError('boom: x')"
    assert 'raise RuntimeError(f"boom: {data}")' in caplog.text  # the traceback is there


async def closing(ws: AsyncWebSocketTestSession) -> WebSocketDisconnect:
    """How the app closes ``ws``, skipping the frames it sends first (the 1008 error frame)."""
    while True:
        try:
            await ws.receive()
        except WebSocketDisconnect as closed:
            return closed


async def test_client_mistakes_are_not_logged_as_errors(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    mistakes = [
        ("/t/text", {"bytes": b"x"}, 1003, "expected a text frame, got binary"),
        ("/t/bytes", {"text": "x"}, 1003, "expected a binary frame, got text"),
        (
            "/t/move",
            {"text": "{"},
            1007,
            "invalid JSON: EOF while parsing an object at line 1 column 1",
        ),
        # Not UTF-8, so not JSON either.
        (
            "/t/move",
            {"bytes": b"\xff\xfe"},
            1007,
            "invalid JSON: expected value at line 1 column 1",
        ),
        ("/t/move", {"text": "[]"}, 1008, "message failed validation"),
    ]
    with trio.fail_after(TIMEOUT):
        for path, frame, code, reason in mistakes:
            async with harness.client.websocket_connect(path) as ws:
                await ws.send({"type": "websocket.receive", **frame})
                closed = await closing(ws)
            assert (closed.code, closed.reason) == (code, reason), (path, frame)
    assert harness.recorder.ends_so_far() == [code for _, _, code, _ in mistakes]
    assert error_records(caplog) == []


async def test_a_frame_with_neither_text_nor_bytes_is_unsupported_data(harness: Harness) -> None:
    with trio.fail_after(TIMEOUT):
        async with harness.client.websocket_connect("/t/move") as ws:
            await ws.send({"type": "websocket.receive", "text": None, "bytes": None})
            with pytest.raises(WebSocketDisconnect) as closed:
                await ws.receive()
    assert (closed.value.code, closed.value.reason) == (
        1003,
        "expected a text or binary JSON frame, got an empty message",
    )


# -- WsBody: what one message may be --------------------------------------------------------------


def invalid(*errors: tuple[str, list[Any], str]) -> tuple[str, list[tuple[str, list[Any], str]]]:
    """The summary of one ``{"code": 1008, "errors": [...]}`` frame: (type, loc, msg) each."""
    return ("invalid", list(errors))


def summarize(transcript: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The transcript, with each validation-error frame reduced to (type, loc, msg) per error."""
    summary: list[tuple[Any, ...]] = []
    for entry in transcript:
        if entry[0] == "text" and entry[1].startswith('{"code":1008,'):
            frame = json.loads(entry[1])
            assert list(frame) == ["code", "errors"]
            assert frame["code"] == 1008
            errors = [(e["type"], e["loc"], e["msg"]) for e in frame["errors"]]
            summary.append(invalid(*errors))
        else:
            summary.append(entry)
    return summary


FAILED = ("closed", 1008, "message failed validation")
NOT_AN_INT = "Input should be a valid integer, unable to parse string as an integer"

VARIANTS: dict[str, tuple[str, list[tuple[Any, ...]], list[tuple[Any, ...]]]] = {
    "str": (
        "/v/str",
        [("text", "héllo"), ("receive",), ("text", ""), ("receive",)],
        [ACCEPTED, ("text", "str: 'héllo'"), ("text", "str: ''")],
    ),
    "bytes": (
        "/v/bytes",
        [("bytes", b"\x00\xff"), ("receive",), ("bytes", b""), ("receive",)],
        [ACCEPTED, ("text", "bytes: b'\\x00\\xff'"), ("text", "bytes: b''")],
    ),
    "raw (encoding=None): each message as it came": (
        "/v/raw",
        [("text", "héllo"), ("receive",), ("bytes", b"\x00"), ("receive",)],
        [ACCEPTED, ("text", "str: 'héllo'"), ("text", "bytes: b'\\x00'")],
    ),
    "raw, validated": (
        "/v/raw-text",
        [("text", "abc"), ("receive",), ("text", "abcd"), ("receive",), ("receive",)],
        [
            ACCEPTED,
            ("text", "str: 'abc'"),
            invalid(("string_too_long", ["body"], "String should have at most 3 characters")),
            FAILED,
        ],
    ),
    "constraint on bytes, input not UTF-8": (
        "/v/bytes-short",
        [
            ("bytes", b"\xff\xfe"),
            ("receive",),
            ("bytes", b"\xff\xfe\xfd"),
            ("receive",),
            ("receive",),
        ],
        [
            ACCEPTED,
            ("text", "bytes: b'\\xff\\xfe'"),
            invalid(("bytes_too_long", ["body"], "Data should have at most 2 bytes")),
            FAILED,
        ],
    ),
    "dict": (
        "/v/dict",
        [("text", '{"a": [1, {"b": null}]}'), ("receive",), ("text", "[1]"), ("receive",)],
        [
            ACCEPTED,
            ("text", "dict: {'a': [1, {'b': None}]}"),
            invalid(("dict_type", ["body"], "Input should be an object")),
        ],
    ),
    "list[int]": (
        "/v/list",
        [("text", '[1, 2, "3"]'), ("receive",), ("text", '[1, "a"]'), ("receive",), ("receive",)],
        [
            ACCEPTED,
            ("text", "list: [1, 2, 3]"),
            invalid(("int_parsing", ["body", 1], NOT_AN_INT)),
            FAILED,
        ],
    ),
    "model": (
        "/v/model",
        [("text", '{"x": 1, "y": 2}'), ("receive",), ("text", '{"x": 1}'), ("receive",)],
        [
            ACCEPTED,
            ("text", "Move: Move(x=1, y=2)"),
            invalid(("missing", ["body", "y"], "Field required")),
        ],
    ),
    "union": (
        "/v/union",
        [
            ("text", "7"),
            ("receive",),
            ("text", '{"x": 1, "y": 2}'),
            ("receive",),
            ("text", '"q"'),
            ("receive",),
        ],
        [
            ACCEPTED,
            ("text", "int: 7"),
            ("text", "Move: Move(x=1, y=2)"),
            invalid(
                ("int_parsing", ["body", "int"], NOT_AN_INT),
                ("model_type", ["body", "Move"], "Input should be an object"),
            ),
        ],
    ),
    "constraint on text": (
        "/v/short",
        [("text", "abc"), ("receive",), ("text", "ab"), ("receive",), ("receive",)],
        [
            ACCEPTED,
            ("text", "str: 'abc'"),
            invalid(("string_too_short", ["body"], "String should have at least 3 characters")),
            FAILED,
        ],
    ),
    "two WsBody: keyed by name and alias": (
        "/v/two",
        [("text", '{"name": "ada", "msg": "hi", "extra": 1}'), ("receive",)],
        [ACCEPTED, ("text", "str: 'ada' / str: 'hi'")],
    ),
    "two WsBody: a missing name": (
        "/v/two",
        [("text", '{"msg": "hi"}'), ("receive",), ("receive",)],
        [ACCEPTED, invalid(("missing", ["body", "name"], "Field required")), FAILED],
    ),
    "two WsBody: the alias is the key, not the parameter name": (
        "/v/two",
        [("text", '{"name": "ada", "text": "hi"}'), ("receive",)],
        [ACCEPTED, invalid(("missing", ["body", "msg"], "Field required"))],
    ),
    "two WsBody: not an object": (
        "/v/two",
        [("text", '["ada", "hi"]'), ("receive",), ("receive",)],
        [ACCEPTED, invalid(("model_type", ["body"], "Input should be an object")), FAILED],
    ),
    "embed=True": (
        "/v/embed",
        [("text", '{"move": {"x": 1, "y": 2}}'), ("receive",)],
        [ACCEPTED, ("text", "Move: Move(x=1, y=2)")],
    ),
    "embed=True: the bare model": (
        "/v/embed",
        [("text", '{"x": 1, "y": 2}'), ("receive",)],
        [ACCEPTED, invalid(("missing", ["body", "move"], "Field required"))],
    ),
    "embed=True: not an object": (
        "/v/embed",
        [("text", "7"), ("receive",), ("receive",)],
        [ACCEPTED, invalid(("model_type", ["body"], "Input should be an object")), FAILED],
    ),
}


@pytest.mark.parametrize("name", list(VARIANTS))
async def test_ws_body_variants(harness: Harness, name: str) -> None:
    path, steps, expected = VARIANTS[name]
    with trio.fail_after(TIMEOUT):
        transcript = await run_in_process(harness.client, Scenario(path, steps, []))
    assert summarize(transcript) == expected


# -- handshake parameters, the instance, the connection, the task --------------------------------


async def test_handshake_parameters_are_resolved_once_per_connection(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Tally, "built", 0)
    with trio.fail_after(TIMEOUT):
        for serial, (room, who) in enumerate([("lobby", "ada"), ("attic", "bob")], start=1):
            path = f"/h/{room}?who={who}"
            headers = {"x-agent": f"agent-{serial}"}
            async with harness.client.websocket_connect(path, headers=headers) as ws:
                for data in ["one", "two", "three"]:
                    await ws.send_text(data)
                    expected = f"{room}|{who}|agent-{serial}|tally #{serial}|{data}"
                    assert await ws.receive_text() == expected
    assert Tally.built == 2  # 6 messages, 2 connections


async def test_invalid_handshake_parameters_refuse_before_any_hook(harness: Harness) -> None:
    with trio.fail_after(TIMEOUT):
        with pytest.raises(WebSocketDenied) as denied:
            async with harness.client.websocket_connect("/h/lobby", headers={"x-agent": "a"}):
                raise AssertionError("a missing query parameter refuses the handshake")
    assert denied.value.status_code == 422
    assert json.loads(denied.value.body) == {
        "detail": [
            {"type": "missing", "loc": ["query", "who"], "msg": "Field required", "input": None}
        ]
    }


async def test_one_instance_one_connection_one_task_per_connection(harness: Harness) -> None:
    with trio.fail_after(TIMEOUT):
        for _ in range(2):
            async with harness.client.websocket_connect("/probe/") as ws:
                for data in ["a", "b", "c"]:
                    await ws.send_text(data)
                    assert await ws.receive_text() == f"seen: {data}"
                await ws.close(4000)
    events = harness.recorder.events
    assert [e.kind for e in events] == [
        *["connect", "message", "message", "message", "disconnect"] * 2
    ]
    assert harness.recorder.ends_so_far() == [4000, 4000]
    first, second = events[:5], events[5:]
    for connection in (first, second):
        websocket = connection[0].argument
        assert isinstance(websocket, WebSocket)
        # The same controller instance serves the hooks and every message of a connection,
        assert all(e.instance is connection[0].instance for e in connection)
        # its context's client is the hooks' websocket,
        assert all(e.client is websocket for e in connection)
        assert connection[-1].argument is websocket
        # and everything runs in the connection's own task: no task per message.
        assert all(e.task is connection[0].task for e in connection)
        assert [e.nursery_tasks for e in connection] == [0, 0, 0, 0, None]
    # A new connection gets a new instance (and a new websocket).
    assert first[0].instance is not second[0].instance
    assert first[0].argument is not second[0].argument


async def test_a_thousand_messages_in_order_on_one_connection(harness: Harness) -> None:
    count = 1000
    with trio.fail_after(TIMEOUT):
        async with harness.client.websocket_connect("/t/move") as ws:
            for i in range(count):
                await ws.send_text(f'{{"x": {i}, "y": {-i}}}')
            answers = [await ws.receive_json() for _ in range(count)]
    assert answers == [{"at": [i, -i]} for i in range(count)]
    assert harness.recorder.ends_so_far() == [1000]


async def test_the_handler_may_run_work_on_the_connection_nursery(harness: Harness) -> None:
    recorder = harness.recorder
    with trio.fail_after(TIMEOUT):
        async with harness.client.websocket_connect("/work/") as ws:
            await ws.send_text("start")
            assert await ws.receive_text() == "started (1 task)"
            # The worker answers while the loop goes on handling messages.
            await ws.send_text("job:a")
            assert await ws.receive_text() == "worker: a"
            await ws.send_text("ping")
            assert await ws.receive_text() == "echo: ping"
            await ws.send_text("job:b")
            assert await ws.receive_text() == "worker: b"
            assert not recorder.worker_cancelled.is_set()
            await ws.close(1001)
        # The client left: the worker was cancelled (not left running, not ended by itself).
        await recorder.worker_cancelled.wait()
    assert recorder.ends_so_far() == [1001]


# -- the disconnect hook ------------------------------------------------------------------------


@pytest.mark.parametrize("code", [1000, 1001, 4000])
async def test_disconnect_hook_gets_the_clients_close_code(harness: Harness, code: int) -> None:
    with trio.fail_after(TIMEOUT):
        async with harness.client.websocket_connect("/t/text") as ws:
            await ws.send_text("hi")
            assert await ws.receive_text() == "text: hi"
            await ws.close(code, "bye")
        # The session has waited for the app to finish: the hook ran, once.
    assert harness.recorder.ends_so_far() == [code]


async def test_disconnect_hook_when_the_client_just_leaves(harness: Harness) -> None:
    with trio.fail_after(TIMEOUT):
        async with harness.client.websocket_connect("/t/text"):
            pass  # leaving the block disconnects with 1000
    assert harness.recorder.ends_so_far() == [1000]


async def test_no_hook_runs_when_the_guard_refuses(harness: Harness) -> None:
    with trio.fail_after(TIMEOUT):
        with pytest.raises(WebSocketDenied) as denied:
            async with harness.client.websocket_connect("/guarded/"):
                raise AssertionError("the guard should have refused")
    assert (denied.value.status_code, denied.value.body) == (403, b'{"detail":"Forbidden"}')
    assert harness.recorder.events == []
    assert harness.recorder.ends_so_far() == []


@pytest.mark.live
async def test_over_hypercorn_the_hook_sees_the_clients_close_code() -> None:
    """hypercorn 0.18 reports every client close to the app as 1006 (pgjones/hypercorn#127).

    triows reads the client's close frame itself (``triows/_hypercorn.py``), so the disconnect
    hook is told the real code over hypercorn too, as in-process
    (``test_disconnect_hook_gets_the_clients_close_code``).
    """
    app, recorder = build_app()
    with trio.fail_after(TIMEOUT):
        async with serve(app) as server:
            async with open_websocket(server, "/t/text") as ws:
                await ws.send_message("hi")
                assert await ws.get_message() == "text: hi"
                await ws.aclose(4000, "bye")
            assert await recorder.next_end() == 4000
    assert recorder.ends_so_far() == []


# -- build-time errors --------------------------------------------------------------------------

HOOKS = ["connect", "disconnect"]


@pytest.mark.parametrize("kind", HOOKS)
def test_a_hook_needs_an_extra_handler_route(kind: str) -> None:
    hook = getattr(ws_route, kind)
    with pytest.raises(ConfigurationError) as raised:

        class Plain(ControllerBase):
            @ws_route("/plain")
            async def plain(self, websocket: WebSocket) -> None: ...

            @hook(plain)
            async def on_plain(self, websocket: WebSocket) -> None: ...

    handler = f"{test_a_hook_needs_an_extra_handler_route.__name__}.<locals>.Plain.plain"
    assert str(raised.value) == (
        f"@ws_route.{kind}({handler}): {handler} is not a websocket route with "
        "use_extra_handler=True (declare it with @ws_route above it)"
    )


@pytest.mark.parametrize("kind", HOOKS)
def test_a_hook_on_a_function_that_is_no_route(kind: str) -> None:
    async def helper(self: Any, data: str) -> None: ...

    with pytest.raises(ConfigurationError, match=r"helper is not a websocket route with"):
        getattr(ws_route, kind)(helper)


@pytest.mark.parametrize("kind", HOOKS)
def test_a_hook_registered_twice(kind: str) -> None:
    hook = getattr(ws_route, kind)
    with pytest.raises(ConfigurationError) as raised:

        class Twice(ControllerBase):
            @ws_route("/twice", use_extra_handler=True, encoding="text")
            async def feed(self, data: str = WsBody()) -> None: ...

            @hook(feed)
            async def first(self, websocket: WebSocket) -> None: ...

            @hook(feed)
            async def second(self, websocket: WebSocket) -> None: ...

    where = f"{test_a_hook_registered_twice.__name__}.<locals>.Twice"
    assert str(raised.value) == (
        f"@ws_route.{kind}({where}.feed) on {where}.second: {where}.feed already has a "
        f"{kind} hook, {where}.first"
    )


@pytest.mark.parametrize("kind", HOOKS)
def test_a_sync_hook(kind: str) -> None:
    hook = getattr(ws_route, kind)
    with pytest.raises(ConfigurationError) as raised:

        class Sync(ControllerBase):
            @ws_route("/sync", use_extra_handler=True, encoding="text")
            async def feed(self, data: str = WsBody()) -> None: ...

            @hook(feed)
            def opened(self, websocket: WebSocket) -> None: ...

    where = f"{test_a_sync_hook.__name__}.<locals>.Sync"
    assert str(raised.value) == (
        f"{where}.opened must be 'async def' to be used with @ws_route.{kind}({where}.feed): "
        "handlers run on trio and a sync one would block the event loop"
    )


def test_an_unknown_on_invalid() -> None:
    with pytest.raises(ConfigurationError) as raised:

        class Lenient(ControllerBase):
            @ws_route("/x", use_extra_handler=True, on_invalid="ignore")  # type: ignore[arg-type]
            async def feed(self, data: str = WsBody()) -> None: ...

    where = f"{test_an_unknown_on_invalid.__name__}.<locals>.Lenient"
    assert str(raised.value) == (
        f"@ws_route('/x') on {where}.feed: unknown on_invalid 'ignore'; "
        "use one of ['close', 'reply']"
    )


def test_an_extra_handler_route_without_ws_body() -> None:
    @Controller("/x")
    class NoBody(ControllerBase):
        @ws_route("/feed", use_extra_handler=True, encoding="text")
        async def feed(self, room: str = Query()) -> None: ...

    with pytest.raises(ConfigurationError) as raised:
        App(controllers=[NoBody])
    assert str(raised.value) == (
        "NoBody.feed: a use_extra_handler=True route receives each message in a WsBody() "
        "parameter; add one (for example 'data: str = WsBody()')"
    )


@pytest.mark.parametrize(("encoding", "embed"), [("text", False), ("bytes", False), ("text", True)])
def test_an_object_message_needs_json(encoding: str, embed: bool) -> None:
    if embed:

        @Controller("/x")
        class Several(ControllerBase):
            @ws_route("/feed", use_extra_handler=True, encoding=encoding)  # type: ignore[arg-type]
            async def feed(self, data: str = WsBody(embed=True)) -> None: ...

    else:

        @Controller("/x")
        class Several(ControllerBase):
            @ws_route("/feed", use_extra_handler=True, encoding=encoding)  # type: ignore[arg-type]
            async def feed(self, name: str = WsBody(), text: str = WsBody()) -> None: ...

    with pytest.raises(ConfigurationError) as raised:
        App(controllers=[Several])
    assert str(raised.value) == (
        "Several.feed: several WsBody() parameters (or embed=True) read a JSON object; "
        f"use encoding='json', not {encoding!r}"
    )


# -- hooks with the route's handshake parameters -------------------------------------------------


@Controller("/rooms")
class RoomHooks(ControllerBase):
    """Hooks that take the route's path and query parameters (Ellar's ``**kwargs``)."""

    seen: ClassVar[list[tuple[str, Any]]] = []

    @ws_route("/{room}", use_extra_handler=True, encoding="text")
    async def say(self, room: str = Path(), who: str = Query(), data: str = WsBody()) -> None:
        await client_of(self).send_text(f"{who}@{room}: {data}")

    @ws_route.connect(say)
    async def joined(self, websocket: WebSocket, room: str) -> None:
        RoomHooks.seen.append(("connect", room))
        await websocket.accept()

    @ws_route.disconnect(say)
    async def left(self, websocket: WebSocket, code: int, **kwargs: Any) -> None:
        RoomHooks.seen.append(("disconnect", (code, kwargs)))


async def test_hooks_get_the_routes_handshake_parameters() -> None:
    RoomHooks.seen.clear()
    app = App(controllers=[RoomHooks])
    with trio.fail_after(TIMEOUT):
        client = AsyncTestClient(app)
        async with client, client.websocket_connect("/rooms/lobby?who=ann") as ws:
            await ws.send_text("hi")
            assert await ws.receive_text() == "ann@lobby: hi"
            await ws.close(4000)
    assert RoomHooks.seen == [
        ("connect", "lobby"),
        ("disconnect", (4000, {"room": "lobby", "who": "ann"})),
    ]


def test_a_hook_that_takes_what_the_route_lacks_fails_at_build_naming_it() -> None:
    @Controller("/bad")
    class Bad(ControllerBase):
        @ws_route("/{room}", use_extra_handler=True, encoding="text")
        async def say(self, room: str = Path(), data: str = WsBody()) -> None: ...

        @ws_route.connect(say)
        async def joined(self, websocket: WebSocket, user_id: int) -> None: ...

    with pytest.raises(ConfigurationError) as raised:
        App(controllers=[Bad])
    owner = "Bad.say"
    assert str(raised.value) == (
        f"the connect hook '{Bad.joined.__qualname__}' of {owner} takes 'user_id', which the "
        "route does not have (its handshake parameters: room)"
    )


def test_a_disconnect_hook_without_the_code_fails_at_build() -> None:
    @Controller("/bad")
    class Bad(ControllerBase):
        @ws_route("/", use_extra_handler=True, encoding="text")
        async def say(self, data: str = WsBody()) -> None: ...

        @ws_route.disconnect(say)
        async def left(self, websocket: WebSocket) -> None: ...

    with pytest.raises(ConfigurationError) as raised:
        App(controllers=[Bad])
    assert str(raised.value) == (
        f"the disconnect hook '{Bad.left.__qualname__}' of Bad.say must take "
        "(self, websocket, code)"
    )
