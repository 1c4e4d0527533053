"""``App``: the ASGI application.

Everything per route is decided here once, when the app is built: the route tables, each
handler's call plan, its template. A request or connection then costs one route lookup and the
handler call.
"""

from __future__ import annotations

import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import pydantic_core
import trio

from ._build import build_routes
from ._drain import Drain
from ._hooks import HookCall
from ._logging import server_error, where
from ._timers import Timers
from ._types import Receive, Scope, Send
from .asyncapi import AsyncAPI
from .asyncapi import document as asyncapi_document
from .asyncapi._serve import asyncapi_routes
from .channels import Channels
from .client import client_routes
from .config import Config
from .controllers import describe
from .di import Container, Provider
from .endpoints import Driver, Handler, HTTPEndpoint, MessageLoop, PlainHandler, WebSocketEndpoint
from .errors import ConfigurationError, HTTPException, exception_leaves
from .events import EventLoop
from .guards import Guards, RouteGuards
from .listener import MessageSpec
from .params import CallPlan
from .requests import ClientDisconnect, Request
from .responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from .routes import HTTPRoute, RouteTable, WebSocketRoute
from .routing import PathTemplate, Route, Router, URLNames
from .staticfiles import StaticFiles
from .templating import Templates, controller_template_folder
from .websocket import WebSocket

__all__ = ["App", "Lifespan"]

Lifespan = Callable[["App"], AbstractAsyncContextManager[Any]]
Hook = Callable[[], Awaitable[Any]]
HTTPHandler = Callable[[Request], Awaitable[Response]]
WebSocketHandler = Callable[[WebSocket], Awaitable[None]]

_NOT_FOUND = pydantic_core.to_json({"detail": "Not Found"})

#: Seconds the on_shutdown hooks may take when shutdown follows a crash.
SHUTDOWN_TIMEOUT = 10.0


