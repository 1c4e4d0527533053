"""A multi-room chat with presence, on triows' channels (``docs/channels.md``).

Run it from the repository root with ``./scripts/run-chat`` (or ``triows run
examples.chat.app:app``), then open http://127.0.0.1:8000/chat. The channels backend is
``TRIOWS_CHANNELS_URL`` (default ``memory://``: one process); with a backend every worker
shares, ``--workers 2`` works too.

The wire protocol is part of the example (``docs/channels.md``, "The chat example and its
protocol"):

* the page ``GET /chat/{room}``; the websocket ``/chat/{room}/ws?name=NAME`` (``&since=ID``
  after a reconnect);
* the client sends ``{"event": "say", "text": "..."}`` (1 to 2,000 characters), a typed event
  (``@ws_route.on``);
* the server sends ``presence_state`` first, then ``message`` frames (with ``id``, ``room``,
  ``name``, ``text``) to every member, the sender included, in publish order, and
  ``presence_diff`` frames when members come and go; an invalid message gets triows' error
  frame ``{"code": 1008, "errors": [...]}`` and the connection stays open.

Its AsyncAPI document, generated from these declarations, is served at ``/asyncapi.json`` and
shown at ``/asyncapi``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlencode

from pydantic import BaseModel, StringConstraints

from triows import (
    App,
    Channels,
    Controller,
    ControllerBase,
    Query,
    RedirectResponse,
    WebSocket,
    get,
    render,
    ws_route,
)
from triows import Path as PathParam
from triows.asyncapi import AsyncAPI
from triows.channels import Gap, PresenceDiff, PresenceState, TopicMessage

HERE = Path(__file__).resolve().parent

#: Where rooms meet when ``create_app`` is given no URL and the environment names none.
DEFAULT_CHANNELS_URL = "memory://"
#: How many messages each room keeps for a page that reconnects (``since=``).
HISTORY = 200

#: A room: lowercase letters, digits and dashes, 1 to 32 of them.
ROOM_PATTERN = r"^[a-z0-9-]{1,32}$"
Room = Annotated[str, PathParam(pattern=ROOM_PATTERN)]
#: A name: 1 to 32 characters once trimmed, no control characters.
Name = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=32, pattern=r"^[^\x00-\x1f\x7f]+$"
    ),
    Query(),
]
#: The id of the last message a reconnecting page saw (opaque; a bad one gets a ``gap``).
Since = Annotated[str | None, Query(max_length=64)]


class Say(BaseModel):
    """Say something to the room: every member gets it as a ``message``, the sender included."""

    event: Literal["say"]
    text: Annotated[str, StringConstraints(min_length=1, max_length=2000)]


class ChatMessage(TopicMessage):
    """What a member said, to every member of the room, in publish order."""

    event: Literal["message"] = "message"
    room: str
    name: str
    text: str


def topic(room: str) -> str:
    """The channels topic of a room."""
    return f"room:{room}"


@Controller("/chat")
class ChatController(ControllerBase):
    @get("")
    @render(template_name="lobby.html")
    async def lobby(
        self, room: str = Query(""), name: str = Query("")
    ) -> dict[str, str] | RedirectResponse:
        """The lobby's form; submitted (``?room=...&name=...``), it leads to the room."""
        room, name = room.strip().lower(), name.strip()
        if room and re.fullmatch(ROOM_PATTERN, room):
            app = self.context.switch_to_http().get_request().app
            where = app.url_path_for("page", room=room)
            return RedirectResponse(f"{where}?{urlencode({'name': name})}" if name else where, 303)
        error = "A room is 1 to 32 lowercase letters, digits and dashes." if room else ""
        return {"room": room, "name": name, "error": error, "room_pattern": ROOM_PATTERN[1:-1]}

    @get("/{room}")
    @render(template_name="room.html")
    async def page(self, room: Room) -> dict[str, str]:
        """The room's page; its script asks for a name when the URL has no ``?name=``."""
        return {"room": room}

    @ws_route(
        "/{room}/ws",
        name="room_ws",
        use_extra_handler=True,
        on_invalid="reply",
        sends=PresenceState | ChatMessage | PresenceDiff | Gap,
        # What the page's triows.js heartbeat matches: it pings every 20 s.
        heartbeat=("ping", "pong"),
        idle_timeout=60,
    )
    async def room_ws(
        self,
        websocket: WebSocket,
        channels: Channels,
        room: Room,
        name: Name,
        since: Since = None,
    ) -> None:
        """A member in a room: it joins the room when its connection opens, until it ends."""
        # A newcomer (no since=) gets the last 50 messages first; a returning page, what it missed.
        await channels.join(topic(room), websocket, presence=name, since=since, last=50)

    @ws_route.on(room_ws)
    async def say(self, message: Say, channels: Channels, room: str, name: str) -> None:
        """A member says something: published to the room, the sender included."""
        await channels.publish(topic(room), ChatMessage(room=room, name=name, text=message.text))


@Controller("/")
class HomeController(ControllerBase):
    @get("/")
    async def home(self) -> RedirectResponse:
        return RedirectResponse("/chat")


def create_app(channels_url: str | None = None) -> App:
    """The chat app; its backend is ``channels_url``, else ``TRIOWS_CHANNELS_URL``, else memory.

    Raises:
        ConfigurationError: The URL names a backend triows does not have.
    """
    url = channels_url or os.environ.get("TRIOWS_CHANNELS_URL") or DEFAULT_CHANNELS_URL
    return App(
        controllers=[ChatController, HomeController],
        template_folder=HERE / "templates",
        static_folder=HERE / "static",
        config={"CHANNELS_URL": url, "CHANNELS_HISTORY": {"room:*": HISTORY}},
        asyncapi=AsyncAPI(
            title="triows chat",
            version="1.0.0",
            description="A multi-room chat with presence (examples/chat in triows).",
        ),
    )


app = create_app()
