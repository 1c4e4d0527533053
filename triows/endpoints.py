"""Running one handler for one connection, and turning its outcome into what the client sees.

A websocket connection goes through three named steps, in the connection's nursery:

1. **admit** — the browser's ``Origin``, the guards, the handshake parameters, the controller
   instance; everything that may refuse the handshake with an HTTP status;
2. **drive** — the route's driver, chosen when the app is built: the plain handler (it owns
   ``accept()`` and its loop) or the extra-handler message loop (``listener.py``);
3. **conclude** — the close the outcome calls for, then the disconnect hook.

This is the one place where exceptions become answers (the table in ``docs/websockets.md``):

====================================  ==================================  ==============
raised                                before ``accept()``                 after
====================================  ==================================  ==============
returns normally                      close → HTTP 403                    close 1000
``WebSocketException(code, reason)``  close → HTTP 403                    close code+reason
``HTTPException(status)``             HTTP ``status`` denial, JSON body   close 1011, logged
``WebSocketDisconnect``               nothing (the connection ended)      nothing more
anything else                         HTTP 500 denial, logged             close 1011, logged
====================================  ==================================  ==============
"""

from __future__ import annotations

import contextlib
import logging
import traceback
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import pydantic_core
import trio

from ._hooks import HookCall
from ._logging import logger, server_error, where
from ._settings import ConnectionSettings
from .context import ExecutionContext
from .errors import (
    CloseCode,
    HTTPException,
    WebSocketDisconnect,
    WebSocketException,
    exception_leaves,
    truncate_reason,
)
from .guards import RouteGuards
from .listener import MessageSpec, run_loop
from .params import CallPlan
from .requests import Request
from .responses import HTMLResponse, Response, to_response
from .websocket import WebSocket, WebSocketState

if TYPE_CHECKING:
    from ._drain import Drain
    from ._timers import Timers
    from .di import Plan
    from .templating import Templates

__all__ = [
    "Driver",
    "HTTPEndpoint",
    "Handler",
    "MessageLoop",
    "PlainHandler",
    "WebSocketEndpoint",
]

_NO_ARGUMENTS: Mapping[str, Any] = {}

#: States of a handshake not answered yet (``CLOSING``: a drain began during it).
_UNANSWERED = frozenset({WebSocketState.CONNECTING, WebSocketState.CLOSING})


class Handler:
    """A handler bound, at build time, to its controller, guards and compiled call plan.

    Args:
        controller: The controller class.
        fn: The handler function.
        plan: Its call plan.
        guards: Its guards, in run order.
        controller_args: Plans for the controller's constructor parameters.
    """

    __slots__ = ("controller", "controller_args", "fn", "guards", "owner", "plan")

    def __init__(
        self,
        controller: type,
        fn: Callable[..., Any],
        plan: CallPlan,
        guards: RouteGuards,
        controller_args: Mapping[str, Plan],
    ) -> None:
        self.controller = controller
        self.fn = fn
        self.plan = plan
        #: ``None`` when the route has no guard (checked on every call).
        self.guards = guards if guards else None
        self.controller_args = dict(controller_args)
        self.owner = f"{controller.__name__}.{fn.__name__}"

    async def prepare(
        self, request: Request, context: ExecutionContext, cache: dict[type, Any]
    ) -> Mapping[str, Any]:
        """Run the guards, then resolve the parameters: what every HTTP call starts with."""
        if self.guards is not None:
            await self.guards.check(context, cache)
        return await self.plan.resolve(request, context, cache)

    def instance(self, context: ExecutionContext, cache: dict[type, Any]) -> Any:
        """A controller instance for one call, its constructor injected."""
        if self.controller_args:
            arguments = {n: plan.build(cache) for n, plan in self.controller_args.items()}
            instance = self.controller(**arguments)
        else:
            instance = self.controller()
        instance._context = context
        return instance


