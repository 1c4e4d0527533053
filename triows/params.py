"""How a handler's parameters are filled: inspected once per route, at app build time.

A :class:`CallPlan` is built from the handler's signature when the app is built; per request it
only looks values up. Today it supplies:

* a parameter annotated :class:`~triows.WebSocket`, :class:`~triows.Request` or
  :class:`~triows.ExecutionContext`: that object;
* a parameter named like a path parameter of the route: its converted value.

Anything else fails the build, naming the handler and the parameter.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Collection, Mapping
from typing import Any

from .context import ExecutionContext
from .controllers import describe
from .errors import ConfigurationError
from .requests import HTTPConnection, Request
from .websocket import WebSocket

__all__ = ["CallPlan"]

_EMPTY: Mapping[str, Any] = {}


class CallPlan:
    """The compiled answer to "what does this handler take?".

    Args:
        fn: The handler (a method: its first parameter is the controller instance).
        kind: ``"http"`` or ``"websocket"``.
        path_params: Names of the route's path parameters.
    """

    def __init__(self, fn: Callable[..., Any], kind: str, path_params: Collection[str]) -> None:
        self.owner = describe(fn)
        try:
            hints = typing.get_type_hints(fn)
        except Exception as exc:
            raise ConfigurationError(
                f"{self.owner}: cannot read its type annotations ({exc})"
            ) from exc
        connection_type = WebSocket if kind == "websocket" else Request
        self._sources: list[tuple[str, str]] = []
        parameters = list(inspect.signature(fn).parameters.values())[1:]  # skip self
        for parameter in parameters:
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                continue
            annotation = hints.get(parameter.name)
            if isinstance(annotation, type) and issubclass(annotation, HTTPConnection):
                if not issubclass(connection_type, annotation):
                    raise ConfigurationError(
                        f"{self.owner}: parameter {parameter.name!r} is a "
                        f"{annotation.__name__}, but this is a {kind} route"
                    )
                self._sources.append((parameter.name, "connection"))
            elif annotation is ExecutionContext:
                self._sources.append((parameter.name, "context"))
            elif parameter.name in path_params:
                self._sources.append((parameter.name, "path"))
            elif parameter.default is not parameter.empty:
                continue
            else:
                raise ConfigurationError(
                    f"{self.owner}: parameter {parameter.name!r} has no source: it is not a "
                    f"path parameter of the route nor annotated WebSocket/Request/"
                    f"ExecutionContext"
                )

    @property
    def empty(self) -> bool:
        """True when the handler takes nothing but ``self``."""
        return not self._sources

    def resolve(self, connection: HTTPConnection, context: ExecutionContext) -> Mapping[str, Any]:
        """The keyword arguments for one call."""
        if not self._sources:
            return _EMPTY
        values: dict[str, Any] = {}
        path_params = connection.path_params
        for name, source in self._sources:
            if source == "connection":
                values[name] = connection
            elif source == "context":
                values[name] = context
            else:
                values[name] = path_params[name]
        return values
