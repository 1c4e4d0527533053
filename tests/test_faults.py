"""Clients in bad weather, against a real hypercorn trio worker (``docs/limits.md``).

Each test plays one misbehaving client (``bench.rawclient``: wsproto over a raw socket, so it
can reset, flood, stop reading, send what a browser never would) against an app served by
hypercorn in the test's own trio loop, and asserts what the client and the handler see. Every
wait is under ``trio.fail_after``; loops are bounded in count. ``python -m bench.faults`` plays
the same scenarios against a hypercorn process and prints the figures.
"""

from __future__ import annotations

import gc
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pydantic
import pytest
import trio
import trio.testing
from live import all_tasks, serve

from bench.rawclient import Closed, RawClient, Refused
from triows import (
    App,
    Controller,
    ControllerBase,
    OutboxPolicy,
    WebSocket,
    WebSocketDisconnect,
    WsBody,
    get,
    ws_route,
)
from triows._hypercorn import HypercornLink
from triows.testing import LiveServer

pytestmark = [pytest.mark.live, pytest.mark.faults]

#: Seconds any one test may take.
TIMEOUT = 10
CHUNK = bytes(4096)


class Recorder:
    """What the handlers saw: how each connection ended, by route."""

    def __init__(self) -> None:
        self.ends: dict[str, list[tuple[int | None, str]]] = {}
        self._send, self._ended = trio.open_memory_channel[tuple[str, int | None, str]](1000)
        self.links: list[Any] = []

    def end(self, route: str, websocket: WebSocket) -> None:
        ended = (websocket.close_code, websocket.close_reason)
        self.ends.setdefault(route, []).append(ended)
        self._send.send_nowait((route, *ended))

    async def next_end(self) -> tuple[str, int | None, str]:
        return await self._ended.receive()


class Item(pydantic.BaseModel):
    name: str
    count: int


room: set[WebSocket] = set()


