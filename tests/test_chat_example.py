"""The multi-room chat example (``examples/chat``): its wire protocol, frame by frame.

The protocol is documented in ``docs/channels.md`` ("The chat example and its protocol"); these
tests hold it to its exact frames. Each test builds its own app (``create_app``), so rooms and
their history start empty. The browser test is ``tests/e2e/test_chat_browser.py``.
"""

from __future__ import annotations

import json
import runpy
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import trio
from live import Server, command, open_websocket
from support import client_for, next_close, refusal

from examples.chat.app import create_app
from triows import App, ConfigurationError
from triows.testing import AsyncTestClient, AsyncWebSocketTestSession, TestClient

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "chat"
STATIC = EXAMPLE / "static"


@asynccontextmanager
async def member(
    client: AsyncTestClient, name: str, room: str = "blue", since: str | None = None
) -> AsyncIterator[AsyncWebSocketTestSession]:
    """A connection to ``room`` as ``name`` (``since=`` when given)."""
    query = f"name={quote(name)}" + (f"&since={quote(since)}" if since is not None else "")
    async with client.websocket_connect(f"/chat/{room}/ws?{query}") as ws:
        yield ws


def state(*names: str) -> dict[str, Any]:
    return {"event": "presence_state", "members": sorted(names)}


def diff(joins: tuple[str, ...] = (), leaves: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"event": "presence_diff", "joins": list(joins), "leaves": list(leaves)}


def message(message_id: str, name: str, text: str, room: str = "blue") -> dict[str, Any]:
    return {"id": message_id, "event": "message", "room": room, "name": name, "text": text}


def say(text: str) -> dict[str, str]:
    return {"event": "say", "text": text}


def order(message_id: str) -> int:
    """The offset of an id of the memory backend (``EPOCH:N``): to check they increase."""
    return int(message_id.rsplit(":", 1)[1])


# -- the pages -----------------------------------------------------------------------------------


def assert_no_remote_urls(text: str) -> None:
    assert "http://" not in text
    assert "https://" not in text
    assert "//cdn" not in text.lower()


def test_the_room_page_is_html_with_its_script_and_websocket_path() -> None:
    with TestClient(create_app()) as client:
        page = client.get("/chat/blue")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    text = page.text
    assert '<script type="module" src="/static/chat.js"></script>' in text
    assert '<link rel="stylesheet" href="/static/chat.css">' in text
    assert '<link rel="icon" href="data:,">' in text
    assert 'data-ws-path="/chat/blue/ws"' in text
    assert '<ul id="members"' in text
    assert '<ul id="messages"' in text
    assert '<textarea id="text"' in text
    assert '<form id="name-form"' in text  # the script shows it when the URL has no ?name=
    assert_no_remote_urls(text)


@pytest.mark.parametrize("room", ["Blue", "a_b", "x" * 33, "caf%C3%A9"])
def test_the_page_of_an_invalid_room_is_422(room: str) -> None:
    with TestClient(create_app()) as client:
        page = client.get(f"/chat/{room}")
    assert page.status_code == 422
    assert page.json()["detail"][0]["loc"] == ["path", "room"]


@pytest.mark.parametrize(
    ("name", "content_type"),
    [("chat.js", "text/javascript; charset=utf-8"), ("chat.css", "text/css; charset=utf-8")],
)
def test_the_static_assets_are_served(name: str, content_type: str) -> None:
    with TestClient(create_app()) as client:
        asset = client.get(f"/static/{name}")
    assert asset.status_code == 200
    assert asset.headers["content-type"] == content_type
    assert asset.content == (STATIC / name).read_bytes()
    assert_no_remote_urls(asset.text)


def test_the_script_writes_user_text_with_text_content_only() -> None:
    lines = (STATIC / "chat.js").read_text().splitlines()
    script = "\n".join(line for line in lines if not line.lstrip().startswith("//"))
    assert "innerHTML" not in script
    assert "insertAdjacentHTML" not in script
    assert "document.write" not in script
    assert "textContent" in script


