"""Channels in one process (``memory://``): membership, fan-out, presence and history.

A chat room speaks the example's protocol (``docs/channels.md``); every frame is asserted
exactly, in order.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

import pytest
import trio
from pydantic import ConfigDict
from pydantic.alias_generators import to_camel
from support import TIMEOUT, client_for

from triows import (
    App,
    Channels,
    Controller,
    ControllerBase,
    Membership,
    Query,
    WebSocket,
    WebSocketStateError,
    post,
    ws_route,
)
from triows.channels import TopicMessage
from triows.testing import AsyncTestClient, AsyncWebSocketTestSession

#: What the handlers saw, for the tests that look at the server's side.
memberships: list[Membership] = []


@Controller("/chat")
class ChatController(ControllerBase):
    @ws_route("/{room}/ws")
    async def room(
        self,
        websocket: WebSocket,
        channels: Channels,
        room: str,
        name: str = Query(),
        since: str | None = Query(None),
        last: int = Query(0),
    ) -> None:
        await websocket.accept()
        joining = channels.join(f"room:{room}", websocket, presence=name, since=since, last=last)
        async with joining as joined:
            memberships.append(joined)
            async for said in websocket.iter_json():
                if said.get("event") == "leave":
                    await joined.leave()
                    await websocket.send_json({"event": "left", "active": joined.active})
                    continue
                message = {"event": "message", "room": room, "name": name, "text": said["text"]}
                await channels.publish(f"room:{room}", message)

    @post("/{room}/announce")
    async def announce(self, channels: Channels, room: str, text: str = Query()) -> Any:
        message_id = await channels.publish(f"room:{room}", {"event": "announcement", "text": text})
        return {"id": message_id, "members": len(channels.members(f"room:{room}"))}


@pytest.fixture(autouse=True)
def _forget() -> None:
    memberships.clear()


def chat_app(**config: Any) -> App:
    return App(controllers=[ChatController], config=config)


@asynccontextmanager
async def member(
    client: AsyncTestClient, room: str, name: str, since: str | None = None
) -> AsyncIterator[AsyncWebSocketTestSession]:
    query = f"name={name}" + (f"&since={since}" if since is not None else "")
    async with client.websocket_connect(f"/chat/{room}/ws?{query}") as ws:
        yield ws


def said(name: str, text: str, room: str = "blue", **extra: Any) -> dict[str, Any]:
    return {"event": "message", "room": room, "name": name, "text": text, **extra}


def state(*names: str) -> dict[str, Any]:
    return {"event": "presence_state", "members": sorted(names)}


def diff(joins: list[str] = [], leaves: list[str] = []) -> dict[str, Any]:  # noqa: B006
    return {"event": "presence_diff", "joins": joins, "leaves": leaves}


# -- fan-out and presence -----------------------------------------------------------------------


async def test_every_member_gets_every_message_in_order_the_sender_included() -> None:
    async with client_for(chat_app()) as client, member(client, "blue", "ann") as ann:
        assert await ann.receive_json() == state("ann")
        async with member(client, "blue", "bob") as bob:
            assert await bob.receive_json() == state("ann", "bob")
            assert await ann.receive_json() == diff(joins=["bob"])
            for n in range(3):
                await ann.send_json({"event": "say", "text": f"a{n}"})
                await bob.send_json({"event": "say", "text": f"b{n}"})
            ann_got = [await ann.receive_json() for _ in range(6)]
            bob_got = [await bob.receive_json() for _ in range(6)]
            await ann.assert_no_message()
            await bob.assert_no_message()
        assert await ann.receive_json() == diff(leaves=["bob"])  # bob's connection ended
    assert ann_got == bob_got  # one order for everyone
    assert [m for m in ann_got if m["name"] == "ann"] == [said("ann", f"a{n}") for n in range(3)]
    assert [m for m in ann_got if m["name"] == "bob"] == [said("bob", f"b{n}") for n in range(3)]


async def test_rooms_are_separate() -> None:
    async with (
        client_for(chat_app()) as client,
        member(client, "blue", "ann") as ann,
        member(client, "red", "bob") as bob,
    ):
        assert await ann.receive_json() == state("ann")
        assert await bob.receive_json() == state("bob")
        await ann.send_json({"event": "say", "text": "hi blue"})
        assert await ann.receive_json() == said("ann", "hi blue")
        await bob.assert_no_message()


async def test_a_key_with_two_connections_leaves_with_its_last() -> None:
    async with client_for(chat_app()) as client, member(client, "blue", "ann") as ann:
        assert await ann.receive_json() == state("ann")
        async with member(client, "blue", "bob") as bob_phone:
            assert await bob_phone.receive_json() == state("ann", "bob")
            assert await ann.receive_json() == diff(joins=["bob"])
            async with member(client, "blue", "bob") as bob_laptop:
                assert await bob_laptop.receive_json() == state("ann", "bob")
                await ann.assert_no_message()  # bob was there already
                await bob_phone.assert_no_message()
            await ann.assert_no_message()  # bob is still there, on his phone
        assert await ann.receive_json() == diff(leaves=["bob"])


async def test_the_membership_ends_with_the_connection_and_on_leave() -> None:
    app = chat_app()
    async with client_for(app) as client:
        async with member(client, "blue", "ann") as ann:
            assert await ann.receive_json() == state("ann")  # before bob comes
            async with member(client, "blue", "bob") as bob:
                assert await bob.receive_json() == state("ann", "bob")
                assert await ann.receive_json() == diff(joins=["bob"])
                assert len(app.channels.members("room:blue")) == 2
                await bob.send_json({"event": "leave"})
                assert await bob.receive_json() == {"event": "left", "active": False}
                assert await ann.receive_json() == diff(leaves=["bob"])
                assert app.channels.members("room:blue") == [memberships[0].websocket]
                assert await app.channels.presence("room:blue") == {"ann": [None]}
                await ann.send_json({"event": "say", "text": "still here"})
                assert await ann.receive_json() == said("ann", "still here")
                await bob.assert_no_message()  # not a member any more
        assert app.channels.members("room:blue") == []
        assert await app.channels.presence("room:blue") == {}
    assert [m.active for m in memberships] == [False, False]


async def test_anyone_may_publish_an_http_handler_say() -> None:
    async with client_for(chat_app()) as client, member(client, "blue", "ann") as ann:
        assert await ann.receive_json() == state("ann")
        response = await client.post("/chat/blue/announce", params={"text": "closing soon"})
        assert response.json() == {"id": None, "members": 1}  # no history: no id
        assert await ann.receive_json() == {"event": "announcement", "text": "closing soon"}


class Notice(TopicMessage):
    model_config = ConfigDict(alias_generator=to_camel)
    event: Literal["notice"] = "notice"
    said_by: str


async def test_a_published_model_is_written_by_alias_as_send_json_writes_it() -> None:
    app = chat_app()
    async with client_for(app) as client, member(client, "blue", "ann") as ann:
        assert await ann.receive_json() == state("ann")
        await app.channels.publish("room:blue", Notice(saidBy="the host"))
        assert await ann.receive_text() == '{"event":"notice","saidBy":"the host"}'


# -- history and recovery -----------------------------------------------------------------------

ID = re.compile(r"^[0-9a-f]{8}:\d+$")


async def test_with_history_each_message_has_an_id_and_a_member_catches_up_since_one() -> None:
    app = chat_app(CHANNELS_HISTORY={"room:*": 10})
    async with client_for(app) as client:
        async with member(client, "blue", "ann") as ann:
            assert await ann.receive_json() == state("ann")
            for n in range(3):
                await ann.send_json({"event": "say", "text": f"m{n}"})
            first, second, third = [await ann.receive_json() for _ in range(3)]
        assert all(ID.match(m["id"]) for m in (first, second, third))
        assert [m.pop("id") for m in (first, second, third)] != []
        seen = (await client.post("/chat/blue/announce", params={"text": "x"})).json()["id"]
        # bob saw up to the first message and comes back: he gets the rest, then live ones.
        async with member(client, "blue", "bob", since=first_id(app, 1)) as bob:
            assert await bob.receive_json() == state("bob")
            missed = [await bob.receive_json() for _ in range(3)]
            await bob.send_json({"event": "say", "text": "back"})
            live = await bob.receive_json()
    assert missed[-1]["id"] == seen
    assert [strip(m) for m in missed] == [
        said("ann", "m1"),
        said("ann", "m2"),
        {"event": "announcement", "text": "x"},
    ]
    assert strip(live) == said("bob", "back")
    assert memberships[-1].recovered is True


def first_id(app: App, n: int) -> str:
    """The id of the ``n``-th message (from 1) of ``room:blue`` in ``app``'s memory backend."""
    history = app.channels._backend._histories["room:blue"]  # type: ignore[attr-defined]
    return f"{history.epoch}:{n}"


