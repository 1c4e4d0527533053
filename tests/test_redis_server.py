"""``triows.testing.RedisServer``: a real redis-server, started and stopped by the test.

Every test that needs the real binary asks for the ``redis_server`` fixture (the plugin's), so
without ``redis-server`` it is skipped loudly, never passed. The tests of what happens without a
binary, or with one that never answers, use a path that does not exist or a tiny shell script.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import sys
from pathlib import Path

import pytest
import trio

from triows.testing import (
    RedisCommandError,
    RedisServer,
    RedisServerError,
    RedisServerMissing,
)
from triows.testing.pytest_plugin import REDIS_MISSING

#: Seconds any one test may take.
LIMIT = 10

pytest_plugins = ["pytester"]


def gone(pid: int) -> bool:
    """Whether no process ``pid`` exists (reaped, not a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def never_answers(tmp_path: Path) -> Path:
    """A "redis-server" that runs but never listens: it only sleeps."""
    script = tmp_path / "fake-redis-server"
    script.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(60)\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


async def test_it_starts_answers_ping_and_keeps_data(redis_server: RedisServer) -> None:
    with trio.fail_after(LIMIT):
        assert redis_server.running
        assert await redis_server.command("PING") == "PONG"
        assert await redis_server.command("SET", "key", "välue") == "OK"
        assert await redis_server.command("GET", "key") == "välue".encode()
        assert await redis_server.command("GET", "missing") is None
        assert await redis_server.command("INCRBY", "n", 41) == 41
        assert await redis_server.command(b"INCR", b"n") == 42
        await redis_server.command("RPUSH", "list", "a", b"\r\n", "")
        assert await redis_server.command("LRANGE", "list", 0, -1) == [b"a", b"\r\n", b""]
        assert await redis_server.command("MGET", "key", "missing") == [b"v\xc3\xa4lue", None]


async def test_url_host_and_port(redis_server: RedisServer, redis_url: str) -> None:
    assert redis_server.host == "127.0.0.1"
    assert redis_url == redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
    assert 0 < redis_server.port < 65536
    assert repr(redis_server) == f"RedisServer({redis_url!r}, running)"


async def test_it_persists_nothing_and_logs_to_its_directory(redis_server: RedisServer) -> None:
    with trio.fail_after(LIMIT):
        assert await redis_server.command("CONFIG", "GET", "save") == [b"save", b""]
        assert await redis_server.command("CONFIG", "GET", "appendonly") == [b"appendonly", b"no"]
        assert await redis_server.command("CONFIG", "GET", "dir") == [
            b"dir",
            str(redis_server.directory).encode(),
        ]
    assert redis_server.log_path is not None
    assert "Ready to accept connections" in redis_server.log_path.read_text()


async def test_an_error_reply_raises(redis_server: RedisServer) -> None:
    with trio.fail_after(LIMIT):
        with pytest.raises(RedisCommandError, match="unknown command"):
            await redis_server.command("NO-SUCH-COMMAND")
        await redis_server.command("SET", "text", "x")
        with pytest.raises(RedisCommandError, match="WRONGTYPE"):
            await redis_server.command("LPUSH", "text", "y")
        with pytest.raises(ValueError, match="needs at least its name"):
            await redis_server.command()


async def test_stop_then_start_on_the_same_port_is_an_empty_server(
    redis_server: RedisServer,
) -> None:
    with trio.fail_after(LIMIT):
        port, url, first = redis_server.port, redis_server.url, redis_server.pid
        await redis_server.command("SET", "key", "value")
        await redis_server.stop()
        assert not redis_server.running
        assert redis_server.process is not None
        assert redis_server.process.returncode == 0  # SIGTERM: a clean shutdown
        with pytest.raises(ConnectionRefusedError):
            await redis_server.command("PING")
        await redis_server.stop()  # stopping a stopped server does nothing

        await redis_server.start()
        assert (redis_server.port, redis_server.url) == (port, url)
        assert redis_server.pid != first
        assert await redis_server.command("PING") == "PONG"
        assert await redis_server.command("GET", "key") is None  # nothing was persisted


async def test_stop_with_kill_is_a_crash(redis_server: RedisServer) -> None:
    with trio.fail_after(LIMIT):
        await redis_server.stop(kill=True)
        assert redis_server.process is not None
        assert redis_server.process.returncode == -9
        with pytest.raises(ConnectionRefusedError):
            await redis_server.command("PING")


async def test_restart_kills_and_comes_back_empty_on_the_same_port(
    redis_server: RedisServer,
) -> None:
    with trio.fail_after(LIMIT):
        port, first = redis_server.port, redis_server.pid
        assert first is not None
        await redis_server.command("SET", "key", "value")
        await redis_server.restart()
        assert gone(first)
        assert redis_server.port == port
        assert redis_server.pid != first
        assert await redis_server.command("GET", "key") is None
        await redis_server.restart(kill=False)
        assert await redis_server.command("PING") == "PONG"


async def test_a_client_connection_breaks_when_the_server_is_killed(
    redis_server: RedisServer,
) -> None:
    with trio.fail_after(LIMIT):
        stream = await trio.open_tcp_stream(redis_server.host, redis_server.port)
        async with stream:
            await stream.send_all(b"*1\r\n$4\r\nPING\r\n")
            assert await stream.receive_some(100) == b"+PONG\r\n"
            await redis_server.stop(kill=True)
            assert await stream.receive_some(100) == b""  # the server's end closed


async def test_starting_a_running_server_is_an_error(redis_server: RedisServer) -> None:
    with pytest.raises(RuntimeError, match="is running already"):
        await redis_server.start()


async def test_two_servers_at_once_are_separate(redis_server: RedisServer) -> None:
    with trio.fail_after(LIMIT):
        async with RedisServer() as other:
            assert other.port != redis_server.port
            assert other.directory != redis_server.directory
            await redis_server.command("SET", "where", "first")
            await other.command("SET", "where", "second")
            assert await redis_server.command("GET", "where") == b"first"
            assert await other.command("GET", "where") == b"second"
            await other.stop(kill=True)
            assert await redis_server.command("PING") == "PONG"


async def test_the_block_removes_its_directory_and_leaves_no_process(
    redis_server: RedisServer,
) -> None:
    with trio.fail_after(LIMIT):
        async with RedisServer() as server:
            pid, directory = server.pid, server.directory
        assert pid is not None
        assert directory is not None
        assert gone(pid)
        assert not directory.exists()
        assert server.directory is None
        assert not server.running


async def test_cancelling_the_block_kills_the_server(redis_server: RedisServer) -> None:
    with trio.fail_after(LIMIT):
        with trio.CancelScope() as scope:
            async with RedisServer() as server:
                pid = server.pid
                scope.cancel()
                await trio.sleep_forever()
        assert scope.cancelled_caught
        assert pid is not None
        assert gone(pid)
        assert server.process is not None
        assert server.process.returncode == -9


async def test_a_given_port_is_kept_and_a_taken_one_is_an_error(
    redis_server: RedisServer,
) -> None:
    with trio.fail_after(LIMIT):
        taken = RedisServer(port=redis_server.port, timeout=5)
        assert taken.url == redis_server.url
        # Either it fails to bind, or the PING it waits for is answered by the other server.
        with pytest.raises(RedisServerError, match=r"in use by another process|another server"):
            async with taken:
                raise AssertionError("unreachable")
        assert taken.directory is None  # the failed start removed it
        assert await redis_server.command("PING") == "PONG"


async def test_a_chosen_port_taken_before_the_start_is_chosen_again(
    redis_server: RedisServer,
) -> None:
    with trio.fail_after(LIMIT):
        server = RedisServer()
        server.port = redis_server.port  # as if another process took the free port first
        async with server:
            assert server.port != redis_server.port
            assert await server.command("PING") == "PONG"


async def test_a_missing_binary_raises_redis_server_missing(tmp_path: Path) -> None:
    server = RedisServer(binary=tmp_path / "no-redis-server")
    with trio.fail_after(LIMIT), pytest.raises(RedisServerMissing, match="apt-get install"):
        await server.start()
    assert server.process is None
    assert issubclass(RedisServerMissing, RedisServerError)


async def test_no_redis_server_on_path_raises_redis_server_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with trio.fail_after(LIMIT), pytest.raises(RedisServerMissing, match="not installed"):
        async with RedisServer():
            raise AssertionError("unreachable")


async def test_a_server_that_exits_at_once_is_an_error_with_its_output(
    redis_server: RedisServer,
) -> None:
    with trio.fail_after(LIMIT):
        broken = RedisServer(args=["--no-such-option", "x"])
        with pytest.raises(RedisServerError, match=r"exited with 1 (.|\n)*no-such-option"):
            await broken.start()
        await broken.aclose()


async def test_a_server_that_never_answers_is_killed_after_the_timeout(tmp_path: Path) -> None:
    server = RedisServer(binary=never_answers(tmp_path), timeout=0.5)
    with trio.fail_after(LIMIT), pytest.raises(RedisServerError, match="did not answer PING"):
        async with server:
            raise AssertionError("unreachable")
    assert server.pid is not None
    assert gone(server.pid)


async def test_cancelling_the_start_kills_the_process(tmp_path: Path) -> None:
    server = RedisServer(binary=never_answers(tmp_path), timeout=LIMIT * 2)
    with trio.fail_after(LIMIT):
        with trio.move_on_after(0.5) as waiting:
            await server.start()
        assert waiting.cancelled_caught
        assert server.pid is not None
        assert gone(server.pid)
        await server.aclose()


async def test_command_reports_timeouts_and_connection_refused() -> None:
    with trio.fail_after(LIMIT):
        with socket.socket() as listener:  # listens, never answers
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            server = RedisServer(port=listener.getsockname()[1])
            with pytest.raises(TimeoutError, match="no reply from"):
                await server.command("PING", timeout=0.2)
        with pytest.raises(ConnectionRefusedError):
            await server.command("PING")


# -- the fixtures in a user's suite ------------------------------------------------------------

USER_TESTS = """
import trio
from triows.testing import RedisServer


async def test_redis_fixtures(redis_server: RedisServer, redis_url: str) -> None:
    assert redis_url == redis_server.url
    with trio.fail_after(5):
        assert await redis_server.command("SET", "k", "v") == "OK"
        await redis_server.restart()
        assert await redis_server.command("GET", "k") is None
"""


@pytest.mark.skipif(
    shutil.which("redis-server") is None,
    reason=f"{REDIS_MISSING}: redis-server is not installed (apt-get install redis-server)",
)
def test_the_fixtures_in_a_user_suite(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ntrio_mode = true\nfilterwarnings = error\n")
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "redis-server is not installed" not in result.stdout.str()


def test_without_redis_server_the_fixtures_skip_loudly(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pytester.makeini("[pytest]\ntrio_mode = true\nfilterwarnings = error\n")
    pytester.makepyfile(test_user=USER_TESTS)
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        [
            "!!!* 1 test(s) SKIPPED: redis-server is not installed !!!*",
            "Tests that need a real Redis did not run.*",
            f"SKIPPED *: {REDIS_MISSING}: redis-server is not installed (apt-get install "
            f"redis-server): no 'redis-server' on PATH ({empty}); .ci/run installs it",
        ]
    )