def test_the_lobby_leads_to_a_room() -> None:
    with TestClient(create_app()) as client:
        lobby = client.get("/chat")
        assert lobby.status_code == 200
        assert '<form id="lobby-form"' in lobby.text
        assert 'action="/chat"' in lobby.text
        assert 'id="error"' not in lobby.text
        assert_no_remote_urls(lobby.text)

        entered = client.get("/chat", params={"room": " Blue ", "name": " ann "})
        assert (entered.status_code, entered.headers["location"]) == (303, "/chat/blue?name=ann")
        nameless = client.get("/chat", params={"room": "green"})
        assert (nameless.status_code, nameless.headers["location"]) == (303, "/chat/green")
        spaced = client.get("/chat", params={"room": "blue", "name": "ann & bob"})
        assert spaced.headers["location"] == "/chat/blue?name=ann+%26+bob"

        wrong = client.get("/chat", params={"room": "no_such room", "name": "<ann>"})
        assert wrong.status_code == 200
        assert 'id="error"' in wrong.text
        assert 'value="&lt;ann&gt;"' in wrong.text  # escaped by the template

        home = client.get("/")
        assert (home.status_code, home.headers["location"]) == (307, "/chat")


# -- presence ------------------------------------------------------------------------------------


async def test_presence_state_comes_first_then_diffs_as_members_come_and_go() -> None:
    async with client_for(create_app()) as client, member(client, "ann") as ann:
        assert await ann.receive_json() == state("ann")
        async with member(client, "bob") as bob:
            assert await bob.receive_json() == state("ann", "bob")
            assert await ann.receive_json() == diff(joins=("bob",))
            async with member(client, "carol") as carol:
                assert await carol.receive_json() == state("ann", "bob", "carol")
                assert await ann.receive_json() == diff(joins=("carol",))
                assert await bob.receive_json() == diff(joins=("carol",))
            assert await ann.receive_json() == diff(leaves=("carol",))
            assert await bob.receive_json() == diff(leaves=("carol",))
            await bob.assert_no_message()  # nobody is told of their own join
        assert await ann.receive_json() == diff(leaves=("bob",))
        await ann.assert_no_message()


async def test_a_name_is_trimmed() -> None:
    async with client_for(create_app()) as client, member(client, "  ann\t") as ann:
        assert await ann.receive_json() == state("ann")
        await ann.send_json(say("hi"))
        assert (await ann.receive_json())["name"] == "ann"


async def test_two_connections_with_one_name_are_one_member() -> None:
    async with client_for(create_app()) as client, member(client, "ann") as ann:
        assert await ann.receive_json() == state("ann")
        async with member(client, "bob") as bob:
            assert await bob.receive_json() == state("ann", "bob")
            assert await ann.receive_json() == diff(joins=("bob",))
            async with member(client, "bob") as second_tab:
                assert await second_tab.receive_json() == state("ann", "bob")
            await ann.assert_no_message()  # bob is still there
        assert await ann.receive_json() == diff(leaves=("bob",))


# -- messages ------------------------------------------------------------------------------------


async def test_messages_reach_every_member_the_sender_included_in_publish_order() -> None:
    async with client_for(create_app()) as client, member(client, "ann") as ann:
        assert await ann.receive_json() == state("ann")
        async with member(client, "bob") as bob:
            assert await bob.receive_json() == state("ann", "bob")
            assert await ann.receive_json() == diff(joins=("bob",))
            for n in range(3):
                await ann.send_json(say(f"ann {n}"))
                await bob.send_json(say(f"bob {n}\nsecond line"))
            raw_ann = [await ann.receive_text() for _ in range(6)]
            raw_bob = [await bob.receive_text() for _ in range(6)]
            await ann.assert_no_message()
            await bob.assert_no_message()

    assert raw_ann == raw_bob  # the very same frames, in the same order
    assert all(raw.startswith('{"id":') for raw in raw_ann)  # "id" first
    got = [json.loads(raw) for raw in raw_ann]
    ids = [frame["id"] for frame in got]
    assert [order(i) for i in ids] == sorted(order(i) for i in ids)
    assert len(set(ids)) == 6
    assert got == [
        message(i, frame["name"], frame["text"]) for i, frame in zip(ids, got, strict=True)
    ]
    # Each one's messages in the order it sent them, all of them.
    assert [f["text"] for f in got if f["name"] == "ann"] == ["ann 0", "ann 1", "ann 2"]
    assert [f["text"] for f in got if f["name"] == "bob"] == [
        f"bob {n}\nsecond line" for n in range(3)
    ]


async def test_a_message_is_text_as_it_was_written() -> None:
    text = '<script>alert("x")</script> & ünïcødé 🎉'
    async with client_for(create_app()) as client, member(client, "<b>ann</b>") as ann:
        assert await ann.receive_json() == state("<b>ann</b>")
        await ann.send_json(say(text))
        got = await ann.receive_json()
        assert got == message(got["id"], "<b>ann</b>", text)


