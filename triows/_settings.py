"""What one websocket route's connections are allowed: limits, timeouts, origins, the outbox.

The app's ``WEBSOCKET_*`` config keys are the defaults; ``@ws_route(...)`` keyword arguments
override them for one route. Both are checked, and resolved into one frozen
:class:`ConnectionSettings` per route, when the app is built: nothing of it is decided per
connection.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .config import KEYS, OUTBOX_POLICIES, check_value
from .errors import ConfigurationError

__all__ = ["APP_DEFAULT", "AppDefault", "ConnectionSettings", "OutboxPolicy", "resolve"]

OnFull = Literal["block", "drop_oldest", "drop_newest", "close"]


class AppDefault(enum.Enum):
    """The type of :data:`APP_DEFAULT`."""

    APP_DEFAULT = "the app's setting"

    def __repr__(self) -> str:
        return "APP_DEFAULT"


#: A route setting left to the app's config key.
APP_DEFAULT = AppDefault.APP_DEFAULT


@dataclass(frozen=True)
class OutboxPolicy:
    """How a route's connections treat a client that cannot keep up with their pushes.

    Every field left as :data:`APP_DEFAULT` takes the app's ``WEBSOCKET_OUTBOX_*`` setting.

    Args:
        on_full: What a push does once the outbox is over a limit: ``"block"`` (raise
            ``trio.WouldBlock``; ``await websocket.drain()`` first), ``"drop_oldest"``,
            ``"drop_newest"``, or ``"close"`` (the connection is closed with 1013).
        max_messages: Frames the outbox may hold.
        max_bytes: Bytes it may hold (text counted as UTF-8).
        max_lag: Seconds its oldest frame may wait; ``None``: no limit.
    """

    on_full: OnFull | AppDefault = APP_DEFAULT
    max_messages: int | AppDefault = APP_DEFAULT
    max_bytes: int | AppDefault = APP_DEFAULT
    max_lag: float | AppDefault | None = APP_DEFAULT


@dataclass(frozen=True, slots=True)
class Outbox:
    """An outbox policy with every field decided."""

    on_full: OnFull
    max_messages: int
    max_bytes: int
    max_lag: float | None


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    """Everything the connections of one route are allowed, decided when the app is built."""

    max_message_size: int
    inbox_size: int
    idle_timeout: float | None
    heartbeat: tuple[str, str] | None
    #: Lower-cased allowed origins; ``None``: no check.
    allowed_origins: frozenset[str] | None
    close_timeout: float
    outbox: Outbox
    #: Seconds between pings to the client (on hypercorn); ``None``: none.
    ping_interval: float | None
    #: The close code of a drain (the server stopping).
    shutdown_code: int
    #: permessage-deflate: ``None``, ``"deflate"`` or ``"deflate-context"``.
    compression: str | None

    @property
    def checks_origin(self) -> bool:
        """Whether a browser's ``Origin`` is checked at all."""
        return self.allowed_origins is not None and "*" not in self.allowed_origins


#: The ``@ws_route`` keyword arguments and the config key each overrides.
ROUTE_KEYS = {
    "max_message_size": "WEBSOCKET_MAX_MESSAGE_SIZE",
    "idle_timeout": "WEBSOCKET_IDLE_TIMEOUT",
    "heartbeat": "WEBSOCKET_HEARTBEAT",
    "allowed_origins": "WEBSOCKET_ALLOWED_ORIGINS",
    "ping_interval": "WEBSOCKET_PING_INTERVAL",
    "shutdown_code": "WEBSOCKET_SHUTDOWN_CODE",
    "compression": "WEBSOCKET_COMPRESSION",
}

_OUTBOX_KEYS = {
    "on_full": "WEBSOCKET_OUTBOX_POLICY",
    "max_messages": "WEBSOCKET_OUTBOX_MAX_MESSAGES",
    "max_bytes": "WEBSOCKET_OUTBOX_MAX_BYTES",
    "max_lag": "WEBSOCKET_OUTBOX_MAX_LAG",
}


def check_route_options(owner: str, options: Mapping[str, Any]) -> None:
    """Check ``@ws_route`` keyword overrides as the config keys they stand for.

    Raises:
        ConfigurationError: Naming ``owner`` and the option.
    """
    for name, value in options.items():
        if value is APP_DEFAULT:
            continue
        if name == "outbox":
            if not isinstance(value, OutboxPolicy):
                raise ConfigurationError(
                    f"{owner}: outbox= takes an OutboxPolicy(...), got {value!r}"
                )
            for field, key in _OUTBOX_KEYS.items():
                own = getattr(value, field)
                if own is not APP_DEFAULT:
                    check_value(f"{owner}: OutboxPolicy({field}=...)", own, KEYS[key].check)
            continue
        check_value(f"{owner}: {name}=", value, KEYS[ROUTE_KEYS[name]].check)


def resolve(config: Mapping[str, Any], options: Mapping[str, Any]) -> ConnectionSettings:
    """The settings of one route: its own options over the app's ``config``."""

    def pick(name: str) -> Any:
        own = options.get(name, APP_DEFAULT)
        return config[ROUTE_KEYS[name]] if own is APP_DEFAULT else own

    origins: Sequence[str] | None = pick("allowed_origins")
    policy = options.get("outbox", APP_DEFAULT)
    outbox: dict[str, Any] = {}
    for field, key in _OUTBOX_KEYS.items():
        own = APP_DEFAULT if policy is APP_DEFAULT else getattr(policy, field)
        outbox[field] = config[key] if own is APP_DEFAULT else own
    assert outbox["on_full"] in OUTBOX_POLICIES
    return ConnectionSettings(
        max_message_size=pick("max_message_size"),
        inbox_size=config["WEBSOCKET_INBOX_SIZE"],
        idle_timeout=pick("idle_timeout"),
        heartbeat=pick("heartbeat"),
        allowed_origins=None if origins is None else frozenset(o.lower() for o in origins),
        close_timeout=config["WEBSOCKET_CLOSE_TIMEOUT"],
        outbox=Outbox(**outbox),
        ping_interval=pick("ping_interval"),
        shutdown_code=pick("shutdown_code"),
        compression=pick("compression"),
    )


#: The settings of a ``WebSocket`` that no ``App`` route opened (a bare ASGI use).
BARE = resolve({key: spec.default for key, spec in KEYS.items()}, {})
