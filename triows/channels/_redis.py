"""The Redis backend (``redis://host:port/db``): every worker and host on one Redis.

Built on valkey-glide (its Rust core runs under trio; ``bench/redis_clients.md`` has the
measurements against coredis that chose it). Per worker process: one client for commands, one
for pub/sub, and two tasks in the app's nursery.

- **Fan-out**: one Redis channel per topic (``triows:c:TOPIC``), subscribed by each worker that
  has members in it (refcounted by the hub: subscribed with the first, dropped after the last).
  glide hands each message to a callback, which puts it into a *bounded* trio channel (glide's
  own queue has no bound); a full channel drops and counts (logged). The delivery task reads
  it and gives each message to the hub (then paces, as a memory publisher does).
- **History**: a stream per topic (``triows:h:TOPIC``, ``MAXLEN ~`` the topic's count) and its
  epoch (``triows:e:TOPIC``). A Lua script adds the message and publishes it in one step, so
  every worker sees the stream's order, and each published message names the id before it: a
  worker that sees a jump (a reconnect, a dropped message) fetches what it missed from the
  stream, or, if the stream no longer has it, tells its members with a ``gap`` frame.
- **Presence**: a hash per topic (``triows:p:TOPIC``), one field per worker and key; each
  worker keeps a key ``triows:w:WORKER`` alive (``CHANNELS_PRESENCE_TIMEOUT``) and sweeps
  the topics it has members in for the fields of workers whose key has expired, announcing
  their keys' leave. Lua scripts keep "is this key new / gone everywhere" exact.
- **Redis restarts**: glide reconnects and resubscribes by itself (re-checked every 250 ms);
  publishing retries until ``CHANNELS_PUBLISH_TIMEOUT``. What was published on a topic without
  history during the gap is lost; with history, the stream gives it back (if Redis kept it:
  ``appendonly yes``). A worker whose liveness key vanished (Redis lost its data) writes its
  presence again.
"""

from __future__ import annotations

import contextlib
import logging
import math
import secrets
import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pydantic_core
import trio

from .._logging import logger
from ..errors import ConfigurationError
from ._backend import ChannelsUnavailable, Presence, split_id
from ._hub import presence_diff
from ._lua import PRESENCE_SET, PRESENCE_STATE, PRESENCE_SWEEP, PUBLISH

if TYPE_CHECKING:
    from glide import GlideClient, Script

    from ._hub import Hub

__all__ = ["ChannelsUnavailable", "RedisBackend"]

#: Messages from Redis held for the delivery task; beyond, they are dropped (and counted).
QUEUE = 10_000
#: Key prefixes.
CHANNEL, STREAM, EPOCH, PRESENCE, WORKER = (
    "triows:c:",
    "triows:h:",
    "triows:e:",
    "triows:p:",
    "triows:w:",
)
SEPARATOR = "\x1f"
#: Where a publish with history leaves its id for a minute, under a token of its own.
DONE = "triows:d:"


def _glide_config(url: str, **options: Any) -> Any:
    from glide import GlideClientConfiguration, NodeAddress, ServerCredentials

    parts = urllib.parse.urlsplit(url)
    try:
        database = int(parts.path.lstrip("/") or 0)
    except ValueError:
        raise ConfigurationError(f"CHANNELS_URL {url!r}: the database is a number") from None
    credentials = None
    if parts.password is not None:
        credentials = ServerCredentials(parts.password, parts.username or None)
    return GlideClientConfiguration(
        [NodeAddress(parts.hostname or "localhost", parts.port or 6379)],
        use_tls=parts.scheme == "rediss",
        credentials=credentials,
        database_id=database,
        **options,
    )


