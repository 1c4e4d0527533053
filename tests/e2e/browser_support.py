"""Helpers shared by the browser tests: Chromium, driven by Playwright, on a live server.

The app runs on real hypercorn (``serve`` from ``tests/live.py``) in a background thread with
its own ``trio.run``: Playwright's sync API runs its own event loop, so it cannot share the
thread of a trio loop. The tests themselves are plain sync functions that drive the browser.

Debian's Chromium (``apt-get install -y chromium``, which ``.ci/run`` does) stands in for
Playwright's downloaded browsers, which cannot be fetched without internet access. Without it,
or without the ``playwright`` package, :func:`require_browser` skips the test and says why in
pytest's summary.
"""

from __future__ import annotations

import importlib.util
import os
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import trio
from live import serve

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, Response

CHROMIUM = Path("/usr/bin/chromium")
#: The background-networking flags matter: without them Chromium phones home at start-up, and
#: on a closed network its connections (ours included) get refused.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Every Playwright wait (milliseconds).
TIMEOUT_MS = 10_000
#: Seconds to wait for the server thread to report its URL, and to end once told to stop
#: (``serve`` bounds hypercorn's own start and stop too).
SERVER_TIMEOUT = 20.0


def require_browser() -> None:
    """Skip, loudly and specifically, when the browser or its driver is missing."""
    if importlib.util.find_spec("playwright") is None:
        pytest.skip(
            "E2E SKIPPED: the Python package 'playwright' is not installed: "
            "run `pip install -e '.[test]'` (scripts/test and .ci/run do)"
        )
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(
            f"E2E SKIPPED: Chromium not installed at {CHROMIUM}: "
            "run `apt-get install -y chromium` (.ci/run does)"
        )


def launch(playwright: Playwright) -> Browser:
    """Debian's Chromium, headless, with :data:`CHROMIUM_ARGS`."""
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=TIMEOUT_MS
    )


def new_page(browser: Browser, problems: list[str]) -> Page:
    """A page (in a context of its own) with the timeouts set, watched (:func:`watch`)."""
    page = browser.new_page(viewport={"width": 900, "height": 800})
    page.set_default_timeout(TIMEOUT_MS)
    page.set_default_navigation_timeout(TIMEOUT_MS)
    watch(page, problems)
    return page


@dataclass
class Running:
    """A server in its thread: its URL, and its trio loop's token (to call into it)."""

    url: str
    token: trio.lowlevel.TrioToken
    stop: trio.Event


@contextmanager
def live_server_in_thread(asgi_app: Any) -> Iterator[Running]:
    """Serve ``asgi_app`` on hypercorn in a thread with its own trio loop; yield where it is.

    At the end the server is asked to stop through the loop's token and the thread is joined;
    an exception from the server thread is re-raised here.
    """
    started: queue.Queue[Running | BaseException] = queue.Queue()
    failures: list[BaseException] = []

    async def main() -> None:
        stop = trio.Event()
        async with serve(asgi_app) as server:
            started.put(Running(server.url, trio.lowlevel.current_trio_token(), stop))
            await stop.wait()

    def run() -> None:
        try:
            trio.run(main)
        except BaseException as exc:
            failures.append(exc)
            started.put(exc)

    thread = threading.Thread(target=run, name="hypercorn", daemon=True)
    thread.start()
    try:
        first = started.get(timeout=SERVER_TIMEOUT)
    except queue.Empty:
        raise TimeoutError(f"hypercorn did not start within {SERVER_TIMEOUT}s") from None
    if isinstance(first, BaseException):
        thread.join(SERVER_TIMEOUT)
        raise first
    try:
        yield first
    finally:
        # If the loop already ended, its failure is in `failures`.
        with suppress(trio.RunFinishedError):
            trio.from_thread.run_sync(first.stop.set, trio_token=first.token)
        thread.join(SERVER_TIMEOUT)
        if thread.is_alive():
            raise TimeoutError(f"hypercorn's thread did not end within {SERVER_TIMEOUT}s")
        if failures:
            raise failures[0]


def watch(page: Page, problems: list[str]) -> None:
    """Record what the page reports going wrong: script errors, console errors, HTTP errors."""

    def on_console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            problems.append(f"console {message.type}: {message.text} at {message.location}")

    def on_response(response: Response) -> None:
        if response.status >= 400:
            problems.append(f"HTTP {response.status}: {response.url}")

    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", on_console)
    page.on("response", on_response)
    page.on("requestfailed", lambda request: problems.append(f"failed: {request.url}"))


__all__ = [
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "SERVER_TIMEOUT",
    "TIMEOUT_MS",
    "Running",
    "launch",
    "live_server_in_thread",
    "new_page",
    "require_browser",
    "watch",
]
