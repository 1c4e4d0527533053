"""``HTTPConnection`` (what HTTP requests and websockets share) and ``Request``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pydantic_core

from ._types import Receive, Scope
from .datastructures import URL, Address, Headers, QueryParams, State, parse_cookies
from .errors import HTTPException

if TYPE_CHECKING:
    from .app import App

__all__ = ["ClientDisconnect", "HTTPConnection", "Request"]


class ClientDisconnect(Exception):
    """The HTTP client went away while its request body was being read."""


class HTTPConnection(Mapping[str, Any]):
    """The parts of an ASGI scope every connection has, parsed lazily and cached.

    As in Starlette, it is also a read-only mapping over its scope (``websocket["path"]``,
    ``"subprotocols" in websocket``), compared and hashed by identity.

    Args:
        scope: The ASGI scope of the request or websocket.
    """

    __eq__ = object.__eq__
    __hash__ = object.__hash__

    def __getitem__(self, key: str) -> Any:
        return self.scope[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.scope)

    def __len__(self) -> int:
        return len(self.scope)

    # "__weakref__": a WeakSet of open connections is a common way to track them.
    __slots__ = ("__weakref__", "_cookies", "_headers", "_query", "_state", "scope")

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self._headers: Headers | None = None
        self._query: QueryParams | None = None
        self._cookies: dict[str, str] | None = None
        self._state: State | None = None

    @property
    def app(self) -> App:
        """The :class:`~triows.App` serving this connection."""
        app: App = self.scope["app"]
        return app

    @property
    def url(self) -> URL:
        """The URL the client asked for."""
        return URL.from_scope(self.scope)

    @property
    def headers(self) -> Headers:
        """Request headers (case-insensitive)."""
        if self._headers is None:
            self._headers = Headers.from_raw(self.scope["headers"])
        return self._headers

    @property
    def query_params(self) -> QueryParams:
        """Query-string parameters."""
        if self._query is None:
            self._query = QueryParams.from_bytes(self.scope.get("query_string", b""))
        return self._query

    @property
    def path_params(self) -> dict[str, Any]:
        """Path parameters, already converted (``{id:int}`` gives an ``int``)."""
        params: dict[str, Any] = self.scope.get("path_params", {})
        return params

    @property
    def cookies(self) -> dict[str, str]:
        """Cookies sent with the request."""
        if self._cookies is None:
            header = self.headers.get("cookie")
            self._cookies = parse_cookies(header) if header else {}
        return self._cookies

    @property
    def client(self) -> Address | None:
        """The peer's address, if the server reported it."""
        client = self.scope.get("client")
        return Address(*client) if client else None

    @property
    def state(self) -> State:
        """A free attribute bag for this connection (``conn.state.user = ...``)."""
        if self._state is None:
            self._state = State()
        return self._state


class Request(HTTPConnection):
    """An HTTP request.

    Args:
        scope: The ASGI ``http`` scope.
        receive: The ASGI receive callable, for the body.
    """

    __slots__ = ("_body", "_receive")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        super().__init__(scope)
        self._receive = receive
        self._body: bytes | None = None

    @property
    def method(self) -> str:
        """The HTTP method, upper-case."""
        method: str = self.scope["method"]
        return method

    async def body(self) -> bytes:
        """The whole request body (read once, then cached).

        Raises:
            ClientDisconnect: The client left before the body was complete.
        """
        if self._body is None:
            chunks: list[bytes] = []
            while True:
                message = await self._receive()
                if message["type"] == "http.disconnect":
                    raise ClientDisconnect
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
            self._body = b"".join(chunks)
        return self._body

    async def json(self) -> Any:
        """The body parsed as JSON.

        Raises:
            HTTPException: 400 with the parser's message when the body is not valid JSON.
        """
        body = await self.body()
        try:
            return pydantic_core.from_json(body)
        except ValueError as exc:
            raise HTTPException(400, f"request body is not valid JSON: {exc}") from None
