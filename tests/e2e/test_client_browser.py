"""triows.js in Chromium: resume across two servers on one Redis, request and reply, and a
refused handshake that does not loop.

The resume test runs the chat example as two real server processes (``triows run``) on one
throw-away Redis: one page on each. The first page's server is stopped while the second page
keeps talking through the second server, then started again on the same port: the first page
comes back by itself and shows every message it missed, once and in order. The test is a trio
test (for Redis and the processes); Playwright's sync API runs in a worker thread, which asks
trio to stop and start the server.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pytest
import trio
from browser_support import (
    TIMEOUT_MS,
    launch,
    live_server_in_thread,
    new_page,
    require_browser,
)
from live import command
from pydantic import BaseModel

from triows import (
    App,
    Controller,
    ControllerBase,
    GuardCanActivate,
    Guards,
    HTMLResponse,
    WebSocket,
    get,
    ws_route,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parents[2]
TRIOWS = Path(sys.executable).parent / "triows"
#: How long a page may take to come back once its server is up again (its back-off included).
BACK_MS = 30_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ChatServer:
    """The chat example as a ``triows run`` process on a fixed port, stopped and started again."""

    def __init__(self, nursery: trio.Nursery, port: int, env: Mapping[str, str]) -> None:
        self.nursery, self.port, self.env = nursery, port, env
        self.url = f"http://127.0.0.1:{port}"
        self._stop = trio.Event()
        self._stopped = trio.Event()
        self.runs = 0

    async def start(self) -> None:
        self._stop, self._stopped = trio.Event(), trio.Event()
        await self.nursery.start(self._run)

    async def stop(self) -> None:
        self._stop.set()
        await self._stopped.wait()

    async def _run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        args = [str(TRIOWS), "run", "examples.chat.app:app", "--port", str(self.port)]
        try:
            async with command(args, ROOT, self.env) as process:
                await process.url()
                self.runs += 1
                task_status.started()
                await self._stop.wait()
        finally:
            self._stopped.set()


def join(page: Page, url: str, name: str) -> None:
    from playwright.sync_api import expect

    page.goto(f"{url}/chat/resume?name={name}")
    expect(page.locator("body")).to_have_attribute("data-ws-state", "open")


def say(page: Page, text: str) -> None:
    page.locator("#text").fill(text)
    page.locator("#text").press("Enter")


def texts(page: Page) -> Any:
    return page.locator("#messages li.msg .text")


def browse_resume(ann_server: ChatServer, bob_server: ChatServer, screenshot: Path) -> list[str]:
    """The pages' part (in a thread); returns the browser's problems."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            ann, bob = new_page(browser, problems), new_page(browser, problems)
            try:
                join(ann, ann_server.url, "ann")
                join(bob, bob_server.url, "bob")
                say(bob, "one")
                for page in (ann, bob):
                    expect(texts(page)).to_have_text(["one"])
                # ann's server stops (a drain: 1012), and stays away while bob talks on.
                trio.from_thread.run(ann_server.stop)
                expect(ann.locator("body")).to_have_attribute("data-ws-state", "reconnecting")
                for text in ("two", "three", "four"):
                    say(bob, text)
                expect(texts(bob)).to_have_text(["one", "two", "three", "four"])
                expect(texts(ann)).to_have_text(["one"])
                trio.from_thread.run(ann_server.start)  # the same port, a new process
                expect(ann.locator("body")).to_have_attribute(
                    "data-ws-state", "open", timeout=BACK_MS
                )
                # Every missed message once, in order; no gap.
                expect(texts(ann)).to_have_text(["one", "two", "three", "four"])
                expect(ann.locator("#notice")).to_be_hidden()
                expect(ann.locator("#members li")).to_have_text(["ann", "bob"])
                say(ann, "back")
                for page in (ann, bob):
                    expect(texts(page)).to_have_text(["one", "two", "three", "four", "back"])
                ids = ann.locator("#messages li.msg").evaluate_all(
                    "items => items.map(item => item.dataset.id)"
                )
                assert len(set(ids)) == 5, ids
            finally:
                ann.screenshot(path=screenshot, full_page=True, timeout=TIMEOUT_MS)
        finally:
            browser.close()
    return problems


