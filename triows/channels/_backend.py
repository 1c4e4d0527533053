"""What a channels backend does, and the ids of the messages it keeps.

The hub (``triows.channels._hub``) keeps the connections of this worker; a backend carries
messages between hubs (one hub per worker process) and keeps history and presence. A message
travels as ``body``: its JSON object text without the ``id``; the frame a member receives is the
body with ``"id"`` spliced in first (:func:`frame`), so a message is serialised once, whoever
delivers it.

Ids are ``"EPOCH:OFFSET"``. The epoch names one life of a topic's history (a new one after the
history was lost, a Redis restart without persistence say); the offset orders messages within
it: an integer in memory, a stream id (``"1700000000000-0"``) on Redis. A member that joins
``since`` an id of another epoch, or of an offset older than the history still holds, is told
that the gap cannot be filled, never given part of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

import trio

if TYPE_CHECKING:
    from ._hub import Hub

__all__ = ["Backend", "ChannelsUnavailable", "Presence", "frame", "order", "split_id"]

#: Who is in a topic: each presence key with the metadata of each of its connections.
Presence = dict[str, list[Any]]


class ChannelsUnavailable(ConnectionError):
    """The backend could not be reached in time (Redis, within ``CHANNELS_PUBLISH_TIMEOUT``)."""


class Backend(Protocol):
    """Carries a topic's messages to every worker's hub, and keeps history and presence."""

    async def start(self, hub: Hub, nursery: trio.Nursery) -> None:
        """Connect; deliver the subscribed topics' messages to ``hub`` from now on."""

    async def aclose(self) -> None:
        """Disconnect (at the app's shutdown)."""

    async def subscribe(self, topic: str) -> None:
        """Start delivering ``topic``'s messages to this worker (the hub's first member)."""

    def unsubscribe(self, topic: str) -> None:
        """Stop delivering ``topic`` here (its last member left); may finish later."""

    async def publish(self, topic: str, body: str, keep: int) -> str | None:
        """Send ``body`` to ``topic`` on every worker; with ``keep``, keep it in its history.

        Returns:
            The message's id when the topic keeps a history (``keep > 0``), else ``None``.
        """

    async def history(self, topic: str, since: str, keep: int) -> list[tuple[str, str]] | None:
        """The ``(id, body)`` pairs after ``since``; ``None`` if they cannot all be given."""

    async def recent(self, topic: str, count: int) -> list[tuple[str, str]]:
        """The last ``count`` ``(id, body)`` pairs of ``topic``'s history, oldest first."""

    async def presence_join(self, topic: str, key: str, meta: Any) -> Presence:
        """Count one more connection under ``key`` (announcing the key if it is new there).

        Returns:
            The topic's presence, this connection included.
        """

    def presence_leave(self, topic: str, key: str, meta: Any) -> None:
        """Count one connection fewer (announcing the key's leave when it was the last)."""

    async def presence(self, topic: str) -> Presence:
        """Who is in ``topic``, on every worker."""


def frame(message_id: str | None, body: str) -> str:
    """The text frame of a message: ``body`` with ``"id"`` first, when it has one."""
    if message_id is None:
        return body
    if body == "{}":
        return f'{{"id":"{message_id}"}}'
    return f'{{"id":"{message_id}",{body[1:]}'


def split_id(message_id: str) -> tuple[str, tuple[int, ...]] | None:
    """``(epoch, offset)`` of an id, the offset as comparable integers; ``None`` if malformed."""
    epoch, sep, offset = message_id.partition(":")
    if not sep or not epoch:
        return None
    try:
        parts = tuple(int(part) for part in offset.split("-"))
    except ValueError:
        return None
    if not parts or len(parts) > 2 or any(part < 0 for part in parts):
        return None
    return epoch, parts


def order(message_id: str) -> tuple[int, ...]:
    """The offset of a well-formed id, for comparing ids of one epoch."""
    parsed = split_id(message_id)
    assert parsed is not None, message_id
    return parsed[1]


def presence_frames(
    members: Presence,
) -> tuple[list[str], Mapping[str, list[Any]] | None]:
    """Sorted keys, and the metadata map when any connection gave metadata."""
    keys = sorted(members)
    if any(meta is not None for metas in members.values() for meta in metas):
        return keys, {key: members[key] for key in keys}
    return keys, None