def strip(message: dict[str, Any]) -> dict[str, Any]:
    assert ID.match(message.pop("id"))
    return message


@pytest.mark.parametrize(
    ("since", "why"),
    [
        ("older", "the history no longer holds what came after it"),
        ("other-epoch", "an id of another life of the history"),
        ("garbage", "not an id"),
        ("future", "an id the history has not reached"),
    ],
)
async def test_a_gap_that_cannot_be_filled_is_said_plainly(since: str, why: str) -> None:
    app = chat_app(CHANNELS_HISTORY={"room:*": 2})
    async with client_for(app) as client:
        async with member(client, "blue", "ann") as ann:
            assert await ann.receive_json() == state("ann")
            for n in range(5):
                await ann.send_json({"event": "say", "text": f"m{n}"})
            for _ in range(5):
                await ann.receive_json()
        asked = {
            "older": first_id(app, 1),  # 2..5 are gone but 4 and 5
            "other-epoch": "deadbeef:4",
            "garbage": "four",
            "future": first_id(app, 9),
        }[since]
        async with member(client, "blue", "bob", since=asked) as bob:
            assert await bob.receive_json() == state("bob")
            assert await bob.receive_json() == {
                "event": "gap",
                "topic": "room:blue",
                "since": asked,
            }, why
            await bob.assert_no_message()  # nothing partial follows
    assert memberships[-1].recovered is False


