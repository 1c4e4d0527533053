"""Test helpers (not part of triows): a real hypercorn in-process, and shared parity scenarios.

``serve(app)`` (``triows.testing.serve``) runs the app on hypercorn's trio worker on 127.0.0.1 with
an OS-chosen port, in the test's own trio loop, so a test can talk to it with real clients
(trio-websocket, httpx). ``open_websocket`` gives the raw trio-websocket connection;
``rejection`` and ``close_reason`` read how a handshake or a connection ended on it.

``SCENARIOS`` are websocket conversations with :class:`ScenarioController`, each with the
transcript a client must see. ``run_in_process`` and ``run_live`` play one over the in-process
``AsyncTestClient`` and over a real socket; ``tests/test_testing.py`` plays them over the sync
``TestClient`` too. Equal transcripts mean the test clients tell the truth about the server.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
import trio_websocket

import triows.testing
from triows import (
    Controller,
    ControllerBase,
    HTTPException,
    WebSocket,
    WebSocketDisconnect,
    WebSocketException,
    ws_route,
)
from triows.testing import AsyncTestClient, LiveServer, WebSocketDenied

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

#: Seconds hypercorn may take to start or to shut down.
SERVER_TIMEOUT = 10.0


#: Where a running server listens (``url``, ``ws_url``, ``port``) and a websocket client for it.
Server = LiveServer


def all_tasks() -> list[trio.lowlevel.Task]:
    """Every task of the running trio loop (the root task and all its descendants)."""
    tasks, pending = [], [trio.lowlevel.current_root_task()]
    while pending:
        task = pending.pop()
        if task is not None:
            tasks.append(task)
            pending.extend(t for n in task.child_nurseries for t in n.child_tasks)
    return tasks


def serve(app: Any) -> AbstractAsyncContextManager[LiveServer]:
    """Run ``app`` on hypercorn (trio worker) for the block; shut it down gracefully after.

    The public ``triows.testing.serve``, with this module's ``SERVER_TIMEOUT``.

    Raises:
        TimeoutError: hypercorn did not start or stop within ``SERVER_TIMEOUT`` seconds.
    """
    return triows.testing.serve(app, server_timeout=SERVER_TIMEOUT)


@asynccontextmanager
async def hypercorn_cli(app_path: str, cwd: Path) -> AsyncIterator[Server]:
    """Run ``hypercorn --worker-class trio --bind 127.0.0.1:0 APP`` as a user would, from ``cwd``.

    The port is read from hypercorn's ``Running on http://127.0.0.1:PORT`` line on stderr. At the
    end hypercorn gets SIGTERM (a graceful stop); if it lingers its whole process group (the
    CLI and its worker process) is killed (see :func:`command`).

    Raises:
        RuntimeError: hypercorn exited before it was serving (its stderr is in the message).
        AssertionError: No "Running on" line within ``SERVER_TIMEOUT * 2`` seconds.
    """
    args = [sys.executable, "-m", "hypercorn", "--worker-class", "trio"]
    args += ["--bind", "127.0.0.1:0", app_path]
    async with command(args, cwd) as running:
        yield Server(await running.url(within=SERVER_TIMEOUT * 2))


class Command:
    """A server process run as a user would (its own session), its output read as it comes.

    ``output["stdout"]`` and ``output["stderr"]`` keep everything it wrote; :meth:`wait_for`
    waits, without polling, until a pattern appears in one of them.
    """

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.output: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}
        self._grew = trio.Event()
        self._open = 2  # streams not at their end yet

    async def _read(self, name: str, stream: trio.abc.ReceiveStream) -> None:
        async for chunk in stream:
            self.output[name] += chunk
            self._grew.set()
            self._grew = trio.Event()
        self._open -= 1
        self._grew.set()

    def text(self, name: str = "stderr") -> str:
        return self.output[name].decode("utf-8", "replace")

    def count(self, pattern: str, name: str = "stderr") -> int:
        return len(re.findall(pattern, self.text(name), re.MULTILINE))

    async def wait_for(
        self, pattern: str, name: str = "stderr", count: int = 1, within: float = 20.0
    ) -> list[str]:
        """The first ``count`` matches of ``pattern`` (a regex) in ``name``, once there.

        Raises:
            RuntimeError: The process closed its output first.
            AssertionError: Not within ``within`` seconds (with what the process said).
        """
        with trio.move_on_after(within):
            while True:
                found = [m.group(0) for m in re.finditer(pattern, self.text(name), re.MULTILINE)]
                if len(found) >= count:
                    return found[:count]
                if not self._open:
                    raise RuntimeError(f"the process ended before {pattern!r}:\n{self.text()}")
                await self._grew.wait()
        raise AssertionError(
            f"{count} x {pattern!r} not in its {name} within {within} s\n"
            f"stdout:\n{self.text('stdout')}\nstderr:\n{self.text()}"
        )

    async def url(self, within: float = 20.0) -> str:
        """The ``http://127.0.0.1:PORT`` of hypercorn's first ``Running on`` line."""
        line = (await self.wait_for(r"Running on http://127\.0\.0\.1:\d+ ", within=within))[0]
        return line.split("Running on ", 1)[1].strip()


