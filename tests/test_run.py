"""``triows run`` and serving in production: the drain, workers, reload, errors on stderr.

The live tests start the real command (``python -m triows run``, or plain ``hypercorn``) in a
process of its own, with ``tests/fixtures/run_app.py``, and read what it prints.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trio_websocket
from live import SERVER_TIMEOUT, Server, close_reason, command, open_websocket
from wsproto.extensions import PerMessageDeflate

import triows.testing
from bench.rawclient import Closed, RawClient, Refused
from triows import (
    App,
    Controller,
    ControllerBase,
    GuardCanActivate,
    Guards,
    WebSocket,
    WebSocketDisconnect,
    ws_route,
)
from triows.cli import main, parser
from triows.server import AppNotFound, RunSettings, create_sockets, hypercorn_config, load
from triows.testing import WebSocketDenied

ROOT = Path(__file__).resolve().parent.parent
TARGET = "tests.fixtures.run_app:app"
TIMEOUT = 30.0


def triows_run(*flags: str, target: str = TARGET) -> list[str]:
    return [sys.executable, "-m", "triows", "run", target, "--port", "0", *flags]


async def crash(at: Server) -> int:
    """Open ``/r/crash``, whose handler raises after accept: the client's port, once closed."""
    crashed = await RawClient.connect("127.0.0.1", at.port, "/r/crash")
    try:
        port: int = crashed.stream.socket.getsockname()[1]
        with pytest.raises(Closed) as closed:
            await crashed.receive(10)
    finally:
        await crashed.aclose()
    assert (closed.value.code, closed.value.reason) == (1011, "Internal Server Error")
    return port


# -- the drain ---------------------------------------------------------------------------------


@pytest.mark.live
async def test_sigterm_tells_every_client_at_once_and_exits_within_the_drain_timeout() -> None:
    drain = 2.0
    holders, restarters = 50, 5
    closes: list[tuple[str, float, int, str]] = []
    with trio.fail_after(TIMEOUT):
        async with command(triows_run("--drain-timeout", str(drain), "--no-access-log"), ROOT) as (
            server
        ):
            at = Server(await server.url())

            async def client(path: str, task_status: trio.TaskStatus[None]) -> None:
                async with open_websocket(at, path) as ws:
                    assert await ws.get_message() == "ready"
                    task_status.started()
                    reason = await close_reason(ws)
                    closes.append((path, trio.current_time(), reason.code, reason.reason or ""))

            async with trio.open_nursery() as clients:
                for n in range(holders + restarters):
                    path = "/r/hold" if n < holders else "/r/restart"
                    await clients.start(client, path)
                # One more that never reads: the handler's writes to it get stuck.
                stalled = await RawClient.connect("127.0.0.1", at.port, "/r/flood")
                try:
                    signalled = trio.current_time()
                    server.process.send_signal(signal.SIGTERM)
                    await server.process.wait()
                    exited = trio.current_time() - signalled
                finally:
                    await stalled.aclose()
    assert server.process.returncode == 0
    assert exited <= drain + 1.0, exited
    expected = [("/r/hold", 1012, "server shutting down")] * holders
    expected += [("/r/restart", 1001, "server shutting down")] * restarters
    assert sorted((path, code, reason) for path, _, code, reason in closes) == expected
    latest = max(when for _, when, _, _ in closes) - signalled
    assert latest <= 1.0, latest
    finals = server.text("stdout").splitlines()
    assert sorted(finals) == sorted(
        ["finally hold 1012"] * holders
        + ["finally restart 1001"] * restarters
        + ["finally flood 1012"]
    )
    log = server.text()
    assert "SIGTERM: stopping" in log
    assert "drain: 1 of 56 connection(s) still running after 2.0 s: cancelled and cut" in log, log


@pytest.mark.live
async def test_ctrl_c_drains_like_sigterm_and_a_second_one_exits_at_once() -> None:
    with trio.fail_after(TIMEOUT):
        async with command(triows_run("--no-access-log"), ROOT) as server:
            at = Server(await server.url())
            async with open_websocket(at, "/r/slow-finally") as ws:
                assert await ws.get_message() == "ready"
                server.process.send_signal(signal.SIGINT)
                assert (await close_reason(ws)).code == 1012
            # The handler's cleanup takes a second: a second Ctrl-C does not wait for it.
            server.process.send_signal(signal.SIGINT)
            again = trio.current_time()
            await server.process.wait()
            took = trio.current_time() - again
    assert server.process.returncode == 1
    assert took < 0.9, took
    assert "SIGINT: stopping (open websockets are drained)" in server.text()
    assert "SIGINT again: exiting at once" in server.text()
    assert "finally slow" not in server.text("stdout")