async def test_rooms_are_apart() -> None:
    async with client_for(create_app()) as client, member(client, "ann", "blue") as ann:
        assert await ann.receive_json() == state("ann")
        async with member(client, "bob", "green") as bob:
            assert await bob.receive_json() == state("bob")
            await bob.send_json(say("green only"))
            got = await bob.receive_json()
            assert got == message(got["id"], "bob", "green only", room="green")
            await ann.assert_no_message()


async def test_2000_characters_are_a_message() -> None:
    async with client_for(create_app()) as client, member(client, "ann") as ann:
        assert await ann.receive_json() == state("ann")
        await ann.send_json(say("x" * 2000))
        assert (await ann.receive_json())["text"] == "x" * 2000


@pytest.mark.parametrize(
    ("sent", "loc", "error_type"),
    [
        (say("x" * 2001), ["body", "text"], "string_too_long"),
        (say(""), ["body", "text"], "string_too_short"),
        ({"event": "say"}, ["body", "text"], "missing"),
        ({"event": "say", "text": 42}, ["body", "text"], "string_type"),
        ({"event": "shout", "text": "hi"}, ["body", "event"], "literal_error"),
        ({"text": "hi"}, ["body", "event"], "missing"),
        (["say", "hi"], ["body"], "model_type"),
    ],
    ids=["2001-characters", "empty", "no-text", "text-not-a-string", "other-event", "no-event",
         "not-an-object"],
)  # fmt: skip
async def test_an_invalid_message_gets_the_error_frame_and_the_connection_stays(
    sent: Any, loc: list[str], error_type: str
) -> None:
    async with client_for(create_app()) as client, member(client, "ann") as ann:
        assert await ann.receive_json() == state("ann")
        async with member(client, "bob") as bob:
            assert await bob.receive_json() == state("ann", "bob")
            assert await ann.receive_json() == diff(joins=("bob",))
            await bob.send_json(sent)
            error = await bob.receive_json()
            assert set(error) == {"code", "errors"}
            assert error["code"] == 1008
            assert [(e["loc"], e["type"]) for e in error["errors"]] == [(loc, error_type)]
            await ann.assert_no_message()  # nothing was published
            await bob.send_json(say("still here"))  # still connected
            got = await bob.receive_json()
            assert got == message(got["id"], "bob", "still here")
            assert await ann.receive_json() == got


async def test_a_frame_that_is_not_json_closes_1007() -> None:
    async with client_for(create_app()) as client, member(client, "ann") as ann:
        assert await ann.receive_json() == state("ann")
        await ann.send_text("hi")
        closed = await next_close(ann)
        assert closed.code == 1007


# -- the handshake -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    ["", "?name=", "?name=%20%20%20", "?name=" + "x" * 33, "?name=a%0Ab", "?name=a%00"],
    ids=["no-name", "empty", "blank", "33-characters", "newline", "nul"],
)
async def test_an_invalid_name_is_refused_with_422(query: str) -> None:
    async with client_for(create_app()) as client:
        denied = await refusal(client, f"/chat/blue/ws{query}")
    assert denied.status_code == 422
    assert [error["loc"] for error in json.loads(denied.body)["detail"]] == [["query", "name"]]


async def test_a_name_of_32_characters_is_welcome() -> None:
    async with client_for(create_app()) as client, member(client, "é" * 32) as ws:
        assert await ws.receive_json() == state("é" * 32)


@pytest.mark.parametrize("room", ["Blue", "a_b", "x" * 33, "caf%C3%A9", "a%20b"])
async def test_an_invalid_room_is_refused_with_422(room: str) -> None:
    async with client_for(create_app()) as client:
        denied = await refusal(client, f"/chat/{room}/ws?name=ann")
    assert denied.status_code == 422
    detail = json.loads(denied.body)["detail"]
    assert [error["loc"] for error in detail] == [["path", "room"]]


async def test_a_since_over_64_characters_is_refused_with_422() -> None:
    async with client_for(create_app()) as client:
        denied = await refusal(client, "/chat/blue/ws?name=ann&since=" + "1" * 65)
    assert denied.status_code == 422


# -- reconnecting ------------------------------------------------------------------------------


async def test_a_member_coming_back_since_an_id_gets_what_it_missed_once() -> None:
    async with client_for(create_app()) as client, member(client, "ann") as ann:
        assert await ann.receive_json() == state("ann")
        async with member(client, "bob") as bob:
            assert await bob.receive_json() == state("ann", "bob")
            assert await ann.receive_json() == diff(joins=("bob",))
            await ann.send_json(say("before"))
            seen = (await bob.receive_json())["id"]
            assert (await ann.receive_json())["id"] == seen
        assert await ann.receive_json() == diff(leaves=("bob",))
        missed = []
        for text in ("one", "two"):
            await ann.send_json(say(text))
            missed.append(await ann.receive_json())

        async with member(client, "bob", since=seen) as bob:
            assert await bob.receive_json() == state("ann", "bob")
            assert [await bob.receive_json() for _ in missed] == missed
            assert await ann.receive_json() == diff(joins=("bob",))
            await ann.send_json(say("live"))
            live = await bob.receive_json()
            assert live == message(live["id"], "ann", "live")
            assert order(live["id"]) == order(missed[-1]["id"]) + 1
            await bob.assert_no_message()  # nothing twice


