"""A real, throw-away ``redis-server`` for tests: started on a free port, killed at the end.

``async with RedisServer() as server:`` starts Debian's ``redis-server`` (any Redis 6 or later)
on 127.0.0.1 with a port of its own and a temporary directory, without persistence
(``--save '' --appendonly no``), and waits until it answers ``PING``. ``server.url`` is
``redis://127.0.0.1:PORT/0`` for a Redis client. At the end of the block the process is killed
and its directory removed, also when the block is cancelled. Inside the block,
:meth:`RedisServer.stop`, :meth:`RedisServer.start` (on the same port) and
:meth:`RedisServer.restart` play a Redis that goes away and comes back, and
:meth:`RedisServer.command` sends one command over a raw socket (no Redis client library).

No binary raises :class:`RedisServerMissing`, which the ``redis_server`` pytest fixture turns
into a loud skip.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import TypeAlias

import trio

__all__ = [
    "RedisCommandError",
    "RedisServer",
    "RedisServerError",
    "RedisServerMissing",
]

#: The server :class:`RedisServer` runs unless told otherwise: Debian's, found on ``PATH``.
DEFAULT_BINARY = "redis-server"
#: Default seconds the server may take to answer ``PING`` after it is spawned, to stop once
#: signalled, and a :meth:`RedisServer.command` may take.
REDIS_TIMEOUT = 10.0
#: How often a free port is chosen anew when another process took the one chosen before.
_PORT_ATTEMPTS = 5
#: Lines of the server's log quoted in an error.
_TAIL_LINES = 20
#: First and longest pause between two connection attempts while the server starts.
_FIRST_RETRY, _LONGEST_RETRY = 0.001, 0.01

#: A decoded RESP2 reply: a simple string is ``str``, a bulk string ``bytes`` (``None`` when
#: null), an integer ``int``, an array a ``list`` (``None`` when null).
RedisReply: TypeAlias = "str | bytes | int | list[RedisReply] | None"


class RedisServerError(RuntimeError):
    """``redis-server`` did not start (or stop) as asked; the message quotes its log."""


class RedisServerMissing(RedisServerError):
    """There is no ``redis-server`` binary (``apt-get install redis-server`` installs it)."""


class RedisCommandError(Exception):
    """Redis answered a command with an error reply (``-ERR ...``); the message is its text."""


class RedisServer:
    """A ``redis-server`` process of the test's own, on 127.0.0.1, with nothing persisted.

    Use it as an async context manager: ``async with RedisServer() as server:`` starts it
    (:meth:`start`) and, at the end of the block, kills it and removes its directory
    (:meth:`aclose`), also when the block is cancelled. The port is chosen once, when the object
    is made, so :meth:`stop` and :meth:`start` bring the same server address back (empty: it
    keeps nothing).

    Args:
        binary: The server to run: a name looked up on ``PATH`` or a path.
        host: The address it listens on.
        port: Its TCP port; 0 chooses a free one (again, if another process takes it before the
            server binds it).
        directory: Its working directory (its log, ``redis-server.log``, is written there). By
            default a temporary directory, removed by :meth:`aclose`; a given one is kept.
        timeout: Seconds the server may take to answer ``PING`` once spawned, or to stop once
            signalled; the default timeout of :meth:`command`.
        args: More ``redis-server`` arguments, after triows' own (``["--maxmemory", "10mb"]``).
    """

    def __init__(
        self,
        *,
        binary: str | os.PathLike[str] = DEFAULT_BINARY,
        host: str = "127.0.0.1",
        port: int = 0,
        directory: str | os.PathLike[str] | None = None,
        timeout: float = REDIS_TIMEOUT,
        args: Sequence[str] = (),
    ) -> None:
        #: The server to run, as given.
        self.binary = os.fspath(binary)
        #: The address the server listens on.
        self.host = host
        #: Its TCP port (chosen when the object is made when 0 was given).
        self.port = port or _free_port(host)
        self.timeout = timeout
        self.args = list(args)
        self._may_move = port == 0  # the port may change until the first start succeeds
        self._given_directory = None if directory is None else Path(directory)
        self._directory: Path | None = self._given_directory
        self._process: trio.Process | None = None

    # -- where it is ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``redis://HOST:PORT/0``: database 0 of this server, for a Redis client."""
        return f"redis://{self.host}:{self.port}/0"

    @property
    def directory(self) -> Path | None:
        """The server's working directory (``None`` until the first start made it)."""
        return self._directory

    @property
    def log_path(self) -> Path | None:
        """The file the server's stdout and stderr go to, kept across restarts."""
        return None if self._directory is None else self._directory / "redis-server.log"

    @property
    def process(self) -> trio.Process | None:
        """The current (or last) ``redis-server`` process, ``None`` before the first start."""
        return self._process

    @property
    def pid(self) -> int | None:
        """The process id of the current (or last) server process."""
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        """Whether the server process has been started and has not exited."""
        return self._process is not None and self._process.poll() is None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"RedisServer({self.url!r}, {state})"

    # -- its life ----------------------------------------------------------------------------

    async def __aenter__(self) -> RedisServer:
        try:
            await self.start()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Spawn ``redis-server`` and return once it answers ``PING``.

        Cancelling it kills the process it spawned. A port chosen by the object is chosen anew
        when another process took it before the first start; later starts keep the port.

        Raises:
            RedisServerMissing: There is no such binary.
            RedisServerError: The server exited, or did not answer within ``timeout`` seconds
                (its last log lines are in the message; the process is killed).
            RuntimeError: The server is running already.
        """
        if self.running:
            raise RuntimeError(f"{self!r} is running already")
        executable = find_binary(self.binary)
        if self._directory is None:
            self._directory = Path(tempfile.mkdtemp(prefix="triows-redis-"))
        self._directory.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            try:
                await self._start_once(executable)
            except _PortTaken as taken:
                if not self._may_move or attempt == _PORT_ATTEMPTS:
                    raise RedisServerError(str(taken)) from None
                self.port = _free_port(self.host)
            else:
                self._may_move = False
                return

    async def stop(self, *, kill: bool = False) -> None:
        """Stop the server and wait until its process has exited; nothing if it is not running.

        It is shielded from cancellation and bounded: SIGTERM (a clean shutdown, which saves
        nothing here) or, with ``kill=True``, SIGKILL (a crash); SIGKILL too when SIGTERM has
        not ended it within ``timeout`` seconds.

        Raises:
            RedisServerError: The process did not exit even after SIGKILL.
        """
        if self._process is not None:
            await _end(self._process, kill=kill, timeout=self.timeout)

    async def restart(self, *, kill: bool = True) -> None:
        """:meth:`stop` (by default with SIGKILL, a crash) and :meth:`start` on the same port.

        The restarted server is empty: nothing is persisted.
        """
        await self.stop(kill=kill)
        await self.start()

    async def aclose(self) -> None:
        """Kill the server (SIGKILL, shielded and bounded) and remove its temporary directory."""
        try:
            await self.stop(kill=True)
        finally:
            if self._given_directory is None and self._directory is not None:
                shutil.rmtree(self._directory, ignore_errors=True)
                self._directory = None

    # -- talking to it -------------------------------------------------------------------------

    async def command(
        self, *args: str | bytes | int | float, timeout: float | None = None
    ) -> RedisReply:
        """Send one command on a new connection and return its decoded RESP2 reply.

        A simple string comes back as ``str``, a bulk string as ``bytes``, an integer as
        ``int``, an array as a ``list`` of replies, and a null bulk string or array as ``None``:
        ``await server.command("SET", "k", "v")`` is ``"OK"``, ``command("GET", "k")`` is
        ``b"v"``. For the test's own checks and set-up (``FLUSHALL``, ``CLIENT KILL``...), not
        for the code under test, which should use a real Redis client.

        Args:
            *args: The command and its arguments; ``str`` is sent as UTF-8, numbers as text.
            timeout: Seconds for the whole exchange (default: the server's ``timeout``).

        Raises:
            RedisCommandError: The reply, or an element of it, is an error.
            OSError: Nothing listens (``ConnectionRefusedError``), or the connection broke.
            TimeoutError: No complete reply within the timeout.
        """
        limit = self.timeout if timeout is None else timeout
        with trio.move_on_after(limit):
            return await _command(self.host, self.port, args)
        raise TimeoutError(f"no reply from {self.url} to {args[0]!r} within {limit}s")

    def log_tail(self, lines: int = _TAIL_LINES) -> str:
        """The last ``lines`` lines the server wrote (all its runs), or ``""``."""
        if self.log_path is None:
            return ""
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text("utf-8", "replace").splitlines()[-lines:])
        return ""

    # -- inside ------------------------------------------------------------------------------

    async def _start_once(self, executable: str) -> None:
        """Spawn the server on ``self.port`` and wait for its ``PING``; kill it on any failure.

        Raises:
            _PortTaken: It exited because the port is in use, or another server answers there.
            RedisServerError: It exited, or did not answer in time.
        """
        assert self._directory is not None
        assert self.log_path is not None
        argv = [executable, "--port", str(self.port), "--bind", self.host]
        argv += ["--protected-mode", "no", "--save", "", "--appendonly", "no"]
        argv += ["--dir", str(self._directory), "--daemonize", "no", "--logfile", ""]
        argv += self.args
        log, offset = _open_log(self.log_path)
        try:
            self._process = process = await trio.lowlevel.open_process(
                argv,
                cwd=self._directory,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        finally:
            os.close(log)
        try:
            await self._wait_ready(process, offset)
        except BaseException:
            await _end(process, kill=True, timeout=self.timeout)
            raise

    async def _wait_ready(self, process: trio.Process, offset: int) -> None:
        """Return once the server answers ``PING`` and is ``process``, retrying connections."""
        delay = _FIRST_RETRY
        with trio.move_on_after(self.timeout):
            while process.poll() is None:
                try:
                    if await _command(self.host, self.port, ("PING",)) == "PONG":
                        break
                except (OSError, RedisCommandError):  # not listening yet, or still loading
                    pass
                await trio.sleep(delay)
                delay = min(delay * 2, _LONGEST_RETRY)
            else:
                output = self._output_since(offset)
                if "Address already in use" in output:
                    raise _PortTaken(f"port {self.port} is in use by another process:\n{output}")
                raise RedisServerError(
                    f"{self.binary} exited with {process.returncode} before it answered PING on "
                    f"{self.host}:{self.port}; its output:\n{output}"
                )
            info = await _command(self.host, self.port, ("INFO", "server"))
            if f"process_id:{process.pid}\r\n".encode() not in _as_bytes(info):
                raise _PortTaken(f"another server answers on {self.host}:{self.port}")
            return
        raise RedisServerError(
            f"{self.binary} did not answer PING on {self.host}:{self.port} within "
            f"{self.timeout}s; its output:\n{self._output_since(offset)}"
        )

    def _output_since(self, offset: int) -> str:
        """The last lines of what the server wrote since ``offset`` bytes into its log."""
        assert self.log_path is not None
        try:
            with self.log_path.open("rb") as log:
                log.seek(offset)
                text = log.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-_TAIL_LINES:])


def find_binary(binary: str | os.PathLike[str] = DEFAULT_BINARY) -> str:
    """The path of ``binary`` (a name on ``PATH``, or a path), checked to be executable.

    Raises:
        RedisServerMissing: There is no such executable.
    """
    binary = os.fspath(binary)
    executable = shutil.which(binary)
    if executable is None:
        where = "file" if os.sep in binary else f"on PATH ({os.environ.get('PATH', '')})"
        raise RedisServerMissing(
            f"redis-server is not installed (apt-get install redis-server): no {binary!r} {where}"
        )
    return executable


class _PortTaken(Exception):
    """The port was not the server's to have (another process listens on it)."""


def _free_port(host: str) -> int:
    """A TCP port nothing listens on now (the OS's choice), for a server to bind soon."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def _open_log(path: Path) -> tuple[int, int]:
    """An append descriptor for the server's log, and where this run's output will start."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    return fd, os.fstat(fd).st_size


async def _end(process: trio.Process, *, kill: bool, timeout: float) -> None:
    """Signal ``process`` and reap it: shielded, and bounded by ``timeout`` per signal."""
    with trio.CancelScope(shield=True):
        if process.poll() is None:
            if kill:
                process.kill()
            else:
                process.terminate()
            with trio.move_on_after(timeout):
                await process.wait()
        if process.poll() is None:
            process.kill()
            with trio.move_on_after(timeout):
                await process.wait()
        if process.poll() is None:  # pragma: no cover - SIGKILL always ends a process
            raise RedisServerError(f"redis-server (pid {process.pid}) survived SIGKILL")


# -- RESP2, as little of it as a test needs ---------------------------------------------------


def _encode(args: Sequence[str | bytes | int | float]) -> bytes:
    """``args`` as a RESP array of bulk strings, the form every Redis command is sent in."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


async def _command(host: str, port: int, args: Sequence[str | bytes | int | float]) -> RedisReply:
    """Send one command on a new connection and read its reply (unbounded: bound the caller).

    Raises:
        RedisCommandError: The reply, or an element of it, is an error.
        OSError: No connection, or it closed before the reply was complete.
    """
    if not args:
        raise ValueError("a Redis command needs at least its name")
    sock = trio.socket.socket(trio.socket.AF_INET6 if ":" in host else trio.socket.AF_INET)
    try:
        await sock.connect((host, port))
    except BaseException:
        sock.close()
        raise
    async with trio.SocketStream(sock) as stream:
        await stream.send_all(_encode(args))
        return await _read_reply(_Reader(stream))


class _Reader:
    """Lines and counted bytes from a stream, buffered."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self._stream = stream
        self._buffer = bytearray()

    async def line(self) -> bytes:
        """The next line, without its CRLF."""
        while (end := self._buffer.find(b"\r\n")) < 0:
            await self._fill()
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 2]
        return line

    async def exactly(self, size: int) -> bytes:
        """The next ``size`` bytes, and the CRLF that ends them."""
        while len(self._buffer) < size + 2:
            await self._fill()
        if self._buffer[size : size + 2] != b"\r\n":
            raise RedisServerError("a bulk string that does not end with \\r\\n")
        data = bytes(self._buffer[:size])
        del self._buffer[: size + 2]
        return data

    async def _fill(self) -> None:
        chunk = await self._stream.receive_some(65536)
        if not chunk:
            raise ConnectionResetError("redis-server closed the connection before its reply")
        self._buffer += chunk


async def _read_reply(reader: _Reader) -> RedisReply:
    """One RESP2 reply, decoded as ``RedisReply`` says."""
    line = await reader.line()
    kind, rest = line[:1], line[1:]
    if kind == b"+":
        return rest.decode("utf-8", "replace")
    if kind == b"-":
        raise RedisCommandError(rest.decode("utf-8", "replace"))
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        return None if size < 0 else await reader.exactly(size)
    if kind == b"*":
        count = int(rest)
        return None if count < 0 else [await _read_reply(reader) for _ in range(count)]
    raise RedisServerError(f"not a RESP2 reply: {line!r}")


def _as_bytes(reply: RedisReply) -> bytes:
    return reply if isinstance(reply, bytes) else b""
