"""The App: lifespan, startup/shutdown hooks, the app nursery, configuration, ASGI scopes."""

from __future__ import annotations

import logging
import math
import types
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing
from support import error_records

from triows import App, Config, ConfigurationError, Controller, ControllerBase, Request, get, post
from triows.testing import AsyncTestClient, LifespanError, Test, TestClient

LIFESPAN_SCOPE = {
    "type": "lifespan",
    "asgi": {"version": "3.0", "spec_version": "2.0"},
    "state": {},
}
STARTUP_FAILED = r"^startup failed: RuntimeError: database unreachable$"
SHUTDOWN_FAILED = r"^shutdown failed: ValueError: service crashed$"


def recording_lifespan(events: list[Any]) -> Any:
    @asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        events.append(("enter", app))
        yield
        events.append("exit")

    return lifespan


def hook(events: list[Any], name: str) -> Any:
    async def record() -> None:
        events.append(name)

    return record


@Controller("/state")
class StateController(ControllerBase):
    @get("/")
    async def state(self, request: Request):
        return request.app.state


class LifespanDriver:
    """Speaks the ASGI lifespan protocol to an app by hand, as a server does."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.to_app, self._inbox = trio.open_memory_channel[dict[str, Any]](math.inf)
        self._outbox, self.from_app = trio.open_memory_channel[dict[str, Any]](math.inf)
        self.returned = trio.Event()

    async def run(self) -> None:
        await self.app(dict(LIFESPAN_SCOPE), self._inbox.receive, self._outbox.send)
        self.returned.set()

    def sent_so_far(self) -> list[dict[str, Any]]:
        messages = []
        while True:
            try:
                messages.append(self.from_app.receive_nowait())
            except trio.WouldBlock:
                return messages


# -- lifespan ------------------------------------------------------------------------------------
def test_lifespan_under_test_client() -> None:
    events: list[Any] = []
    app = App([StateController], lifespan=recording_lifespan(events))
    client = TestClient(app)
    assert events == []
    with client:
        assert events == [("enter", app)]
        assert client.get("/state/").json() == {}
    assert events == [("enter", app), "exit"]


async def test_lifespan_under_async_test_client() -> None:
    events: list[Any] = []
    app = App(lifespan=recording_lifespan(events))
    client = AsyncTestClient(app)
    assert events == []
    async with client:
        assert events == [("enter", app)]
    assert events == [("enter", app), "exit"]


async def test_lifespan_and_hooks_order() -> None:
    events: list[Any] = []

    @asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        events.append("lifespan enter")
        app.state["db"] = "connected"
        yield
        events.append("lifespan exit")

    app = App(
        [StateController],
        lifespan=lifespan,
        on_startup=[hook(events, "startup 1"), hook(events, "startup 2")],
        on_shutdown=[hook(events, "shutdown 1"), hook(events, "shutdown 2")],
    )
    async with AsyncTestClient(app) as client:
        running = list(events)
        response = await client.get("/state/")
    assert running == ["startup 1", "startup 2", "lifespan enter"]
    assert response.json() == {"db": "connected"}
    assert events == [
        "startup 1",
        "startup 2",
        "lifespan enter",
        "lifespan exit",
        "shutdown 1",
        "shutdown 2",
    ]


async def test_no_lifespan_without_lifespan_true() -> None:
    events: list[Any] = []
    app = App([StateController], lifespan=recording_lifespan(events))
    async with AsyncTestClient(app, lifespan=False) as client:
        response = await client.get("/state/")
    assert response.json() == {}
    assert events == []


def test_test_module_passes_lifespan_and_config() -> None:
    events: list[Any] = []
    module = Test.create_test_module(
        controllers=[StateController],
        lifespan=recording_lifespan(events),
        config_module={"DEBUG": True},
    )
    app = module.create_application()
    assert module.create_application() is app
    assert app.config.DEBUG is True
    with module.get_test_client() as client:
        assert client.get("/state/").status_code == 200
    assert events == [("enter", app), "exit"]


# -- the app nursery -----------------------------------------------------------------------------
async def test_app_nursery_runs_a_service_for_the_app_life() -> None:
    events: list[str] = []
    jobs_in, jobs_out = trio.open_memory_channel[int](math.inf)
    done = trio.Event()

    async def worker(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        events.append("worker started")
        task_status.started()
        try:
            async for job in jobs_out:
                events.append(f"job {job}")
                done.set()
        except trio.Cancelled:
            events.append("worker cancelled")
            raise

    async def start_worker() -> None:
        await app.nursery.start(worker)

    @Controller("/jobs")
    class JobsController(ControllerBase):
        @post("/{n:int}")
        async def enqueue(self, n: int):
            jobs_in.send_nowait(n)
            return "queued"

    app = App([JobsController], on_startup=[start_worker], on_shutdown=[hook(events, "shutdown")])
    with trio.fail_after(5):
        async with AsyncTestClient(app) as client:
            assert events == ["worker started"]
            response = await client.post("/jobs/3")
            await done.wait()
            assert events == ["worker started", "job 3"]
    assert response.text == "queued"
    # The shutdown hooks run first; then the app nursery is cancelled.
    assert events == ["worker started", "job 3", "shutdown", "worker cancelled"]


async def test_handler_can_start_app_wide_work_that_outlives_the_request() -> None:
    finished = trio.Event()
    results: list[str] = []

    async def background(text: str) -> None:
        await trio.lowlevel.checkpoint()
        results.append(text)
        finished.set()

    @Controller("/bg")
    class BackgroundController(ControllerBase):
        @post("/{text}")
        async def start(self, text: str):
            self.context.switch_to_http().get_request().app.nursery.start_soon(background, text)
            return "accepted"

    app = App([BackgroundController])
    with trio.fail_after(5):
        async with AsyncTestClient(app) as client:
            response = await client.post("/bg/hello")
            await finished.wait()
    assert (response.status_code, response.text) == (200, "accepted")
    assert results == ["hello"]


def test_app_nursery_service_under_test_client() -> None:
    events: list[str] = []

    async def service(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            events.append("service stopped")

    async def start_service() -> None:
        await app.nursery.start(service)
        events.append("service started")

    app = App([StateController], on_startup=[start_service])
    with TestClient(app) as client:
        assert events == ["service started"]
        assert client.get("/state/").status_code == 200
        assert events == ["service started"]
    assert events == ["service started", "service stopped"]


async def test_app_nursery_outside_lifespan() -> None:
    app = App()
    with pytest.raises(
        RuntimeError, match=r"app\.nursery exists only while the app runs.*lifespan"
    ):
        _ = app.nursery
    async with AsyncTestClient(app):
        assert isinstance(app.nursery, trio.Nursery)
    with pytest.raises(RuntimeError, match=r"app\.nursery exists only while the app runs"):
        _ = app.nursery


# -- lifespan failures ---------------------------------------------------------------------------
def failing_startup_app(events: list[Any]) -> App:
    async def fail() -> None:
        raise RuntimeError("database unreachable")

    return App(
        lifespan=recording_lifespan(events),
        on_startup=[hook(events, "first"), fail, hook(events, "never")],
        on_shutdown=[hook(events, "shutdown")],
    )


def test_failing_startup_under_test_client(caplog: pytest.LogCaptureFixture) -> None:
    events: list[Any] = []
    app = failing_startup_app(events)
    with pytest.raises(RuntimeError) as raised, TestClient(app):
        pass
    assert (type(raised.value), str(raised.value)) == (RuntimeError, "database unreachable")
    assert events == ["first"]
    assert [
        (r.name, r.levelno, r.getMessage()) for r in error_records(caplog, logging.WARNING)
    ] == [("triows", logging.ERROR, "app startup failed")]


async def test_failing_startup_under_async_test_client() -> None:
    events: list[Any] = []
    app = failing_startup_app(events)
    with pytest.raises(LifespanError, match=STARTUP_FAILED):
        async with AsyncTestClient(app, raise_server_exceptions=False):  # the server's view
            pass
    assert events == ["first"]


async def test_failing_startup_by_hand() -> None:
    events: list[Any] = []
    app = failing_startup_app(events)
    driver = LifespanDriver(app)
    driver.to_app.send_nowait({"type": "lifespan.startup"})
    with trio.fail_after(5):
        await driver.run()  # the app returns after reporting the failure
    assert driver.sent_so_far() == [
        {"type": "lifespan.startup.failed", "message": "RuntimeError: database unreachable"}
    ]
    assert events == ["first"]
    with pytest.raises(RuntimeError, match="exists only while the app runs"):
        _ = app.nursery


async def test_failing_lifespan_enter_by_hand() -> None:
    @asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        raise OSError("no such socket")
        yield

    driver = LifespanDriver(App(lifespan=lifespan))
    driver.to_app.send_nowait({"type": "lifespan.startup"})
    with trio.fail_after(5):
        await driver.run()
    assert driver.sent_so_far() == [
        {"type": "lifespan.startup.failed", "message": "OSError: no such socket"}
    ]


def crashing_service_app(crash: trio.Event) -> App:
    async def service() -> None:
        await crash.wait()
        raise ValueError("service crashed")

    async def start_service() -> None:
        app.nursery.start_soon(service)

    app = App(on_startup=[start_service])
    return app


async def test_service_crash_reports_shutdown_failed_by_hand(
    caplog: pytest.LogCaptureFixture,
) -> None:
    crash = trio.Event()
    app = crashing_service_app(crash)
    driver = LifespanDriver(app)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(driver.run)
            await driver.to_app.send({"type": "lifespan.startup"})
            assert await driver.from_app.receive() == {"type": "lifespan.startup.complete"}
            crash.set()
            await trio.testing.wait_all_tasks_blocked()
            # The crash is reported when the server asks for shutdown, not before.
            assert driver.sent_so_far() == []
            assert not driver.returned.is_set()
            await driver.to_app.send({"type": "lifespan.shutdown"})
            assert await driver.from_app.receive() == {
                "type": "lifespan.shutdown.failed",
                "message": "ValueError: service crashed",
            }
    assert driver.returned.is_set()
    assert [
        (r.name, r.levelno, r.getMessage()) for r in error_records(caplog, logging.WARNING)
    ] == [("triows", logging.ERROR, "app shutdown failed")]


async def test_service_crash_under_async_test_client() -> None:
    crash = trio.Event()
    app = crashing_service_app(crash)
    client = AsyncTestClient(app)
    with trio.fail_after(5):
        await client.__aenter__()
        crash.set()
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(ValueError, match=r"^service crashed$"):  # the service's own
            await client.__aexit__(None, None, None)


def test_service_crash_under_test_client() -> None:
    crashed = trio.Event()

    async def service() -> None:
        await crashed.wait()
        raise ValueError("service crashed")

    async def start_service() -> None:
        app.nursery.start_soon(service)

    @Controller("/crash")
    class CrashController(ControllerBase):
        @post("/")
        async def crash(self):
            crashed.set()
            return "crashing"

    app = App([CrashController], on_startup=[start_service])
    client = TestClient(app, raise_server_exceptions=False)  # the server's view: a LifespanError
    try:
        assert client.post("/crash/").text == "crashing"  # the first request starts the app
    except BaseException:
        client.close()
        raise
    with pytest.raises(LifespanError, match=SHUTDOWN_FAILED):
        client.close()


async def test_clean_shutdown_by_hand() -> None:
    events: list[Any] = []
    driver = LifespanDriver(App(lifespan=recording_lifespan(events)))
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(driver.run)
            await driver.to_app.send({"type": "lifespan.startup"})
            assert await driver.from_app.receive() == {"type": "lifespan.startup.complete"}
            await driver.to_app.send({"type": "lifespan.shutdown"})
            assert await driver.from_app.receive() == {"type": "lifespan.shutdown.complete"}
    assert driver.returned.is_set()
    assert events == [("enter", driver.app), "exit"]


# -- configuration -------------------------------------------------------------------------------

#: Every well-known key and its default (docs/limits.md explains the websocket ones).
DEFAULTS = {
    "DEBUG": False,
    "REDIRECT_SLASHES": False,
    "WEBSOCKET_MAX_MESSAGE_SIZE": 1 << 20,
    "WEBSOCKET_INBOX_SIZE": 16,
    "WEBSOCKET_IDLE_TIMEOUT": None,
    "WEBSOCKET_HEARTBEAT": None,
    "WEBSOCKET_ALLOWED_ORIGINS": ("same-origin",),
    "WEBSOCKET_CLOSE_TIMEOUT": 5.0,
    "WEBSOCKET_OUTBOX_POLICY": "close",
    "WEBSOCKET_OUTBOX_MAX_MESSAGES": 1024,
    "WEBSOCKET_OUTBOX_MAX_BYTES": 4 << 20,
    "WEBSOCKET_OUTBOX_MAX_LAG": None,
    "WEBSOCKET_PING_INTERVAL": 20.0,
    "WEBSOCKET_SHUTDOWN_CODE": 1012,
    "WEBSOCKET_DRAIN_TIMEOUT": 10.0,
    "WEBSOCKET_COMPRESSION": None,
    "CHANNELS_URL": "memory://",
    "CHANNELS_HISTORY": {},
    "CHANNELS_PACE_TIMEOUT": 0.05,
    "CHANNELS_PRESENCE_TIMEOUT": 10.0,
    "CHANNELS_PUBLISH_TIMEOUT": 5.0,
}


def test_config_defaults() -> None:
    config = App().config
    assert isinstance(config, Config)
    assert dict(config) == DEFAULTS


def test_config_from_a_dict() -> None:
    config = App(config={"DEBUG": True, "SECRET_KEY": "s3cret", "lower": 1}).config
    assert config.DEBUG is True
    assert config["DEBUG"] is True
    assert config.REDIRECT_SLASHES is False
    assert config["SECRET_KEY"] == config.SECRET_KEY == "s3cret"
    assert config["lower"] == 1  # a mapping is taken as it is
    assert dict(config) == {**DEFAULTS, "DEBUG": True, "SECRET_KEY": "s3cret", "lower": 1}
    assert len(config) == len(DEFAULTS) + 2


def test_config_from_a_class_with_uppercase_attributes() -> None:
    class BaseSettings:
        API_URL = "https://api.example.com"

    class Settings(BaseSettings):
        DEBUG = True
        REDIRECT_SLASHES = True
        POOL_SIZE = 4
        not_a_setting = "ignored"

    config = App(config=Settings).config
    assert (config.DEBUG, config["REDIRECT_SLASHES"]) == (True, True)
    assert config.POOL_SIZE == config["POOL_SIZE"] == 4
    assert config.API_URL == "https://api.example.com"
    assert "not_a_setting" not in config
    assert dict(config) == {
        **DEFAULTS,
        "DEBUG": True,
        "REDIRECT_SLASHES": True,
        "POOL_SIZE": 4,
        "API_URL": "https://api.example.com",
    }


def test_config_from_a_module() -> None:
    module = types.ModuleType("settings")
    module.DEBUG = True  # type: ignore[attr-defined]
    module.NAME = "demo"  # type: ignore[attr-defined]
    config = Config(module)
    assert (config.DEBUG, config.NAME, config.REDIRECT_SLASHES) == (True, "demo", False)


def test_config_missing_keys() -> None:
    config = Config({})
    with pytest.raises(KeyError):
        config["NOPE"]
    with pytest.raises(AttributeError, match="NOPE"):
        _ = config.NOPE


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"DEBUG": "yes"}, "config DEBUG must be True or False, got 'yes'"),
        ({"DEBUG": 1}, "config DEBUG must be True or False, got 1"),
        ({"DEBUG": None}, "config DEBUG must be True or False, got None"),
        (
            {"REDIRECT_SLASHES": "true"},
            "config REDIRECT_SLASHES must be True or False, got 'true'",
        ),
        (type("Settings", (), {"DEBUG": "on"}), "config DEBUG must be True or False, got 'on'"),
        (
            {"WEBSOCKET_MAX_MESSAGE_SIZE": 0},
            "config WEBSOCKET_MAX_MESSAGE_SIZE must be a whole number of at least 1, got 0",
        ),
        (
            {"WEBSOCKET_INBOX_SIZE": True},
            "config WEBSOCKET_INBOX_SIZE must be a whole number of at least 1, got True",
        ),
        (
            {"WEBSOCKET_IDLE_TIMEOUT": 0},
            "config WEBSOCKET_IDLE_TIMEOUT must be a number of seconds above 0, or None, got 0",
        ),
        (
            {"WEBSOCKET_CLOSE_TIMEOUT": None},
            "config WEBSOCKET_CLOSE_TIMEOUT must be a number of seconds above 0, got None",
        ),
        (
            {"WEBSOCKET_ALLOWED_ORIGINS": "https://a.example"},
            "config WEBSOCKET_ALLOWED_ORIGINS must be a list of origins such as "
            '["https://app.example.com", "same-origin"], or None, got \'https://a.example\'',
        ),
        (
            {"WEBSOCKET_HEARTBEAT": ["ping", "pong"]},
            "config WEBSOCKET_HEARTBEAT must be a (ping, pong) pair of texts such as "
            "(\"ping\", \"pong\"), got ['ping', 'pong']",
        ),
        (
            {"WEBSOCKET_OUTBOX_POLICY": "drop"},
            "config WEBSOCKET_OUTBOX_POLICY must be one of block, drop_oldest, drop_newest, "
            "close, got 'drop'",
        ),
        (
            {"WEBSOCKET_OUTBOX_MAX_LAG": -1},
            "config WEBSOCKET_OUTBOX_MAX_LAG must be a number of seconds above 0, or None, got -1",
        ),
        (
            {"WEBSOCKET_SHUTDOWN_CODE": 1006},
            "config WEBSOCKET_SHUTDOWN_CODE must be a close code: 1000, 1001, 1012 (service "
            "restart), 1013, or 3000-4999, got 1006",
        ),
        (
            {"WEBSOCKET_DRAIN_TIMEOUT": 0},
            "config WEBSOCKET_DRAIN_TIMEOUT must be a number of seconds above 0, got 0",
        ),
        (
            {"WEBSOCKET_COMPRESSION": True},
            'config WEBSOCKET_COMPRESSION must be None, "deflate" or "deflate-context", got True',
        ),
    ],
)
def test_config_wrong_type(source: Any, message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        App(config=source)
    assert str(raised.value) == message


# -- ASGI scopes ---------------------------------------------------------------------------------
async def test_unsupported_scope_type() -> None:
    async def receive() -> dict[str, Any]:
        raise AssertionError("the app must not receive")

    async def send(message: dict[str, Any]) -> None:
        raise AssertionError("the app must not send")

    with pytest.raises(RuntimeError, match="triows cannot serve ASGI scope type 'webtransport'"):
        await App()({"type": "webtransport"}, receive, send)