class App:
    """A triows application, callable by any ASGI server (``hypercorn --worker-class trio``).

    Args:
        controllers: ``@Controller`` classes whose routes the app serves.
        providers: Services for dependency injection.
        guards: Guards run before every handler.
        template_folder: Where ``@render`` finds templates (before each controller's own
            ``templates`` folder).
        static_folder: Files served under ``/static`` (``url_for('static', path=...)``).
        config: Settings: a mapping (``dict(DEBUG=True)``) or an object with UPPER_CASE
            attributes. See :class:`~triows.Config`.
        lifespan: ``lifespan(app)`` returning an async context manager, entered at startup
            and left at shutdown.
        on_startup: Async callables run at startup, before ``lifespan`` is entered.
        on_shutdown: Async callables run at shutdown, after ``lifespan`` is left.
        asyncapi: The app's AsyncAPI document and its viewer page (``docs/asyncapi.md``):
            an :class:`~triows.asyncapi.AsyncAPI` to give its title, version and paths, ``True``
            (the default) for the defaults (``/asyncapi.json`` and ``/asyncapi``), ``False``
            to serve neither.
        client_script: Where the browser client ``triows.js`` is served (its TypeScript
            declarations beside it, ``.d.ts`` for ``.js``); ``None`` to serve neither
            (``docs/client.md``).

    Raises:
        ConfigurationError: Any misconfiguration, naming the handler concerned.
    """

    def __init__(
        self,
        controllers: Sequence[type] = (),
        providers: Sequence[Any] = (),
        guards: Sequence[Any] = (),
        template_folder: str | Path | None = None,
        static_folder: str | Path | None = None,
        config: Mapping[str, Any] | object | None = None,
        lifespan: Lifespan | None = None,
        on_startup: Sequence[Hook] = (),
        on_shutdown: Sequence[Hook] = (),
        asyncapi: AsyncAPI | bool = True,
        client_script: str | None = "/triows.js",
    ) -> None:
        self.config = Config(config)
        if not isinstance(asyncapi, (AsyncAPI, bool)):
            raise ConfigurationError(
                f"asyncapi= takes an AsyncAPI(...) or a bool, got {type(asyncapi).__name__}"
            )
        #: What the AsyncAPI document says of the app and where it is served (``None``: off).
        self.asyncapi: AsyncAPI | None = (
            asyncapi if isinstance(asyncapi, AsyncAPI) else AsyncAPI() if asyncapi else None
        )
        self._asyncapi_document: dict[str, Any] | None = None
        if client_script is not None and not (
            isinstance(client_script, str) and client_script.startswith("/")
        ):
            raise ConfigurationError(
                f"client_script= is a path starting with '/' (or None), got {client_script!r}"
            )
        self.client_script = client_script
        self.controllers = list(controllers)
        self.providers = list(providers)
        Guards(*guards)  # checks that each is a guard
        self.guards = list(guards)
        #: Topics of connections (``docs/channels.md``); handlers get it as ``channels: Channels``.
        self.channels = Channels.from_config(self.config)
        #: The dependency-injection container (providers listed later win).
        self.container = Container([Provider(Channels, use_value=self.channels), *self.providers])
        self._lifespan = lifespan
        self._on_startup = list(on_startup)
        self._on_shutdown = list(on_shutdown)
        self._nursery: trio.Nursery | None = None
        #: Deadlines of every connection (idle timeouts, bounded closes), kept by one task.
        self.timers = Timers()
        self._drain = Drain(self.timers, self.config.WEBSOCKET_DRAIN_TIMEOUT)
        self.state: dict[str, Any] = {}
        self._templates: Templates | None = None
        self._template_folders = self._find_template_folders(template_folder)
        self.static = StaticFiles(static_folder) if static_folder is not None else None
        if self.static is not None and not self.static.folder.is_dir():
            raise ConfigurationError(f"static_folder {str(static_folder)!r} is not a folder")

        #: Every route of the app (``triows.routes``): what it serves, and what its AsyncAPI
        #: document describes.
        self.routes: RouteTable
        self._build()

    # -- building --------------------------------------------------------------------------

    def _reconfigure(self, overrides: Mapping[str, Any]) -> None:
        """Set config keys as if the app had been built with them (``triows run``'s flags).

        Only before the app serves: the routes are resolved again with the new values.

        Raises:
            ConfigurationError: A value the key cannot take.
        """
        if self._nursery is not None:
            raise RuntimeError("the config of a running app cannot change")
        self.config = Config({**self.config, **overrides})
        self._drain.timeout = self.config.WEBSOCKET_DRAIN_TIMEOUT
        self.channels = Channels.from_config(self.config)
        self.container = Container([Provider(Channels, use_value=self.channels), *self.providers])
        self._build()

    def _find_template_folders(self, template_folder: str | Path | None) -> list[Path]:
        folders = []
        if template_folder is not None:
            folder = Path(template_folder)
            if not folder.is_dir():
                raise ConfigurationError(f"template_folder {str(folder)!r} is not a folder")
            folders.append(folder)
        for controller in self.controllers:
            found = controller_template_folder(controller)
            if found is not None and found not in folders:
                folders.append(found)
        return folders

    @property
    def templates(self) -> Templates:
        """The Jinja2 templates of the app.

        Raises:
            ConfigurationError: The app has no template folder at all.
        """
        if self._templates is None:
            if not self._template_folders:
                raise ConfigurationError(
                    "the App has no templates: pass template_folder=..., or put a 'templates' "
                    "folder beside the controller's module"
                )
            self._templates = Templates(self._template_folders, self.url_path_for)
        return self._templates

    def _check_template(self, owner: str, template: str, controller: type) -> None:
        if not self._template_folders:
            raise ConfigurationError(
                f"{owner} renders {template!r}, but the App has no templates: "
                "pass template_folder=..., or put a 'templates' folder beside "
                f"{controller.__module__}"
            )
        if not self.templates.exists(template):
            folders = ", ".join(str(f) for f in self._template_folders)
            raise ConfigurationError(f"{owner} renders {template!r}, which is not in {folders}")

    def _build(self) -> None:
        """Compile the route model, then the endpoints that serve it."""
        self._asyncapi_document = None
        self.routes = build_routes(
            self.controllers, self.guards, self.container, self.config, self._check_template
        )
        http_routes, ws_routes = self._serve(self.routes)
        self.http_router: Router[HTTPHandler] = Router(http_routes, "http")
        self.websocket_router: Router[WebSocketHandler] = Router(ws_routes, "websocket")
        self._names = URLNames([*http_routes, *ws_routes])

    def _serve(
        self, table: RouteTable
    ) -> tuple[list[Route[HTTPHandler]], list[Route[WebSocketHandler]]]:
        """The endpoints of every route of ``table``: built from the route model alone."""
        constructors: dict[type, Mapping[str, Any]] = {}

        def handler(route: HTTPRoute | WebSocketRoute) -> Handler:
            controller = route.controller
            if controller not in constructors:
                constructors[controller] = self.container.constructor_plans(
                    controller, needed_by=controller.__name__
                )
            return Handler(
                controller,
                route.handler,
                CallPlan(route.handshake_parameters, self.container, describe(route.handler)),
                RouteGuards(list(route.guards), self.container, route.owner),
                constructors[controller],
            )

        http_routes: list[Route[HTTPHandler]] = []
        for http in table.http:
            endpoint = HTTPEndpoint(
                handler(http), http.template, self._templates if http.template else None
            )
            endpoint.route = http
            http_routes.append(Route(http.path, endpoint, http.name, http.methods, http.owner))
        ws_routes: list[Route[WebSocketHandler]] = []
        for ws in table.websocket:
            ws_endpoint = WebSocketEndpoint(
                handler(ws),
                _driver(ws),
                ws.settings,
                self.timers,
                self._drain,
                debug=self.config.DEBUG,
                disconnect=_hook(ws, "disconnect"),
            )
            ws_endpoint.route = ws
            ws_routes.append(Route(ws.path, ws_endpoint, ws.name, frozenset(), ws.owner))
        if self.asyncapi is not None:
            http_routes.extend(asyncapi_routes(self.asyncapi, self.asyncapi_document))
        if self.client_script is not None:
            http_routes.extend(client_routes(self.client_script))
        if self.static is not None:
            static = self.static
            http_routes.append(
                Route(
                    PathTemplate("/static/{path:path}"),
                    lambda request: static.response(request.path_params["path"]),
                    "static",
                    frozenset({"GET", "HEAD"}),
                )
            )
        return http_routes, ws_routes

    def asyncapi_document(self) -> dict[str, Any]:
        """The app's AsyncAPI 3.0.0 document, from its route model (generated once).

        It has no ``servers`` unless the app's :class:`~triows.asyncapi.AsyncAPI` names them;
        served at ``/asyncapi.json``, it names the server it was fetched from.
        """
        if self._asyncapi_document is None:
            self._asyncapi_document = asyncapi_document(self.routes, self.asyncapi)
        return self._asyncapi_document

    def url_path_for(self, name: str, /, **params: Any) -> str:
        """The path of the route called ``name`` (or ``"Controller.method"``).

        Raises:
            NoMatchFound: No such route, or the parameters do not fit its path.
        """
        return self._names.url_path_for(name, **params)

    # -- running ---------------------------------------------------------------------------

    @property
    def nursery(self) -> trio.Nursery:
        """The app nursery: lives from lifespan startup to shutdown, for app-wide services.

        Raises:
            RuntimeError: The app is not running (outside lifespan startup..shutdown).
        """
        if self._nursery is None:
            raise RuntimeError(
                "app.nursery exists only while the app runs: between lifespan startup and "
                "shutdown (is the server or test client running the lifespan?)"
            )
        return self._nursery

    def drain(self, timeout: float | None = None) -> None:
        """Begin a graceful drain of every open websocket connection (the server stops).

        Each connection gets a close frame with its route's ``shutdown_code`` at once; its
        handler's ``receive`` raises :class:`~triows.WebSocketDisconnect` with that code, and
        handlers still running after ``timeout`` are cancelled. New handshakes get HTTP 503
        until the next lifespan startup.
        On hypercorn's trio worker (plain ``hypercorn`` and ``triows run``) this happens by
        itself when the server begins to stop; call it on servers where it does not.

        Args:
            timeout: Seconds handlers have (default: ``WEBSOCKET_DRAIN_TIMEOUT``).
        """
        self._drain.begin(timeout)

    @property
    def open_websockets(self) -> int:
        """How many websocket connections are open (their handshake begun, not ended)."""
        return len(self._drain.connections)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI entry point."""
        scope["app"] = self
        kind = scope["type"]
        if kind == "websocket":
            # Inline rather than in a helper: this frame stays suspended for as long as the
            # connection is open, and every received frame passes through it.
            websocket = WebSocket(scope, receive, send)
            found = self.websocket_router.match_first(scope["path"])
            if found is None:
                await websocket.deny(404, _NOT_FOUND, {"content-type": "application/json"})
                return
            route, scope["path_params"] = found
            await route.endpoint(websocket)
        elif kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._run_lifespan(scope, receive, send)
        else:
            raise RuntimeError(f"triows cannot serve ASGI scope type {kind!r}")

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            response = await self._respond(request)
        except ClientDisconnect:
            return
        await response.send(send, head=scope["method"] == "HEAD")

    async def _respond(self, request: Request) -> Response:
        scope = request.scope
        try:
            matches = self.http_router.match(scope["path"])
            for route, params in matches:
                if scope["method"] in route.methods:
                    scope["path_params"] = params
                    return await route.endpoint(request)
            if matches:
                allowed = sorted({m for route, _ in matches for m in route.methods})
                raise HTTPException(405, headers={"allow": ", ".join(allowed)})
            redirect = self._slash_twin(scope)
            if redirect is not None:
                return RedirectResponse(redirect)
            raise HTTPException(404)
        except HTTPException as exc:
            return JSONResponse({"detail": exc.detail}, exc.status_code, exc.headers)
        except ClientDisconnect:
            raise
        except Exception as exc:
            server_error(scope, exc, "HTTP %s %s failed", scope["method"], where(scope))
            if self.config.DEBUG:
                return PlainTextResponse("".join(traceback.format_exception(exc)), 500)
            return JSONResponse({"detail": "Internal Server Error"}, 500)

    def _slash_twin(self, scope: Scope) -> str | None:
        if not self.config.REDIRECT_SLASHES:
            return None
        path: str = scope["path"]
        twin = path[:-1] if path.endswith("/") and path != "/" else path + "/"
        if not self.http_router.match(twin):
            return None
        query: bytes = scope.get("query_string", b"")
        root: str = scope.get("root_path", "")
        return quote(root + twin) + (f"?{query.decode('latin-1')}" if query else "")

    # -- lifespan --------------------------------------------------------------------------

    @asynccontextmanager
    async def _lifespan_context(self) -> AsyncIterator[None]:
        for hook in self._on_startup:
            await hook()
        try:
            if self._lifespan is not None:
                async with self._lifespan(self):
                    yield
            else:
                yield
        finally:
            # Also after a service in app.nursery crashed (which cancels us): cleanup such as
            # closing a database must still run, shielded but bounded in time.
            with trio.move_on_after(SHUTDOWN_TIMEOUT) as scope:
                scope.shield = True
                for hook in self._on_shutdown:
                    await hook()

    async def _run_lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "lifespan.startup":
            raise RuntimeError(f"expected ASGI 'lifespan.startup', got {message['type']!r}")
        started = stopping = False
        try:
            async with trio.open_nursery() as nursery:
                self._drain.reset()  # a drain of an earlier run has ended with it
                await nursery.start(self.timers.run)
                self._nursery = nursery
                await self.channels.start(nursery)
                try:
                    async with self._lifespan_context():
                        started = True
                        await send({"type": "lifespan.startup.complete"})
                        await receive()  # lifespan.shutdown
                        stopping = True
                finally:
                    with trio.move_on_after(SHUTDOWN_TIMEOUT) as closing:
                        closing.shield = True
                        await self.channels.aclose()
                nursery.cancel_scope.cancel()
        except Exception as exc:
            phase = "shutdown" if started else "startup"
            leaves = list(exception_leaves(exc))
            cause = leaves[0] if len(leaves) == 1 else exc
            server_error(scope, cause, "app %s failed", phase)
            text = "".join(traceback.format_exception_only(cause)).strip()
            if started and not stopping:
                # A service may have crashed long before shutdown: answer when asked.
                while (await receive())["type"] != "lifespan.shutdown":
                    pass
            await send({"type": f"lifespan.{phase}.failed", "message": text})
            return
        finally:
            self._nursery = None
        await send({"type": "lifespan.shutdown.complete"})


def _hook(route: WebSocketRoute, kind: Literal["connect", "disconnect"]) -> HookCall | None:
    fn = route.connect if kind == "connect" else route.disconnect
    if fn is None:
        return None
    return HookCall(fn, kind, route.owner, [p.name for p in route.handshake_parameters])


def _driver(route: WebSocketRoute) -> Driver:
    """How ``route`` runs its handler: chosen here, once."""
    if route.driver == "plain":
        return PlainHandler(route.handler)
    if route.driver == "events":
        return EventLoop(
            route.handler,
            route.events,
            route.discriminator,
            _hook(route, "connect"),
            route.on_invalid,
            route.owner,
        )
    spec = MessageSpec(route.owner, route.encoding, route.body)
    return MessageLoop(route.handler, spec, _hook(route, "connect"), route.on_invalid)