class HTTPEndpoint:
    """An HTTP handler; calling it answers one request with a :class:`Response`.

    Args:
        handler: The bound handler.
        template: The ``@render`` template name, if any.
        templates: The app's templates (required with ``template``).
    """

    def __init__(
        self, handler: Handler, template: str | None = None, templates: Templates | None = None
    ) -> None:
        self.handler = handler
        self.template = template
        self.templates = templates
        #: The route it serves (set by the app).
        self.route: Any = None

    async def __call__(self, request: Request) -> Response:
        """Answer ``request``: guards, then parameters, then the handler."""
        handler = self.handler
        context = ExecutionContext(request, handler.fn, handler.controller)
        cache: dict[type, Any] = {}
        arguments = await handler.prepare(request, context, cache)
        result = await handler.fn(handler.instance(context, cache), **arguments)
        if self.template is None or isinstance(result, Response):
            return to_response(result)
        if not isinstance(result, Mapping):
            raise TypeError(
                f"{handler.owner} is a @render handler and must return a mapping for its "
                f"template {self.template!r}, got {type(result).__name__}"
            )
        assert self.templates is not None
        return HTMLResponse(self.templates.render(self.template, {"request": request, **result}))


# -- drive: how a route runs its handler ---------------------------------------------------


class Driver(Protocol):
    """Runs an admitted connection's handler until it is done with the connection.

    Called, it returns the coroutine to await (rather than being a coroutine itself): the
    driver adds no frame to what an idle connection keeps suspended.
    """

    def __call__(
        self, websocket: WebSocket, instance: Any, arguments: Mapping[str, Any]
    ) -> Awaitable[None]:
        """The run of ``instance``'s handler on ``websocket`` with its handshake ``arguments``."""


