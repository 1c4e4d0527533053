"""App configuration: a mapping with typed, documented well-known keys.

Each well-known key has a default and a check; a wrong value fails when the ``App`` is built,
naming the key, what it must be and what it got. Unknown keys are kept for the app's own use.
The websocket keys are the app's defaults for every websocket route; a route can override most
of them (``@ws_route(..., idle_timeout=...)``), see ``docs/limits.md``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

from .errors import ConfigurationError

__all__ = ["Config"]

#: The outbox policies: what a push does once a connection's outbox is over its limits.
OUTBOX_POLICIES = ("block", "drop_oldest", "drop_newest", "close")


class _Key(NamedTuple):
    default: Any
    #: Says what the value must be, or ``None`` if it is fine.
    check: Callable[[Any], str | None]


def _flag(value: Any) -> str | None:
    return None if isinstance(value, bool) else "True or False"


def _count(value: Any) -> str | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
    return None if ok else "a whole number of at least 1"


def _seconds(value: Any) -> str | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return None if ok and 0 < value < math.inf else "a number of seconds above 0"


def _optional(check: Callable[[Any], str | None]) -> Callable[[Any], str | None]:
    def optional(value: Any) -> str | None:
        problem = check(value)
        return None if value is None or problem is None else f"{problem}, or None"

    return optional


def _origins(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not all(isinstance(v, str) for v in value):
        return 'a list of origins such as ["https://app.example.com", "same-origin"], or None'
    return None


def _heartbeat(value: Any) -> str | None:
    if value is None:
        return None
    ok = isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, str) for v in value)
    return None if ok and value[0] else 'a (ping, pong) pair of texts such as ("ping", "pong")'


#: Close codes a server may end connections with when it stops (RFC 6455 and the IANA registry:
#: normal, going away, service restart, try again later; 3000-4999 for applications).
SHUTDOWN_CODES = (1000, 1001, 1012, 1013)

#: The permessage-deflate choices: off, each message on its own, or a window kept across them.
COMPRESSIONS = (None, "deflate", "deflate-context")


def _shutdown_code(value: Any) -> str | None:
    ok = isinstance(value, int) and not isinstance(value, bool)
    if ok and (value in SHUTDOWN_CODES or 3000 <= value <= 4999):
        return None
    return "a close code: 1000, 1001, 1012 (service restart), 1013, or 3000-4999"


def _compression(value: Any) -> str | None:
    return None if value in COMPRESSIONS else 'None, "deflate" or "deflate-context"'


def _channels_url(value: Any) -> str | None:
    if isinstance(value, str) and value.split("://", 1)[0] in ("memory", "redis", "rediss"):
        return None
    return 'a URL: "memory://" or "redis://host:port/db"'


def _history(value: Any) -> str | None:
    ok = isinstance(value, Mapping) and all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v > 0
        for k, v in value.items()
    )
    return None if ok else 'a mapping of topic patterns to message counts, e.g. {"room:*": 100}'


def _policy(value: Any) -> str | None:
    return None if value in OUTBOX_POLICIES else f"one of {', '.join(OUTBOX_POLICIES)}"


#: Well-known keys, their defaults and checks.
KEYS: dict[str, _Key] = {
    #: 500 pages carry the traceback; 1011 close reasons name the exception.
    "DEBUG": _Key(False, _flag),
    #: An HTTP path that matches nothing is redirected (307) to its slash twin if that exists.
    "REDIRECT_SLASHES": _Key(False, _flag),
    #: Largest message a client may send, in bytes (text: in characters); over it, close 1009.
    "WEBSOCKET_MAX_MESSAGE_SIZE": _Key(1 << 20, _count),
    #: Messages read ahead of a handler that is busy; then the server stops reading (TCP
    #: backpressure slows the client down).
    "WEBSOCKET_INBOX_SIZE": _Key(16, _count),
    #: Seconds without any frame from the client (data, ping, pong) before closing with 1001.
    "WEBSOCKET_IDLE_TIMEOUT": _Key(None, _optional(_seconds)),
    #: ``(ping, pong)``: a text frame ``ping`` from the client is answered with ``pong`` and not
    #: given to the handler.
    "WEBSOCKET_HEARTBEAT": _Key(None, _heartbeat),
    #: Origins a browser's handshake may come from (``"same-origin"``: the Host's own, ``"*"``:
    #: any); others get HTTP 403. ``None``: no check. A handshake without ``Origin`` is allowed.
    "WEBSOCKET_ALLOWED_ORIGINS": _Key(("same-origin",), _origins),
    #: Seconds a connection may take to end: the handler's grace once the connection has ended
    #: (then it is cancelled), the close handshake, and the disconnect hook.
    "WEBSOCKET_CLOSE_TIMEOUT": _Key(5.0, _seconds),
    #: What a push does when the outbox is over a limit (``docs/limits.md``).
    "WEBSOCKET_OUTBOX_POLICY": _Key("close", _policy),
    #: Frames an outbox may hold.
    "WEBSOCKET_OUTBOX_MAX_MESSAGES": _Key(1024, _count),
    #: Bytes an outbox may hold (text counted as UTF-8).
    "WEBSOCKET_OUTBOX_MAX_BYTES": _Key(4 << 20, _count),
    #: Seconds the oldest frame of an outbox may wait; ``None``: no limit.
    "WEBSOCKET_OUTBOX_MAX_LAG": _Key(None, _optional(_seconds)),
    #: Seconds between the pings triows sends each client (on hypercorn; ``None``: none). Any
    #: answer counts as activity for ``WEBSOCKET_IDLE_TIMEOUT``, and the ping is TCP data a
    #: vanished peer cannot acknowledge (see ``triows run --tcp-user-timeout``).
    "WEBSOCKET_PING_INTERVAL": _Key(20.0, _optional(_seconds)),
    #: The close code every open connection gets when the server stops (``docs/deployment.md``).
    "WEBSOCKET_SHUTDOWN_CODE": _Key(1012, _shutdown_code),
    #: Seconds handlers have, once told the server stops, before they are cancelled.
    "WEBSOCKET_DRAIN_TIMEOUT": _Key(10.0, _seconds),
    #: permessage-deflate: ``None`` (off), ``"deflate"`` (each message compressed on its own:
    #: nothing kept between messages) or ``"deflate-context"`` (a 32 KiB window kept per
    #: direction: better ratios, ~100 KiB per connection). On hypercorn; elsewhere the server
    #: decides.
    "WEBSOCKET_COMPRESSION": _Key(None, _compression),
    #: Where channels meet: ``"memory://"`` (one process) or ``"redis://host:port/db"`` (every
    #: worker and host on that Redis; ``docs/channels.md``).
    "CHANNELS_URL": _Key("memory://", _channels_url),
    #: Topics that keep a history, by pattern (``fnmatch``: ``"room:*"``), and how many
    #: messages each keeps: their messages get ids, and a member can join ``since`` one.
    "CHANNELS_HISTORY": _Key({}, _history),
    #: Seconds a publisher waits, at most, for members whose outbox is over half full (a burst
    #: is paced to the members that keep up; the others are left to their outbox policy).
    "CHANNELS_PACE_TIMEOUT": _Key(0.05, _seconds),
    #: Redis: seconds after which the presence of a worker that stopped answering is purged
    #: (each worker renews its own every quarter of it).
    "CHANNELS_PRESENCE_TIMEOUT": _Key(10.0, _seconds),
    #: Redis: seconds a publish keeps retrying while Redis cannot be reached (a restart).
    "CHANNELS_PUBLISH_TIMEOUT": _Key(5.0, _seconds),
}


def check_value(what: str, value: Any, check: Callable[[Any], str | None]) -> Any:
    """``value`` if ``check`` accepts it.

    Raises:
        ConfigurationError: Naming ``what``, what it must be, and what it got.
    """
    problem = check(value)
    if problem is not None:
        raise ConfigurationError(f"{what} must be {problem}, got {value!r}")
    return value


class Config(Mapping[str, Any]):
    """Settings, read as ``config["DEBUG"]`` or ``config.DEBUG``.

    Args:
        source: A mapping, or any object whose UPPER_CASE attributes are settings (a class or
            module, as Ellar's ``config_module``). Unknown keys are kept for the app's own use.

    Raises:
        ConfigurationError: A well-known key has a value it cannot take.
    """

    def __init__(self, source: Mapping[str, Any] | object | None = None) -> None:
        values = {key: spec.default for key, spec in KEYS.items()}
        if isinstance(source, Mapping):
            values.update(source)
        elif source is not None:
            values.update({k: getattr(source, k) for k in dir(source) if k.isupper()})
        for key, spec in KEYS.items():
            check_value(f"config {key}", values[key], spec.check)
        if values["WEBSOCKET_ALLOWED_ORIGINS"] is not None:
            values["WEBSOCKET_ALLOWED_ORIGINS"] = tuple(values["WEBSOCKET_ALLOWED_ORIGINS"])
        self._values = values

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __getattr__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(key) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Config({self._values!r})"