@pytest.mark.live
async def test_plain_hypercorn_drains_too_within_its_graceful_timeout() -> None:
    args = [sys.executable, "-m", "hypercorn", "--worker-class", "trio", "--bind", "127.0.0.1:0"]
    args += ["--graceful-timeout", "2", TARGET]
    closes: list[tuple[int, str]] = []
    with trio.fail_after(TIMEOUT):
        async with command(args, ROOT) as server:
            at = Server(await server.url())
            async with open_websocket(at, "/r/hold") as ws:
                assert await ws.get_message() == "ready"
                server.process.send_signal(signal.SIGTERM)
                signalled = trio.current_time()
                reason = await close_reason(ws)
                told = trio.current_time() - signalled
                closes.append((reason.code, reason.reason or ""))
            await server.process.wait()
    assert closes == [(1012, "server shutting down")]
    assert told < 1.0  # hypercorn's worker polls for the stop every 0.1 s
    assert server.text("stdout").splitlines() == ["finally hold 1012"]


@pytest.mark.live
async def test_a_handshake_during_the_drain_is_refused_with_503() -> None:
    app = App(controllers=[Held])
    with trio.fail_after(TIMEOUT):
        async with triows.testing.serve(app) as server, server.websocket_connect("/held") as first:
            assert await first.receive_text() == "ready"
            app.drain(5.0)
            assert app.open_websockets == 1
            with pytest.raises(Refused) as refused:
                await RawClient.connect("127.0.0.1", server.port, "/held")
            assert refused.value.status == 503
            assert json.loads(refused.value.body) == {"detail": "server shutting down"}
            with pytest.raises(WebSocketDisconnect) as closed:
                await first.receive()
            assert (closed.value.code, closed.value.reason) == (1012, "server shutting down")


