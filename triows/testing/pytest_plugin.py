"""pytest fixtures for triows apps; loaded automatically when triows is installed.

Define a ``triows_app`` fixture that returns your app (in ``conftest.py`` or in the test module)
and ask for what the test needs:

* ``client``: a synchronous :class:`~triows.testing.TestClient`, entered for the test (the
  app's lifespan runs around it).
* ``async_client``: an :class:`~triows.testing.AsyncTestClient`, entered for the test.
* ``live_server``: the app on real hypercorn for the test (:func:`~triows.testing.serve`); its
  ``.url`` is the base URL (``httpx.AsyncClient(base_url=live_server.url)`` for HTTP) and its
  ``websocket_connect`` opens real websockets.
* ``redis_server``: a fresh, throw-away ``redis-server`` for the test
  (:class:`~triows.testing.RedisServer`, on a free port, nothing persisted, killed after the
  test); ``stop()``, ``start()`` and ``restart()`` play a Redis that goes away and comes back.
  Without a ``redis-server`` binary the test is skipped loudly: the skip says what to install,
  and a banner near the end of pytest's report counts such skips. It needs no ``triows_app``.
* ``redis_url``: that server's ``redis://127.0.0.1:PORT/0``.
* ``channels_url``: a ``CHANNELS_URL`` for the app, ``memory://`` and then a throw-away Redis
  (the test runs on each backend; ``channels_backend`` says which).

``async_client``, ``live_server``, ``redis_server`` and ``redis_url`` are async fixtures: they
need the pytest-trio plugin (``pip install pytest-trio``) and a trio test, either every async
test with ``trio_mode = true`` in the pytest configuration or one marked ``@pytest.mark.trio``.
They then run in the test's own trio loop.

A fixture of the same name in your ``conftest.py`` or test module wins over these, as pytest
always lets it. ``pytest -p no:triows`` turns the plugin off.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, NoReturn

import pytest

from .._types import ASGIApp
from ._client import AsyncTestClient, TestClient
from ._redis import RedisServer, RedisServerMissing, find_binary
from ._server import LiveServer, serve

__all__ = [
    "async_client",
    "channels_backend",
    "channels_url",
    "client",
    "live_server",
    "redis_server",
    "redis_url",
    "triows_app",
]

_ASYNC_FIXTURES = ("async_client", "channels_url", "live_server", "redis_server", "redis_url")

#: How the ``redis_server`` fixture's skips begin; what to install follows.
REDIS_MISSING = "SKIPPED LOUDLY"
#: How many tests the ``redis_server`` fixture skipped in this run, for the report's end.
_REDIS_SKIPS = pytest.StashKey[int]()

NO_APP = """\
the triows fixtures need your app: define a `triows_app` fixture that returns it, in conftest.py
or in the test module, for example:

    @pytest.fixture
    def triows_app() -> App:
        return App(controllers=[MyController])
