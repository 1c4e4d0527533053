"""Running one handler for one connection, and turning its outcome into what the client sees.

This is the one place where exceptions become answers (the table in ``docs/websockets.md``):

====================================  ==================================  ==============
raised                                before ``accept()``                 after
====================================  ==================================  ==============
returns normally                      close → HTTP 403                    close 1000
``WebSocketException(code, reason)``  close → HTTP 403                    close code+reason
``HTTPException(status)``             HTTP ``status`` denial, JSON body   close 1011, logged
``WebSocketDisconnect``               nothing (the peer left)             nothing
anything else                         HTTP 500 denial, logged             close 1011, logged
====================================  ==================================  ==============
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import pydantic_core
import trio

from .context import ExecutionContext
from .errors import (
    CloseCode,
    HTTPException,
    WebSocketDisconnect,
    WebSocketException,
    exception_leaves,
)
from .guards import RouteGuards
from .listener import MessageSpec, run_loop
from .params import CallPlan
from .requests import Request
from .responses import HTMLResponse, Response, to_response
from .websocket import WebSocket, WebSocketState, truncate_reason

if TYPE_CHECKING:
    from .di import Plan
    from .templating import Templates

__all__ = [
    "ExtraHandlerEndpoint",
    "HTTPEndpoint",
    "Handler",
    "WebSocketEndpoint",
    "logger",
]

logger = logging.getLogger("triows")

_NO_ARGUMENTS: Mapping[str, Any] = {}

#: How long closing a connection may take once its handler has ended.
CLOSE_TIMEOUT = 5.0


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


class WebSocketEndpoint:
    """A websocket route: one connection's whole life, served in one frame.

    Guards and parameters before the handshake, then the handler, inside the connection's
    nursery; then the close that the outcome calls for (the module table). A plain handler
    owns ``accept()`` and its receive loop; an :class:`ExtraHandlerEndpoint` runs the
    extra-handler loop instead. Everything happens in this one coroutine rather than in
    layers of helpers: an idle connection keeps only this frame, the handler's and the
    pending receive suspended, which is memory per connection and work per message.

    Args:
        handler: The bound handler.
        debug: Name the exception in 1011 close reasons.
    """

    __slots__ = ("connect", "debug", "disconnect", "handler", "on_invalid", "spec")

    def __init__(self, handler: Handler, debug: bool = False) -> None:
        self.handler = handler
        self.debug = debug
        #: With a spec, this is an extra-handler route (see :class:`ExtraHandlerEndpoint`).
        self.spec: MessageSpec | None = None
        self.on_invalid = "close"
        self.connect: Callable[..., Awaitable[Any]] | None = None
        self.disconnect: Callable[..., Awaitable[Any]] | None = None

    async def __call__(self, websocket: WebSocket) -> None:
        """Serve ``websocket`` until the connection has ended.

        When the handler returns, the nursery is cancelled (tasks on ``websocket.nursery``
        end) and the connection is closed with 1000 if still open. Exceptions map as the
        module table says. Cancellation from outside (the server shutting down) closes with
        1001 and propagates. Then, if the connection had been accepted, an extra-handler
        route's disconnect hook runs once with the close code actually sent or received.
        """
        handler = self.handler
        context = ExecutionContext(websocket, handler.fn, handler.controller)
        cache: dict[type, Any] = {}
        instance: Any = None
        try:
            try:
                async with trio.open_nursery() as nursery:
                    websocket._nursery = nursery
                    try:
                        if handler.guards is not None:
                            # Marked while its guards run, so that a guard cannot accept it.
                            websocket._guarding = True
                            try:
                                await handler.guards.check(context, cache)
                            finally:
                                websocket._guarding = False
                        plan = handler.plan
                        arguments = (
                            _NO_ARGUMENTS
                            if plan.empty
                            else await plan.resolve(websocket, context, cache)
                        )
                        instance = handler.instance(context, cache)
                        if self.spec is None:
                            await handler.fn(instance, **arguments)
                        else:
                            await run_loop(
                                websocket,
                                instance,
                                handler.fn,
                                arguments,
                                self.spec,
                                connect=self.connect,
                                on_invalid=self.on_invalid,
                            )
                    finally:
                        if nursery.child_tasks:  # nothing to cancel on most connections
                            nursery.cancel_scope.cancel()
            finally:
                websocket._nursery = None
        except BaseException as exc:
            leaves = list(exception_leaves(exc))
            if any(not isinstance(leaf, Exception) for leaf in leaves):
                # Cancelled, KeyboardInterrupt…: not ours to swallow. Say goodbye first.
                with trio.move_on_after(CLOSE_TIMEOUT) as scope:
                    scope.shield = True
                    await _finish(websocket, CloseCode.GOING_AWAY, "server shutting down")
                    await self._ended(websocket, instance)
                raise
            await _answer_failure(websocket, leaves, exc, owner=handler.owner, debug=self.debug)
        else:
            if websocket.connection_state is not WebSocketState.DISCONNECTED:
                await _finish(websocket, CloseCode.NORMAL, "")
        if self.disconnect is not None:
            await self._ended(websocket, instance)

    async def _ended(self, websocket: WebSocket, instance: Any) -> None:
        """Run the disconnect hook once, if the connection had been accepted."""
        if self.disconnect is None or instance is None or not websocket._accepted:
            return
        try:
            await self.disconnect(instance, websocket, websocket.close_code or CloseCode.NO_STATUS)
        except Exception as exc:
            logger.error("the disconnect hook of %s failed", self.handler.owner, exc_info=exc)


class ExtraHandlerEndpoint(WebSocketEndpoint):
    """A ``use_extra_handler=True`` route: triows owns the loop, the handler gets messages.

    Args:
        handler: The bound message handler.
        debug: Name the exception in 1011 close reasons.
        encoding: ``"text"``, ``"json"`` or ``"bytes"``.
        on_invalid: ``"close"`` or ``"reply"`` after a message fails validation.
        connect: The connect hook (default: accept).
        disconnect: The disconnect hook, if any.
    """

    __slots__ = ()

    def __init__(
        self,
        handler: Handler,
        debug: bool,
        *,
        encoding: str,
        on_invalid: str,
        connect: Callable[..., Awaitable[Any]] | None,
        disconnect: Callable[..., Awaitable[Any]] | None,
    ) -> None:
        super().__init__(handler, debug)
        plan = handler.plan
        self.spec = MessageSpec(handler.owner, encoding, plan.ws_body, plan.ws_body_embed)
        self.on_invalid = on_invalid
        self.connect = connect
        self.disconnect = disconnect


async def _answer_failure(
    websocket: WebSocket,
    leaves: list[BaseException],
    exc: BaseException,
    *,
    owner: str,
    debug: bool,
) -> None:
    failures = [leaf for leaf in leaves if not isinstance(leaf, WebSocketDisconnect)]
    if not failures:
        # The peer left and the handler let WebSocketDisconnect through: a normal end.
        first = leaves[0]
        assert isinstance(first, WebSocketDisconnect)
        await _finish(websocket, first.code, first.reason)
        return
    failure = failures[0] if len(failures) == 1 else exc
    if isinstance(failure, WebSocketException):
        await _finish(websocket, failure.code, failure.reason)
        return
    connecting = websocket.connection_state is WebSocketState.CONNECTING
    if isinstance(failure, HTTPException) and connecting:
        await _deny(websocket, failure.status_code, {"detail": failure.detail}, failure.headers)
        return
    note = (
        " after accept(); raise WebSocketException to close with a code"
        if isinstance(failure, HTTPException)
        else ""
    )
    logger.error("websocket handler %s failed%s", owner, note, exc_info=failure)
    if connecting:
        detail = _debug_detail(failure) if debug else "Internal Server Error"
        await _deny(websocket, 500, {"detail": detail}, {})
    else:
        reason = _debug_detail(failure) if debug else "Internal Server Error"
        await _finish(websocket, CloseCode.INTERNAL_ERROR, reason)


def _debug_detail(exc: BaseException) -> str:
    return truncate_reason("".join(traceback.format_exception_only(exc)).strip())


async def _deny(websocket: WebSocket, status: int, body: Any, headers: Mapping[str, str]) -> None:
    with trio.move_on_after(CLOSE_TIMEOUT):
        await websocket.deny(
            status,
            pydantic_core.to_json(body),
            {"content-type": "application/json", **headers},
        )


async def _finish(websocket: WebSocket, code: int, reason: str) -> None:
    """Close the connection if it is still open, ignoring a vanished peer.

    Not bounded in time here: this runs on every connection, and only the shielded
    shutdown path (where nothing else could cancel us) needs a bound; it adds its own.
    """
    if websocket.connection_state is WebSocketState.CONNECTING:
        code = CloseCode.NORMAL
    try:  # noqa: SIM105 - on every connection: no context-manager object for it
        await websocket.close(code, reason)
    except (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
        pass  # the peer is gone; there is nobody left to tell