@Controller("")
class Faulty(ControllerBase):
    @property
    def recorder(self) -> Recorder:
        recorder: Recorder = self.context.switch_to_websocket().get_client().app.state["rec"]
        return recorder

    @get("/health")
    async def health(self) -> str:
        return "ok"

    @ws_route("/send-loop")
    async def send_loop(self, websocket: WebSocket) -> None:
        try:
            await websocket.accept()
            self.recorder.links.append(websocket._link)
            while True:
                await websocket.send_bytes(CHUNK)
        finally:
            self.recorder.end("send-loop", websocket)

    @ws_route("/sender-task")
    async def sender_task(self, websocket: WebSocket) -> None:
        # The pattern the docs recommend: a sender on the connection's nursery, beside a reader.
        async def send_forever() -> None:
            while True:
                await websocket.send_bytes(CHUNK)

        try:
            await websocket.accept()
            websocket.nursery.start_soon(send_forever)
            async for _ in websocket.iter_bytes():
                pass
        finally:
            self.recorder.end("sender-task", websocket)

    @ws_route("/echo")
    async def echo(self, websocket: WebSocket) -> None:
        try:
            await websocket.accept()
            async for data in websocket.iter_bytes():
                await websocket.send_bytes(data)
        finally:
            self.recorder.end("echo", websocket)

    @ws_route("/text-echo", max_message_size=1000)
    async def text_echo(self, websocket: WebSocket) -> None:
        try:
            await websocket.accept()
            async for text in websocket.iter_text():
                await websocket.send_text(text)
        finally:
            self.recorder.end("text-echo", websocket)

    @ws_route("/room", outbox=OutboxPolicy("close", max_messages=32))
    async def room(self, websocket: WebSocket) -> None:
        room.add(websocket)
        try:
            await websocket.accept()
            async for text in websocket.iter_text():
                for member in list(room):
                    member.push_text(text)
        finally:
            room.discard(websocket)
            self.recorder.end("room", websocket)

    @ws_route("/push-and-go", outbox=OutboxPolicy("block", max_messages=1000, max_bytes=1 << 30))
    async def push_and_go(self, websocket: WebSocket) -> None:
        try:
            await websocket.accept()
            for _ in range(200):  # 12.5 MiB for a client that reads nothing
                websocket.push_bytes(bytes(65536))
        finally:
            self.recorder.end("push-and-go", websocket)

    @ws_route("/late-accept")
    async def late_accept(self, websocket: WebSocket) -> None:
        try:
            await trio.sleep(0.2)  # a guard, a lookup: the client's frame came before the 101
            await websocket.accept()
            while True:
                await websocket.send_text("x")
        finally:
            self.recorder.end("late-accept", websocket)

    @ws_route("/returns-unread")
    async def returns_unread(self, websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("busy")
        await trio.sleep(0.3)  # the client sends more than the inbox holds meanwhile
        self.recorder.end("returns-unread", websocket)  # and it returns without reading

    @ws_route("/crash", outbox=OutboxPolicy("block", max_messages=1000, max_bytes=1 << 30))
    async def crash(self, websocket: WebSocket) -> None:
        async def fail() -> None:
            raise ValueError("a task of the connection failed")

        await websocket.accept()
        for _ in range(50):
            websocket.push_bytes(bytes(1000))
        websocket.nursery.start_soon(fail)
        await trio.sleep_forever()

    @ws_route("/idle", idle_timeout=0.5, heartbeat=("ping", "pong"))
    async def idle(self, websocket: WebSocket) -> None:
        try:
            await websocket.accept()
            async for text in websocket.iter_text():
                await websocket.send_text(f"got {text}")
        finally:
            self.recorder.end("idle", websocket)

    @ws_route("/slow-reader")
    async def slow_reader(self, websocket: WebSocket) -> None:
        await websocket.accept()
        most = 0
        count = 0
        async for _ in websocket.iter_bytes():
            most = max(most, websocket._inbox.pending)
            count += 1
            await trio.sleep(0.001)
            if count == 300:
                await websocket.send_text(json.dumps({"count": count, "most": most}))

    @ws_route("/json", use_extra_handler=True, encoding="json", on_invalid="reply")
    async def json_route(self, item: Item = WsBody()) -> None:
        await self.context.switch_to_websocket().get_client().send_json({"ok": item.name})


#: The raw clients a test opened; closed before its server stops.
_opened: list[RawClient] = []


async def _close_clients() -> None:
    while _opened:
        await _opened.pop().aclose()


@pytest.fixture
async def live() -> AsyncIterator[tuple[LiveServer, Recorder]]:
    recorder = Recorder()
    # A short close timeout: the stalled reader's connection is cut after it (not 5 s).
    app = App(controllers=[Faulty], config={"WEBSOCKET_CLOSE_TIMEOUT": 1.0})
    app.state["rec"] = recorder
    async with serve(app) as server:
        # One connection first: it starts the app's one lasting task of its own (the drain's
        # watch for hypercorn stopping), so task counts taken after it compare like with like.
        first = await RawClient.connect(server.host, server.port, "/echo")
        await first.close()
        await first.receive_close(TIMEOUT)
        await first.aclose()
        assert await recorder.next_end() == ("echo", 1000, "")
        try:
            yield server, recorder
        finally:
            await _close_clients()


async def connect(server: LiveServer, path: str, **kwargs: Any) -> RawClient:
    client = await RawClient.connect(server.host, server.port, path, **kwargs)
    _opened.append(client)
    return client


async def health(server: LiveServer) -> str:
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.get("/health")
        return f"{response.status_code} {response.text}"


# -- the peer leaves in the middle of a send ---------------------------------------------------


@pytest.mark.parametrize("route", ["send-loop", "sender-task"])
@pytest.mark.parametrize(
    ("leave", "code", "reason"),
    [("reset", 1006, ""), ("fin", 1006, ""), ("close", 4000, "bye")],
)
async def test_a_sending_handler_ends_within_a_second_of_its_client_leaving(
    live: tuple[LiveServer, Recorder], route: str, leave: str, code: int, reason: str
) -> None:
    server, recorder = live
    with trio.fail_after(TIMEOUT):
        client = await connect(server, f"/{route}")
        assert await client.receive() == CHUNK
    with trio.fail_after(1):
        if leave == "reset":
            await client.reset()
        elif leave == "fin":
            await client.aclose()
        else:
            await client.close(4000, "bye")
        assert await recorder.next_end() == (route, code, reason)
        assert await health(server) == "200 ok"  # the worker answers; nothing spins


async def test_a_frame_sent_with_the_handshake_does_not_leave_a_spinning_handler(
    live: tuple[LiveServer, Recorder],
) -> None:
    # hypercorn answers a frame that comes before the 101 with HTTP 400 and closes the stream
    # without telling the app; triows notices at accept: the first send raises.
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import Request

    server, recorder = live
    with trio.fail_after(TIMEOUT):
        stream = await trio.open_tcp_stream(server.host, server.port)
        handshake = WSConnection(ConnectionType.CLIENT).send(
            Request(host=f"{server.host}:{server.port}", target="/late-accept")
        )
        frame = bytes([0x81, 0x82, 1, 2, 3, 4, ord("h") ^ 1, ord("i") ^ 2])  # masked "hi"
        await stream.send_all(handshake + frame)
        answer = await stream.receive_some(4096)
        assert answer.startswith(b"HTTP/1.1 400")
        assert await recorder.next_end() == ("late-accept", 1006, "")
        assert await health(server) == "200 ok"
        await stream.aclose()


async def test_messages_left_unread_do_not_hold_hypercorns_reader(
    live: tuple[LiveServer, Recorder],
) -> None:
    # The handler returns with more messages sent than its inbox holds: the close handshake
    # still completes at once, and no hypercorn task is left waiting for room.
    server, recorder = live
    with trio.fail_after(TIMEOUT):
        await trio.testing.wait_all_tasks_blocked()
        baseline = len(all_tasks())
        client = await connect(server, "/returns-unread")
        assert await client.receive() == "busy"
        for n in range(40):
            await client.send_text(f"m{n}")
        start = trio.current_time()
        closed = await client.receive_close()
        assert trio.current_time() - start < 0.8  # not the 1 s close timeout
        assert await recorder.next_end() == ("returns-unread", None, "")
        await client.aclose()
        _opened.remove(client)
        await trio.testing.wait_all_tasks_blocked()
        assert len(all_tasks()) == baseline
    assert closed.code == 1000


async def test_a_failing_task_with_pushes_queued_closes_with_1011_at_once(
    live: tuple[LiveServer, Recorder],
) -> None:
    server, _ = live
    with trio.fail_after(TIMEOUT):
        client = await connect(server, "/crash")
        start = trio.current_time()
        closed = await client.receive_close()
    assert (closed.code, closed.reason) == (1011, "Internal Server Error")
    assert trio.current_time() - start < 0.5  # not a close timeout later, not a cut (1006)


async def test_triows_links_to_hypercorns_stream(live: tuple[LiveServer, Recorder]) -> None:
    # Every fault test relies on the link; if hypercorn's internals change, this says so first.
    server, recorder = live
    with trio.fail_after(TIMEOUT):
        client = await connect(server, "/send-loop")
        await client.receive()
        await client.reset()
        await recorder.next_end()
    assert [type(link) for link in recorder.links] == [HypercornLink]


async def test_every_send_is_a_checkpoint_before_and_after_the_peer_left(
    live: tuple[LiveServer, Recorder],
) -> None:
    checked = trio.Event()

    @Controller("")
    class Probe(ControllerBase):
        @ws_route("/probe")
        async def probe(self, websocket: WebSocket) -> None:
            await websocket.accept()
            with trio.testing.assert_checkpoints():
                await websocket.send_text("hello")
            await websocket.receive_text()  # the client says "bye", then leaves
            await websocket._inbox.wait_peer_left()
            with trio.testing.assert_checkpoints(), pytest.raises(WebSocketDisconnect):
                await websocket.send_text("nobody")
            checked.set()

    async with serve(App(controllers=[Probe])) as server:
        with trio.fail_after(TIMEOUT):
            client = await connect(server, "/probe")
            assert await client.receive() == "hello"
            await client.send_text("bye")
            await client.reset()
            await checked.wait()
        await _close_clients()


# -- no leak, ever -----------------------------------------------------------------------------


async def test_twenty_clients_that_flood_and_reset_leave_no_handler_or_task(
    live: tuple[LiveServer, Recorder],
) -> None:
    server, recorder = live
    with trio.fail_after(TIMEOUT):
        await trio.testing.wait_all_tasks_blocked()
        baseline = len(all_tasks())
        clients = [await connect(server, "/echo") for _ in range(20)]
        with trio.move_on_after(0.5):  # until their sends block: nobody reads the echoes
            async with trio.open_nursery() as nursery:
                for client in clients:
                    nursery.start_soon(client.flood, 4000, bytes(512))
        for client in clients:
            await client.reset()
        ends = [await recorder.next_end() for _ in clients]
        assert ends == [("echo", 1006, "")] * 20
        await trio.testing.wait_all_tasks_blocked()  # hypercorn's connection tasks wind down
        assert len(all_tasks()) == baseline


async def _cyclic_garbage_per_connection(app: Any, path: str) -> float:
    """Objects only the cyclic GC frees, per connection served (client side included)."""
    async with serve(app) as server:
        for _ in range(5):  # warm up: whatever is made once
            client = await connect(server, path)
            await client.receive()
            await client.close()
            await client.receive_close()
            await client.aclose()
        gc.collect()
        gc.disable()
        try:
            for _ in range(50):
                client = await connect(server, path)
                await client.receive()
                await client.close()
                await client.receive_close()
                await client.aclose()
            await trio.testing.wait_all_tasks_blocked()
            return gc.collect() / 50
        finally:
            gc.enable()
            _opened.clear()


async def test_a_finished_connection_leaves_no_more_cyclic_garbage_than_a_bare_app() -> None:
    # The connection, its inbox and hypercorn's stream refer to each other while it runs; once
    # it has ended triows drops those references, so it is all freed by reference counting.
    async def bare(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "hi"})
        while (await receive())["type"] != "websocket.disconnect":
            pass

    @Controller("")
    class Hello(ControllerBase):
        @ws_route("/hi")
        async def hi(self, websocket: WebSocket) -> None:
            await websocket.accept()
            await websocket.send_text("hi")
            async for _ in websocket.iter_text():
                pass

    with trio.fail_after(TIMEOUT):
        baseline = await _cyclic_garbage_per_connection(bare, "/hi")
        ours = await _cyclic_garbage_per_connection(App(controllers=[Hello]), "/hi")
    assert ours <= baseline