async def test_a_member_coming_back_since_the_last_id_gets_nothing_again() -> None:
    async with client_for(create_app()) as client, member(client, "ann") as ann:
        assert await ann.receive_json() == state("ann")
        await ann.send_json(say("hi"))
        last = (await ann.receive_json())["id"]
        async with member(client, "ann", since=last) as again:
            assert await again.receive_json() == state("ann")
            await again.assert_no_message()


@pytest.mark.parametrize("since", ["nope", "00000000:1"], ids=["not-an-id", "another-history"])
async def test_a_member_coming_back_since_an_unknown_id_gets_a_gap(since: str) -> None:
    async with client_for(create_app()) as client, member(client, "ann") as ann:
        assert await ann.receive_json() == state("ann")
        await ann.send_json(say("hi"))
        await ann.receive_json()
        async with member(client, "bob", since=since) as bob:
            assert await bob.receive_json() == state("ann", "bob")
            assert await bob.receive_json() == {
                "event": "gap",
                "topic": "room:blue",
                "since": since,
            }
            await bob.assert_no_message()


# -- the backend comes from the environment -------------------------------------------------------


def module_app() -> App:
    """``examples/chat/app.py``'s module-level ``app``, the module run afresh."""
    app = runpy.run_path(str(EXAMPLE / "app.py"))["app"]
    assert isinstance(app, App)
    return app


def test_the_channels_url_is_memory_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRIOWS_CHANNELS_URL", raising=False)
    assert module_app().config.CHANNELS_URL == "memory://"
    assert create_app().channels.url == "memory://"


def test_the_channels_url_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIOWS_CHANNELS_URL", "memory://")
    app = module_app()
    assert app.config.CHANNELS_URL == app.channels.url == "memory://"
    assert app.config.CHANNELS_HISTORY == {"room:*": 200}

    # Passed through as it is: a URL triows has no backend for is refused when the app is built.
    monkeypatch.setenv("TRIOWS_CHANNELS_URL", "nats://localhost:4222")
    with pytest.raises(ConfigurationError, match="nats://localhost:4222"):
        module_app()
    with pytest.raises(ConfigurationError, match="nats://localhost:4222"):
        create_app()
    assert create_app("memory://").channels.url == "memory://"  # an argument wins


# -- served as the README says ---------------------------------------------------------------


@pytest.mark.live
async def test_the_chat_under_triows_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``./scripts/run-chat`` runs: ``triows run examples.chat.app:app``."""
    monkeypatch.setenv("TRIOWS_CHANNELS_URL", "memory://")
    args = [sys.executable, "-m", "triows", "run", "examples.chat.app:app", "--port", "0"]
    with trio.fail_after(40):
        async with command(args, REPO) as running:
            server = Server(await running.url())
            with trio.fail_after(10):
                async with httpx.AsyncClient(base_url=server.url) as http:
                    page = await http.get("/chat/blue")
                    assert page.status_code == 200
                    assert '<script type="module" src="/static/chat.js"></script>' in page.text
                async with open_websocket(server, "/chat/blue/ws?name=ann") as ann:
                    assert await ann.get_message() == '{"event":"presence_state","members":["ann"]}'
                    await ann.send_message('{"event": "say", "text": "hi"}')
                    got = await ann.get_message()
                    assert isinstance(got, str)
                    assert got.startswith('{"id":"')
                    assert got.endswith(
                        '","event":"message","room":"blue","name":"ann","text":"hi"}'
                    )
            running.process.send_signal(signal.SIGTERM)
            await running.process.wait()
    assert running.process.returncode == 0


@pytest.mark.live
async def test_triows_run_refuses_a_channels_url_it_has_no_backend_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRIOWS_CHANNELS_URL", "nats://localhost:4222")
    args = [sys.executable, "-m", "triows", "run", "examples.chat.app:app", "--port", "0"]
    with trio.fail_after(40):
        async with command(args, REPO) as running:
            await running.process.wait()
    assert running.process.returncode != 0
    assert "nats://localhost:4222" in running.text()
