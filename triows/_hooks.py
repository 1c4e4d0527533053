"""The connect and disconnect hooks of an extra-handler route, bound when the app is built."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .errors import ConfigurationError

if TYPE_CHECKING:
    from .websocket import WebSocket

__all__ = ["HookCall"]


class HookCall:
    """A connect or disconnect hook, and the route's handshake parameters it takes.

    After ``self`` come the websocket (and, for a disconnect hook, the close code); any other
    parameter gets the value of the handler's parameter of the same name (a path or query
    parameter, a header, an injected service), resolved once at the handshake; ``**kwargs``
    gets all of them (Ellar's ``on_connect(websocket, **kwargs)``).

    Args:
        fn: The hook.
        kind: ``"connect"`` or ``"disconnect"``.
        owner: The route's handler, for error messages.
        available: The names of the handler's handshake parameters.

    Raises:
        ConfigurationError: The hook takes something the route does not have, naming both.
    """

    __slots__ = ("fn", "names", "rest")

    def __init__(
        self, fn: Callable[..., Any], kind: str, owner: str, available: Sequence[str]
    ) -> None:
        self.fn = fn
        fixed = ("websocket",) if kind == "connect" else ("websocket", "code")
        parameters = list(inspect.signature(fn).parameters.values())[1:]  # after self
        positional = [
            p
            for p in parameters
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
        ]
        name = f"the {kind} hook {getattr(fn, '__qualname__', fn)!r} of {owner}"
        if len(positional) < len(fixed):
            raise ConfigurationError(f"{name} must take (self, {', '.join(fixed)})")
        self.rest = any(p.kind is p.VAR_KEYWORD for p in parameters)
        extra = [
            p.name
            for p in parameters[len(fixed) :]
            if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
        ]
        missing = [n for n in extra if n not in available]
        if missing:
            have = ", ".join(available) or "none"
            raise ConfigurationError(
                f"{name} takes {', '.join(map(repr, missing))}, which the route does not have "
                f"(its handshake parameters: {have})"
            )
        self.names = tuple(extra)

    def __call__(
        self, instance: Any, websocket: WebSocket, arguments: Mapping[str, Any], *fixed: Any
    ) -> Awaitable[Any]:
        """The hook's coroutine for one connection."""
        if self.rest:
            return self.fn(instance, websocket, *fixed, **arguments)  # type: ignore[no-any-return]
        if self.names:
            chosen = {n: arguments[n] for n in self.names}
            return self.fn(instance, websocket, *fixed, **chosen)  # type: ignore[no-any-return]
        return self.fn(instance, websocket, *fixed)  # type: ignore[no-any-return]