@asynccontextmanager
async def command(
    args: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None
) -> AsyncIterator[Command]:
    """Run ``args`` in ``cwd`` (with ``env``, else this process's environment); at the end
    SIGTERM it, and kill its process group if it stays."""
    process = await trio.lowlevel.open_process(
        list(args),
        cwd=cwd,
        env=dict(env) if env is not None else None,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    running = Command(process)
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(running._read, "stdout", process.stdout)
            nursery.start_soon(running._read, "stderr", process.stderr)
            try:
                yield running
            finally:
                with trio.CancelScope(shield=True):
                    if process.returncode is None:
                        process.terminate()
                        with trio.move_on_after(SERVER_TIMEOUT):
                            await process.wait()
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)  # it, or what it left behind
                    await process.wait()
    finally:
        await process.stdout.aclose()
        await process.stderr.aclose()


@contextmanager
def _unwrap_single() -> Iterator[None]:
    """Let a lone exception out of a nursery as itself (as trio-websocket's own helper does)."""
    try:
        yield
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1 and not isinstance(group.exceptions[0], BaseExceptionGroup):
            raise group.exceptions[0] from None
        raise


@asynccontextmanager
async def open_websocket(
    server: Server, path: str, *, subprotocols: Sequence[str] = ()
) -> AsyncIterator[trio_websocket.WebSocketConnection]:
    """trio-websocket's client, on a TCP stream this helper owns and always closes.

    ``trio_websocket.open_websocket_url`` (0.12) never closes its socket after a rejected
    handshake or a close the server started (the reader task raises or stops without
    ``_close_stream()``, and ``aclose()`` returns early once a close reason is set), which
    surfaces as ``ResourceWarning: unclosed <socket.socket ...>`` under ``-W error``.

    Raises:
        trio_websocket.ConnectionRejected: The server refused the handshake.
    """
    stream = await trio.open_tcp_stream("127.0.0.1", server.port)
    try:
        with _unwrap_single():
            async with trio.open_nursery() as nursery:
                ws = await trio_websocket.wrap_client_stream(
                    nursery, stream, f"127.0.0.1:{server.port}", path, subprotocols=subprotocols
                )
                try:
                    yield ws
                finally:
                    await ws.aclose()
                    await stream.aclose()  # ends the reader task if the server has not
    finally:
        await stream.aclose()


async def rejection(
    server: Server, path: str, *, subprotocols: Sequence[str] = ()
) -> trio_websocket.ConnectionRejected:
    """The ``ConnectionRejected`` a raw handshake (:func:`open_websocket`) to ``path`` ends with.

    Raises:
        AssertionError: The handshake was accepted.
    """
    try:
        async with open_websocket(server, path, subprotocols=subprotocols):
            pass
    except trio_websocket.ConnectionRejected as rejected:
        return rejected
    raise AssertionError(f"the handshake to {path!r} was accepted")


