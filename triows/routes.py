"""The route model: one immutable description of every route of an app.

An :class:`~triows.App` compiles its controllers into a :class:`RouteTable` once, when it is
built (``app.routes``). Everything a route is lives here: its path and parameters, guards,
encoding, the events it receives and their models, what it replies and sends, its hooks and
connection settings. The app serves from this table and nothing else; the AsyncAPI document
(``triows.asyncapi``) is generated from it; tests read it. Nothing in it changes after the
build: the dataclasses are frozen and their collections are tuples.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import pydantic

    from ._settings import ConnectionSettings
    from .routing import PathTemplate

__all__ = [
    "REQUIRED",
    "Event",
    "HTTPRoute",
    "Parameter",
    "RouteTable",
    "Source",
    "WebSocketRoute",
]

#: Where a handler parameter's value comes from.
Source = Literal[
    "path", "query", "header", "cookie", "body", "ws_body", "inject", "connection", "context"
]
#: The sources whose values are validated (the rest are objects triows hands over).
VALIDATED: frozenset[str] = frozenset({"path", "query", "header", "cookie", "body"})

#: The default of a parameter that has none.
REQUIRED: Any = ...

_NO_CONSTRAINTS: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class Parameter:
    """One parameter of a handler, as the app resolves it.

    Attributes:
        name: The parameter's name in the handler's signature.
        source: Where its value comes from.
        key: Its name on the wire: the query key, the header (lower case), the cookie, the
            path parameter, the body field; for ``inject``, the service's class name.
        annotation: The type it is validated as (with ``Annotated`` metadata), the service
            class for ``inject``.
        default: Its default, :data:`REQUIRED` if it has none.
        constraints: pydantic ``Field`` constraints from its marker (``ge=1``, ``pattern=``).
        many: A query or header parameter that collects every repeated value (a list).
        embed: ``Body(embed=True)`` / ``WsBody(embed=True)``.
    """

    name: str
    source: Source
    key: str
    annotation: Any
    default: Any = REQUIRED
    constraints: Mapping[str, Any] = field(default_factory=lambda: _NO_CONSTRAINTS)
    many: bool = False
    embed: bool = False

    @property
    def required(self) -> bool:
        """The client must send it."""
        return self.default is REQUIRED

    @property
    def handshake(self) -> bool:
        """It is resolved once, at the handshake (every source but a websocket message)."""
        return self.source != "ws_body"


@dataclass(frozen=True)
class Event:
    """One event a websocket route receives: a model, and the handler it is dispatched to.

    Attributes:
        names: The values of the route's discriminator field that select it (``("say",)``).
        model: The model the handler declares.
        wire: What a message is validated as: ``model`` with the discriminator and the ``ref``
            correlation field added where it does not declare them (a subclass of ``model``).
        handler: The event handler (a controller method).
        owner: ``Controller.method``, for messages.
        message: The name of the handler's parameter that receives the message.
        takes: The route's handshake parameters the handler also takes, by name.
        reply: What the handler returns: its return annotation (``None``: no reply).
        summary: The first line of the handler's docstring, if any.
    """

    names: tuple[str, ...]
    model: type[pydantic.BaseModel]
    wire: type[pydantic.BaseModel]
    handler: Callable[..., Any]
    owner: str
    message: str
    takes: tuple[str, ...]
    reply: Any
    summary: str | None = None

    @property
    def replies(self) -> bool:
        """The handler returns something (not only ``None``)."""
        return self.reply is not None


@dataclass(frozen=True)
class WebSocketRoute:
    """A websocket route.

    Attributes:
        name: The name ``url_path_for`` knows it by.
        owner: ``Controller.method``.
        path: The compiled path template (with the controller's prefix).
        controller: The controller class.
        handler: The route's function.
        parameters: Its parameters, in signature order (``ws_body`` ones included).
        guards: The guards that run before the handshake: the app's, the controller's, its own.
        driver: ``"plain"`` (the handler owns the connection), ``"messages"`` (the
            extra-handler loop, one ``WsBody``), or ``"events"`` (dispatch by event).
        encoding: The extra-handler loop's message encoding.
        on_invalid: After an invalid message: ``"close"`` (1008) or ``"reply"``.
        discriminator: The JSON field that names a message's event (``"events"`` routes).
        events: The events it receives (``"events"`` routes), in registration order.
        sends: The models of the messages the server sends on it, as declared (``sends=``).
        connect: The connect hook, if any.
        disconnect: The disconnect hook, if any.
        settings: Its limits, timeouts, origins and outbox policy (config and route options).
        summary: The first line of the handler's docstring, if any.
    """

    name: str
    owner: str
    path: PathTemplate
    controller: type
    handler: Callable[..., Any]
    parameters: tuple[Parameter, ...]
    guards: tuple[Any, ...]
    driver: Literal["plain", "messages", "events"]
    encoding: str | None
    on_invalid: str
    discriminator: str
    events: tuple[Event, ...]
    sends: tuple[type[pydantic.BaseModel], ...]
    connect: Callable[..., Any] | None
    disconnect: Callable[..., Any] | None
    settings: ConnectionSettings
    summary: str | None = None

    @property
    def body(self) -> tuple[Parameter, ...]:
        """The ``WsBody`` parameters (``"messages"`` routes)."""
        return tuple(p for p in self.parameters if p.source == "ws_body")

    @property
    def handshake_parameters(self) -> tuple[Parameter, ...]:
        """The parameters resolved once, at the handshake."""
        return tuple(p for p in self.parameters if p.source != "ws_body")


@dataclass(frozen=True)
class HTTPRoute:
    """An HTTP route.

    Attributes:
        name: The name ``url_path_for`` knows it by.
        owner: ``Controller.method``.
        path: The compiled path template.
        methods: Its HTTP methods (``HEAD`` added where ``GET`` is).
        controller: The controller class.
        handler: The route's function.
        parameters: Its parameters, in signature order.
        guards: The guards that run before it.
        template: The ``@render`` template, if any.
        summary: The first line of the handler's docstring, if any.
    """

    name: str
    owner: str
    path: PathTemplate
    methods: frozenset[str]
    controller: type
    handler: Callable[..., Any]
    parameters: tuple[Parameter, ...]
    guards: tuple[Any, ...]
    template: str | None = None
    summary: str | None = None

    @property
    def handshake_parameters(self) -> tuple[Parameter, ...]:
        """Its parameters (all of them are resolved per request)."""
        return self.parameters


@dataclass(frozen=True)
class RouteTable:
    """Every route of an app, in registration order.

    Attributes:
        http: The HTTP routes of its controllers.
        websocket: The websocket routes.
    """

    http: tuple[HTTPRoute, ...] = ()
    websocket: tuple[WebSocketRoute, ...] = ()

    def websocket_route(self, name: str) -> WebSocketRoute:
        """The websocket route called ``name`` (or ``"Controller.method"``).

        Raises:
            KeyError: No such route.
        """
        for route in self.websocket:
            if name in (route.name, route.owner):
                return route
        raise KeyError(f"no websocket route is named {name!r}")
