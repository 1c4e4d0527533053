"""``ExecutionContext``: what a guard or handler knows about the call in progress."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import WebSocketStateError
from .requests import HTTPConnection, Request
from .websocket import WebSocket

__all__ = ["ExecutionContext", "HTTPHostContext", "IExecutionContext", "WebSocketHostContext"]


class HTTPHostContext:
    """The HTTP view of an :class:`ExecutionContext`."""

    __slots__ = ("_request",)

    def __init__(self, request: Request) -> None:
        self._request = request

    def get_request(self) -> Request:
        """The request being handled."""
        return self._request


class WebSocketHostContext:
    """The websocket view of an :class:`ExecutionContext`."""

    __slots__ = ("_websocket",)

    def __init__(self, websocket: WebSocket) -> None:
        self._websocket = websocket

    def get_client(self) -> WebSocket:
        """The websocket connection being handled."""
        return self._websocket


class ExecutionContext:
    """The call in progress: its connection, handler and controller class.

    Built once per request or websocket connection and shared by its guards, the controller
    instance (``self.context``) and the handler.

    Args:
        connection: The :class:`Request` or :class:`WebSocket`.
        handler: The handler function the route resolved to.
        controller_class: The controller class declaring it.
    """

    __slots__ = ("connection", "controller_class", "handler")

    def __init__(
        self, connection: HTTPConnection, handler: Callable[..., Any], controller_class: type
    ) -> None:
        self.connection = connection
        self.handler = handler
        self.controller_class = controller_class

    @property
    def scope_type(self) -> str:
        """``"http"`` or ``"websocket"``."""
        kind: str = self.connection.scope["type"]
        return kind

    def switch_to_http(self) -> HTTPHostContext:
        """The HTTP view (``.get_request()``).

        Raises:
            WebSocketStateError: This context is a websocket connection.
        """
        if not isinstance(self.connection, Request):
            raise WebSocketStateError(
                "switch_to_http() on a websocket context; use switch_to_websocket()"
            )
        return HTTPHostContext(self.connection)

    def switch_to_websocket(self) -> WebSocketHostContext:
        """The websocket view (``.get_client()``).

        Raises:
            WebSocketStateError: This context is an HTTP request.
        """
        if not isinstance(self.connection, WebSocket):
            raise WebSocketStateError(
                "switch_to_websocket() on an HTTP context; use switch_to_http()"
            )
        return WebSocketHostContext(self.connection)

    def get_handler(self) -> Callable[..., Any]:
        """The handler function."""
        return self.handler

    def get_class(self) -> type:
        """The controller class."""
        return self.controller_class


#: The name Ellar's guide imports: the same class as :class:`ExecutionContext`.
IExecutionContext = ExecutionContext