async def close_reason(ws: trio_websocket.WebSocketConnection) -> trio_websocket.CloseReason:
    """The close the server sends next: ``ws``'s next ``get_message()`` must raise it.

    Raises:
        pytest.fail.Exception: A message came instead (``DID NOT RAISE``).
        AssertionError: The connection closed without a close reason.
    """
    with pytest.raises(trio_websocket.ConnectionClosed) as closed:
        await ws.get_message()
    assert closed.value.reason is not None
    return closed.value.reason


# -- the parity scenarios ----------------------------------------------------------------------


@Controller("/s")
class ScenarioController(ControllerBase):
    """One route per outcome a client can observe."""

    @ws_route("/echo")
    async def echo(self, ws: WebSocket) -> None:
        await ws.accept()
        async for text in ws.iter_text():
            await ws.send_text(f"echo: {text}")

    @ws_route("/echo-bytes")
    async def echo_bytes(self, ws: WebSocket) -> None:
        await ws.accept()
        async for data in ws.iter_bytes():
            await ws.send_bytes(data[::-1])

    @ws_route("/goodbye")
    async def goodbye(self, ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text("bye")
        await ws.close(4001, "go away")

    @ws_route("/crash")
    async def crash(self, ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text("one")
        await ws.send_bytes(b"two")
        raise RuntimeError("boom")

    @ws_route("/reject")
    async def reject(self, ws: WebSocket) -> None:
        raise WebSocketException(4400, "bad request")

    @ws_route("/kick")
    async def kick(self, ws: WebSocket) -> None:
        await ws.accept()
        text = await ws.receive_text()
        raise WebSocketException(4400, f"bad request: {text}")

    @ws_route("/refuse")
    async def refuse(self, ws: WebSocket) -> None:
        await ws.close(4003, "closed before accept")

    @ws_route("/private")
    async def private(self, ws: WebSocket) -> None:
        raise HTTPException(401, "login first", headers={"WWW-Authenticate": "Bearer"})

    @ws_route("/broken")
    async def broken(self, ws: WebSocket) -> None:
        raise RuntimeError("broken before accept")

    @ws_route("/no-accept")
    async def no_accept(self, ws: WebSocket) -> None:
        return

    @ws_route("/returns")
    async def returns(self, ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text("done")

    @ws_route("/protocols")
    async def protocols(self, ws: WebSocket) -> None:
        chosen = "chat.v2" if "chat.v2" in ws.subprotocols else None
        await ws.accept(subprotocol=chosen)
        await ws.send_text(",".join(ws.subprotocols) or "-")


#: A step: ("text", str) / ("bytes", bytes) sends a frame, ("receive",) records what arrives,
#: ("close", code, reason) closes from the client's side.
Step = tuple[Any, ...]


@dataclass(frozen=True)
class Scenario:
    """A conversation with :class:`ScenarioController` and the transcript it must produce."""

    path: str
    steps: Sequence[Step]
    expected: list[tuple[Any, ...]]
    subprotocols: Sequence[str] = field(default=())


NOT_FOUND = b'{"detail":"Not Found"}'
LOGIN_FIRST = b'{"detail":"login first"}'
SERVER_ERROR = b'{"detail":"Internal Server Error"}'

SCENARIOS: dict[str, Scenario] = {
    "echo, client closes": Scenario(
        "/s/echo",
        [("text", "hi"), ("receive",), ("text", "again"), ("receive",), ("close", 1000, "")],
        [("accepted", None), ("text", "echo: hi"), ("text", "echo: again")],
    ),
    "binary echo": Scenario(
        "/s/echo-bytes",
        [("bytes", b"\x00\x01\x02"), ("receive",), ("close", 4000, "done")],
        [("accepted", None), ("bytes", b"\x02\x01\x00")],
    ),
    "server closes with code and reason": Scenario(
        "/s/goodbye",
        [("receive",), ("receive",), ("receive",)],
        [
            ("accepted", None),
            ("text", "bye"),
            ("closed", 4001, "go away"),
            ("closed", 4001, "go away"),
        ],
    ),
    "handler fails after sending": Scenario(
        "/s/crash",
        [("receive",), ("receive",), ("receive",)],
        [
            ("accepted", None),
            ("text", "one"),
            ("bytes", b"two"),
            ("closed", 1011, "Internal Server Error"),
        ],
    ),
    "handler returns after accept": Scenario(
        "/s/returns",
        [("receive",), ("receive",)],
        [("accepted", None), ("text", "done"), ("closed", 1000, "")],
    ),
    "WebSocketException after accept": Scenario(
        "/s/kick",
        [("text", "x"), ("receive",)],
        [("accepted", None), ("closed", 4400, "bad request: x")],
    ),
    "subprotocol chosen": Scenario(
        "/s/protocols",
        [("receive",)],
        [("accepted", "chat.v2"), ("text", "chat.v1,chat.v2")],
        subprotocols=("chat.v1", "chat.v2"),
    ),
    "no subprotocol offered": Scenario(
        "/s/protocols",
        [("receive",)],
        [("accepted", None), ("text", "-")],
    ),
    "unknown path": Scenario("/s/nowhere", [], [("denied", 404, NOT_FOUND)]),
    "close before accept": Scenario("/s/refuse", [], [("denied", 403, b"")]),
    "WebSocketException before accept": Scenario("/s/reject", [], [("denied", 403, b"")]),
    "return without accept": Scenario("/s/no-accept", [], [("denied", 403, b"")]),
    "HTTPException before accept": Scenario("/s/private", [], [("denied", 401, LOGIN_FIRST)]),
    "error before accept": Scenario("/s/broken", [], [("denied", 500, SERVER_ERROR)]),
}


async def run_in_process(client: AsyncTestClient, scenario: Scenario) -> list[tuple[Any, ...]]:
    """Play ``scenario`` over the in-process async client; the transcript it saw."""
    seen: list[tuple[Any, ...]] = []
    try:
        async with client.websocket_connect(
            scenario.path, subprotocols=scenario.subprotocols
        ) as ws:
            seen.append(("accepted", ws.accepted_subprotocol))
            for step in scenario.steps:
                if step[0] == "text":
                    await ws.send_text(step[1])
                elif step[0] == "bytes":
                    await ws.send_bytes(step[1])
                elif step[0] == "close":
                    await ws.close(step[1], step[2])
                else:
                    try:
                        message = await ws.receive()
                    except WebSocketDisconnect as exc:
                        seen.append(("closed", exc.code, exc.reason))
                    else:
                        text = message.get("text")
                        frame = ("text", text) if text is not None else ("bytes", message["bytes"])
                        seen.append(frame)
    except WebSocketDenied as exc:
        seen.append(("denied", exc.status_code, exc.body))
    return seen


async def run_live(server: Server, scenario: Scenario) -> list[tuple[Any, ...]]:
    """Play ``scenario`` with trio-websocket against a real server; the transcript it saw."""
    seen: list[tuple[Any, ...]] = []
    try:
        async with open_websocket(server, scenario.path, subprotocols=scenario.subprotocols) as ws:
            seen.append(("accepted", ws.subprotocol))
            for step in scenario.steps:
                if step[0] in ("text", "bytes"):
                    await ws.send_message(step[1])
                elif step[0] == "close":
                    await ws.aclose(step[1], step[2])
                else:
                    try:
                        message = await ws.get_message()
                    except trio_websocket.ConnectionClosed as exc:
                        reason = exc.reason or trio_websocket.CloseReason(-1, "no close reason")
                        seen.append(("closed", reason.code, reason.reason or ""))
                    else:
                        kind = "text" if isinstance(message, str) else "bytes"
                        seen.append((kind, message))
    except trio_websocket.ConnectionRejected as exc:
        seen.append(("denied", exc.status_code, exc.body or b""))
    return seen


__all__ = [
    "SCENARIOS",
    "Scenario",
    "ScenarioController",
    "Server",
    "close_reason",
    "hypercorn_cli",
    "open_websocket",
    "rejection",
    "run_in_process",
    "run_live",
    "serve",
]