async def test_a_busy_handler_reads_at_most_its_inbox_ahead_and_loses_nothing(
    live: tuple[LiveServer, Recorder],
) -> None:
    server, _ = live
    with trio.fail_after(TIMEOUT):
        client = await connect(server, "/slow-reader")
        await client.flood(300, b"x")
        report = json.loads(await client.receive())
    assert report["count"] == 300
    assert 1 <= report["most"] <= 16  # WEBSOCKET_INBOX_SIZE; beyond it, TCP backpressure


# -- a client that stopped reading -------------------------------------------------------------


async def test_a_stalled_reader_is_closed_and_never_delays_the_others(
    live: tuple[LiveServer, Recorder],
) -> None:
    server, recorder = live
    count = 150
    with trio.fail_after(TIMEOUT):
        healthy = [await connect(server, "/room") for _ in range(19)]
        stalled = await connect(server, "/room", receive_buffer=4096)
        got = [0] * len(healthy)

        async def listen(index: int) -> None:
            for n in range(count):
                with trio.fail_after(1):  # every message reaches every healthy member promptly
                    assert await healthy[index].receive() == f"{n} " + "x" * 4000
                got[index] += 1

        async with trio.open_nursery() as nursery:
            for index in range(len(healthy)):
                nursery.start_soon(listen, index)
            for n in range(count):
                await healthy[0].send_text(f"{n} " + "x" * 4000)
                await trio.sleep(0.002)
        assert got == [count] * 19
        route, code, reason = await recorder.next_end()
    assert (route, code) == ("room", 1013)
    assert reason == "slow consumer: more than 32 messages queued"
    with trio.fail_after(1.0 + 1.0):  # its TCP connection is cut after the close timeout
        closed = await stalled.receive_close()
    assert closed.code in (1013, 1006)  # 1013 if the close frame got through before the cut


