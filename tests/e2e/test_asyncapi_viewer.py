"""The AsyncAPI viewer page in a real browser, with every request off the test server refused.

A plain ASGI app (no triows in it, so this tests the page and the files alone) serves
``page(...)`` at ``/asyncapi``, the fetched viewer files under ``/asyncapi/assets/`` and a small
hand-written AsyncAPI 3.0.0 document at ``/asyncapi.json``. Chromium opens the page with a
route that aborts any request to another host and records it: the page must render the
document's channel, operations and messages with none of them, and with no console error.

The screenshot goes to the test's ``tmp_path``, and to ``$TRIOWS_SCREENSHOTS`` as well when that
names a folder. Without the viewer's files (not cached, registry unreachable) the test skips
loudly (``viewer_support.py``); without Chromium, as every browser test does.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
from browser_support import TIMEOUT_MS, launch, live_server_in_thread, new_page, require_browser
from viewer_support import viewer_folder

from triows.asyncapi._viewer import ASSETS, page

if TYPE_CHECKING:
    from playwright.sync_api import Page, Route

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

ADDRESS = "/chat/{room}/ws"
#: The browser window.
VIEWPORT = {"width": 1600, "height": 1600}

#: A small AsyncAPI 3.0.0 document, written by hand: one channel with a parameter, a message
#: the server receives on it and one it sends.
DOCUMENT: dict[str, Any] = {
    "asyncapi": "3.0.0",
    "info": {
        "title": "Chat rooms",
        "version": "1.0.0",
        "description": "Say something in a room; everyone in it hears it.",
    },
    "channels": {
        "chatRoom": {
            "address": ADDRESS,
            "title": "A chat room",
            "parameters": {"room": {"description": "The room's name."}},
            "messages": {
                "say": {
                    "name": "say",
                    "summary": "What a member says.",
                    "contentType": "application/json",
                    "payload": {
                        "type": "object",
                        "properties": {"text": {"type": "string", "maxLength": 500}},
                        "required": ["text"],
                    },
                },
                "said": {
                    "name": "said",
                    "summary": "What someone in the room said.",
                    "contentType": "application/json",
                    "payload": {
                        "type": "object",
                        "properties": {"name": {"type": "string"}, "text": {"type": "string"}},
                        "required": ["name", "text"],
                    },
                },
            },
        }
    },
    "operations": {
        "receiveSay": {
            "action": "receive",
            "summary": "A member says something.",
            "channel": {"$ref": "#/channels/chatRoom"},
            "messages": [{"$ref": "#/channels/chatRoom/messages/say"}],
        },
        "sendSaid": {
            "action": "send",
            "summary": "The room hears it.",
            "channel": {"$ref": "#/channels/chatRoom"},
            "messages": [{"$ref": "#/channels/chatRoom/messages/said"}],
        },
    },
}


def viewer_app(folder: Path) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """A plain ASGI app: the page, the viewer's files from ``folder``, and :data:`DOCUMENT`."""
    viewer_page = page("/asyncapi.json", "/asyncapi/assets").encode()
    routes = {
        "/asyncapi": ("text/html; charset=utf-8", viewer_page),
        "/asyncapi.json": ("application/json", json.dumps(DOCUMENT).encode()),
    }
    for asset in ASSETS:
        routes[f"/asyncapi/assets/{asset.name}"] = (
            asset.media_type,
            (folder / asset.name).read_bytes(),
        )

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        status = 200 if scope["path"] in routes else 404
        media_type, body = routes.get(scope["path"], ("text/plain", b"not found"))
        headers = [(b"content-type", media_type.encode()), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def block_other_hosts(browser_page: Page, origin: str, aborted: list[str]) -> None:
    """Abort (and record) every request of ``browser_page`` that is not to ``origin``'s host."""
    host = urlsplit(origin).netloc

    def handle(route: Route) -> None:
        if urlsplit(route.request.url).netloc == host:
            route.continue_()
        else:
            aborted.append(route.request.url)
            route.abort("blockedbyclient")

    browser_page.route("**/*", handle)


def rendered(browser_page: Page) -> None:
    """The document as the component shows it: its title, both operations on the channel, the
    message each carries, the payload's property and the channel's parameter."""
    from playwright.sync_api import expect

    root = browser_page.locator("#asyncapi")
    # The sidebar's title (the component shows it beside the page from 1537 px wide) and the info's.
    expect(root.get_by_text("Chat rooms 1.0.0")).to_have_count(2)
    for title in root.get_by_text("Chat rooms 1.0.0").all():
        expect(title).to_be_visible()
    expect(root.get_by_text("Say something in a room; everyone in it hears it.")).to_be_visible()
    operations = root.get_by_role("listitem")
    receive = operations.filter(has=browser_page.get_by_role("heading", name=f"RECEIVE {ADDRESS}"))
    send = operations.filter(has=browser_page.get_by_role("heading", name=f"SEND {ADDRESS}"))
    for operation, operation_id, summary, message in (
        (receive, "receiveSay", "A member says something.", "say"),
        (send, "sendSaid", "The room hears it.", "said"),
    ):
        expect(operation).to_have_count(1)
        expect(operation.get_by_text(summary)).to_be_visible()
        expect(operation.get_by_text(operation_id, exact=True)).to_be_visible()
        expect(operation.get_by_text(message, exact=True)).to_be_visible()
    # Unfolded, the receive operation shows the room parameter and the payload's text property.
    receive.get_by_role("button", name="Parameters").click()
    expect(receive.get_by_text("room", exact=True)).to_be_visible()
    receive.get_by_role("button", name="Payload").first.click()
    expect(receive.get_by_text("text", exact=True)).to_be_visible()
    # The parser found nothing wrong with the document.
    expect(root.get_by_text("There are errors in your Asyncapi document")).to_have_count(0)


def save(screenshot: Path) -> None:
    """Copy the screenshot to ``$TRIOWS_SCREENSHOTS`` when that names a folder."""
    folder = os.environ.get("TRIOWS_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        print(f"screenshot: {shutil.copy(screenshot, Path(folder) / screenshot.name)}")


@pytest.mark.e2e
@pytest.mark.live
def test_the_viewer_renders_a_document_with_the_network_blocked(tmp_path: Path) -> None:
    require_browser()
    folder = viewer_folder()
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    screenshot = tmp_path / "asyncapi.png"
    problems: list[str] = []
    aborted: list[str] = []

    with live_server_in_thread(viewer_app(folder)) as running, sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            viewer = new_page(browser, problems)
            # Wide enough for the sidebar (over 1536 px), tall enough for the whole document: a
            # full-page screenshot resizes the page, and the component re-renders on a resize
            # (a screenshot then caught it collapsed, without its sidebar, in 2 runs of 6).
            viewer.set_viewport_size(VIEWPORT)
            block_other_hosts(viewer, running.url, aborted)
            try:
                viewer.goto(f"{running.url}/asyncapi")
                expect(viewer).to_have_title("AsyncAPI")
                rendered(viewer)
                licence = viewer.request.get(f"{running.url}/asyncapi/assets/LICENSE")
                assert licence.ok
                assert "Apache License" in licence.text()
            finally:
                viewer.screenshot(path=screenshot, animations="disabled", timeout=TIMEOUT_MS)
                print(f"screenshot: {screenshot}")
                print(f"requests refused: {aborted}")
                save(screenshot)
        finally:
            browser.close()

    assert aborted == []
    assert problems == []
    assert screenshot.stat().st_size > 0


@pytest.mark.e2e
@pytest.mark.live
def test_the_chat_examples_own_document_renders_with_the_network_blocked(tmp_path: Path) -> None:
    """The chat example serves its generated document and the viewer itself (triows, not a
    stand-in): every operation of its wire protocol is on the page, and the component's parser
    finds nothing wrong with the document."""
    require_browser()
    viewer_folder()  # fetched (or skipped loudly) before the app looks for it
    from playwright.sync_api import expect, sync_playwright

    from examples.chat.app import create_app

    expect.set_options(timeout=TIMEOUT_MS)
    screenshot = tmp_path / "chat-asyncapi.png"
    problems: list[str] = []
    aborted: list[str] = []
    address = "/chat/{room}/ws"
    with live_server_in_thread(create_app("memory://")) as running, sync_playwright() as pw:
        browser = launch(pw)
        try:
            viewer = new_page(browser, problems)
            viewer.set_viewport_size({"width": 1600, "height": 4000})
            block_other_hosts(viewer, running.url, aborted)
            try:
                viewer.goto(f"{running.url}/asyncapi")
                root = viewer.locator("#asyncapi")
                expect(root.get_by_text("triows chat 1.0.0")).to_have_count(2)
                operations = root.get_by_role("listitem")
                # A receive operation with a reply, the component heads "REPLY".
                receive = viewer.get_by_role("heading", name=f"REPLY {address}")
                send = viewer.get_by_role("heading", name=f"SEND {address}")
                expect(operations.filter(has=receive)).to_have_count(1)
                # presence_state, message, presence_diff, gap, and the error frame
                expect(operations.filter(has=send)).to_have_count(5)
                for operation_id in (
                    "room_ws_say",
                    "room_ws_send_presence_state",
                    "room_ws_send_message",
                    "room_ws_send_presence_diff",
                    "room_ws_send_gap",
                    "room_ws_invalid",
                ):
                    expect(root.get_by_text(operation_id, exact=True).first).to_be_visible()
                expect(
                    root.get_by_text("There are errors in your Asyncapi document")
                ).to_have_count(0)
            finally:
                viewer.screenshot(path=screenshot, animations="disabled", timeout=TIMEOUT_MS)
                print(f"screenshot: {screenshot}")
                save(screenshot)
        finally:
            browser.close()
    assert aborted == []
    assert problems == []
