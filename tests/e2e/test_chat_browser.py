"""The chat example in a real browser: two Chromium pages in one room, driven by Playwright.

Each page is a browser context of its own (as two people would be). They see each other in
the member list, each sees the other's messages (and its own, as the room published them),
they come back by themselves after the server restarts with what was said meanwhile
(``since=``), and a page that closes leaves the other's member list. The setup (the server in
a thread, Chromium, the loud skip) is ``browser_support.py``'s; every wait is Playwright's,
on what the page shows.
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

from examples.chat.app import create_app, topic

if TYPE_CHECKING:
    from playwright.sync_api import Page

app = create_app("memory://")

HELLO = "hello <b>bob</b> & co"
REPLY = "hi ann\nsecond line"
AWAY = "said while you were away"


def join(page: Page, url: str, name: str) -> None:
    """Open the room as ``name`` and wait until the page is connected."""
    from playwright.sync_api import expect

    page.goto(f"{url}/chat/blue?name={name}")
    expect(page).to_have_title("#blue · Chat")
    expect(page.locator("body")).to_have_attribute("data-ws-state", "open")
    expect(page.locator("#status")).to_have_text(f"connected as {name}")
    expect(page.locator("#chat")).to_be_visible()
    expect(page.locator("#name-form")).to_be_hidden()


def converse(ann: Page, bob: Page) -> None:
    """Each sees the other, and every message, in both pages alike."""
    from playwright.sync_api import expect

    for page in (ann, bob):
        expect(page.locator("#members li")).to_have_text(["ann", "bob"])
    expect(ann.locator("#members li.me")).to_have_text("ann")
    expect(bob.locator("#members li.me")).to_have_text("bob")

    # Enter sends; the text is shown as text (no <b> made of it), in both pages.
    ann.locator("#text").fill(HELLO)
    ann.locator("#text").press("Enter")
    for page in (ann, bob):
        expect(page.locator("#messages li.msg")).to_have_count(1)
        expect(page.locator("#messages li.msg .who")).to_have_text(["ann"])
        expect(page.locator("#messages li.msg .text")).to_have_text([HELLO])
        expect(page.locator("#messages b")).to_have_count(0)
    expect(ann.locator("#messages li.msg").nth(0)).to_have_class("msg mine")
    expect(bob.locator("#messages li.msg").nth(0)).to_have_class("msg")
    expect(ann.locator("#text")).to_have_value("")

    # Shift+Enter is a new line, not a message.
    bob.locator("#text").fill("hi ann")
    bob.locator("#text").press("Shift+Enter")
    bob.locator("#text").press_sequentially("second line")
    expect(bob.locator("#text")).to_have_value(REPLY)
    expect(bob.locator("#messages li.msg")).to_have_count(1)
    bob.locator("#text").press("Enter")
    for page in (ann, bob):
        expect(page.locator("#messages li.msg .who")).to_have_text(["ann", "bob"])
        expect(page.locator("#messages li.msg .text")).to_have_text([HELLO, REPLY])


def come_back(ann: Page, bob: Page, running: Running) -> None:
    """The server restarts (close 1012); what is said meanwhile reaches both when they return."""
    from playwright.sync_api import expect

    # A page retries at once after a 1012 and the draining server refuses it (4503): the 1012
    # may be on screen for a moment only, so the codes are recorded as they come.
    for page in (ann, bob):
        page.evaluate(
            "() => { window.codes = []; chatConnection.onState((s) => codes.push(s.code)); }"
        )
    trio.from_thread.run_sync(app.drain, 0.5, trio_token=running.token)
    for page in (ann, bob):
        expect(page.locator("body")).to_have_attribute("data-ws-state", "reconnecting")
        page.wait_for_function("() => codes.includes(1012)")
        expect(page.locator("#status")).to_contain_text("disconnected (code ")
    # Published while both pages are away (as another worker's member could).
    message = {"event": "message", "room": "blue", "name": "carol", "text": AWAY}
    trio.from_thread.run(app.channels.publish, topic("blue"), message, trio_token=running.token)
    trio.from_thread.run_sync(app._drain.reset, trio_token=running.token)
    for page in (ann, bob):
        expect(page.locator("body")).to_have_attribute("data-ws-state", "open")
        # Caught up from since=: the missed message once, nothing shown twice, no gap.
        expect(page.locator("#messages li.msg .text")).to_have_text([HELLO, REPLY, AWAY])
        expect(page.locator("#notice")).to_be_hidden()
        expect(page.locator("#members li")).to_have_text(["ann", "bob"])


def name_prompt(page: Page, url: str, ann: Page) -> None:
    """Without ``?name=`` the page asks for one, then joins under it."""
    from playwright.sync_api import expect

    page.goto(f"{url}/chat/blue")
    expect(page.locator("#name-form")).to_be_visible()
    expect(page.locator("#chat")).to_be_hidden()
    page.locator("#name").fill("carol")
    page.locator("#name").press("Enter")
    expect(page.locator("body")).to_have_attribute("data-ws-state", "open")
    assert page.url.endswith("/chat/blue?name=carol")
    expect(page.locator("#name-form")).to_be_hidden()
    expect(page.locator("#chat")).to_be_visible()
    expect(ann.locator("#members li")).to_have_text(["ann", "carol"])


@pytest.mark.e2e
@pytest.mark.live
def test_two_pages_in_one_room_in_chromium(tmp_path: Path) -> None:
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    screenshot = tmp_path / "chat.png"
    problems: list[str] = []

    with live_server_in_thread(app) as running, sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            ann = new_page(browser, problems)
            bob = new_page(browser, problems)
            try:
                join(ann, running.url, "ann")
                expect(ann.locator("#members li")).to_have_text(["ann"])
                join(bob, running.url, "bob")
                converse(ann, bob)
                come_back(ann, bob, running)

                bob.close()  # bob's page goes: ann's list drops him
                expect(ann.locator("#members li")).to_have_text(["ann"])

                name_prompt(new_page(browser, problems), running.url, ann)
            finally:
                ann.screenshot(path=screenshot, full_page=True, timeout=TIMEOUT_MS)
                print(f"screenshot: {screenshot}")
        finally:
            browser.close()

    assert problems == []
    assert screenshot.stat().st_size > 0