@Controller("")
class Held(ControllerBase):
    @ws_route("/held")
    async def held(self, ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text("ready")
        async for _ in ws.iter_text():
            pass


@pytest.mark.live
async def test_workers_2_runs_two_workers_that_each_drain() -> None:
    with trio.fail_after(TIMEOUT):
        async with command(triows_run("--workers", "2", "--no-access-log"), ROOT) as server:
            lines = await server.wait_for(r"\[(\d+)\] \[INFO\] Running on http://\S+", count=2)
            pids = {re.search(r"\[(\d+)\]", line).group(1) for line in lines}  # type: ignore[union-attr]
            assert len(pids) == 2
            assert str(server.process.pid) not in pids  # the supervisor serves nothing itself
            url = await server.url()
            async with httpx.AsyncClient(base_url=url) as http:
                answer = (await http.get("/r/pid")).json()
            assert str(answer["pid"]) in pids
            # Handlers whose cleanup takes a second: one worker is done before the other, and
            # the slower one must still get its drain (not a second signal that ends it).
            async with trio.open_nursery() as clients:
                for _ in range(6):
                    clients.start_soon(_hold_until_closed, Server(url), "/r/slow-finally")
                await server.wait_for("^ready$", "stdout", count=6, within=10)
                server.process.send_signal(signal.SIGTERM)
                await server.process.wait()
    assert server.process.returncode == 0
    assert server.count(r"SIGTERM: stopping") == 2
    assert "again: exiting at once" not in server.text()
    lines = server.text("stdout").splitlines()
    assert sorted(lines) == ["finally slow 1012"] * 6 + ["ready"] * 6, server.text("stdout")


async def _hold_until_closed(at: Server, path: str) -> None:
    async with open_websocket(at, path) as ws:
        assert await ws.get_message() == "ready"
        with pytest.raises(trio_websocket.ConnectionClosed):
            await ws.get_message()


@pytest.mark.live
async def test_reload_restarts_the_worker_on_a_change(tmp_path: Path) -> None:
    module = tmp_path / "reloadme.py"
    source = textwrap.dedent(
        """
        from triows import App, Controller, ControllerBase, get

        @Controller("")
        class Version(ControllerBase):
            @get("/version")
            async def version(self) -> dict[str, str]:
                return {"version": "VERSION"}

        app = App(controllers=[Version])
        """
    )
    module.write_text(source.replace("VERSION", "one"))
    with trio.fail_after(TIMEOUT):
        async with command(triows_run("--reload", target="reloadme:app"), tmp_path) as server:
            url = await server.url()
            async with httpx.AsyncClient(base_url=url) as http:
                assert (await http.get("/version")).json() == {"version": "one"}
                module.write_text(source.replace("VERSION", "two"))
                stat = module.stat()
                os.utime(module, (stat.st_atime, stat.st_mtime + 2))  # a change, whatever the clock
                await server.wait_for("a file changed: restarting the workers")
                await server.wait_for(r"Running on http://\S+", count=2)
                assert (await http.get("/version")).json() == {"version": "two"}
                # A file saved broken stops the worker, not the server: the next change
                # starts it again.
                module.write_text("this is not python\n")
                os.utime(module, (stat.st_atime, stat.st_mtime + 4))
                await server.wait_for(r"a worker exited \(1\): restarting on the next change")
                module.write_text(source.replace("VERSION", "three"))
                os.utime(module, (stat.st_atime, stat.st_mtime + 6))
                await server.wait_for(r"Running on http://\S+", count=3)
                assert (await http.get("/version")).json() == {"version": "three"}
            server.process.send_signal(signal.SIGTERM)
            await server.process.wait()
    assert server.process.returncode == 0


@pytest.mark.live
async def test_an_app_whose_startup_fails_exits_3_saying_why(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text(
        textwrap.dedent(
            """
            from triows import App

            async def connect_database() -> None:
                raise OSError("the database is unreachable")

            app = App(on_startup=[connect_database])
            """
        )
    )
    with trio.fail_after(TIMEOUT):
        async with command(triows_run(target="broken:app"), tmp_path) as server:
            await server.process.wait()
    assert server.process.returncode == 3
    assert "the app did not start" in server.text()
    assert "OSError: the database is unreachable" in server.text()


# -- errors you can see ------------------------------------------------------------------------


@pytest.mark.live
@pytest.mark.parametrize("runner", ["hypercorn", "triows run"])
async def test_a_handler_error_is_printed_once_with_route_and_client(runner: str) -> None:
    if runner == "hypercorn":
        args = [sys.executable, "-m", "hypercorn", "--worker-class", "trio"]
        args += ["--bind", "127.0.0.1:0", TARGET]
    else:
        args = triows_run("--no-access-log")
    with trio.fail_after(TIMEOUT):
        async with command(args, ROOT) as server:
            at = Server(await server.url())
            # A client's mistake first: answered with its close code, not logged as an error.
            mistaken = await RawClient.connect("127.0.0.1", at.port, "/r/note")
            try:
                await mistaken.send_text("{not json")
                with pytest.raises(Closed) as refused:
                    await mistaken.receive(10)
            finally:
                await mistaken.aclose()
            assert refused.value.code == 1007
            port = await crash(at)
            await server.wait_for("RuntimeError: boom from the crash route")
            server.process.send_signal(signal.SIGTERM)
            await server.process.wait()
    log = server.text()
    assert log.count("Traceback (most recent call last)") == 1, log
    assert log.count("RuntimeError: boom from the crash route") == 1, log
    said = f"websocket handler RunController.crash failed (/r/crash from 127.0.0.1:{port})"
    assert log.count(said) == 1, log
    assert "JSON" not in log, log
    assert "1007" not in log, log


@pytest.mark.live
async def test_the_logging_pages_log_config_works_with_triows_run(tmp_path: Path) -> None:
    page = (ROOT / "docs" / "logging.md").read_text()
    [config] = re.findall(r"^```json\n(.*?)^```", page, re.MULTILINE | re.DOTALL)
    (tmp_path / "logging.json").write_text(config)
    flags = ("--log-config", f"json:{tmp_path / 'logging.json'}", "--no-access-log")
    with trio.fail_after(TIMEOUT):
        async with command(triows_run(*flags), ROOT) as server:
            at = Server(await server.url())
            await crash(at)
            line = (await server.wait_for(r"^.* ERROR triows: websocket handler .*$"))[0]
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ERROR triows: ", line), line
    assert server.text().count("Traceback (most recent call last)") == 1


@pytest.mark.live
async def test_an_app_that_configures_logging_keeps_its_own(tmp_path: Path) -> None:
    (tmp_path / "logged.py").write_text(
        textwrap.dedent(
            """
            import logging

            from tests.fixtures.run_app import app

            logging.basicConfig(format="APP %(levelname)s %(name)s: %(message)s")
            """
        )
    )
    with trio.fail_after(TIMEOUT):
        async with command([*triows_run(target="logged:app"), "--no-access-log"], tmp_path) as (
            server
        ):
            at = Server(await server.url())
            await crash(at)
            await server.wait_for("RuntimeError: boom from the crash route")
    log = server.text()
    assert log.count("websocket handler RunController.crash failed") == 1, log
    assert "APP ERROR triows: websocket handler RunController.crash failed" in log


# -- the sockets -------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(socket, "TCP_USER_TIMEOUT"), reason="TCP_USER_TIMEOUT: Linux")
def test_every_accepted_connection_has_the_tcp_user_timeout() -> None:
    settings = RunSettings(TARGET, port=0, tcp_user_timeout=2.5)
    sockets = create_sockets(hypercorn_config(None, settings), settings)
    (listener,) = sockets.insecure_sockets
    try:
        with socket.create_connection(listener.getsockname()[:2]) as client:
            accepted, _ = listener.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 2500
            del client
    finally:
        listener.close()


@pytest.mark.live
@pytest.mark.skipif(not hasattr(socket, "TCP_USER_TIMEOUT"), reason="TCP_USER_TIMEOUT: Linux")
async def test_a_write_stuck_on_a_client_that_stopped_reading_is_released() -> None:
    # The handler floods a client that never reads: hypercorn's write to it cannot be
    # cancelled, and nothing in the app ends it (no outbox, no shutdown). The kernel does, once
    # the data has waited unacknowledged for the TCP user timeout.
    with trio.fail_after(TIMEOUT):
        async with command(triows_run("--tcp-user-timeout", "1", "--no-access-log"), ROOT) as (
            server
        ):
            at = Server(await server.url())
            stalled = await RawClient.connect("127.0.0.1", at.port, "/r/flood", receive_buffer=4096)
            try:
                started = trio.current_time()
                await server.wait_for("^finally flood 1006$", "stdout")
                took = trio.current_time() - started
            finally:
                await stalled.aclose()
    assert took < 10  # about the timeout once the buffers are full; 30 s by default, or never
    assert "Traceback" not in server.text()


@pytest.mark.skipif(not hasattr(socket, "TCP_USER_TIMEOUT"), reason="TCP_USER_TIMEOUT: Linux")
def test_tcp_user_timeout_0_leaves_the_systems() -> None:
    settings = RunSettings(TARGET, port=0, tcp_user_timeout=None)
    sockets = create_sockets(hypercorn_config(None, settings), settings)
    (listener,) = sockets.insecure_sockets
    with listener:
        assert listener.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 0


# -- settings: the app's config and the flags ----------------------------------------------------


@Controller("")
class Sized(ControllerBase):
    @ws_route("/small")
    async def small(self, ws: WebSocket) -> None:
        await ws.accept()

    @ws_route("/big", max_message_size=8 << 20)
    async def big(self, ws: WebSocket) -> None:
        await ws.accept()


def settings_of(app: App, path: str) -> Any:
    (route,) = [r for r in app.websocket_router.routes if r.path.template == path]
    return route.endpoint.settings  # type: ignore[attr-defined]


def test_the_apps_config_decides_hypercorns_settings() -> None:
    app = App(controllers=[Sized], config={"WEBSOCKET_DRAIN_TIMEOUT": 4.0})
    config = hypercorn_config(app, RunSettings("x:app", host="::1", port=9000))
    assert config.graceful_timeout == 5.0  # the drain, then a second for triows to cut
    assert config.websocket_max_message_size == 8 << 20  # the largest route's
    assert config.websocket_ping_interval is None  # triows pings, not hypercorn's task
    assert config.bind == ["[::1]:9000"]
    assert config.accesslog == "-"
    assert config.errorlog == "-"


def test_the_flags_override_the_apps_config_before_the_routes_are_resolved() -> None:
    target = "run_overrides:app"
    module = type(sys)("run_overrides")
    module.app = App(controllers=[Sized])  # type: ignore[attr-defined]
    sys.modules["run_overrides"] = module
    try:
        settings = RunSettings(
            target, drain_timeout=3.0, max_message_size=1000, compression="deflate", ping_interval=0
        )
        app = load(settings)
    finally:
        del sys.modules["run_overrides"]
    assert app.config.WEBSOCKET_DRAIN_TIMEOUT == 3.0
    assert settings_of(app, "/small").max_message_size == 1000
    assert settings_of(app, "/big").max_message_size == 8 << 20  # a route's own limit stands
    assert settings_of(app, "/small").compression == "deflate"
    assert settings_of(app, "/small").ping_interval is None  # --ping-interval 0: no pings
    assert hypercorn_config(app, settings).graceful_timeout == 4.0


def test_compression_off_is_none_in_the_apps_config() -> None:
    assert RunSettings("x:app", compression="off").overrides() == {"WEBSOCKET_COMPRESSION": None}
    assert RunSettings("x:app").overrides() == {}


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("nothing", "'nothing' is not MODULE:ATTR (for example app:app)"),
        ("no_such_module_here:app", "no module named 'no_such_module_here' (from "),
        ("tests.fixtures.run_app:nope", "module 'tests.fixtures.run_app' has no attribute 'nope'"),
    ],
)
def test_a_target_that_names_nothing_says_so(target: str, message: str) -> None:
    with pytest.raises(AppNotFound) as raised:
        load(RunSettings(target))
    assert str(raised.value).startswith(message)


