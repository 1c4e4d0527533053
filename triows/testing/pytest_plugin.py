"""pytest fixtures for triows apps; loaded automatically when triows is installed.

Define a ``triows_app`` fixture that returns your app (in ``conftest.py`` or in the test module)
and ask for what the test needs:

* ``client``: a synchronous :class:`~triows.testing.TestClient`, entered for the test (the
  app's lifespan runs around it).
* ``async_client``: an :class:`~triows.testing.AsyncTestClient`, entered for the test.
* ``live_server``: the app on real hypercorn for the test (:func:`~triows.testing.serve`); its
  ``.url`` is the base URL (``httpx.AsyncClient(base_url=live_server.url)`` for HTTP) and its
  ``websocket_connect`` opens real websockets.

``async_client`` and ``live_server`` are async fixtures: they need the pytest-trio plugin
(``pip install pytest-trio``) and a trio test, either every async test with ``trio_mode = true``
in the pytest configuration or one marked ``@pytest.mark.trio``. They then run in the test's own
trio loop.

A fixture of the same name in your ``conftest.py`` or test module wins over these, as pytest
always lets it. ``pytest -p no:triows`` turns the plugin off.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from .._types import ASGIApp
from ._client import AsyncTestClient, TestClient
from ._server import LiveServer, serve

__all__ = ["async_client", "client", "live_server", "triows_app"]

_ASYNC_FIXTURES = ("async_client", "live_server")

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