class RedisBackend:
    """Topics, history and presence on one Redis, for every worker and host."""

    def __init__(
        self,
        url: str,
        *,
        presence_timeout: float = 10.0,
        publish_timeout: float = 5.0,
    ) -> None:
        try:
            import glide  # noqa: F401
        except ImportError:
            raise ConfigurationError(
                f"CHANNELS_URL {url!r} needs the Redis client: pip install 'triows[redis]'"
            ) from None
        self.url = url
        self.worker = secrets.token_hex(6)
        self.presence_timeout = presence_timeout
        self.publish_timeout = publish_timeout
        self._hub: Hub | None = None
        self._commands: GlideClient | None = None
        self._subscriber: GlideClient | None = None
        self._incoming: trio.MemorySendChannel[tuple[bytes, bytes]] | None = None
        self._todo_send, self._todo = trio.open_memory_channel[tuple[str, str, str]](math.inf)
        #: The id of the last message delivered per topic with history (to see jumps).
        self._last: dict[str, str] = {}
        #: This worker's presence: topic -> key -> the metadata of each connection.
        self._mine: dict[str, dict[str, list[Any]]] = {}
        self._dropped = 0
        self._scripts: dict[str, Script] = {}
        self._tasks = trio.CancelScope()

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, hub: Hub, nursery: trio.Nursery) -> None:
        from glide import (
            AdvancedGlideClientConfiguration,
            GlideClient,
            GlideClientConfiguration,
            Logger,
            LogLevel,
            Script,
        )

        Logger.init(LogLevel.OFF)  # glide's core prints to stdout otherwise; errors raise
        self._hub = hub
        self._scripts = {
            name: Script(code)  # type: ignore[no-untyped-call]
            for name, code in (
                ("publish", PUBLISH),
                ("presence_set", PRESENCE_SET),
                ("presence_state", PRESENCE_STATE),
                ("presence_sweep", PRESENCE_SWEEP),
            )
        }
        incoming, deliveries = trio.open_memory_channel[tuple[bytes, bytes]](QUEUE)
        self._incoming = incoming

        def received(message: Any, context: Any) -> None:  # glide calls it in the trio thread
            try:
                incoming.send_nowait((bytes(message.channel), bytes(message.message)))
            except trio.WouldBlock:
                self._dropped += 1
            except trio.ClosedResourceError:
                pass

        modes = GlideClientConfiguration.PubSubChannelModes
        subscriptions = GlideClientConfiguration.PubSubSubscriptions(
            channels_and_patterns={modes.Exact: set()}, callback=received, context=None
        )
        self._commands = await GlideClient.create(_glide_config(self.url))
        self._subscriber = await GlideClient.create(
            _glide_config(
                self.url,
                pubsub_subscriptions=subscriptions,
                advanced_config=AdvancedGlideClientConfiguration(
                    pubsub_reconciliation_interval=250
                ),
            )
        )
        await self._heartbeat()
        nursery.start_soon(self._run, deliveries)

    async def _run(self, deliveries: trio.MemoryReceiveChannel[tuple[bytes, bytes]]) -> None:
        """The backend's two tasks, until :meth:`aclose` (or the app's end)."""
        with self._tasks:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._deliver_all, deliveries)
                nursery.start_soon(self._housekeeping)

    async def aclose(self) -> None:
        self._tasks.cancel()
        if self._incoming is not None:
            self._incoming.close()
        with trio.move_on_after(2):
            while True:  # the leaves of the connections the drain has just closed
                try:
                    kind, topic, key = self._todo.receive_nowait()
                except trio.WouldBlock:
                    break
                if kind == "presence":
                    await self._do(kind, topic, key)
            if self._commands is not None:
                await self._forget_me(self._commands)
        clients = [c for c in (self._subscriber, self._commands) if c is not None]
        self._subscriber = self._commands = None
        with trio.move_on_after(2):
            for client in clients:
                await client.close()

    async def _forget_me(self, client: GlideClient) -> None:
        """Remove this worker's presence (announcing the leaves) and its liveness key."""
        mine, self._mine = self._mine, {}
        for topic, keys in mine.items():
            for key in keys:
                had, others = await self._set_presence(topic, key, [], client)
                if had and not others:
                    await self._announce(topic, presence_diff({}, [key]))
        await client.delete([WORKER + self.worker])

    # -- fan-out ---------------------------------------------------------------------------

    async def subscribe(self, topic: str) -> None:
        subscriber = self._running(self._subscriber)
        channel = CHANNEL + topic
        await subscriber.subscribe({channel}, timeout_ms=5000)
        with trio.fail_after(5):  # until Redis itself has the subscription
            while channel.encode() not in _actual(await subscriber.get_subscriptions()):  # noqa: ASYNC110
                await trio.sleep(0.002)  # polling glide's state: it has no event for this

    def unsubscribe(self, topic: str) -> None:
        self._todo_send.send_nowait(("unsubscribe", topic, ""))

    async def publish(self, topic: str, body: str, keep: int) -> str | None:
        channel = CHANNEL + topic
        if not keep:
            await self._retrying(lambda c: c.publish(f"\n\n{body}", channel))
            return None
        script = self._scripts["publish"]
        keys = [STREAM + topic, EPOCH + topic, DONE + secrets.token_hex(8)]
        args = [str(keep), body, secrets.token_hex(4), channel]
        result = await self._retrying(lambda c: c.invoke_script(script, keys, args))
        return _text(result)

    async def _retrying(self, call: Callable[[GlideClient], Any]) -> Any:
        from glide import ClosingError, GlideError, RequestError

        deadline = trio.current_time() + self.publish_timeout
        wait = 0.05
        while True:
            client = self._running(self._commands)
            try:
                return await call(client)
            except (ClosingError, RequestError):
                raise
            except GlideError as exc:
                if trio.current_time() + wait > deadline:
                    raise ChannelsUnavailable(
                        f"Redis at {self.url} did not answer within {self.publish_timeout:g} s: "
                        f"{exc}"
                    ) from exc
                await trio.sleep(wait)
                wait = min(wait * 2, 1.0)

    async def _deliver_all(
        self, deliveries: trio.MemoryReceiveChannel[tuple[bytes, bytes]]
    ) -> None:
        hub = self._hub
        assert hub is not None
        reported = 0
        async for channel, data in deliveries:
            if not channel:  # the housekeeper's tick: look for what a reconnect missed
                await self._reconcile()
                continue
            topic = channel.decode()[len(CHANNEL) :]
            if topic not in hub.topics:
                continue
            prev, message_id, body = data.decode().split("\n", 2)
            if message_id:
                last = self._last.get(topic)
                if last is not None and prev != last:
                    if _not_after(message_id, last):
                        continue  # delivered already, from the stream
                    await self._fill(topic, last, prev)
                self._last[topic] = message_id
            hub.deliver(topic, message_id or None, body)
            await hub.pace(topic)
            if self._dropped > reported:
                logger.warning(
                    "channels: %d messages from Redis dropped (more than %d waiting)",
                    self._dropped - reported,
                    QUEUE,
                )
                reported = self._dropped

    async def _fill(self, topic: str, last: str, upto: str) -> None:
        """Deliver what came after ``last`` (delivered) up to ``upto``, from the stream.

        Within one epoch, that is the stream's entries between them, if the stream still has
        ``last`` (else some are gone). Across epochs (Redis lost the stream), what came before
        the new epoch is lost: the members get a ``gap`` frame, then the new epoch's entries.
        """
        hub = self._hub
        assert hub is not None
        after, until = split_id(last), split_id(upto) if upto else None
        if after is not None and until is not None and after[0] == until[0]:
            found = await self._range(topic, after[0], last.partition(":")[2], upto)
            if found and found[0][0] == last:
                for message_id, body in found[1:]:
                    hub.deliver(topic, message_id, body)
                self._last[topic] = upto
                return
        gap = {"event": "gap", "topic": topic, "since": last}
        logger.warning("channels: messages of %r after %s are lost", topic, last)
        hub.deliver(topic, None, pydantic_core.to_json(gap).decode())
        if until is not None:  # a new epoch: all of it is new to the members
            for message_id, body in await self._range(topic, until[0], "-", upto):
                hub.deliver(topic, message_id, body)
            self._last[topic] = upto

    async def _range(self, topic: str, epoch: str, start: str, upto: str) -> list[tuple[str, str]]:
        """The stream's ``(id, body)`` entries from ``start`` to ``upto`` (both included)."""
        end = upto.partition(":")[2]
        raw = await self._retrying(
            lambda c: c.custom_command(["XRANGE", STREAM + topic, start, end])
        )
        return [(f"{epoch}:{_text(i)}", _body(f)) for i, f in _entries(raw)]

    async def _reconcile(self) -> None:
        """Catch up the history topics whose newest message this worker has not seen.

        A message published while this worker's subscription was being restored (a Redis
        restart) reaches nobody here; the next one would show the jump, but there may be no
        next one for a while. So every second the stream's newest id is compared.
        """
        hub = self._hub
        assert hub is not None
        for topic, last in list(self._last.items()):
            if topic not in hub.topics:
                continue
            epoch_key, stream = EPOCH + topic, STREAM + topic
            epoch = await self._retrying(lambda c, key=epoch_key: c.get(key))  # type: ignore[misc]
            raw = await self._retrying(
                lambda c, key=stream: c.custom_command(["XREVRANGE", key, "+", "-", "COUNT", "1"])  # type: ignore[misc]
            )
            newest = [f"{_text(epoch)}:{_text(i)}" for i, _ in _entries(raw)] if epoch else []
            if self._last.get(topic) != last:
                continue  # a delivery came meanwhile
            if newest and newest[0] != last:
                await self._fill(topic, last, newest[0])
                await hub.pace(topic)
            elif not newest:
                await self._fill(topic, last, "")  # the stream is gone: say so once
                self._last.pop(topic, None)

    # -- history ---------------------------------------------------------------------------

    async def history(self, topic: str, since: str, keep: int) -> list[tuple[str, str]] | None:
        parsed = split_id(since)
        if parsed is None:
            return None
        epoch, _ = parsed
        offset = since.partition(":")[2]
        if epoch != _text(await self._retrying(lambda c: c.get(EPOCH + topic))):
            return None
        raw = await self._retrying(
            lambda c: c.custom_command(
                ["XRANGE", STREAM + topic, offset, "+", "COUNT", str(keep + 1)]
            )
        )
        found = [(f"{epoch}:{_text(i)}", _body(f)) for i, f in _entries(raw)]
        if not found or found[0][0] != since:
            return None  # the stream no longer has it: what came after may be gone too
        return found[1:]

    async def recent(self, topic: str, count: int) -> list[tuple[str, str]]:
        epoch = await self._retrying(lambda c: c.get(EPOCH + topic))
        if epoch is None or count <= 0:
            return []
        raw = await self._retrying(
            lambda c: c.custom_command(["XREVRANGE", STREAM + topic, "+", "-", "COUNT", str(count)])
        )
        found = [(f"{_text(epoch)}:{_text(i)}", _body(f)) for i, f in _entries(raw)]
        return found[::-1]

    # -- presence --------------------------------------------------------------------------

    async def presence_join(self, topic: str, key: str, meta: Any) -> Presence:
        metas = self._mine.setdefault(topic, {}).setdefault(key, [])
        metas.append(meta)
        had, others = await self._set_presence(topic, key, metas)
        if not had and not others:
            await self._announce(topic, presence_diff({key: [meta]}, []))
        return await self.presence(topic)

    def presence_leave(self, topic: str, key: str, meta: Any) -> None:
        keys = self._mine.get(topic, {})
        metas = keys.get(key)
        if metas is None:
            return
        metas.remove(meta)
        if not metas:
            del keys[key]
            if not keys:
                self._mine.pop(topic, None)
        self._todo_send.send_nowait(("presence", topic, key))

    async def presence(self, topic: str) -> Presence:
        script = self._scripts["presence_state"]
        flat = await self._retrying(lambda c: c.invoke_script(script, [PRESENCE + topic], [WORKER]))
        members: Presence = {}
        for index in range(0, len(flat), 2):
            key = _text(flat[index])
            members.setdefault(key, []).extend(pydantic_core.from_json(flat[index + 1]))
        return members

    async def _set_presence(
        self, topic: str, key: str, metas: list[Any], client: GlideClient | None = None
    ) -> tuple[bool, bool]:
        """Write this worker's connections under ``key``; (it had some, another worker has)."""
        script = self._scripts["presence_set"]
        value = pydantic_core.to_json(metas).decode() if metas else ""
        ttl = str(max(1, int(self.presence_timeout * 1000)))
        args = [self.worker + SEPARATOR + key, value, key, WORKER, self.worker, ttl]
        if client is not None:
            result = await client.invoke_script(script, [PRESENCE + topic], args)
        else:
            result = await self._retrying(
                lambda c: c.invoke_script(script, [PRESENCE + topic], args)
            )
        had, others = result
        return bool(had), bool(others)

    async def _announce(self, topic: str, diff: str) -> None:
        await self._retrying(lambda c: c.publish(f"\n\n{diff}", CHANNEL + topic))

    # -- housekeeping ----------------------------------------------------------------------

    async def _heartbeat(self) -> None:
        """Keep this worker alive; if Redis had forgotten it, write its presence again."""
        ttl = max(1, int(self.presence_timeout * 1000))
        previous = await self._retrying(
            lambda c: c.custom_command(["SET", WORKER + self.worker, "1", "PX", str(ttl), "GET"])
        )
        if previous is None and self._mine:
            for topic, keys in list(self._mine.items()):
                for key, metas in list(keys.items()):
                    await self._set_presence(topic, key, metas)

    async def _housekeeping(self) -> None:
        hub = self._hub
        assert hub is not None
        every = self.presence_timeout / 4
        next_beat = trio.current_time() + every
        while True:
            with trio.move_on_after(min(1.0, every)):
                async for kind, topic, key in self._todo:
                    await self._do(kind, topic, key)
            if self._last and self._incoming is not None:
                with contextlib.suppress(trio.WouldBlock, trio.ClosedResourceError):
                    self._incoming.send_nowait((b"", b""))  # reconcile, in the delivery task
            if trio.current_time() >= next_beat:
                next_beat = trio.current_time() + every
                try:
                    await self._heartbeat()
                    for topic in list(hub.topics):
                        await self._sweep(topic)
                except (ChannelsUnavailable, trio.TooSlowError) as exc:
                    logger.warning("channels: Redis heartbeat failed: %s", exc)

    async def _do(self, kind: str, topic: str, key: str) -> None:
        hub = self._hub
        assert hub is not None
        try:
            if kind == "unsubscribe":
                if topic not in hub.topics:  # nobody joined it again meanwhile
                    self._last.pop(topic, None)
                    subscriber = self._running(self._subscriber)
                    await subscriber.unsubscribe({CHANNEL + topic}, timeout_ms=5000)
            else:
                metas = self._mine.get(topic, {}).get(key, [])
                had, others = await self._set_presence(topic, key, metas)
                if had and not metas and not others:
                    await self._announce(topic, presence_diff({}, [key]))
        except ChannelsUnavailable as exc:
            logger.warning("channels: %s of %r failed: %s", kind, topic, exc)

    async def _sweep(self, topic: str) -> None:
        script = self._scripts["presence_sweep"]
        gone = await self._retrying(lambda c: c.invoke_script(script, [PRESENCE + topic], [WORKER]))
        if gone:
            await self._announce(topic, presence_diff({}, [_text(k) for k in gone]))

    @staticmethod
    def _running(client: GlideClient | None) -> GlideClient:
        if client is None:
            raise ChannelsUnavailable("the channels backend is not running (app not started)")
        return client


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _entries(raw: Any) -> list[tuple[Any, list[Any]]]:
    """XRANGE's reply as ``(id, [field, value, ...])`` pairs, in the order Redis gave them."""
    if not raw:
        return []
    if isinstance(raw, dict):
        return list(raw.items())
    return [(entry[0], entry[1]) for entry in raw]


def _not_after(message_id: str, last: str) -> bool:
    """Whether ``message_id`` is ``last`` or older (same epoch)."""
    this, that = split_id(message_id), split_id(last)
    return this is not None and that is not None and this[0] == that[0] and this[1] <= that[1]


def _body(fields: list[Any]) -> str:
    """The ``b`` field of a stream entry: ``[b"b", body]``, or ``[[b"b", body]]`` (RESP3)."""
    first = fields[0]
    return _text(first[1] if isinstance(first, list | tuple) else fields[1])


def _actual(state: Any) -> set[bytes]:
    from glide import GlideClientConfiguration

    subscribed = state.actual_subscriptions.get(GlideClientConfiguration.PubSubChannelModes.Exact)
    return {bytes(c) if not isinstance(c, str) else c.encode() for c in subscribed or ()}


logging.getLogger("glide").setLevel(logging.WARNING)
