"""The AsyncAPI document: valid against the official 3.0.0 schema, true to the wire, and made
from the route model alone.

The chat example's document is checked against what its server really sends and receives:
every frame of a session is matched to the one message of the document whose payload schema
it fits.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import pytest
from asyncapi_schema import validate_asyncapi
from jsonschema import Draft202012Validator
from pydantic import BaseModel, ConfigDict
from support import TIMEOUT, client_for
from test_events import APP as EVENTS_APP
from test_events import EventsController, Say

from examples.chat.app import create_app
from triows import App, Controller, ControllerBase, Query, WebSocket, WsBody, ws_route
from triows._build import build_routes
from triows.asyncapi import AsyncAPI, document
from triows.channels import TopicMessage


def _payload_validator(doc: dict[str, Any], payload: dict[str, Any]) -> Draft202012Validator:
    """A validator of ``payload`` whose ``#/components/...`` references resolve in ``doc``."""
    return Draft202012Validator({**payload, "components": doc.get("components", {})})


def matching(doc: dict[str, Any], channel: str, action: str, frame: Any) -> list[str]:
    """The messages of ``channel`` that ``action`` operations carry and ``frame`` fits."""
    ids = {
        ref["$ref"].rsplit("/", 1)[1]
        for operation in doc["operations"].values()
        if operation["channel"]["$ref"] == f"#/channels/{channel}"
        for key in ("messages",)
        for ref in (
            operation[key]
            if operation["action"] == action
            else operation.get("reply", {}).get("messages", [])
            if action == "send"
            else []
        )
    }
    messages = doc["channels"][channel]["messages"]
    return sorted(
        mid for mid in ids if _payload_validator(doc, messages[mid]["payload"]).is_valid(frame)
    )


def test_the_chat_documents_every_message_of_its_wire_protocol() -> None:
    doc = create_app("memory://").asyncapi_document()
    validate_asyncapi(doc)
    channel = doc["channels"]["room_ws"]
    assert channel["address"] == "/chat/{room}/ws"
    assert set(channel["parameters"]) == {"room"}
    assert channel["parameters"]["room"]["description"] == (
        "Path parameter: type string, pattern ^[a-z0-9-]{1,32}$."
    )
    query = channel["bindings"]["ws"]["query"]
    assert (set(query["properties"]), query["required"]) == ({"name", "since"}, ["name"])
    receives = {
        op["messages"][0]["$ref"].rsplit("/", 1)[1]
        for op in doc["operations"].values()
        if op["action"] == "receive"
    }
    sends = {
        op["messages"][0]["$ref"].rsplit("/", 1)[1]
        for op in doc["operations"].values()
        if op["action"] == "send"
    }
    assert receives == {"say"}
    assert sends == {"presence_state", "message", "presence_diff", "gap", "invalid"}
    replies = {
        op["reply"]["messages"][0]["$ref"].rsplit("/", 1)[1]
        for op in doc["operations"].values()
        if "reply" in op
    }
    assert replies == {"say_reply"}


