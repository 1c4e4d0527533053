"""Typed events (``@ws_route.on``): dispatch, replies with correlation ids, the error policy.

Exact frames and close codes, in process; the same routes over hypercorn are in
``test_events_live.py``.
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_pascal
from support import connected, error_records, next_close

from triows import (
    App,
    CloseCode,
    ConfigurationError,
    Controller,
    ControllerBase,
    Query,
    WebSocket,
    WsBody,
    ws_route,
)


class Say(BaseModel):
    event: Literal["say"]
    text: Annotated[str, Field(min_length=1, max_length=20)]


class Typing(BaseModel):
    """A model that does not declare its event: ``@ws_route.on(..., event="typing")`` names it."""

    on: bool


class Move(BaseModel):
    event: Literal["move", "jump"]
    x: int = 0


class Said(BaseModel):
    event: Literal["said"] = "said"
    text: str


#: What the event handlers saw, per connection name: (event, the model's class, model_dump()).
SEEN: dict[str, list[tuple[str, type, dict[str, Any]]]] = {}


@Controller("")
class EventsController(ControllerBase):
    @ws_route("/room/{room}", use_extra_handler=True, on_invalid="reply")
    async def room(self, websocket: WebSocket, room: str, name: str = Query()) -> None:
        """Runs once, when a connection has opened."""
        SEEN[name] = []
        await websocket.send_json({"joined": room})

    @ws_route.on(room)
    async def say(self, message: Say, room: str, name: str) -> Said:
        """Someone says something: the reply echoes it."""
        SEEN[name].append(("say", type(message), message.model_dump()))
        return Said(text=f"{name}@{room}: {message.text}")

    @ws_route.on(room, event="typing")
    async def typing_(self, message: Typing, name: str) -> None:
        SEEN[name].append(("typing", type(message), message.model_dump()))

    @ws_route.on(room)
    async def move(self, message: Move, name: str) -> dict[str, int]:
        SEEN[name].append((message.event, type(message), message.model_dump()))
        return {"x": message.x}

    @ws_route("/strict", use_extra_handler=True)
    async def strict(self) -> None: ...

    @ws_route.on(strict)
    async def strict_say(self, message: Say) -> None: ...

    @ws_route("/typed", use_extra_handler=True, discriminator="type")
    async def typed(self) -> None: ...

    @ws_route.on(typed, event="typing")
    async def typed_typing(self, message: Typing) -> Typing:
        return message


APP = App(controllers=[EventsController])


async def test_each_event_reaches_its_handler_as_its_model_with_the_handshake_values() -> None:
    async with connected(APP, "/room/r1?name=ann") as ws:
        assert await ws.receive_json() == {"joined": "r1"}  # the route's function, first
        await ws.send_json({"event": "say", "text": "hi"})
        assert await ws.receive_text() == '{"event":"said","text":"ann@r1: hi"}'
        await ws.send_json({"event": "typing", "on": True})  # no reply: nothing is sent
        await ws.send_json({"event": "jump", "x": 3})
        assert await ws.receive_text() == '{"x":3}'
    assert [(event, dump) for event, _, dump in SEEN["ann"]] == [
        ("say", {"event": "say", "text": "hi"}),
        ("typing", {"on": True}),  # neither the added event field nor ref
        ("jump", {"event": "jump", "x": 3}),
    ]
    assert all(
        issubclass(cls, model)
        for (_, cls, _), model in zip(SEEN["ann"], (Say, Typing, Move), strict=True)
    )


async def test_a_ref_gets_exactly_one_reply_frame_with_it() -> None:
    async with connected(APP, "/room/r1?name=bob") as ws:
        await ws.receive_json()
        await ws.send_json({"event": "say", "text": "hi", "ref": "q1"})
        assert await ws.receive_text() == (
            '{"ref":"q1","ok":true,"data":{"event":"said","text":"bob@r1: hi"}}'
        )
        await ws.send_json({"event": "typing", "on": False, "ref": 7})
        assert await ws.receive_text() == '{"ref":7,"ok":true,"data":null}'
        await ws.send_json({"event": "move", "ref": 8})
        assert await ws.receive_text() == '{"ref":8,"ok":true,"data":{"x":0}}'


async def test_an_unknown_event_gets_the_error_frame_with_its_ref() -> None:
    async with connected(APP, "/room/r1?name=cy") as ws:
        await ws.receive_json()
        await ws.send_json({"event": "shout", "ref": "q2"})
        frame = await ws.receive_json()
        assert frame == {
            "ref": "q2",
            "ok": False,
            "code": 1008,
            "errors": [
                {
                    "type": "union_tag_invalid",
                    "loc": ["body"],
                    "msg": "Input tag 'shout' found using 'event' does not match any of the "
                    "expected tags: 'say', 'typing', 'move', 'jump'",
                    "input": {"event": "shout", "ref": "q2"},
                    "ctx": {
                        "discriminator": "'event'",
                        "tag": "shout",
                        "expected_tags": "'say', 'typing', 'move', 'jump'",
                    },
                }
            ],
        }
        # on_invalid="reply": the connection stays open.
        await ws.send_json({"event": "say", "text": "still here"})
        assert (await ws.receive_json())["text"] == "cy@r1: still here"


async def test_a_message_that_fits_its_event_badly_is_located_under_body() -> None:
    async with connected(APP, "/room/r1?name=di") as ws:
        await ws.receive_json()
        await ws.send_json({"event": "say", "text": ""})
        frame = await ws.receive_json()
        assert frame["code"] == 1008
        assert "ref" not in frame
        assert "ok" not in frame
        assert [(e["type"], e["loc"]) for e in frame["errors"]] == [
            ("string_too_short", ["body", "say", "text"])
        ]
        await ws.send_json({"text": "no event", "ref": "q3"})
        frame = await ws.receive_json()
        assert (frame["ref"], frame["ok"]) == ("q3", False)
        assert [(e["type"], e["loc"]) for e in frame["errors"]] == [
            ("union_tag_not_found", ["body"])
        ]
        await ws.send_json(["not", "an", "object"])
        frame = await ws.receive_json()
        assert [(e["type"], e["loc"]) for e in frame["errors"]] == [("dict_type", ["body"])]


async def test_a_ref_that_is_not_a_string_or_integer_fails_the_message_and_is_not_echoed() -> None:
    async with connected(APP, "/room/r1?name=ed") as ws:
        await ws.receive_json()
        await ws.send_json({"event": "say", "text": "hi", "ref": {"nested": 1}})
        frame = await ws.receive_json()
        assert "ref" not in frame
        assert {tuple(e["loc"][:3]) for e in frame["errors"]} == {("body", "say", "ref")}
        await ws.send_json({"event": "say", "text": "hi", "ref": "x" * 129})
        frame = await ws.receive_json()
        assert "ref" not in frame
        assert frame["errors"][0]["loc"][:3] == ["body", "say", "ref"]


async def test_on_invalid_close_sends_the_frame_then_closes_1008() -> None:
    async with connected(APP, "/strict") as ws:
        await ws.send_json({"event": "yell", "ref": 1})
        frame = await ws.receive_json()
        assert (frame["ref"], frame["ok"], frame["code"]) == (1, False, 1008)
        assert frame["errors"][0]["type"] == "literal_error"  # one event: no union
        closed = await next_close(ws)
        assert (closed.code, closed.reason) == (
            CloseCode.POLICY_VIOLATION,
            "message failed validation",
        )


async def test_malformed_json_closes_1007_and_a_binary_json_frame_is_a_message() -> None:
    async with connected(APP, "/room/r1?name=fay") as ws:
        await ws.receive_json()
        await ws.send_bytes(json.dumps({"event": "say", "text": "bin", "ref": 1}).encode())
        assert (await ws.receive_json())["data"]["text"] == "fay@r1: bin"
        await ws.send_text("{not json")
        closed = await next_close(ws)
        assert closed.code == CloseCode.INVALID_PAYLOAD
        assert closed.reason.startswith("invalid JSON: ")


async def test_the_discriminator_is_the_routes_choice() -> None:
    async with connected(APP, "/typed") as ws:
        await ws.send_json({"type": "typing", "on": True, "ref": "t"})
        assert await ws.receive_text() == '{"ref":"t","ok":true,"data":{"on":true}}'
        await ws.send_json({"event": "typing", "on": True})
        frame = await ws.receive_json()
        assert frame["errors"][0]["loc"] == ["body", "type"]


async def test_client_mistakes_are_not_server_errors(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with connected(APP, "/room/r1?name=gus") as ws:
        await ws.receive_json()
        await ws.send_json({"event": "nope"})
        await ws.receive_json()
        await ws.send_text("[")
        await next_close(ws)
    assert error_records(caplog, logging.WARNING) == []


async def test_a_failing_event_handler_is_a_server_error_closing_1011(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def boom(self: Any, message: Say) -> None:
        raise RuntimeError("boom")

    app = _app_with({"boom": (boom, None)})
    async with connected(app, raise_server_exceptions=False) as ws:
        await ws.send_json({"event": "say", "text": "x"})
        closed = await next_close(ws)
        assert (closed.code, closed.reason) == (CloseCode.INTERNAL_ERROR, "Internal Server Error")
    records = error_records(caplog)
    assert len(records) == 1
    assert "boom" in (records[0].exc_text or "")


def test_the_route_model_describes_the_events() -> None:
    route = APP.routes.websocket_route("room")
    assert (route.driver, route.discriminator) == ("events", "event")
    assert [(e.names, e.model, e.owner, e.reply, e.takes) for e in route.events] == [
        (("say",), Say, "EventsController.say", Said, ("room", "name")),
        (("typing",), Typing, "EventsController.typing_", None, ("name",)),
        (("move", "jump"), Move, "EventsController.move", dict[str, int], ("name",)),
    ]
    assert route.events[0].summary == "Someone says something: the reply echoes it."
    assert route.summary == "Runs once, when a connection has opened."
    say = route.events[0].wire.model_json_schema()
    assert set(say["properties"]) == {"event", "text", "ref"}
    typing_ = route.events[1].wire.model_json_schema()
    assert typing_["properties"]["event"] == {"const": "typing", "title": "Event", "type": "string"}
    assert typing_["required"] == ["on", "event"]


# -- misconfiguration fails when the app is built, naming the handler ----------------------


def _app_with(events: dict[str, tuple[Any, str | None]], ws: Any = None, **route: Any) -> App:
    """An app whose one route ``/ws`` has the event handlers ``events`` (name: (fn, event))."""

    async def default(self: Any, room: str = Query("")) -> None: ...

    default.__name__ = default.__qualname__ = "ws"
    namespace: dict[str, Any] = {}
    endpoint = ws_route("/ws", use_extra_handler=True, **route)(ws or default)
    namespace["ws"] = endpoint
    for name, (fn, event) in events.items():
        fn.__name__ = fn.__qualname__ = name
        namespace[name] = ws_route.on(endpoint, event)(fn)
    controller = type("Broken", (ControllerBase,), namespace)
    return App(controllers=[Controller("")(controller)])


async def _takes_say(self: Any, message: Say) -> None: ...


async def _takes_say_too(self: Any, message: Say) -> None: ...


async def _takes_typing(self: Any, message: Typing) -> None: ...


async def _takes_dict(self: Any, message: dict[str, Any]) -> None: ...


async def _takes_unknown(self: Any, message: Say, nobody: str) -> None: ...


class WithRef(BaseModel):
    event: Literal["x"]
    ref: str


class FreeEvent(BaseModel):
    event: str


async def _takes_with_ref(self: Any, message: WithRef) -> None: ...


async def _takes_free(self: Any, message: FreeEvent) -> None: ...


@pytest.mark.parametrize(
    ("events", "route", "message"),
    [
        (
            {"on_typing": (_takes_typing, None)},
            {},
            "the event handler on_typing of Broken.ws: Typing has no 'event' field to say which "
            "event it is: declare 'event: Literal[\"...\"]' in it, or name the event "
            '(@ws_route.on(route, event="..."))',
        ),
        (
            {"a": (_takes_say, None), "b": (_takes_say_too, None)},
            {},
            "Broken.ws: event 'say' has two handlers, a and b",
        ),
        (
            {"on_say": (_takes_say, "shout")},
            {},
            "the event handler on_say of Broken.ws: event='shout', but Say.event is "
            "typing.Literal['say']",
        ),
        (
            {"on_dict": (_takes_dict, None)},
            {},
            "the event handler on_dict of Broken.ws: its first parameter 'message' must be "
            "annotated with a pydantic model (the message), got dict[str, typing.Any]",
        ),
        (
            {"on_say": (_takes_unknown, None)},
            {},
            "the event handler on_say of Broken.ws takes 'nobody', which the route does not "
            "have (its handshake parameters: room)",
        ),
        (
            {"on_x": (_takes_with_ref, None)},
            {},
            "the event handler on_x of Broken.ws: WithRef declares 'ref', the field triows "
            "reads as the correlation id of a request; rename it",
        ),
        (
            {"on_free": (_takes_free, None)},
            {},
            "the event handler on_free of Broken.ws: FreeEvent.event must be a Literal of "
            "strings (the event's name), got <class 'str'>",
        ),
        (
            {"on_say": (_takes_say, None)},
            {"encoding": "text"},
            "Broken.ws: event handlers read JSON messages; use encoding='json', not 'text'",
        ),
    ],
)
def test_misconfigured_events_fail_the_build(
    events: dict[str, tuple[Any, str | None]], route: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        _app_with(events, **route)
    assert str(raised.value) == message


def test_an_event_route_cannot_also_take_a_ws_body() -> None:
    async def ws(self: Any, data: str = WsBody()) -> None: ...

    with pytest.raises(ConfigurationError) as raised:
        _app_with({"on_say": (_takes_say, None)}, ws)
    assert str(raised.value) == (
        "Broken.ws: a route with @ws_route.on event handlers gets its messages in "
        "them, not in WsBody() 'data'; the route's function runs once, when a connection opens"
    )


def test_events_need_an_extra_handler_route() -> None:
    async def plain(self: Any, websocket: WebSocket) -> None: ...

    endpoint = ws_route("/ws")(plain)
    with pytest.raises(ConfigurationError) as raised:
        ws_route.on(endpoint)
    assert "is not a websocket route with use_extra_handler=True" in str(raised.value)

    extra = ws_route("/ws", use_extra_handler=True)(plain)

    def not_async(self: Any, message: Say) -> None: ...

    with pytest.raises(ConfigurationError, match="must be 'async def'"):
        ws_route.on(extra)(not_async)


# -- inherited routes: each controller has the event handlers it declares or inherits -------


class Ping(BaseModel):
    event: Literal["ping"]


class Hello(BaseModel):
    event: Literal["hello"]


class RoomBase(ControllerBase):
    @ws_route("/ws", use_extra_handler=True)
    async def room(self) -> None: ...

    @ws_route.on(room)
    async def ping(self, message: Ping) -> str:
        return f"base ping ({type(self).__name__})"


@Controller("/a")
class RoomA(RoomBase):
    @ws_route.on(RoomBase.room)
    async def hello(self, message: Hello) -> str:
        return f"A hello ({type(self).__name__})"


@Controller("/b")
class RoomB(RoomBase):
    async def ping(self, message: Ping) -> str:  # an undecorated override: no ping on /b
        return "never"

    @ws_route.on(RoomBase.room)
    async def hello(self, message: Hello) -> str:
        return f"B hello ({type(self).__name__})"


async def test_an_inherited_route_has_its_controllers_event_handlers_only() -> None:
    app = App(controllers=[RoomA, RoomB])
    names = {r.owner: [e.names for e in r.events] for r in app.routes.websocket}
    assert names == {"RoomA.room": [("ping",), ("hello",)], "RoomB.room": [("hello",)]}
    async with connected(app, "/a/ws") as ws:
        await ws.send_json({"event": "hello", "ref": 1})
        assert await ws.receive_json() == {"ref": 1, "ok": True, "data": "A hello (RoomA)"}
        await ws.send_json({"event": "ping", "ref": 2})
        assert await ws.receive_json() == {"ref": 2, "ok": True, "data": "base ping (RoomA)"}
    async with connected(app, "/b/ws") as ws:
        await ws.send_json({"event": "hello", "ref": 1})
        assert await ws.receive_json() == {"ref": 1, "ok": True, "data": "B hello (RoomB)"}
        await ws.send_json({"event": "ping", "ref": 2})
        assert (await ws.receive_json())["errors"][0]["type"] == "literal_error"


class Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_pascal, populate_by_name=False)
    text_body: str


class OtherCamel(BaseModel):
    model_config = ConfigDict(alias_generator=to_pascal)
    count: int


async def test_fields_triows_adds_keep_their_names_whatever_the_models_aliases() -> None:
    async def camel(self: Any, message: Camel) -> str:
        return message.text_body

    async def other(self: Any, message: OtherCamel) -> int:
        return message.count

    app = _app_with({"camel": (camel, "camel"), "other": (other, "other")})
    async with connected(app) as ws:
        await ws.send_json({"event": "camel", "ref": 1, "TextBody": "hi"})
        assert await ws.receive_json() == {"ref": 1, "ok": True, "data": "hi"}
        await ws.send_json({"event": "other", "ref": 2, "Count": 3})
        assert await ws.receive_json() == {"ref": 2, "ok": True, "data": 3}