async def test_frames_left_for_a_client_that_stopped_reading_end_within_the_close_timeout(
    live: tuple[LiveServer, Recorder],
) -> None:
    server, recorder = live
    with trio.fail_after(TIMEOUT):
        await trio.testing.wait_all_tasks_blocked()
        baseline = len(all_tasks())
        client = await connect(server, "/push-and-go", receive_buffer=4096)
        assert await recorder.next_end() == ("push-and-go", None, "")  # the handler returned
        await trio.sleep(1.5)  # the client reads nothing for longer than the close timeout (1 s)
        await trio.testing.wait_all_tasks_blocked()
        assert len(all_tasks()) == baseline  # the stuck write was cut: nothing is left
        closed = await client.receive_close()  # it reads now: what got through, then the cut
    assert closed.code == 1006  # no close frame could get through the full socket


# -- a client that went silent -----------------------------------------------------------------


async def test_a_silent_client_is_closed_after_the_idle_timeout(
    live: tuple[LiveServer, Recorder],
) -> None:
    server, recorder = live
    with trio.fail_after(TIMEOUT):
        client = await connect(server, "/idle")
        start = trio.current_time()
        closed = await client.receive_close()
        waited = trio.current_time() - start
        assert await recorder.next_end() == ("idle", 1001, "idle timeout")
    assert (closed.code, closed.reason) == (1001, "idle timeout")
    assert 0.5 <= waited < 0.5 * 1.5 + 0.3


