"""``Channels``: topics that connections join, publish to, and see each other in.

The service is the app's (one per worker process, ``App.channels``, injectable as
``channels: Channels``); where topics meet is the backend ``CHANNELS_URL`` names. See
``docs/channels.md``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Coroutine, Generator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

import pydantic
import pydantic_core
import trio

from ..errors import ConfigurationError, WebSocketStateError
from ..websocket import WebSocket, WebSocketState
from ._backend import Backend, Presence, frame
from ._hub import Hub, Member, Topic, presence_diff, presence_state
from ._memory import MemoryBackend

if TYPE_CHECKING:
    from ..config import Config

__all__ = ["Channels", "Joining", "Membership"]


class Membership:
    """One connection's membership of one topic, from :meth:`Channels.join`.

    It ends when the connection ends, on :meth:`leave`, or at the end of an
    ``async with`` block over it.

    Attributes:
        topic: The topic's name.
        websocket: The member.
        presence: The presence key it joined under, if any.
        recovered: Joined ``since`` an id: ``True`` if every message after it was given,
            ``False`` if the gap could not be filled (the member got a ``gap`` frame);
            ``None`` without ``since``.
    """

    __slots__ = ("_channels", "_member", "presence", "recovered", "topic", "websocket")

    def __init__(self, channels: Channels, member: Member, recovered: bool | None) -> None:
        self._channels = channels
        self._member = member
        self.topic = member.topic.name
        self.websocket = member.websocket
        self.presence = member.key
        self.recovered = recovered

    @property
    def active(self) -> bool:
        """Whether the connection is still a member."""
        return self._member.topic.members.get(self.websocket) is self._member

    async def leave(self) -> None:
        """Leave the topic (nothing happens if the membership has already ended)."""
        self._channels._drop(self._member)
        await trio.lowlevel.checkpoint()

    async def __aenter__(self) -> Membership:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._channels._drop(self._member)

    def __repr__(self) -> str:
        return f"<Membership {self.topic!r} presence={self.presence!r} active={self.active}>"


class Joining:
    """A join under way: ``await`` it for the membership, or ``async with`` it."""

    __slots__ = ("_coroutine", "_membership")

    def __init__(self, coroutine: Coroutine[Any, Any, Membership]) -> None:
        self._coroutine = coroutine
        self._membership: Membership | None = None

    def __await__(self) -> Generator[Any, None, Membership]:
        return self._coroutine.__await__()

    async def __aenter__(self) -> Membership:
        self._membership = await self._coroutine
        return self._membership

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._membership is not None:
            await self._membership.__aexit__(exc_type, exc, tb)


class Channels:
    """Topics of connections: join, publish, presence and history.

    Made by the app from its config (``App.channels``), and injected into handlers that
    declare ``channels: Channels``.

    Args:
        url: ``"memory://"`` (one process) or ``"redis://host:port/db"``.
        history: Topic patterns (``fnmatch``) and how many messages each such topic keeps.
        pace_timeout: Seconds a publisher waits at most for members over half full.
        presence_timeout: Redis: seconds after which a dead worker's presence is purged.
        publish_timeout: Redis: seconds a publish retries while Redis cannot be reached.
    """

    def __init__(
        self,
        url: str = "memory://",
        *,
        history: Mapping[str, int] | None = None,
        pace_timeout: float = 0.05,
        presence_timeout: float = 10.0,
        publish_timeout: float = 5.0,
    ) -> None:
        self.url = url
        self._history = dict(history or {})
        self._keeps: dict[str, int] = {}
        self._hub = Hub(pace_timeout)
        backend = _backend_for(url, presence_timeout, publish_timeout)
        #: In memory, publishing delivers in the publisher's task (which is then paced); on
        #: Redis, the backend's delivery task delivers and paces.
        self._local = isinstance(backend, MemoryBackend)
        if isinstance(backend, MemoryBackend):
            backend.attach(self._hub)  # usable without the lifespan too
        self._backend: Backend = backend
        self._started = False

    @classmethod
    def from_config(cls, config: Config) -> Channels:
        """The service the app's ``CHANNELS_*`` keys describe."""
        return cls(
            config.CHANNELS_URL,
            history=config.CHANNELS_HISTORY,
            pace_timeout=config.CHANNELS_PACE_TIMEOUT,
            presence_timeout=config.CHANNELS_PRESENCE_TIMEOUT,
            publish_timeout=config.CHANNELS_PUBLISH_TIMEOUT,
        )

    # -- the app's lifespan ----------------------------------------------------------------

    async def start(self, nursery: trio.Nursery) -> None:
        """Connect the backend; its tasks run in ``nursery`` (the app's)."""
        await self._backend.start(self._hub, nursery)
        self._started = True

    async def aclose(self) -> None:
        """Disconnect the backend."""
        if self._started:
            self._started = False
            await self._backend.aclose()

    # -- members ---------------------------------------------------------------------------

    def join(
        self,
        topic: str,
        websocket: WebSocket,
        *,
        presence: str | None = None,
        meta: Any = None,
        since: str | None = None,
        last: int = 0,
    ) -> Joining:
        """Make ``websocket`` a member of ``topic`` until the connection ends (or it leaves).

        ``membership = await channels.join(...)``, or ``async with channels.join(...) as
        membership:`` to leave at the end of the block.

        With ``presence``, the connection is counted under that key (a user's name, say):
        it first receives ``{"event": "presence_state", "members": [...]}``, and every member
        gets ``{"event": "presence_diff", "joins": [...], "leaves": [...]}`` when a key comes
        or goes (a key with several connections leaves with its last). With ``since`` (an id
        the client saw, on a topic that keeps history), it then receives every message after
        that one before any newer, or ``{"event": "gap", "topic": ..., "since": ...}`` if they
        cannot all be given. Without ``since``, ``last`` gives a newcomer the topic's last
        messages (at most that many) before any newer.

        Args:
            topic: The topic.
            websocket: An accepted connection of an App route.
            presence: The presence key, if the connection is to be seen.
            meta: JSON-able metadata shown with the key in presence frames.
            since: The id of the last message the client has.
            last: Without ``since``: how many of the latest messages to give first.

        Returns:
            The joining: await it (or enter it) for the :class:`Membership`.

        Raises:
            WebSocketStateError: The connection is not accepted, has ended, or is a member of
                ``topic`` already.
        """
        return Joining(self._join(topic, websocket, presence, meta, since, last))

    async def _join(
        self,
        topic: str,
        websocket: WebSocket,
        presence: str | None,
        meta: Any,
        since: str | None,
        last: int,
    ) -> Membership:
        if websocket.connection_state is not WebSocketState.CONNECTED:
            raise WebSocketStateError(
                f"joining {topic!r} needs the websocket CONNECTED, but it is "
                f"{websocket.connection_state.name}"
            )
        here = self._hub.topics.get(topic)
        if here is not None and websocket in here.members:
            raise WebSocketStateError(f"the websocket is a member of {topic!r} already")
        if here is None:
            here = self._hub.topics[topic] = Topic(topic)
            await self._backend.subscribe(topic)
        member = Member(websocket, here, presence, meta)
        here.members[websocket] = member
        websocket._when_ended(lambda: self._drop(member))
        try:
            if presence is not None:
                member.skip = presence_diff({presence: [meta]}, [])
                state = await self._backend.presence_join(topic, presence, meta)
                websocket.push_text(presence_state(state))
            replayed: str | None = None
            recovered: bool | None = None
            if since is not None:
                replayed, recovered = await self._replay(member, since)
            elif last > 0 and self._keep(topic):
                replayed = self._give(member, await self._backend.recent(topic, last))
        except BaseException:
            self._drop(member)
            raise
        self._hub.catch_up(member, replayed)
        return Membership(self, member, recovered)

    async def _replay(self, member: Member, since: str) -> tuple[str | None, bool]:
        topic = member.topic.name
        keep = self._keep(topic)
        entries = await self._backend.history(topic, since, keep) if keep else None
        websocket = member.websocket
        if entries is None:
            gap = {"event": "gap", "topic": topic, "since": since}
            websocket.push_text(pydantic_core.to_json(gap).decode())
            return None, False
        return self._give(member, entries) or since, True

    @staticmethod
    def _give(member: Member, entries: list[tuple[str, str]]) -> str | None:
        """Push history entries to ``member``; the last one's id, if any."""
        for message_id, body in entries:
            member.websocket.push_text(frame(message_id, body))
        return entries[-1][0] if entries else None

    def _drop(self, member: Member) -> None:
        """End ``member``'s membership (at once: it gets nothing more); idempotent."""
        here = member.topic
        if here.members.get(member.websocket) is not member:
            return
        del here.members[member.websocket]
        member.held = None
        if member.key is not None:
            self._backend.presence_leave(here.name, member.key, member.meta)
        if not here.members and self._hub.topics.get(here.name) is here:
            del self._hub.topics[here.name]
            self._backend.unsubscribe(here.name)

    async def leave(self, topic: str, websocket: WebSocket) -> None:
        """End ``websocket``'s membership of ``topic``, if it has one."""
        here = self._hub.topics.get(topic)
        member = here.members.get(websocket) if here is not None else None
        if member is not None:
            self._drop(member)
        await trio.lowlevel.checkpoint()

    def members(self, topic: str) -> list[WebSocket]:
        """The connections of this worker that are members of ``topic``."""
        here = self._hub.topics.get(topic)
        return list(here.members) if here is not None else []

    async def presence(self, topic: str) -> Presence:
        """Who is in ``topic`` (every worker): each key with its connections' metadata."""
        return await self._backend.presence(topic)

    # -- messages --------------------------------------------------------------------------

    async def publish(
        self, topic: str, message: Mapping[str, Any] | pydantic.BaseModel
    ) -> str | None:
        """Send a JSON object to every member of ``topic``, on every worker.

        The message is serialised once; each member gets it as a text frame through its
        outbox (never awaited; the route's outbox policy applies to a member that cannot keep
        up), and the publisher is paced to the members that keep up (``docs/channels.md``).
        On a topic that keeps history, the frame carries the message's id as ``"id"``.

        Returns:
            The message's id on a topic that keeps history, else ``None``.

        Raises:
            TypeError: ``message`` is not a JSON object (a mapping or a pydantic model).
        """
        if isinstance(message, pydantic.BaseModel):
            # By alias, as send_json() and the AsyncAPI document write a model.
            body = pydantic_core.to_json(message, by_alias=True).decode()
        elif isinstance(message, Mapping):
            body = pydantic_core.to_json(message).decode()
        else:
            raise TypeError(
                f"publish() takes a JSON object (a mapping or a pydantic model), "
                f"got {type(message).__name__}"
            )
        message_id = await self._backend.publish(topic, body, self._keep(topic))
        if self._local:
            await self._hub.pace(topic)
        return message_id

    def _keep(self, topic: str) -> int:
        keep = self._keeps.get(topic)
        if keep is None:
            keep = 0
            for pattern, count in self._history.items():
                if fnmatch.fnmatchcase(topic, pattern):
                    keep = count
                    break
            if len(self._keeps) < 100_000:
                self._keeps[topic] = keep
        return keep


def _backend_for(url: str, presence_timeout: float, publish_timeout: float) -> Backend:
    scheme = url.split("://", 1)[0]
    if scheme == "memory":
        return MemoryBackend()
    if scheme in ("redis", "rediss"):
        from ._redis import RedisBackend

        return RedisBackend(url, presence_timeout=presence_timeout, publish_timeout=publish_timeout)
    raise ConfigurationError(f'CHANNELS_URL {url!r}: use "memory://" or "redis://host:port/db"')