async def test_every_frame_of_a_chat_session_fits_exactly_one_documented_message() -> None:
    app = create_app("memory://")
    doc = app.asyncapi_document()
    sent_by_clients = [
        {"event": "say", "text": "hello"},
        {"event": "say", "text": "again", "ref": 1},
        {"event": "say", "text": ""},  # invalid: the error frame, and the room stays open
    ]
    async with client_for(app, within=TIMEOUT * 2) as client:
        async with client.websocket_connect("/chat/lobby/ws?name=ann") as ann:
            seen = [await ann.receive_json()]  # presence_state
            async with client.websocket_connect("/chat/lobby/ws?name=bob") as bob:
                seen.append(await bob.receive_json())  # bob's presence_state
                seen.append(await ann.receive_json())  # ann: presence_diff (bob joined)
                for frame in sent_by_clients:
                    assert matching(doc, "room_ws", "receive", frame) == (
                        ["say"] if frame["text"] else []
                    )
                    await bob.send_json(frame)
                # 2 messages, the reply to the one with a ref, the error frame
                seen += [await bob.receive_json() for _ in range(4)]
                seen += [await ann.receive_json() for _ in range(2)]  # the 2 messages
            seen.append(await ann.receive_json())  # presence_diff (bob left)
        async with client.websocket_connect("/chat/lobby/ws?name=cy&since=bogus") as cy:
            seen.append(await cy.receive_json())  # presence_state
            seen.append(await cy.receive_json())  # gap: that id is no id of this room
    kinds = [
        frame.get("event") or ("say_reply" if frame.get("ok") else "invalid") for frame in seen
    ]
    assert kinds == [
        "presence_state",
        "presence_state",
        "presence_diff",
        "message",
        "message",
        "say_reply",
        "invalid",
        "message",
        "message",
        "presence_diff",
        "presence_state",
        "gap",
    ]
    for frame, kind in zip(seen, kinds, strict=True):
        assert matching(doc, "room_ws", "send", frame) == [kind], frame


def test_the_document_is_made_from_the_route_model_alone() -> None:
    # The endpoints the app serves are built from its route table, one for one.
    served = [route.endpoint.route for route in EVENTS_APP.websocket_router.routes]
    assert served == list(EVENTS_APP.routes.websocket)
    assert all(a is b for a, b in zip(served, EVENTS_APP.routes.websocket, strict=True))
    # A table compiled again from the same declarations gives the same document...
    again = build_routes(
        [EventsController], [], EVENTS_APP.container, EVENTS_APP.config, lambda *_: None
    )
    assert again is not EVENTS_APP.routes
    assert document(again) == document(EVENTS_APP.routes) == EVENTS_APP.asyncapi_document()
    # ... and the document follows the table, not the app: drop a route's events from it.
    room = EVENTS_APP.routes.websocket_route("room")
    changed = dataclasses.replace(
        EVENTS_APP.routes,
        websocket=tuple(
            dataclasses.replace(r, events=r.events[:1]) if r is room else r
            for r in EVENTS_APP.routes.websocket
        ),
    )
    messages = document(changed)["channels"]["room"]["messages"]
    assert set(messages) == {"say", "say_reply", "invalid"}
    assert set(document(EVENTS_APP.routes)["channels"]["room"]["messages"]) == {
        "say",
        "say_reply",
        "typing",
        "typing_reply",
        "move",
        "move_reply",
        "invalid",
    }