class PlainHandler:
    """The handler owns the connection: it accepts, receives and sends as it likes."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[..., Awaitable[Any]]) -> None:
        self.fn = fn

    def __call__(
        self, websocket: WebSocket, instance: Any, arguments: Mapping[str, Any]
    ) -> Awaitable[None]:
        """Call the handler once."""
        coroutine: Awaitable[None] = self.fn(instance, **arguments)
        return coroutine


class MessageLoop:
    """The extra-handler loop: triows accepts and receives, the handler gets each message.

    Args:
        fn: The message handler.
        spec: How a frame becomes its ``WsBody`` arguments.
        connect: The connect hook (default: accept).
        on_invalid: ``"close"`` or ``"reply"`` after a message fails validation.
    """

    __slots__ = ("connect", "fn", "on_invalid", "spec")

    def __init__(
        self,
        fn: Callable[..., Awaitable[Any]],
        spec: MessageSpec,
        connect: HookCall | None,
        on_invalid: str,
    ) -> None:
        self.fn = fn
        self.spec = spec
        self.connect = connect
        self.on_invalid = on_invalid

    def __call__(
        self, websocket: WebSocket, instance: Any, arguments: Mapping[str, Any]
    ) -> Awaitable[None]:
        """Accept (or run the connect hook), then call the handler once per message."""
        return run_loop(
            websocket,
            instance,
            self.fn,
            arguments,
            self.spec,
            connect=self.connect,
            on_invalid=self.on_invalid,
        )


# -- the websocket endpoint ----------------------------------------------------------------


class WebSocketEndpoint:
    """A websocket route: admit, drive, conclude, for each of its connections.

    Args:
        handler: The bound handler.
        driver: How it runs (:class:`PlainHandler` or :class:`MessageLoop`).
        settings: The route's limits, timeouts, origins and outbox policy.
        timers: The app's timers (idle timeouts, bounded closes).
        drain: The app's open connections, told when the server stops.
        debug: Name the exception in 1011 close reasons.
        disconnect: The disconnect hook, if any.
    """

    __slots__ = (
        "debug",
        "disconnect",
        "drain",
        "driver",
        "handler",
        "route",
        "settings",
        "timers",
    )

    def __init__(
        self,
        handler: Handler,
        driver: Driver,
        settings: ConnectionSettings,
        timers: Timers,
        drain: Drain,
        *,
        debug: bool = False,
        disconnect: HookCall | None = None,
    ) -> None:
        self.drain = drain
        self.handler = handler
        self.driver = driver
        self.settings = settings
        self.timers = timers
        self.debug = debug
        self.disconnect = disconnect
        #: The route it serves (set by the app).
        self.route: Any = None

    async def __call__(self, websocket: WebSocket) -> None:
        """Serve ``websocket`` until the connection has ended.

        When the driver returns, the nursery is cancelled (tasks on ``websocket.nursery``
        end) and the connection is closed with 1000 if still open. Exceptions map as the
        module table says. Cancellation from outside (the server shutting down) closes with
        1001 and propagates. Then, if the connection had been accepted, the disconnect hook
        runs once with the close code actually sent or received.
        """
        try:
            handler = self.handler
            context = ExecutionContext(websocket, handler.fn, handler.controller)
            cache: dict[type, Any] = {}
            instance: Any = None
            arguments: Mapping[str, Any] = _NO_ARGUMENTS
            timers = self.timers
            try:
                async with trio.open_nursery() as nursery:
                    if not timers.running:  # no lifespan runs the app's: keep a private one
                        timers = type(timers)()
                        await nursery.start(timers.run)
                    await websocket._open(nursery, self.settings, timers)
                    try:
                        if not self.drain.admit(websocket):
                            body = {"detail": "server shutting down"}
                            await _deny(websocket, 503, body, {}, self.settings.close_timeout)
                        else:
                            instance, arguments = await self._admit(websocket, context, cache)
                            if instance is not None:
                                await self.driver(websocket, instance, arguments)
                    finally:
                        await websocket._settle()
                        websocket._closed_nursery()
                        if nursery.child_tasks:  # nothing to cancel on most connections
                            nursery.cancel_scope.cancel()
            except BaseException as exc:
                leaves = list(exception_leaves(exc))
                if any(not isinstance(leaf, Exception) for leaf in leaves):
                    # Cancelled, KeyboardInterrupt…: not ours to swallow. Say goodbye first.
                    with trio.move_on_at(websocket._close_deadline()) as scope:
                        scope.shield = True
                        await websocket._finish(
                            CloseCode.GOING_AWAY, "server shutting down", linger=False
                        )
                        await self._conclude(websocket, instance, arguments)
                    raise
                await self._answer_failure(websocket, leaves, exc)
            else:
                await websocket._finish(CloseCode.NORMAL, "")
            if self.disconnect is not None:
                await self._conclude(websocket, instance, arguments)
        finally:
            self.drain.discard(websocket)
            websocket._detach()  # drop the cycles: freed by refcount, not by the GC
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug(
                    "websocket %s ended: %s %r",
                    where(websocket.scope),
                    websocket.close_code,
                    websocket.close_reason,
                )

    async def _admit(
        self, websocket: WebSocket, context: ExecutionContext, cache: dict[type, Any]
    ) -> tuple[Any, Mapping[str, Any]]:
        """Origin, guards, parameters, instance; ``(None, {})`` if the handshake was refused."""
        handler = self.handler
        if self.settings.checks_origin:
            refused = _refused_origin(websocket, self.settings)
            if refused is not None:
                await _deny(websocket, 403, {"detail": refused}, {}, self.settings.close_timeout)
                return None, _NO_ARGUMENTS
        if handler.guards is not None:
            websocket._begin_admission()  # a guard cannot accept it
            try:
                await handler.guards.check(context, cache)
            finally:
                websocket._end_admission()
        plan = handler.plan
        arguments = _NO_ARGUMENTS if plan.empty else await plan.resolve(websocket, context, cache)
        return handler.instance(context, cache), arguments

    async def _conclude(
        self, websocket: WebSocket, instance: Any, arguments: Mapping[str, Any]
    ) -> None:
        """Run the disconnect hook once, if the connection had been accepted."""
        if (
            self.disconnect is None
            or instance is None
            or not websocket._accepted
            or websocket._relayed
        ):
            return
        try:
            code = websocket.close_code or CloseCode.NO_STATUS
            await self.disconnect(instance, websocket, arguments, code)
        except Exception as exc:
            server_error(
                websocket.scope,
                exc,
                "the disconnect hook of %s failed (%s)",
                self.handler.owner,
                where(websocket.scope),
            )

    async def _answer_failure(
        self, websocket: WebSocket, leaves: list[BaseException], exc: BaseException
    ) -> None:
        failures = [leaf for leaf in leaves if not isinstance(leaf, WebSocketDisconnect)]
        if not failures:
            # The connection ended and the handler let WebSocketDisconnect through: a normal end.
            first = leaves[0]
            assert isinstance(first, WebSocketDisconnect)
            await websocket._finish(first.code, first.reason)
            return
        failure = failures[0] if len(failures) == 1 else exc
        if isinstance(failure, WebSocketException):
            await websocket._finish(failure.code, failure.reason)
            return
        if isinstance(failure, HTTPException) and (
            websocket._relayed or websocket.connection_state is WebSocketState.DENIED
        ):
            return  # a guard refused the handshake itself (deny()): it has its answer
        connecting = not websocket._accepted and websocket.connection_state in _UNANSWERED
        timeout = self.settings.close_timeout
        if isinstance(failure, HTTPException) and connecting:
            body = {"detail": failure.detail}
            await _deny(websocket, failure.status_code, body, failure.headers, timeout)
            return
        note = (
            " after accept(); raise WebSocketException to close with a code"
            if isinstance(failure, HTTPException)
            else ""
        )
        server_error(
            websocket.scope,
            failure,
            "websocket handler %s failed%s (%s)",
            self.handler.owner,
            note,
            where(websocket.scope),
        )
        if connecting:
            # A refusal's body has no size limit: in DEBUG it carries the whole traceback.
            denial: dict[str, Any] = {"detail": "Internal Server Error"}
            if self.debug:
                denial = {
                    "detail": "".join(traceback.format_exception_only(failure)).strip(),
                    "traceback": "".join(traceback.format_exception(failure)),
                }
            await _deny(websocket, 500, denial, {}, timeout)
        else:
            detail = _debug_detail(failure) if self.debug else "Internal Server Error"
            await websocket._finish(CloseCode.INTERNAL_ERROR, detail)


def _debug_detail(exc: BaseException) -> str:
    return truncate_reason("".join(traceback.format_exception_only(exc)).strip())


async def _deny(
    websocket: WebSocket, status: int, body: Any, headers: Mapping[str, str], limit: float
) -> None:
    with trio.move_on_after(limit), contextlib.suppress(WebSocketDisconnect):  # it left
        await websocket.deny(
            status,
            pydantic_core.to_json(body),
            {"content-type": "application/json", **headers},
        )


_DEFAULT_PORTS = (":80", ":443")


def _netloc(value: str) -> str:
    """``host[:port]`` lower-cased, without a default port."""
    value = value.lower()
    for port in _DEFAULT_PORTS:
        if value.endswith(port):
            return value[: -len(port)]
    return value


def _refused_origin(websocket: WebSocket, settings: ConnectionSettings) -> str | None:
    """Why a browser's handshake is refused for its ``Origin``, or ``None`` if allowed."""
    origin = websocket.headers.get("origin")
    allowed = settings.allowed_origins
    if origin is None or allowed is None:
        return None  # not a browser (browsers always send it), or no check
    if origin.lower() in allowed:
        return None
    if "same-origin" in allowed:
        host = websocket.headers.get("host")
        _, _, netloc = origin.partition("://")
        if host is not None and netloc and _netloc(netloc) == _netloc(host):
            return None
    return (
        f"Origin {origin!r} is not allowed: add it to WEBSOCKET_ALLOWED_ORIGINS "
        "(or the route's allowed_origins)"
    )
