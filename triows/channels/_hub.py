"""The members of this worker's topics, and how a message reaches them.

A topic has members (connections of this worker). A message for a topic is written to each
member without waiting for any: into an idle member's socket directly (on hypercorn over plain
TCP: encoded once per member by its wsproto connection, one non-blocking send, as
``websockets.broadcast`` does; what the socket does not take goes first into the outbox), else
pushed to the member's outbox, whose writer task sends it. So one stalled client delays nobody;
the route's outbox policy decides what happens to a member that cannot keep up.

Then the deliverer is *paced*: if some members' outboxes are over half full and they are still
taking frames (their writer finished one, or the kernel's queue for their socket shrank, within
the last ``STALLED`` seconds), it waits, at most ``CHANNELS_PACE_TIMEOUT``, for them to drain
below half, so a burst from one publisher goes out at the speed of the members that keep up
instead of overflowing everyone's outbox at once. A member that has taken nothing for that long
has stopped reading: nobody waits for it, and its policy takes over (``close``: 1013).

A member that joined ``since`` an id is *catching up*: live messages are held for it until its
history has been pushed, then those it has not had yet follow, in order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pydantic_core
import trio

from ._backend import frame, order, presence_frames

if TYPE_CHECKING:
    from ..websocket import WebSocket

__all__ = ["Hub", "Member", "Topic"]

#: Seconds without progress after which a member over half full counts as stalled (a client
#: that stopped reading): nobody waits for it. Progress is its writer finishing a frame, or the
#: kernel's queue for its socket shrinking (TCP's window updates can be slow to come).
STALLED = 0.5


class Member:
    """One connection in one topic."""

    __slots__ = ("held", "key", "meta", "skip", "topic", "unsent", "websocket")

    def __init__(self, websocket: WebSocket, topic: Topic, key: str | None, meta: Any) -> None:
        self.websocket = websocket
        self.topic = topic
        self.key = key
        self.meta = meta
        #: Live frames held while the member catches up: ``(id, frame)``; ``None``: live.
        self.held: list[tuple[str | None, str]] | None = []
        #: A frame not to give this member (the announcement of its own join).
        self.skip: str | None = None
        #: What the kernel held for its socket at the last look (see :meth:`Hub.deliver`).
        self.unsent: int | None = None


class Topic:
    """The members of one topic on this worker."""

    __slots__ = ("lagging", "members", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self.members: dict[WebSocket, Member] = {}
        #: Members found over half full by the last delivery (the pacer's work).
        self.lagging: list[Member] = []


class Hub:
    """This worker's topics; the backend hands it every message of a subscribed topic."""

    def __init__(self, pace_timeout: float) -> None:
        self.topics: dict[str, Topic] = {}
        self.pace_timeout = pace_timeout

    def deliver(self, topic: str, message_id: str | None, body: str) -> None:
        """Push a message to every member of ``topic`` here, without waiting for any."""
        here = self.topics.get(topic)
        if here is None:
            return
        text = frame(message_id, body)
        lagging = here.lagging
        for member in list(here.members.values()):
            if member.held is not None:
                member.held.append((message_id, text))
                continue
            if member.skip is not None and text == member.skip:
                member.skip = None  # its own join, announced by another worker's copy of it
                continue
            websocket = member.websocket
            if not websocket._fan_out(text):
                continue  # dropped by the policy, or the connection has ended (it leaves)
            outbox = websocket._outbox
            if outbox is not None and outbox.filling:
                now = trio.current_time()
                if now - outbox.progressed_at >= STALLED:
                    # Its writer has waited long on a full socket: the client still reads if
                    # the kernel's queue for it has shrunk since the last look.
                    unsent = websocket._link.unsent() if websocket._link is not None else None
                    if unsent is not None and member.unsent is not None and unsent < member.unsent:
                        outbox.progressed_at = now
                    member.unsent = unsent
                if now - outbox.progressed_at < STALLED:
                    lagging.append(member)

    async def pace(self, topic: str) -> None:
        """Wait (bounded) for the members the last deliveries left over half full."""
        here = self.topics.get(topic)
        if here is None or not here.lagging:
            await trio.lowlevel.checkpoint()
            return
        lagging, here.lagging = here.lagging, []
        with trio.move_on_after(self.pace_timeout):
            for member in lagging:
                await member.websocket.drain()
        await trio.lowlevel.checkpoint()

    def catch_up(self, member: Member, replayed: str | None) -> None:
        """Give ``member`` what was held for it (after ``replayed``, the last id it got)."""
        held, member.held = member.held or [], None
        after = order(replayed) if replayed is not None else None
        for message_id, text in held:
            if text == member.skip:
                member.skip = None
                continue
            if after is not None and message_id is not None and order(message_id) <= after:
                continue  # it had this one from the history
            member.websocket.push_text(text)

    def presence_changed(
        self, topic: str, joins: Mapping[str, list[Any]], leaves: list[str]
    ) -> None:
        """Tell ``topic``'s members here who came and went (from the backend)."""
        self.deliver(topic, None, presence_diff(joins, leaves))


def presence_state(members: Mapping[str, list[Any]]) -> str:
    """The ``presence_state`` frame: who is in the topic."""
    keys, meta = presence_frames(dict(members))
    message: dict[str, Any] = {"event": "presence_state", "members": keys}
    if meta is not None:
        message["meta"] = meta
    return pydantic_core.to_json(message).decode()


def presence_diff(joins: Mapping[str, list[Any]], leaves: list[str]) -> str:
    """The ``presence_diff`` frame: who came (with their metadata, if any) and who went."""
    keys, meta = presence_frames(dict(joins))
    message: dict[str, Any] = {"event": "presence_diff", "joins": keys, "leaves": sorted(leaves)}
    if meta is not None:
        message["meta"] = meta
    return pydantic_core.to_json(message).decode()
