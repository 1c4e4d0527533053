"""Path templates, the route table, and reverse URL building.

A template such as ``/car/{id:int}/parts/{rest:path}`` is compiled once into a regex plus one
converter per parameter. The :class:`Router` keeps routes whose path has no parameter in a dict
(one lookup) and the rest in registration order, so a static ``/items/new`` always wins over
``/items/{id}``.
"""

from __future__ import annotations

import decimal
import math
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .errors import ConfigurationError

__all__ = ["Converter", "NoMatchFound", "PathTemplate", "Route", "Router"]

E = TypeVar("E")


class NoMatchFound(LookupError):
    """``url_path_for`` found no route by that name, or the parameters did not fit it."""


@dataclass(frozen=True)
class Converter:
    """How one path parameter is matched, converted and written back."""

    regex: str
    to_python: Any
    to_string: Any


def _float_to_string(value: float) -> str:
    if math.isnan(value) or math.isinf(value) or value < 0:
        raise ValueError(f"{value!r} cannot be written as a {{x:float}} path parameter")
    return format(decimal.Decimal(repr(float(value))), "f")


def _int_to_string(value: int) -> str:
    if value < 0:
        raise ValueError(f"{value!r} cannot be written as an {{id:int}} path parameter")
    return str(int(value))


def _str_to_string(value: str) -> str:
    value = str(value)
    if not value or "/" in value:
        raise ValueError(f"{value!r} must be a non-empty string without '/'")
    return value


CONVERTERS: dict[str, Converter] = {
    "str": Converter("[^/]+", str, _str_to_string),
    "int": Converter("[0-9]+", int, _int_to_string),
    "float": Converter(r"[0-9]+(?:\.[0-9]+)?", float, _float_to_string),
    "path": Converter(".*", str, str),
    "uuid": Converter(
        "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
        uuid.UUID,
        str,
    ),
}

_PARAM = re.compile(r"{([A-Za-z_][A-Za-z0-9_]*)(?::([A-Za-z_]+))?}")


class PathTemplate:
    """A compiled path template.

    Args:
        template: The path, starting with ``/``; parameters are ``{name}`` or ``{name:conv}``
            with ``conv`` one of ``str``, ``int``, ``float``, ``path``, ``uuid``.
    """

    __slots__ = ("converters", "is_static", "regex", "template")

    def __init__(self, template: str) -> None:
        if not template.startswith("/"):
            raise ConfigurationError(f"route path {template!r} must start with '/'")
        self.template = template
        self.converters: dict[str, Converter] = {}
        pattern = "^"
        position = 0
        for match in _PARAM.finditer(template):
            name, kind = match.group(1), match.group(2) or "str"
            if kind not in CONVERTERS:
                known = ", ".join(sorted(CONVERTERS))
                raise ConfigurationError(
                    f"route path {template!r}: unknown converter {kind!r} (known: {known})"
                )
            if name in self.converters:
                raise ConfigurationError(f"route path {template!r} repeats parameter {name!r}")
            self.converters[name] = CONVERTERS[kind]
            pattern += re.escape(template[position : match.start()])
            pattern += f"(?P<{name}>{CONVERTERS[kind].regex})"
            position = match.end()
        pattern += re.escape(template[position:]) + "$"
        self.is_static = not self.converters
        self.regex = re.compile(pattern)

    def __repr__(self) -> str:
        return f"PathTemplate({self.template!r})"

    @property
    def shape(self) -> str:
        """The template with parameter names erased: two routes of one shape collide."""
        return _PARAM.sub(lambda m: "{:" + (m.group(2) or "str") + "}", self.template)

    def match(self, path: str) -> dict[str, Any] | None:
        """The converted parameters if ``path`` fits this template, else ``None``."""
        if self.is_static:
            return {} if path == self.template else None
        found = self.regex.match(path)
        if found is None:
            return None
        try:
            return {
                name: self.converters[name].to_python(value)
                for name, value in found.groupdict().items()
            }
        except ValueError:
            return None

    def format(self, params: Mapping[str, Any]) -> str:
        """Write the template back with ``params`` filled in."""
        missing = self.converters.keys() - params.keys()
        extra = params.keys() - self.converters.keys()
        if missing or extra:
            raise NoMatchFound(
                f"{self.template!r} takes parameters {sorted(self.converters)}, "
                f"got {sorted(params)}"
            )

        def fill(match: re.Match[str]) -> str:
            name = match.group(1)
            converter = self.converters[name]
            try:
                text = str(converter.to_string(params[name]))
            except ValueError as exc:
                raise NoMatchFound(f"{self.template!r}: parameter {name!r}: {exc}") from None
            if re.fullmatch(converter.regex, text) is None:
                raise NoMatchFound(
                    f"{self.template!r}: parameter {name!r}: {params[name]!r} does not fit"
                )
            return text

        return _PARAM.sub(fill, self.template)