@pytest.mark.e2e
@pytest.mark.live
async def test_a_page_whose_server_was_down_gets_every_missed_message_once(
    redis_url: str, tmp_path: Path
) -> None:
    require_browser()
    env = {**os.environ, "TRIOWS_CHANNELS_URL": redis_url}
    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            ann_server = ChatServer(nursery, free_port(), env)
            bob_server = ChatServer(nursery, free_port(), env)
            await ann_server.start()
            await bob_server.start()
            problems = await trio.to_thread.run_sync(
                browse_resume, ann_server, bob_server, tmp_path / "resume.png"
            )
            await ann_server.stop()
            await bob_server.stop()
    assert ann_server.runs == 2
    # While its server was down, each of ann's attempts was refused by the OS, and Chromium says
    # so in the console; nothing else may go wrong.
    refused = f"WebSocket connection to 'ws://127.0.0.1:{ann_server.port}/chat/resume/ws?"
    expected = [p for p in problems if refused in p and "ERR_CONNECTION_REFUSED" in p]
    assert expected, "ann's page never found its server down"
    assert [p for p in problems if p not in expected] == []


# -- request and reply, and a refusal, on a small app of their own ---------------------------


class Add(BaseModel):
    event: Literal["add"]
    a: int
    b: int


class Sum(BaseModel):
    sum: int


#: Handshakes the refusing guard has seen.
REFUSED: list[str] = []


class Refuse(GuardCanActivate):
    async def can_activate(self, context: Any) -> bool:
        REFUSED.append(context.switch_to_websocket().get_client().url.path)
        return False


PAGE = (
    "<!DOCTYPE html><html><head><title>client</title><link rel='icon' href='data:,'></head></html>"
)


@Controller("")
class ClientController(ControllerBase):
    @get("/")
    async def page(self) -> HTMLResponse:
        return HTMLResponse(PAGE)

    @ws_route("/rpc", use_extra_handler=True, on_invalid="reply")
    async def rpc(self) -> None: ...

    @ws_route.on(rpc)
    async def add(self, message: Add) -> Sum:
        return Sum(sum=message.a + message.b)

    @ws_route("/guarded")
    @Guards(Refuse)
    async def guarded(self, websocket: WebSocket) -> None:
        raise AssertionError("refused before the handler")


REQUESTS = """async () => {
  const { connect } = await import("/triows.js");
  const conn = connect("/rpc");
  await conn.opened();
  const sum = await conn.request("add", { a: 2, b: 3 });
  let error = null;
  try {
    await conn.request("add", { a: "two", b: 3 });
  } catch (e) {
    error = { code: e.code, type: e.errors[0].type, loc: e.errors[0].loc };
  }
  const after = await conn.request("add", { a: 40, b: 2 });  // still open
  conn.close();
  return { sum, error, after, state: conn.state };
}"""

REFUSAL = """async () => {
  const { connect } = await import("/triows.js");
  const states = [];
  // A client that looped would come back within 10 ms, again and again.
  const conn = connect("/guarded", { reconnect: { initialDelay: 10, maxDelay: 20 } });
  const closed = new Promise((resolve) =>
    conn.onState((s) => {
      states.push([s.state, s.code ?? null, s.forGood ?? false]);
      if (s.state === "closed") resolve();
    })
  );
  await closed;
  let rejected = null;
  try {
    await conn.opened();
  } catch (e) {
    rejected = e.name;
  }
  return { states, state: conn.state, rejected };
}"""


@pytest.mark.e2e
@pytest.mark.live
def test_request_resolves_with_the_reply_and_a_refusal_does_not_loop() -> None:
    require_browser()
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    app = App(controllers=[ClientController])
    REFUSED.clear()
    with live_server_in_thread(app) as running, sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = new_page(browser, problems)
            page.goto(f"{running.url}/")
            result = page.evaluate(REQUESTS)
            assert result == {
                "sum": {"sum": 5},
                "error": {"code": 1008, "type": "int_parsing", "loc": ["body", "a"]},
                "after": {"sum": 42},
                "state": "closed",
            }
            refused = page.evaluate(REFUSAL)
            # triows accepts a relayed refusal (with the subprotocol triows.refused) to close it
            # with 4403: the page never sees it open, it is closed for good, never tried again.
            assert refused == {
                "states": [
                    ["connecting", None, False],
                    ["closed", 4403, True],
                ],
                "state": "closed",
                "rejected": "ConnectionClosedError",
            }
            assert REFUSED == ["/guarded"]  # one handshake, not one per back-off
        finally:
            browser.close()
    # The refused handshake is a 403 the browser never sees; nothing else went wrong.
    assert problems == []