async def test_served_with_the_server_it_was_fetched_from() -> None:
    async with client_for(EVENTS_APP) as client:
        response = await client.get("/asyncapi.json", headers={"host": "chat.example:8443"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body)[:3] == ["asyncapi", "info", "servers"]
    assert body.pop("servers") == {"this": {"host": "chat.example:8443", "protocol": "ws"}}
    assert body == EVENTS_APP.asyncapi_document()
    validate_asyncapi(response.json())


class Hello(BaseModel):
    event: Literal["hello"]


@Controller("")
class SmallController(ControllerBase):
    @ws_route("/plain")
    async def plain(self, websocket: WebSocket, token: str = Query()) -> None: ...

    @ws_route("/json", use_extra_handler=True, sends=[Hello])
    async def json_body(self, data: Hello = WsBody()) -> None:
        """A one-model route."""


async def test_paths_title_and_the_off_switch() -> None:
    spec = AsyncAPI(title="Small", version="2.1", path="/docs/api.json", viewer=None)
    app = App(controllers=[SmallController], asyncapi=spec)
    async with client_for(app) as client:
        assert (await client.get("/asyncapi.json")).status_code == 404
        body = (await client.get("/docs/api.json")).json()
    assert body["info"] == {"title": "Small", "version": "2.1"}
    validate_asyncapi(body)
    assert set(body["channels"]) == {"plain", "json_body"}
    assert body["channels"]["plain"]["messages"] == {}  # a plain handler's messages are its own
    assert set(body["channels"]["json_body"]["messages"]) == {"message", "invalid", "hello"}
    off = App(controllers=[SmallController], asyncapi=False)
    async with client_for(off) as client:
        assert (await client.get("/asyncapi.json")).status_code == 404


def test_asyncapi_takes_a_spec_or_a_bool() -> None:
    with pytest.raises(Exception, match="asyncapi= takes an AsyncAPI"):
        App(controllers=[SmallController], asyncapi="yes")  # type: ignore[arg-type]


# -- shapes that once made the document lose parts of itself ---------------------------------


class Invalid(BaseModel):
    event: Literal["invalid"]  # the name of triows' own error message


class SayAgain(BaseModel):
    event: Literal["say"]  # sent by the server, named like an event it receives


class Dotted(BaseModel):
    event: Literal["chat.say"]


class Slashed(BaseModel):
    event: Literal["chat/say"]


class Post(TopicMessage):
    model_config = ConfigDict(extra="forbid")
    event: Literal["post"] = "post"
    text: str


class Opaque:
    """A class pydantic has no schema for."""


@Controller("/org/{org}")
class CollidingController(ControllerBase):
    @ws_route("/ws", use_extra_handler=True, sends=[SayAgain, Post])
    async def room(self) -> None: ...  # takes no {org}

    @ws_route.on(room)
    async def say(self, message: Say) -> None: ...

    @ws_route.on(room)
    async def invalid(self, message: Invalid) -> Opaque:
        return Opaque()

    @ws_route.on(room)
    async def dotted(self, message: Dotted):  # type: ignore[no-untyped-def]
        return 1

    @ws_route.on(room)
    async def slashed(self, message: Slashed) -> None: ...


def test_colliding_names_are_all_kept_and_the_document_stays_valid() -> None:
    doc = App(controllers=[CollidingController]).asyncapi_document()
    validate_asyncapi(doc)
    channel = doc["channels"]["room"]
    assert channel["parameters"] == {"org": {"description": "Path parameter."}}
    assert sorted(channel["messages"]) == sorted(
        [
            "invalid",  # triows' error frame keeps its name...
            "say",
            "say_reply",
            "invalid_2",
            "invalid_2_reply",  # ... and the event called invalid gets another
            "chat_say",
            "chat_say_reply",
            "chat_say_2",
            "chat_say_2_reply",
            "say_2",  # the sent SayAgain
            "post",
        ]
    )
    assert channel["messages"]["say"]["title"] == "Say"
    assert channel["messages"]["say_2"]["title"] == "SayAgain"
    assert len(doc["operations"]) == 4 + 1 + 2  # 4 receives, the error frame, 2 sends
    replies = {
        m: channel["messages"][m]["payload"]["properties"]["data"]
        for m in channel["messages"]
        if m.endswith("_reply")
    }
    assert replies["invalid_2_reply"]["description"].startswith("A value this document cannot")
    assert replies["chat_say_reply"] == {}  # unannotated: any value


def test_a_published_models_frame_fits_its_documented_payload_even_with_extra_forbid() -> None:
    doc = App(controllers=[CollidingController]).asyncapi_document()
    payload = doc["channels"]["room"]["messages"]["post"]["payload"]
    frame = {"id": "k2:7", "event": "post", "text": "hi"}  # as channels.publish() sends it
    assert _payload_validator(doc, payload).is_valid(frame)
    assert not _payload_validator(doc, payload).is_valid({**frame, "extra": 1})


async def test_a_malformed_host_header_still_gets_the_document() -> None:
    async with client_for(EVENTS_APP) as client:
        response = await client.get("/asyncapi.json", headers={"host": "["})
    assert response.status_code == 200
    assert response.json()["servers"] == {"this": {"host": "[", "protocol": "ws"}}