async def test_frames_and_heartbeats_keep_a_client_alive(
    live: tuple[LiveServer, Recorder],
) -> None:
    server, _ = live
    with trio.fail_after(TIMEOUT):
        client = await connect(server, "/idle")
        for n in range(8):  # 1.6 s, past three idle timeouts
            await trio.sleep(0.2)
            if n % 2:
                await client.send_text("ping")
                assert await client.receive() == "pong"  # answered by triows, not the handler
            else:
                await client.send_text(f"m{n}")
                assert await client.receive() == f"got m{n}"
        await client.close()


async def test_unsolicited_pongs_count_as_activity(live: tuple[LiveServer, Recorder]) -> None:
    from wsproto.events import Pong

    server, _ = live
    with trio.fail_after(TIMEOUT):
        client = await connect(server, "/idle")
        for _ in range(6):
            await trio.sleep(0.2)
            await client.stream.send_all(client.ws.send(Pong(b"")))
        await client.send_text("still here")
        assert await client.receive() == "got still here"
        await client.close()


async def test_pongs_to_hypercorns_pings_keep_a_listening_client_alive() -> None:
    # What a browser does: it sends nothing, but answers hypercorn's pings (hypercorn's
    # websocket_ping_interval); each pong counts as activity for the idle timeout.
    from functools import partial

    from hypercorn.config import Config
    from hypercorn.trio import serve as hypercorn_serve

    recorder = Recorder()
    app = App(controllers=[Faulty])
    app.state["rec"] = recorder
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.websocket_ping_interval = 0.1
    config.graceful_timeout = 1
    stop = trio.Event()
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(
                partial(hypercorn_serve, app, config, shutdown_trigger=stop.wait)
            )
            port = int(binds[0].rsplit(":", 1)[1])
            client = await RawClient.connect("127.0.0.1", port, "/idle")
            with pytest.raises(trio.TooSlowError):
                await client.receive(within=1.5)  # three idle timeouts: pings, answered, only
            await client.send_text("still here")
            assert await client.receive() == "got still here"
            await client.close()
            await client.receive_close()
            await client.aclose()
            stop.set()
    assert recorder.ends == {"idle": [(1000, "")]}


# -- limits ------------------------------------------------------------------------------------


async def test_a_message_over_the_limit_is_closed_with_1009(
    live: tuple[LiveServer, Recorder],
) -> None:
    server, recorder = live
    with trio.fail_after(TIMEOUT):
        client = await connect(server, "/text-echo")
        await client.send_text("a" * 1000)
        assert await client.receive() == "a" * 1000
        await client.send_text("b" * 1001)
        closed = await client.receive_close()
        assert await recorder.next_end() == ("text-echo", 1009, "message over 1000 bytes")
    assert closed.code == 1009  # hypercorn's own close: it sends no reason