def test_the_command_reports_a_bad_target_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "no_such_module_here:app"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("triows run: no module named 'no_such_module_here'")
    assert err.count("\n") == 1


def test_help_lists_every_flag() -> None:
    text = parser()._subparsers._group_actions[0].choices["run"].format_help()  # type: ignore[union-attr]
    for flag in (
        "--host",
        "--port",
        "--uds",
        "--workers",
        "--reload",
        "--log-level",
        "--access-log",
        "--no-access-log",
        "--log-config",
        "--drain-timeout",
        "--ping-interval",
        "--max-message-size",
        "--compression",
        "--tcp-user-timeout",
        "--certfile",
        "--keyfile",
        "--root-path",
        "--backlog",
    ):
        assert flag in text
    assert "(default 127.0.0.1)" in text
    assert "default 8000" in text


def test_python_m_triows_is_the_command() -> None:
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", "triows", "run", "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=SERVER_TIMEOUT,
    )
    assert done.stdout.startswith("usage: triows run")


# -- compression -------------------------------------------------------------------------------


@Controller("")
class Quiet(ControllerBase):
    @ws_route("/off")
    async def off(self, ws: WebSocket) -> None:
        await self._echo(ws)

    @ws_route("/deflate", compression="deflate")
    async def deflate(self, ws: WebSocket) -> None:
        await self._echo(ws)

    @ws_route("/context", compression="deflate-context")
    async def context(self, ws: WebSocket) -> None:
        await self._echo(ws)

    async def _echo(self, ws: WebSocket) -> None:
        await ws.accept()
        async for text in ws.iter_text():
            await ws.send_text(text)