@dataclass(eq=False)
class Route(Generic[E]):
    """One entry of the route table.

    Attributes:
        path: The compiled path template.
        endpoint: What the app calls for a match (an HTTP or websocket endpoint).
        name: The name ``url_path_for`` knows it by.
        methods: HTTP methods; empty for a websocket route.
        owner: Where it was declared, for error messages (``CarController.live_support``).
    """

    path: PathTemplate
    endpoint: E
    name: str
    methods: frozenset[str] = field(default_factory=frozenset)
    owner: str = ""


class Router(Generic[E]):
    """A route table for one scope type (HTTP or websocket), built once.

    Args:
        routes: The routes, in registration order.
        kind: ``"http"`` or ``"websocket"``, for messages.
    """

    def __init__(self, routes: Iterable[Route[E]], kind: str) -> None:
        self.kind = kind
        self.routes: list[Route[E]] = []
        self._static: dict[str, list[Route[E]]] = {}
        self._dynamic: list[Route[E]] = []
        seen: dict[str, list[Route[E]]] = {}
        for route in routes:
            for other in seen.get(route.path.shape, ()):
                if kind == "websocket" or route.methods & other.methods:
                    overlap = ", ".join(sorted(route.methods & other.methods))
                    what = f"{overlap} {route.path.template}" if overlap else route.path.template
                    raise ConfigurationError(
                        f"{kind} route {what!r} is registered twice: "
                        f"by {other.owner or other.name} and by {route.owner or route.name}"
                    )
            seen.setdefault(route.path.shape, []).append(route)
            self.routes.append(route)
            if route.path.is_static:
                self._static.setdefault(route.path.template, []).append(route)
            else:
                self._dynamic.append(route)

    def match(self, path: str) -> list[tuple[Route[E], dict[str, Any]]]:
        """Every route whose path fits, static ones first, with converted parameters."""
        found: list[tuple[Route[E], dict[str, Any]]] = [
            (route, {}) for route in self._static.get(path, ())
        ]
        for route in self._dynamic:
            params = route.path.match(path)
            if params is not None:
                found.append((route, params))
        return found

    def match_first(self, path: str) -> tuple[Route[E], dict[str, Any]] | None:
        """The first route whose path fits (for websockets, where there is no method)."""
        static = self._static.get(path)
        if static:
            return static[0], {}
        for route in self._dynamic:
            params = route.path.match(path)
            if params is not None:
                return route, params
        return None


class URLNames:
    """Reverse lookup: route names to templates, shared by HTTP and websocket routes."""

    def __init__(self, routes: Iterable[Route[Any]]) -> None:
        self._names: dict[str, list[Route[Any]]] = {}
        for route in routes:
            self._names.setdefault(route.name, []).append(route)
            if route.owner and route.owner != route.name:
                self._names.setdefault(route.owner, []).append(route)

    def url_path_for(self, name: str, /, **params: Any) -> str:
        """The path of the route called ``name`` with ``params`` filled in."""
        routes = self._names.get(name)
        if not routes:
            raise NoMatchFound(f"no route is named {name!r}")
        templates = {route.path.template for route in routes}
        if len(templates) > 1:
            owners = ", ".join(sorted(route.owner for route in routes))
            raise NoMatchFound(
                f"route name {name!r} is ambiguous ({owners}): use 'Controller.method' "
                "or give the routes distinct name=..."
            )
        return routes[0].path.format(params)