async def test_the_default_limit_is_one_mebibyte(live: tuple[LiveServer, Recorder]) -> None:
    server, recorder = live
    with trio.fail_after(TIMEOUT):
        client = await connect(server, "/echo")
        await client.send_bytes(bytes(1 << 20))
        assert await client.receive() == bytes(1 << 20)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.send_bytes, bytes((1 << 20) + 1))
            closed = await client.receive_close()
        assert closed.code == 1009
        assert await recorder.next_end() == ("echo", 1009, "message over 1048576 bytes")


async def test_an_invalid_utf8_text_frame_is_closed_with_1007(
    live: tuple[LiveServer, Recorder],
) -> None:
    server, recorder = live
    with trio.fail_after(TIMEOUT):
        client = await connect(server, "/text-echo")
        await client.send_raw_text_frame(b"ok \xff\xfe")
        closed = await client.receive_close()
        route, code, reason = await recorder.next_end()
    assert (closed.code, route, code) == (1007, "text-echo", 1007)
    assert closed.reason == reason
    assert "can't decode byte 0xff" in reason


async def test_a_foreign_origin_is_refused_before_the_upgrade(
    live: tuple[LiveServer, Recorder],
) -> None:
    server, _ = live
    with trio.fail_after(TIMEOUT), pytest.raises(Refused) as refused:
        await connect(server, "/echo", headers=[("Origin", "https://evil.example")])
    assert refused.value.status == 403
    assert json.loads(refused.value.body) == {
        "detail": "Origin 'https://evil.example' is not allowed: add it to "
        "WEBSOCKET_ALLOWED_ORIGINS (or the route's allowed_origins)"
    }


@pytest.mark.parametrize("origin", [None, "same"])
async def test_a_client_without_origin_or_from_the_same_origin_is_allowed(
    live: tuple[LiveServer, Recorder], origin: str | None
) -> None:
    # Without Origin it is not a browser; with its own origin it is the app's page.
    server, _ = live
    headers = [] if origin is None else [("Origin", f"http://{server.host}:{server.port}")]
    with trio.fail_after(TIMEOUT):
        client = await connect(server, "/echo", headers=headers)
        await client.send_bytes(b"hi")
        assert await client.receive() == b"hi"
        await client.close()


async def test_a_big_invalid_message_gets_a_bounded_error_frame(
    live: tuple[LiveServer, Recorder],
) -> None:
    server, _ = live
    with trio.fail_after(TIMEOUT):
        client = await connect(server, "/json")
        await client.send_text(json.dumps({"name": ["x" * 900_000], "count": 1}))
        frame = await client.receive()
        await client.send_text(json.dumps({"name": "ok", "count": 1}))
        assert json.loads(await client.receive()) == {"ok": "ok"}  # on_invalid="reply"
        await client.close()
    assert isinstance(frame, str)
    assert len(frame) < 1024
    assert json.loads(frame) == {
        "code": 1008,
        "errors": [
            {
                "type": "string_type",
                "loc": ["body", "name"],
                "msg": "Input should be a valid string",
            }
        ],
    }


async def test_an_oversized_message_never_reaches_a_handler_that_sends(
    live: tuple[LiveServer, Recorder],
) -> None:
    # The handler sends while hypercorn is busy refusing the message: no send may spin.
    server, recorder = live
    with trio.fail_after(TIMEOUT):
        client = await connect(server, "/send-loop", receive_buffer=1 << 20)
        await client.receive()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.send_bytes, bytes(2 << 20))
            closed = await client.receive_close()
        assert closed.code == 1009
        assert await recorder.next_end() == ("send-loop", 1009, "message over 1048576 bytes")
        assert await health(server) == "200 ok"


async def test_close_reasons_reach_the_client_before_the_tcp_close(
    live: tuple[LiveServer, Recorder],
) -> None:
    # triows waits (bounded) for the client's answer to its close frame: hypercorn drops the
    # connection when the app returns, which would reset a client still sending.
    server, _ = live
    with trio.fail_after(TIMEOUT):
        client = await connect(server, "/text-echo")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.send_text, "z" * 200_000)
            closed = await client.receive_close()
    assert isinstance(closed, Closed)
    assert closed.code == 1009