async def test_a_newcomer_gets_the_last_messages_first() -> None:
    app = chat_app(CHANNELS_HISTORY={"room:*": 10})
    async with client_for(app) as client:
        async with member(client, "blue", "ann") as ann:
            assert await ann.receive_json() == state("ann")
            for n in range(4):
                await ann.send_json({"event": "say", "text": f"m{n}"})
            for _ in range(4):
                await ann.receive_json()
        async with client.websocket_connect("/chat/blue/ws?name=bob&last=2") as bob:
            assert await bob.receive_json() == state("bob")
            recent = [strip(await bob.receive_json()) for _ in range(2)]
            await bob.send_json({"event": "say", "text": "hello"})
            assert strip(await bob.receive_json()) == said("bob", "hello")
        async with client.websocket_connect("/chat/red/ws?name=cy&last=5") as cy:
            assert await cy.receive_json() == state("cy")
            await cy.assert_no_message()  # a room without messages: nothing
    assert recent == [said("ann", "m2"), said("ann", "m3")]
    assert memberships[1].recovered is None  # it asked for no gap to be filled


async def test_catching_up_from_the_last_message_gives_nothing_and_recovers() -> None:
    app = chat_app(CHANNELS_HISTORY={"room:*": 2})
    async with client_for(app) as client:
        async with member(client, "blue", "ann") as ann:
            assert await ann.receive_json() == state("ann")
            await ann.send_json({"event": "say", "text": "only"})
            last = (await ann.receive_json())["id"]
        async with member(client, "blue", "bob", since=last) as bob:
            assert await bob.receive_json() == state("bob")
            await bob.assert_no_message()
    assert memberships[-1].recovered is True


# -- the service's contract ---------------------------------------------------------------------


async def test_joining_needs_an_accepted_connection_and_only_once() -> None:
    errors: list[str] = []

    @Controller("/")
    class Strict(ControllerBase):
        @ws_route("/ws")
        async def ws(self, websocket: WebSocket, channels: Channels) -> None:
            with pytest.raises(WebSocketStateError) as early:
                await channels.join("t", websocket)
            errors.append(str(early.value))
            await websocket.accept()
            await channels.join("t", websocket)
            with pytest.raises(WebSocketStateError) as twice:
                await channels.join("t", websocket)
            errors.append(str(twice.value))
            with pytest.raises(TypeError) as not_an_object:
                await channels.publish("t", ["a", "list"])  # type: ignore[arg-type]
            errors.append(str(not_an_object.value))
            await websocket.send_text("done")

    async with (
        client_for(App(controllers=[Strict])) as client,
        client.websocket_connect("/ws") as ws,
    ):
        assert await ws.receive_text() == "done"
    assert errors == [
        "joining 't' needs the websocket CONNECTED, but it is CONNECTING",
        "the websocket is a member of 't' already",
        "publish() takes a JSON object (a mapping or a pydantic model), got list",
    ]


async def test_the_handler_gets_the_apps_service() -> None:
    seen: list[Any] = []

    @Controller("/")
    class Look(ControllerBase):
        @ws_route("/ws")
        async def ws(self, websocket: WebSocket, channels: Channels) -> None:
            seen.append(channels)
            await websocket.accept()

    app = App(controllers=[Look])
    with trio.fail_after(TIMEOUT):
        async with AsyncTestClient(app) as client, client.websocket_connect("/ws"):
            pass
    assert seen == [app.channels]