@pytest.mark.live
async def test_permessage_deflate_is_the_apps_decision() -> None:
    app = App(controllers=[Quiet])
    negotiated: dict[str, Any] = {}
    with trio.fail_after(TIMEOUT):
        async with triows.testing.serve(app) as server:
            for path in ("/off", "/deflate", "/context"):
                client = await RawClient.connect(
                    "127.0.0.1", server.port, path, extensions=[PerMessageDeflate()]
                )
                try:
                    await client.send_text("hello " * 50)
                    assert await client.receive(10) == "hello " * 50  # compressed or not
                    negotiated[path] = [
                        (e.client_no_context_takeover, e.server_no_context_takeover)  # type: ignore[attr-defined]
                        for e in client.extensions
                    ]
                finally:
                    await client.aclose()
    assert negotiated == {
        "/off": [],  # hypercorn alone would accept it
        "/deflate": [(True, True)],  # nothing kept between messages, on either side
        "/context": [(False, False)],
    }


@pytest.mark.parametrize(
    ("offers", "bounded", "sent"),
    [
        (
            ["permessage-deflate; client_max_window_bits"],
            False,
            ["permessage-deflate; client_max_window_bits"],
        ),
        (
            ["permessage-deflate; client_max_window_bits"],
            True,
            [
                "permessage-deflate; client_max_window_bits; client_no_context_takeover; "
                "server_no_context_takeover"
            ],
        ),
        # RFC 6455 allows quoted values; wsproto would raise on them inside hypercorn's accept.
        (
            ['permessage-deflate; client_max_window_bits="10"'],
            False,
            ["permessage-deflate; client_max_window_bits=10"],
        ),
        # Only the first offer wsproto can take goes to it (it would answer the last one).
        (
            ["permessage-deflate; client_max_window_bits=10", "permessage-deflate"],
            False,
            ["permessage-deflate; client_max_window_bits=10"],
        ),
        # Unknown, repeated or out-of-range parameters decline that offer; the next is taken.
        (["permessage-deflate; x_unknown", "permessage-deflate"], False, ["permessage-deflate"]),
        (["permessage-deflate; server_max_window_bits=8", "x-other"], False, None),
        (
            ["permessage-deflate; client_no_context_takeover; client_no_context_takeover"],
            False,
            None,
        ),
        (["permessage-deflate; server_max_window_bits"], False, None),
        (["x-webkit-deflate-frame"], True, None),
    ],
)
def test_a_deflate_offer_reaches_wsproto_as_one_offer_it_can_take(
    offers: list[str], bounded: bool, sent: list[str] | None
) -> None:
    from triows._hypercorn import _offer

    assert _offer(offers, bounded) == sent