"""


@pytest.fixture
def triows_app() -> ASGIApp:
    """The app the triows fixtures test: override it to return yours."""
    pytest.fail(NO_APP, pytrace=False)


@pytest.fixture
def client(triows_app: ASGIApp) -> Iterator[TestClient]:
    """A synchronous ``TestClient`` for ``triows_app``, entered (lifespan running) for the test."""
    with TestClient(triows_app) as test_client:
        yield test_client


@pytest.fixture
async def async_client(triows_app: ASGIApp) -> AsyncIterator[AsyncTestClient]:
    """An ``AsyncTestClient`` for ``triows_app``, entered for the test (needs pytest-trio)."""
    async with AsyncTestClient(triows_app) as test_client:
        yield test_client


@pytest.fixture
async def live_server(triows_app: ASGIApp) -> AsyncIterator[LiveServer]:
    """``triows_app`` on real hypercorn for the test; ``.url`` is its base URL (pytest-trio)."""
    async with serve(triows_app) as server:
        yield server


@pytest.fixture
def _redis_server_binary(request: pytest.FixtureRequest) -> str:
    """The ``redis-server`` to run; without one, the test is skipped loudly.

    A plain fixture, so the skip happens before pytest-trio runs ``redis_server``: pytest-trio
    0.8 drops the message of a skip raised in a trio fixture (it calls ``pytest.skip()`` anew).
    """
    try:
        return find_binary()
    except RedisServerMissing as missing:
        _skip_for_redis(request.config, missing)


@pytest.fixture
async def redis_server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    _redis_server_binary: str,
) -> AsyncIterator[RedisServer]:
    """A fresh, throw-away ``redis-server`` for the test, killed after it (pytest-trio).

    Its directory (with its log, ``redis-server.log``) is a new one under pytest's temporary
    directory, kept as pytest keeps those. No ``redis-server`` binary skips the test loudly.
    """
    server = RedisServer(
        binary=_redis_server_binary, directory=tmp_path_factory.mktemp("redis-server")
    )
    try:
        await server.start()
    except RedisServerMissing as missing:  # gone since _redis_server_binary looked
        _skip_for_redis(request.config, missing)
    try:
        yield server
    finally:
        await server.aclose()


@pytest.fixture
async def redis_url(redis_server: RedisServer) -> str:
    """The ``redis_server`` fixture's ``redis://127.0.0.1:PORT/0`` (pytest-trio)."""
    return redis_server.url


def _skip_for_redis(config: pytest.Config, missing: RedisServerMissing) -> NoReturn:
    config.stash[_REDIS_SKIPS] = config.stash.get(_REDIS_SKIPS, 0) + 1
    pytest.skip(f"{REDIS_MISSING}: {missing}; .ci/run installs it")


@pytest.fixture(params=["memory", "redis"])
def channels_backend(request: pytest.FixtureRequest) -> str:
    """``"memory"``, then ``"redis"``: a test that asks for ``channels_url`` runs on each.

    Without a ``redis-server`` binary, the Redis run is skipped loudly.
    """
    backend = str(request.param)
    if backend == "redis":
        try:
            find_binary()
        except RedisServerMissing as missing:
            _skip_for_redis(request.config, missing)
    return backend


@pytest.fixture
async def channels_url(
    channels_backend: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """A ``CHANNELS_URL`` for the test's app: ``memory://``, then a throw-away Redis's URL.

    The test runs once per backend (``channels_backend``); the Redis run gets a fresh
    ``redis-server``, killed after the test (pytest-trio).
    """
    if channels_backend == "memory":
        yield "memory://"
        return
    async with RedisServer(directory=tmp_path_factory.mktemp("redis-server")) as server:
        yield server.url


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Add a banner to the report when tests were skipped for want of ``redis-server``."""
    skipped = terminalreporter.config.stash.get(_REDIS_SKIPS, 0)
    if skipped:
        terminalreporter.write_sep(
            "!", f"{skipped} test(s) SKIPPED: redis-server is not installed", red=True, bold=True
        )
        terminalreporter.write_line(
            "Tests that need a real Redis did not run. apt-get install redis-server (.ci/run "
            "installs it when it runs as root) and run them again."
        )


@pytest.hookimpl(tryfirst=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> None:
    """Explain what our async fixtures need, before pytest or pytest-trio fail less clearly."""
    if fixturedef.argname not in _ASYNC_FIXTURES or not _is_ours(fixturedef):
        return
    if not request.config.pluginmanager.hasplugin("trio"):
        pytest.fail(
            f"the triows fixture {fixturedef.argname!r} is async and needs the pytest-trio "
            "plugin: pip install pytest-trio",
            pytrace=False,
        )
    if request.node.get_closest_marker("trio") is None:
        pytest.fail(
            f"the triows fixture {fixturedef.argname!r} is async: use it from an async test "
            "run by pytest-trio (set trio_mode = true in the pytest configuration, or mark the "
            "test with @pytest.mark.trio)",
            pytrace=False,
        )


def _is_ours(fixturedef: pytest.FixtureDef[Any]) -> bool:
    return getattr(fixturedef.func, "__module__", None) == __name__
