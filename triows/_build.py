"""Compiling controllers into the route model (``triows.routes``), once, when an app is built.

This module only reads: decorators' metadata, signatures, annotations, config. It checks
everything that can be wrong with a route and names the handler; it builds no endpoint. The app
then serves from the :class:`~triows.routes.RouteTable` it returns (``App._serve``), and the
AsyncAPI document is generated from the same table.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from ._settings import resolve
from .config import Config
from .controllers import (
    RouteInfo,
    collect_handlers,
    controller_info,
    event_handlers,
    hook_of,
    join_path,
    render_template_name,
    route_infos,
)
from .di import Container
from .errors import ConfigurationError
from .events import read_events
from .guards import guards_of
from .params import read_parameters
from .routes import HTTPRoute, RouteTable, WebSocketRoute
from .routing import PathTemplate

__all__ = ["build_routes"]

#: ``check_template(owner, template, controller)`` raises if the app cannot render it.
TemplateCheck = Callable[[str, str, type], None]


def build_routes(
    controllers: Sequence[type],
    guards: Sequence[Any],
    container: Container,
    config: Config,
    check_template: TemplateCheck,
) -> RouteTable:
    """The route table of ``controllers``, in registration order.

    Args:
        controllers: The app's ``@Controller`` classes.
        guards: The app's global guards (they run first on every route).
        container: What the app can inject (a parameter of a known type is injected).
        config: The app's config (the routes' connection settings).
        check_template: Raises if a ``@render`` template cannot be rendered.

    Raises:
        ConfigurationError: Anything wrong with a route, naming its handler.
    """
    http: list[HTTPRoute] = []
    websocket: list[WebSocketRoute] = []
    seen: set[type] = set()
    for controller in controllers:
        info = controller_info(controller)
        if info is None:
            raise ConfigurationError(
                f"{getattr(controller, '__name__', controller)!r} is listed in "
                "controllers=[...] but is not decorated with @Controller(prefix)"
            )
        if controller in seen:
            raise ConfigurationError(f"{controller.__name__} is listed twice in controllers")
        seen.add(controller)
        controller_guards = guards_of(controller)
        for _, fn in collect_handlers(controller):
            owner = f"{controller.__name__}.{fn.__name__}"
            route_guards = (*guards, *controller_guards, *guards_of(fn))
            for route in route_infos(fn):
                try:
                    path = PathTemplate(join_path(info.prefix, route.path))
                except ConfigurationError as exc:
                    raise ConfigurationError(f"{owner}: {exc}") from None
                if route.kind == "http":
                    http.append(
                        _http_route(
                            controller,
                            fn,
                            owner,
                            route,
                            path,
                            route_guards,
                            container,
                            check_template,
                        )
                    )
                else:
                    websocket.append(
                        _websocket_route(
                            controller, fn, owner, route, path, route_guards, container, config
                        )
                    )
    return RouteTable(tuple(http), tuple(websocket))


def _summary(fn: Callable[..., Any]) -> str | None:
    doc = inspect.getdoc(fn)
    return doc.splitlines()[0] if doc else None


def _http_route(
    controller: type,
    fn: Callable[..., Any],
    owner: str,
    route: RouteInfo,
    path: PathTemplate,
    guards: tuple[Any, ...],
    container: Container,
    check_template: TemplateCheck,
) -> HTTPRoute:
    template = render_template_name(fn)
    if template is not None:
        check_template(owner, template, controller)
    parameters = read_parameters(fn, "http", path.converters, container)
    methods = route.methods | ({"HEAD"} if "GET" in route.methods else set())
    return HTTPRoute(
        name=route.name or fn.__name__,
        owner=owner,
        path=path,
        methods=frozenset(methods),
        controller=controller,
        handler=fn,
        parameters=parameters,
        guards=guards,
        template=template,
        summary=_summary(fn),
    )


def _websocket_route(
    controller: type,
    fn: Callable[..., Any],
    owner: str,
    route: RouteInfo,
    path: PathTemplate,
    guards: tuple[Any, ...],
    container: Container,
    config: Config,
) -> WebSocketRoute:
    if render_template_name(fn) is not None:
        raise ConfigurationError(f"{owner}: @render cannot decorate a websocket route")
    parameters = read_parameters(
        fn, "websocket", path.converters, container, extra_handler=route.use_extra_handler
    )
    handshake = [p.name for p in parameters if p.handshake]
    body = [p for p in parameters if not p.handshake]
    driver: Any = "plain"
    events: tuple[Any, ...] = ()
    if route.use_extra_handler:
        driver = "messages"
        handlers = event_handlers(controller, fn)
        if handlers:
            driver = "events"
            if body:
                raise ConfigurationError(
                    f"{owner}: a route with @ws_route.on event handlers gets its messages in "
                    f"them, not in WsBody() {body[0].name!r}; the route's function runs once, "
                    "when a connection opens"
                )
            if route.encoding != "json":
                raise ConfigurationError(
                    f"{owner}: event handlers read JSON messages; use encoding='json', "
                    f"not {route.encoding!r}"
                )
            events = read_events(handlers, owner, route.discriminator, handshake)
    return WebSocketRoute(
        name=route.name or fn.__name__,
        owner=owner,
        path=path,
        controller=controller,
        handler=fn,
        parameters=parameters,
        guards=guards,
        driver=driver,
        encoding=route.encoding,
        on_invalid=route.on_invalid,
        discriminator=route.discriminator,
        events=events,
        sends=route.sends,
        connect=hook_of(fn, "connect") if route.use_extra_handler else None,
        disconnect=hook_of(fn, "disconnect") if route.use_extra_handler else None,
        settings=resolve(config, dict(route.options)),
        summary=_summary(fn),
    )
