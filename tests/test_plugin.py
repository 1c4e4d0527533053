"""The pytest plugin (``triows.testing.pytest_plugin``), run on small user test suites.

Each test writes a suite into a fresh directory with ``pytester`` and runs pytest on it. The
plugin is not named anywhere: the ``pytest11`` entry point loads it, as it would for a user who
installed triows. The suites define the app as a ``triows_app`` fixture in the test module itself
(no conftest.py).
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

#: A user's app and tests: one sync test (``client``), one async test on each async fixture.
USER_TESTS = """
from contextlib import asynccontextmanager

import httpx
import pytest
import trio

from triows import App, Controller, ControllerBase, WebSocket, get, ws_route
from triows.testing import AsyncTestClient, LiveServer, TestClient

STATE = {{"lifespan": []}}


@Controller("/")
class EchoController(ControllerBase):
    @ws_route("/echo")
    async def echo(self, ws: WebSocket) -> None:
        await ws.accept()
        async for text in ws.iter_text():
            await ws.send_text(f"echo: {{text}}")

    @get("/health")
    async def health(self) -> dict:
        return {{"ok": True}}


@asynccontextmanager
async def lifespan(app):
    STATE["lifespan"].append("up")
    yield
    STATE["lifespan"].append("down")


@pytest.fixture
def triows_app() -> App:
    return App(controllers=[EchoController], lifespan=lifespan)


def test_client_is_entered(client: TestClient) -> None:
    assert isinstance(client, TestClient)
    assert STATE["lifespan"][-1] == "up"
    with client.websocket_connect("/echo") as ws:
        ws.send_text("sync")
        assert ws.receive_text() == "echo: sync"
    assert client.get("/health").json() == {{"ok": True}}


{async_mark}
async def test_async_client_is_entered(async_client: AsyncTestClient) -> None:
    assert isinstance(async_client, AsyncTestClient)
    assert STATE["lifespan"][-1] == "up"
    with trio.fail_after(5):
        async with async_client.websocket_connect("/echo") as ws:
            await ws.send_text("async")
            assert await ws.receive_text() == "echo: async"
        assert (await async_client.get("/health")).json() == {{"ok": True}}


{async_mark}
async def test_live_server_runs_on_hypercorn(live_server: LiveServer) -> None:
    assert live_server.url == f"http://127.0.0.1:{{live_server.port}}"
    with trio.fail_after(5):
        async with live_server.websocket_connect("/echo") as ws:
            await ws.send_text("live")
            assert await ws.receive_text() == "echo: live"
        async with httpx.AsyncClient(base_url=live_server.url) as http:
            response = await http.get("/health")
    assert response.headers["server"].startswith("hypercorn")
    assert response.json() == {{"ok": True}}


def test_every_fixture_ended_its_lifespan() -> None:
    assert STATE["lifespan"] == ["up", "down"] * 3
"""

#: A second module with its own ``client`` fixture: it wins over the plugin's.
OWN_CLIENT = """
import pytest


@pytest.fixture
def client() -> str:
    return "my own client"


def test_own_client_fixture_wins(client: str) -> None:
    assert client == "my own client"
"""

INI = """
[pytest]
{config}
filterwarnings = error
addopts = --strict-markers -p no:cacheprovider
"""
#: Without pytest-trio nothing registers the ``trio`` marker; the user's suite would.
TRIO_MARKER = "markers =\n    trio: run with pytest-trio"


def write_suite(pytester: pytest.Pytester, *, trio_mode: bool, config: str = "") -> None:
    config = config or ("trio_mode = true" if trio_mode else "")
    pytester.makefile(".ini", pytest=INI.format(config=config))
    pytester.makepyfile(
        # Without trio_mode, each async test is marked for pytest-trio instead.
        test_user=USER_TESTS.format(async_mark="" if trio_mode else "@pytest.mark.trio"),
        test_own_client=OWN_CLIENT,
    )


def test_fixtures_work_with_trio_mode(pytester: pytest.Pytester) -> None:
    write_suite(pytester, trio_mode=True)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=5)


def test_fixtures_work_with_trio_markers(pytester: pytest.Pytester) -> None:
    write_suite(pytester, trio_mode=False)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=5)


def test_p_no_triows_turns_the_plugin_off(pytester: pytest.Pytester) -> None:
    write_suite(pytester, trio_mode=True)
    result = pytester.runpytest_subprocess("-p", "no:triows", "test_user.py")
    result.assert_outcomes(passed=0, errors=3, failed=1)
    result.stdout.fnmatch_lines(["*fixture 'client' not found*"])
    result.stdout.fnmatch_lines(["*fixture 'async_client' not found*"])
    result.stdout.fnmatch_lines(["*fixture 'live_server' not found*"])


def test_missing_app_and_misuse_are_explained(pytester: pytest.Pytester) -> None:
    pytester.makefile(".ini", pytest=INI.format(config=""))
    pytester.makepyfile(
        test_no_app="""
            def test_no_app(client):
                pass
        """,
        test_not_trio="""
            import pytest
            from triows import App

            @pytest.fixture
            def triows_app():
                return App()

            def test_sync_test_asks_for_async_client(async_client):
                pass

            def test_sync_test_asks_for_live_server(live_server):
                pass
        """,
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines(
        ["*the triows fixtures need your app: define a `triows_app` fixture that returns it*"]
    )
    result.stdout.fnmatch_lines(
        [
            "*the triows fixture 'async_client' is async: use it from an async test run by "
            "pytest-trio (set trio_mode = true*"
        ]
    )
    result.stdout.fnmatch_lines(["*the triows fixture 'live_server' is async: *"])


def test_without_pytest_trio_the_async_fixtures_say_so(pytester: pytest.Pytester) -> None:
    write_suite(pytester, trio_mode=False, config=TRIO_MARKER)
    result = pytester.runpytest_subprocess("-p", "no:trio", "test_user.py")
    # The sync client needs no pytest-trio; the async fixtures explain what they need.
    result.assert_outcomes(passed=1, errors=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*the triows fixture 'async_client' is async and needs the pytest-trio plugin: "
            "pip install pytest-trio*"
        ]
    )
    result.stdout.fnmatch_lines(["*the triows fixture 'live_server' is async and needs*"])
