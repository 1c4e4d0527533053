"""The live-support example in a real browser: headless Chromium, driven by Playwright.

The app runs on real hypercorn (``serve`` from ``tests/live.py``) in a background thread with
its own ``trio.run``: Playwright's sync API runs its own event loop, so it cannot share the
thread of a trio loop (``browser_support.py``, shared with the chat's browser test). The test
itself is a plain sync function that drives the browser. The hypercorn CLI is exercised by
``tests/test_example.py``; serving in-process here starts in milliseconds, and a server-side
failure is re-raised in this test with its own traceback.

Debian's Chromium (``apt-get install -y chromium``, which ``.ci/run`` does) stands in for
Playwright's downloaded browsers, which cannot be fetched without internet access. Without it,
or without the ``playwright`` package, the test skips and says why in pytest's summary.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import trio
from browser_support import (
    TIMEOUT_MS,
    Running,
    launch,
    live_server_in_thread,
    new_page,
    require_browser,
)

from examples.live_support.app import app

if TYPE_CHECKING:
    from playwright.sync_api import Page

WELCOME = "Welcome to our live support room!"
ANSWER = "We have received your complaint:"
COMPLAINT = "My car won't start"
HTML_COMPLAINT = "My <b>bold</b> complaint"


def chat(page: Page, url: str) -> None:
    """The conversation: welcome, a complaint and its answer, then a complaint with HTML in it."""
    from playwright.sync_api import expect

    page.goto(f"{url}/car/ws-index")
    expect(page).to_have_title("Live Support")
    expect(page.locator("body")).to_have_attribute("data-ws-state", "open")
    expect(page.locator("#status")).to_have_text("connected")

    # The welcome stays above the conversation, out of the scrolling list.
    welcome = page.locator("#welcome")
    expect(welcome).to_contain_text(WELCOME)
    expect(welcome).to_contain_text("How can we help you?")
    messages = page.locator("#messages")
    incoming = messages.locator("li.msg-in")
    outgoing = messages.locator("li.msg-out")
    expect(incoming).to_have_count(0)

    # Enter sends (Shift+Enter is a new line in the message).
    page.locator("#messageText").fill(COMPLAINT)
    page.locator("#messageText").press("Enter")
    expect(outgoing).to_have_count(1)
    expect(outgoing.nth(0)).to_have_text(COMPLAINT)
    expect(incoming).to_have_count(1)
    expect(incoming.nth(0)).to_contain_text(ANSWER)
    expect(incoming.nth(0).locator("strong")).to_have_text(f'"{COMPLAINT}"')
    expect(incoming.nth(0)).to_contain_text("We shall get back to you.")
    expect(page.locator("#messageText")).to_have_value("")  # the page clears the composer
    page.locator("#messageText").press("Shift+Enter")
    expect(page.locator("#messageText")).to_have_value("\n")  # a new line, nothing sent
    expect(outgoing).to_have_count(1)

    # The user's HTML is shown as text on both sides: the page writes its own message with
    # textContent, and the server escapes the complaint inside its (trusted) answer markup.
    page.locator("#messageText").fill(HTML_COMPLAINT)
    page.locator("#send").click()
    expect(outgoing).to_have_count(2)
    expect(outgoing.nth(1)).to_have_text(HTML_COMPLAINT)
    expect(incoming).to_have_count(2)
    expect(incoming.nth(1)).to_contain_text(ANSWER)
    expect(incoming.nth(1).locator("strong")).to_have_text(f'"{HTML_COMPLAINT}"')
    expect(messages.locator("b")).to_have_count(0)  # nothing was rendered as bold
    assert "&lt;b&gt;bold&lt;/b&gt;" in incoming.nth(1).inner_html()
    assert "&lt;b&gt;bold&lt;/b&gt;" in outgoing.nth(1).inner_html()

    # In order, as a reader sees them: out, in, out, in.
    expect(messages.locator("li.msg")).to_have_class(
        ["msg msg-out", "msg msg-in", "msg msg-out", "msg msg-in"]
    )
    expect(page.locator("body")).to_have_attribute("data-ws-state", "open")


def reconnect(page: Page, running: Running) -> None:
    """The server restarts (a drain: close 1012): the page says so, and comes back by itself."""
    from playwright.sync_api import expect

    # The page retries at once after a 1012 and the draining server refuses it (4503): the 1012
    # may be on screen for a moment only, so the codes are recorded as they come.
    page.evaluate(
        "() => { window.codes = []; supportConnection.onState((s) => codes.push(s.code)); }"
    )
    trio.from_thread.run_sync(app.drain, 0.5, trio_token=running.token)
    expect(page.locator("body")).to_have_attribute("data-ws-state", "reconnecting")
    page.wait_for_function("() => codes.includes(1012)")
    expect(page.locator("#status")).to_contain_text("disconnected (code ")
    expect(page.locator("#status")).to_contain_text("reconnecting in")
    # The "restarted" server accepts again (a real one would be a new process).
    trio.from_thread.run_sync(app._drain.reset, trio_token=running.token)
    expect(page.locator("body")).to_have_attribute("data-ws-state", "open")
    expect(page.locator("#welcome")).to_contain_text(WELCOME)  # the new connection's, once
    expect(page.locator("#messages li.msg")).to_have_count(4)  # the conversation stays
    page.locator("#messageText").fill(COMPLAINT)
    page.locator("#messageText").press("Enter")
    expect(page.locator("#messages li.msg-in")).to_have_count(3)


@pytest.mark.e2e
@pytest.mark.live
def test_live_support_in_chromium(tmp_path: Path) -> None:
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    screenshot = tmp_path / "live-support.png"
    problems: list[str] = []

    with live_server_in_thread(app) as running, sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = new_page(browser, problems)
            try:
                chat(page, running.url)
                reconnect(page, running)
            finally:
                page.screenshot(path=screenshot, full_page=True, timeout=TIMEOUT_MS)
                print(f"screenshot: {screenshot}")
        finally:
            browser.close()

    assert problems == []
    assert screenshot.stat().st_size > 0
