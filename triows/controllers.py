"""Controllers and the route decorators.

Decorators only attach metadata to the function (so they stack in any order); the app reads it
once when it is built. Misuse that can be seen at decoration time — a sync handler, a decorator
used without its parentheses, an unknown option — raises there, naming the handler.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

import pydantic

from ._settings import APP_DEFAULT, AppDefault, OutboxPolicy, check_route_options
from .errors import ConfigurationError

if TYPE_CHECKING:
    from .context import ExecutionContext

__all__ = [
    "Controller",
    "ControllerBase",
    "ControllerInfo",
    "RouteInfo",
    "delete",
    "get",
    "patch",
    "post",
    "put",
    "render",
    "ws_route",
]

F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C", bound=type)

#: ``None``: each message as it came, text or bytes (Ellar's and Starlette's raw encoding).
Encoding = Literal["text", "json", "bytes"] | None
ENCODINGS: frozenset[str | None] = frozenset({"text", "json", "bytes", None})
OnInvalid = Literal["close", "reply"]
ON_INVALID: frozenset[str] = frozenset({"close", "reply"})

_ROUTES_ATTR = "__triows_routes__"
_CONTROLLER_ATTR = "__triows_controller__"
_RENDER_ATTR = "__triows_render__"
_HOOK_ATTRS = {"connect": "__triows_connect__", "disconnect": "__triows_disconnect__"}
_EVENT_ATTR = "__triows_event_of__"


def describe(fn: Any) -> str:
    """``CarController.live_support``: how error messages name a handler."""
    return str(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", repr(fn)))


@dataclass(frozen=True)
class RouteInfo:
    """What a route decorator recorded on a handler function."""

    kind: Literal["http", "websocket"]
    path: str
    methods: frozenset[str] = frozenset()
    name: str | None = None
    use_extra_handler: bool = False
    encoding: Encoding = "json"
    on_invalid: OnInvalid = "close"
    #: ``@ws_route`` settings that override the app's ``WEBSOCKET_*`` config keys.
    options: tuple[tuple[str, Any], ...] = ()
    #: The JSON field that names a message's event (routes with ``@ws_route.on`` handlers).
    discriminator: str = "event"
    #: The models of the messages the server sends (``sends=``), for the AsyncAPI document.
    sends: tuple[Any, ...] = ()


@dataclass(frozen=True)
class ControllerInfo:
    """What ``@Controller`` recorded on a class."""

    prefix: str


def route_infos(fn: Any) -> list[RouteInfo]:
    """The routes recorded on ``fn`` (empty if it is not a handler)."""
    infos: list[RouteInfo] = getattr(fn, _ROUTES_ATTR, [])
    return infos


def hook_of(handler: Any, kind: Literal["connect", "disconnect"]) -> Callable[..., Any] | None:
    """The connect or disconnect hook registered for an extra-handler ``handler``, if any."""
    hook: Callable[..., Any] | None = getattr(handler, _HOOK_ATTRS[kind], None)
    return hook


def event_handlers(cls: type, handler: Any) -> list[tuple[Callable[..., Any], str | None]]:
    """The ``@ws_route.on(handler)`` event handlers ``cls`` has, and their event names.

    Looked up on the class, inherited ones included, as :func:`collect_handlers` finds routes:
    a controller that inherits a route gets the event handlers it (or its bases) has, not
    those another subclass of the same base declares; an override replaces a base's handler.
    """
    found: list[tuple[Callable[..., Any], str | None]] = []
    for _, fn in _members(cls):
        for route, event in getattr(fn, _EVENT_ATTR, ()):
            if route is handler:
                found.append((fn, event))
    return found


def render_template_name(fn: Any) -> str | None:
    """The template ``@render`` recorded on ``fn``, if any."""
    name: str | None = getattr(fn, _RENDER_ATTR, None)
    return name


def controller_info(cls: type) -> ControllerInfo | None:
    """The ``@Controller`` metadata of ``cls`` itself (not inherited), if any."""
    info: ControllerInfo | None = cls.__dict__.get(_CONTROLLER_ATTR)
    return info


def _check_handler(fn: Any, decorator: str) -> None:
    if inspect.isclass(fn) or not callable(fn):
        raise ConfigurationError(f"{decorator} decorates a function, got {fn!r}")
    target = inspect.unwrap(fn)
    if not inspect.iscoroutinefunction(target):
        raise ConfigurationError(
            f"{describe(fn)} must be 'async def' to be used with {decorator}: "
            "handlers run on trio and a sync one would block the event loop"
        )


def _attach(fn: F, info: RouteInfo, decorator: str) -> F:
    _check_handler(fn, decorator)
    existing = route_infos(fn)
    setattr(fn, _ROUTES_ATTR, [*existing, info])
    return fn


def _http_decorator(method: str) -> Callable[..., Callable[[F], F]]:
    decorator = f"@{method.lower()}"

    def make(path: str = "/", *, name: str | None = None) -> Callable[[F], F]:
        if not isinstance(path, str):
            raise ConfigurationError(
                f"{decorator} needs parentheses: write {decorator}('/path') above {describe(path)}"
            )
        methods = frozenset({method})
        return lambda fn: _attach(fn, RouteInfo("http", path, methods, name), decorator)

    make.__name__ = method.lower()
    make.__doc__ = f"""Route HTTP ``{method}`` requests for ``path`` to the decorated handler.

    Args:
        path: The path template, relative to the controller's prefix.
        name: The name for ``url_path_for`` (default: the function's name).
    """
    return make


get = _http_decorator("GET")
post = _http_decorator("POST")
put = _http_decorator("PUT")
patch = _http_decorator("PATCH")
delete = _http_decorator("DELETE")


class _WsRoute:
    """``@ws_route(path, ...)``: declare a websocket handler."""

    def __call__(
        self,
        path: str = "/",
        *,
        name: str | None = None,
        use_extra_handler: bool = False,
        encoding: Encoding = "json",
        on_invalid: OnInvalid = "close",
        discriminator: str = "event",
        sends: Sequence[Any] | Any = (),
        max_message_size: int | AppDefault = APP_DEFAULT,
        idle_timeout: float | AppDefault | None = APP_DEFAULT,
        heartbeat: tuple[str, str] | AppDefault | None = APP_DEFAULT,
        allowed_origins: Sequence[str] | AppDefault | None = APP_DEFAULT,
        outbox: OutboxPolicy | AppDefault = APP_DEFAULT,
        ping_interval: float | AppDefault | None = APP_DEFAULT,
        shutdown_code: int | AppDefault = APP_DEFAULT,
        compression: str | AppDefault | None = APP_DEFAULT,
    ) -> Callable[[F], F]:
        """Route websocket connections for ``path`` to the decorated handler.

        The last eight arguments override, for this route, the app's config key of the same
        name (``WEBSOCKET_MAX_MESSAGE_SIZE`` …; see ``docs/limits.md``); left out, the app's
        setting applies.

        Args:
            path: The path template, relative to the controller's prefix.
            name: The name for ``url_path_for`` (default: the function's name).
            use_extra_handler: Make the handler a per-message handler driven by triows' loop.
            encoding: With ``use_extra_handler``: ``"text"``, ``"json"`` or ``"bytes"``.
            on_invalid: With ``use_extra_handler``: after a message fails validation and its
                error frame is sent, ``"close"`` (1008, the default) or ``"reply"`` (stay open).
            discriminator: With ``@ws_route.on`` event handlers: the JSON field that names a
                message's event.
            sends: The pydantic models of the messages the server sends on this route (a
                sequence, or a union ``A | B``), listed in the AsyncAPI document.
            max_message_size: Largest message a client may send (then close 1009).
            idle_timeout: Seconds of silence from the client before closing with 1001.
            heartbeat: ``(ping, pong)`` text frames triows answers itself.
            allowed_origins: Origins a browser's handshake may come from.
            outbox: Limits and policy of ``push_*`` (:class:`~triows.OutboxPolicy`).
            ping_interval: Seconds between the pings sent to each client (on hypercorn).
            shutdown_code: The close code its connections get when the server stops.
            compression: permessage-deflate: ``None``, ``"deflate"`` or ``"deflate-context"``.

        Raises:
            ConfigurationError: Used without parentheses, an unknown ``encoding``, or a setting
                its config key would refuse.
        """
        if not isinstance(path, str):
            raise ConfigurationError(
                f"@ws_route needs parentheses: write @ws_route('/path') above {describe(path)}"
            )
        given = {
            "max_message_size": max_message_size,
            "idle_timeout": idle_timeout,
            "heartbeat": heartbeat,
            "allowed_origins": allowed_origins,
            "outbox": outbox,
            "ping_interval": ping_interval,
            "shutdown_code": shutdown_code,
            "compression": compression,
        }
        options = tuple((k, v) for k, v in given.items() if v is not APP_DEFAULT)
        info = RouteInfo(
            "websocket",
            path,
            frozenset(),
            name,
            use_extra_handler,
            encoding,
            on_invalid,
            options,
            discriminator,
            _flatten_sends(sends),
        )

        def decorate(fn: F) -> F:
            check_route_options(f"@ws_route({path!r}) on {describe(fn)}", dict(options))
            if encoding not in ENCODINGS:
                raise ConfigurationError(
                    f"@ws_route({path!r}) on {describe(fn)}: unknown encoding {encoding!r}; "
                    "use one of 'text', 'json', 'bytes' or None"
                )
            if not isinstance(discriminator, str) or not discriminator:
                raise ConfigurationError(
                    f"@ws_route({path!r}) on {describe(fn)}: discriminator must be the name of "
                    f"a JSON field, got {discriminator!r}"
                )
            for model in info.sends:
                if not (inspect.isclass(model) and issubclass(model, pydantic.BaseModel)):
                    raise ConfigurationError(
                        f"@ws_route({path!r}) on {describe(fn)}: sends= lists pydantic models "
                        f"(the messages the server sends), got {model!r}"
                    )
            if on_invalid not in ON_INVALID:
                raise ConfigurationError(
                    f"@ws_route({path!r}) on {describe(fn)}: unknown on_invalid "
                    f"{on_invalid!r}; use one of {sorted(ON_INVALID)}"
                )
            return _attach(fn, info, "@ws_route")

        return decorate

    def connect(self, handler: Callable[..., Any]) -> Callable[[F], F]:
        """Register ``async def hook(self, websocket)`` to open ``handler``'s connections.

        It replaces the default (``await websocket.accept()``): it must accept (or close).

        Raises:
            ConfigurationError: ``handler`` is not a ``use_extra_handler=True`` route, it has a
                connect hook already, or the hook is not ``async def``.
        """
        return self._hook(handler, "connect")

    def disconnect(self, handler: Callable[..., Any]) -> Callable[[F], F]:
        """Register ``async def hook(self, websocket, code)`` for when a connection ends.

        It runs once per accepted connection of ``handler``, with the close code actually sent
        or received.

        Raises:
            ConfigurationError: ``handler`` is not a ``use_extra_handler=True`` route, it has a
                disconnect hook already, or the hook is not ``async def``.
        """
        return self._hook(handler, "disconnect")

    def on(self, handler: Callable[..., Any], event: str | None = None) -> Callable[[F], F]:
        """Register ``async def on_say(self, message: Say, ...)`` for one event of ``handler``.

        ``handler``'s route then dispatches each message by its discriminator field
        (``"event"``, or the route's ``discriminator=``) to the event handler whose model
        declares that value (a ``Literal`` field), or whose ``event`` is that value. The
        message is validated as that model; the handler's other parameters get the route's
        handshake parameters of the same name. Its return value (a model, or ``None``) is the
        reply. ``handler`` itself then runs once per connection, when it has opened
        (``docs/events.md``).

        Args:
            handler: A ``use_extra_handler=True`` websocket route of the same controller.
            event: The event's name, when the model does not declare its discriminator field.

        Raises:
            ConfigurationError: ``handler`` is not a ``use_extra_handler=True`` route, the event
                handler is not ``async def``, or ``event`` is not a string.
        """
        decorator = f"@ws_route.on({describe(handler)})"
        if not any(i.kind == "websocket" and i.use_extra_handler for i in route_infos(handler)):
            raise ConfigurationError(
                f"{decorator}: {describe(handler)} is not a websocket route with "
                "use_extra_handler=True (declare it with @ws_route above it)"
            )
        if event is not None and (not isinstance(event, str) or not event):
            raise ConfigurationError(f"{decorator}: event must be a non-empty string")

        def register(fn: F) -> F:
            _check_handler(fn, decorator)
            # One function may handle an event of several routes (each mark is one).
            setattr(fn, _EVENT_ATTR, (*getattr(fn, _EVENT_ATTR, ()), (handler, event)))
            return fn

        return register

    @staticmethod
    def _hook(handler: Any, kind: Literal["connect", "disconnect"]) -> Callable[[F], F]:
        decorator = f"@ws_route.{kind}({describe(handler)})"
        if not any(i.kind == "websocket" and i.use_extra_handler for i in route_infos(handler)):
            raise ConfigurationError(
                f"{decorator}: {describe(handler)} is not a websocket route with "
                "use_extra_handler=True (declare it with @ws_route above it)"
            )

        def register(hook: F) -> F:
            _check_handler(hook, decorator)
            existing = hook_of(handler, kind)
            if existing is not None:
                raise ConfigurationError(
                    f"{decorator} on {describe(hook)}: {describe(handler)} already has a "
                    f"{kind} hook, {describe(existing)}"
                )
            setattr(handler, _HOOK_ATTRS[kind], hook)
            return hook

        return register


ws_route = _WsRoute()


def _flatten_sends(sends: Any) -> tuple[Any, ...]:
    """``sends=`` as a tuple of types: a union ``A | B`` or a sequence of types and unions."""
    if sends is None:
        return ()
    items = list(sends) if isinstance(sends, (list, tuple, set, frozenset)) else [sends]
    flat: list[Any] = []
    for item in items:
        if typing.get_origin(item) in (typing.Union, types.UnionType):
            flat.extend(typing.get_args(item))
        else:
            flat.append(item)
    return tuple(dict.fromkeys(flat))


def render(template_name: str) -> Callable[[F], F]:
    """Render the handler's returned mapping with the Jinja2 template ``template_name``.

    Raises:
        ConfigurationError: Used without parentheses.
    """
    if not isinstance(template_name, str):
        raise ConfigurationError(
            "@render needs a template name: write @render(template_name='page.html') above "
            f"{describe(template_name)}"
        )

    def decorate(fn: F) -> F:
        _check_handler(fn, "@render")
        setattr(fn, _RENDER_ATTR, template_name)
        return fn

    return decorate


@overload
def Controller(prefix: str = "") -> Callable[[C], C]: ...
@overload
def Controller(prefix: C) -> C: ...


def Controller(prefix: str | type = "") -> Any:  # Ellar's spelling
    """Mark a class as a controller whose routes live under ``prefix``.

    ``@Controller`` without arguments derives the prefix from the class name, as Ellar does:
    ``CarController`` → ``/car``.

    Args:
        prefix: The path prefix of every route in the class (``"/car"``).

    Raises:
        ConfigurationError: The class does not derive from :class:`ControllerBase`.
    """

    def decorate(cls: C, prefix: str) -> C:
        if not inspect.isclass(cls):
            raise ConfigurationError(f"@Controller decorates a class, got {cls!r}")
        if not issubclass(cls, ControllerBase):
            raise ConfigurationError(
                f"@Controller class {cls.__qualname__} must derive from ControllerBase "
                f"(class {cls.__name__}(ControllerBase): ...), which gives its handlers "
                "self.context"
            )
        if prefix and not prefix.startswith("/"):
            prefix = "/" + prefix
        setattr(cls, _CONTROLLER_ATTR, ControllerInfo(prefix.rstrip("/")))
        return cls

    if isinstance(prefix, type):
        stem = re.sub(r"Controller$", "", prefix.__name__) or prefix.__name__
        return decorate(prefix, "/" + stem.lower())
    text: str = prefix
    return lambda cls: decorate(cls, text)


class ControllerBase:
    """Base class for controllers: ``self.context`` is the call in progress.

    A fresh instance serves each request or websocket connection, so ``self`` never leaks
    between concurrent connections.
    """

    _context: ExecutionContext | None = None

    @property
    def context(self) -> ExecutionContext:
        """The :class:`~triows.ExecutionContext` of the current request or connection."""
        if self._context is None:
            raise RuntimeError(
                f"{type(self).__name__}.context is set only while triows runs one of its handlers"
            )
        return self._context


def join_path(prefix: str, path: str) -> str:
    """``/car`` + ``/live-support`` → ``/car/live-support``; ``/car`` + ``""`` → ``/car``."""
    if not path:
        return prefix or "/"
    if not path.startswith("/"):
        path = "/" + path
    return (prefix + path) if prefix else path


def _members(cls: type) -> list[tuple[str, Any]]:
    """The attributes of ``cls``, inherited ones included, in declaration order, bases first.

    A subclass attribute with the same name replaces the base one (so an undecorated override
    removes a route or an event handler, as Python's attribute lookup would suggest).
    """
    order: list[str] = []
    for klass in reversed(cls.__mro__):
        for name in vars(klass):
            if name not in order:
                order.append(name)
    members = []
    for name in order:
        fn = inspect.getattr_static(cls, name, None)
        if isinstance(fn, (staticmethod, classmethod)):
            fn = fn.__func__
        members.append((name, fn))
    return members


def collect_handlers(cls: type) -> list[tuple[str, Callable[..., Any]]]:
    """The handler methods of ``cls``, inherited ones included, in declaration order.

    Bases come first; a subclass attribute with the same name replaces the base one (so an
    undecorated override removes the route, as Python's attribute lookup would suggest).
    """
    return [(name, fn) for name, fn in _members(cls) if route_infos(fn)]
