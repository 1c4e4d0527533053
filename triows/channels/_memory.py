"""The in-memory backend (``memory://``): every topic lives in this one process.

Publishing hands the message to the hub at once, in the publisher's task; history is a bounded
deque per topic; presence a count per key. Nothing leaves the process: with several workers,
each has its own topics (use ``redis://`` there).
"""

from __future__ import annotations

import secrets
from collections import deque
from typing import TYPE_CHECKING, Any

import trio

from ._backend import Presence, split_id

if TYPE_CHECKING:
    from ._hub import Hub

__all__ = ["MemoryBackend"]


class _History:
    __slots__ = ("entries", "epoch", "last")

    def __init__(self, keep: int) -> None:
        #: One life of this topic's history (this process's).
        self.epoch = secrets.token_hex(4)
        self.entries: deque[tuple[int, str]] = deque(maxlen=keep)
        self.last = 0


class MemoryBackend:
    """Topics, history and presence of one process."""

    def __init__(self) -> None:
        self._hub: Hub | None = None
        self._histories: dict[str, _History] = {}
        self._presence: dict[str, Presence] = {}

    async def start(self, hub: Hub, nursery: trio.Nursery) -> None:
        self._hub = hub
        await trio.lowlevel.checkpoint()

    def attach(self, hub: Hub) -> None:
        """Deliver to ``hub`` (without a lifespan, the hub attaches itself on first use)."""
        self._hub = hub

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()

    async def subscribe(self, topic: str) -> None:
        await trio.lowlevel.checkpoint()

    def unsubscribe(self, topic: str) -> None:
        pass  # a topic's history outlives its members: a client may come back for it

    async def publish(self, topic: str, body: str, keep: int) -> str | None:
        message_id = None
        if keep:
            history = self._histories.get(topic)
            if history is None or history.entries.maxlen != keep:
                history = self._histories[topic] = _History(keep)
            history.last += 1
            history.entries.append((history.last, body))
            message_id = f"{history.epoch}:{history.last}"
        assert self._hub is not None
        self._hub.deliver(topic, message_id, body)
        await trio.lowlevel.checkpoint()
        return message_id

    async def history(self, topic: str, since: str, keep: int) -> list[tuple[str, str]] | None:
        await trio.lowlevel.checkpoint()
        parsed = split_id(since)
        history = self._histories.get(topic)
        if parsed is None or history is None:
            return None
        epoch, offset = parsed
        if epoch != history.epoch or len(offset) != 1 or offset[0] > history.last:
            return None
        after = offset[0]
        oldest = history.entries[0][0] if history.entries else history.last + 1
        if after + 1 < oldest:
            return None  # some of what was missed has been dropped already
        return [(f"{epoch}:{n}", body) for n, body in history.entries if n > after]

    async def recent(self, topic: str, count: int) -> list[tuple[str, str]]:
        await trio.lowlevel.checkpoint()
        history = self._histories.get(topic)
        if history is None or count <= 0:
            return []
        entries = list(history.entries)[-count:]
        return [(f"{history.epoch}:{n}", body) for n, body in entries]

    async def presence_join(self, topic: str, key: str, meta: Any) -> Presence:
        members = self._presence.setdefault(topic, {})
        metas = members.get(key)
        if metas is None:
            members[key] = [meta]
            assert self._hub is not None
            self._hub.presence_changed(topic, joins={key: [meta]}, leaves=[])
        else:
            metas.append(meta)
        await trio.lowlevel.checkpoint()
        return {k: list(v) for k, v in members.items()}

    def presence_leave(self, topic: str, key: str, meta: Any) -> None:
        members = self._presence.get(topic)
        if members is None or key not in members:
            return
        metas = members[key]
        metas.remove(meta)
        if not metas:
            del members[key]
            if not members:
                del self._presence[topic]
            assert self._hub is not None
            self._hub.presence_changed(topic, joins={}, leaves=[key])

    async def presence(self, topic: str) -> Presence:
        await trio.lowlevel.checkpoint()
        return {k: list(v) for k, v in self._presence.get(topic, {}).items()}