@pytest.mark.live
async def test_a_quoted_deflate_offer_gets_a_clean_answer() -> None:
    app = App(controllers=[Quiet])
    request = (
        "GET /deflate HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits="10"\r\n\r\n'
    )
    with trio.fail_after(TIMEOUT):
        async with triows.testing.serve(app) as server:
            stream = await trio.open_tcp_stream("127.0.0.1", server.port)
            async with stream:
                await stream.send_all(request.encode())
                answer = b""
                while b"\r\n\r\n" not in answer:
                    answer += await stream.receive_some(4096)
    head = answer.split(b"\r\n\r\n")[0].decode().lower().split("\r\n")
    assert head[0] == "http/1.1 101 "
    assert (
        "sec-websocket-extensions: permessage-deflate; client_no_context_takeover; "
        "server_no_context_takeover; client_max_window_bits=10"
    ) in head


# -- pings -------------------------------------------------------------------------------------


@Controller("")
class Pinged(ControllerBase):
    @ws_route("/pinged", ping_interval=0.25)
    async def pinged(self, ws: WebSocket) -> None:
        await ws.accept()
        async for _ in ws.iter_text():
            pass


@pytest.mark.live
async def test_triows_pings_every_client_on_hypercorn() -> None:
    app = App(controllers=[Pinged])
    with trio.fail_after(TIMEOUT):
        async with triows.testing.serve(app) as server:
            client = await RawClient.connect("127.0.0.1", server.port, "/pinged")
            try:
                await client.wait_for_pings(3, within=10)
            finally:
                await client.aclose()


# -- the drain in-process: handshakes and connections already ending ---------------------------


class SlowGuard(GuardCanActivate):
    entered = trio.Event()
    release = trio.Event()

    async def can_activate(self, context: Any) -> bool:
        SlowGuard.entered.set()
        await SlowGuard.release.wait()
        return True


@Controller("")
class Draining(ControllerBase):
    @ws_route("/guarded")
    @Guards(SlowGuard)
    async def guarded(self, ws: WebSocket) -> None:
        await ws.accept()

    @ws_route("/lingers")
    async def lingers(self, ws: WebSocket) -> None:
        await ws.accept()
        try:
            async for _ in ws.iter_text():
                pass
        finally:
            ws.app.state["ended"].set()
            try:
                await trio.sleep(100)  # work after the client left, far past any timeout
            finally:
                ws.app.state["cancelled_at"] = trio.current_time()
                ws.app.state["cancelled"].set()


async def test_a_handshake_in_its_guards_when_the_drain_begins_gets_503() -> None:
    SlowGuard.entered, SlowGuard.release = trio.Event(), trio.Event()
    app = App(controllers=[Draining])
    with trio.fail_after(TIMEOUT):
        async with triows.testing.AsyncTestClient(app) as client, trio.open_nursery() as nursery:
            refused: list[WebSocketDenied] = []

            async def connect() -> None:
                with pytest.raises(WebSocketDenied) as denied:
                    async with client.websocket_connect("/guarded"):
                        pass
                refused.append(denied.value)

            nursery.start_soon(connect)
            await SlowGuard.entered.wait()
            app.drain(5.0)
            SlowGuard.release.set()
    assert [(r.status_code, r.body) for r in refused] == [
        (503, b'{"detail":"server shutting down"}')
    ]


async def test_a_connection_already_ending_gets_no_more_than_the_drain_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    app = App(controllers=[Draining], config={"WEBSOCKET_CLOSE_TIMEOUT": 30.0})
    app.state.update(ended=trio.Event(), cancelled=trio.Event())
    client = triows.testing.AsyncTestClient(app)
    async with client, client.websocket_connect("/lingers") as ws:
        await ws.close()
        await app.state["ended"].wait()
        began = trio.current_time()
        app.drain(2.0)
        await app.state["cancelled"].wait()
    assert app.state["cancelled_at"] - began <= 2.0 + 0.25  # not the 30 s close timeout
