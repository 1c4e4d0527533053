"""The in-process test clients: ``AsyncTestClient`` (trio) and ``TestClient`` (sync).

HTTP goes through httpx's own ``ASGITransport``; websockets through
:class:`~triows.testing._session.AsyncWebSocketTestSession`. The sync client runs a trio loop in
a background thread (the "portal") and forwards every call to the async machinery there, so both
clients behave identically.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import (
    AbstractAsyncContextManager,
    AsyncExitStack,
    asynccontextmanager,
    contextmanager,
)
from types import TracebackType
from typing import Any, Generic, TypeVar

import httpx
import trio

from .._logging import SERVER_ERRORS
from .._types import ASGIApp, Receive, Scope, Send
from ..errors import CloseCode
from ._errors import collapse_single
from ._lifespan import run_lifespan
from ._session import AsyncWebSocketTestSession, HeaderInput, connect_websocket, websocket_scope

__all__ = ["AsyncTestClient", "TestClient", "WebSocketTestSession"]

T = TypeVar("T")

#: Default seconds a receive (or the handshake, or the app's ending) may take in tests.
DEFAULT_TIMEOUT = 5.0


class _HTTPMethods:
    """``get``/``post``/… as thin aliases of ``request``."""

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        raise NotImplementedError

    def get(self, url: str, **kwargs: Any) -> Any:
        """``GET url``; keyword arguments as for httpx."""
        return self.request("GET", url, **kwargs)

    def head(self, url: str, **kwargs: Any) -> Any:
        """``HEAD url``."""
        return self.request("HEAD", url, **kwargs)

    def options(self, url: str, **kwargs: Any) -> Any:
        """``OPTIONS url``."""
        return self.request("OPTIONS", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Any:
        """``POST url``."""
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> Any:
        """``PUT url``."""
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> Any:
        """``PATCH url``."""
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> Any:
        """``DELETE url``."""
        return self.request("DELETE", url, **kwargs)


class AsyncTestClient(_HTTPMethods):
    """Talk to an app in-process from a trio test.

    ``async with AsyncTestClient(app) as client:`` runs the app's lifespan (and so its app
    nursery) for the block. HTTP methods return awaitables of ``httpx.Response``.

    Args:
        app: The ASGI app (a :class:`~triows.App`).
        base_url: The URL requests appear to go to.
        timeout: Default seconds for any receive, the handshake and the app's ending.
        lifespan: Run the app's lifespan.
        websocket_denial_response: Offer the ASGI ``websocket.http.response`` extension (as
            hypercorn does); ``False`` tests the close-before-accept fallback.
        raise_server_exceptions: Raise in the test what a handler, hook or guard raised (as
            itself), where triows answers the client with HTTP 500 or close 1011; ``False``
            shows what a real client sees instead (the 500, the 1011).
    """

    __test__ = False

    def __init__(
        self,
        app: ASGIApp,
        base_url: str = "http://testserver",
        *,
        timeout: float = DEFAULT_TIMEOUT,
        lifespan: bool = True,
        websocket_denial_response: bool = True,
        raise_server_exceptions: bool = True,
    ) -> None:
        self.app = app
        self.base_url = base_url
        self.timeout = timeout
        self.lifespan = lifespan
        self.websocket_denial_response = websocket_denial_response
        self.raise_server_exceptions = raise_server_exceptions
        self._stack: AsyncExitStack | None = None
        self._http: httpx.AsyncClient | None = None

    async def __aenter__(self) -> AsyncTestClient:
        stack = AsyncExitStack()
        await stack.__aenter__()
        try:
            if self.lifespan:
                await stack.enter_async_context(
                    run_lifespan(self.app, self.timeout, self.raise_server_exceptions)
                )
            self._http = await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=_http_app(self)),
                    base_url=self.base_url,
                )
            )
        except BaseException as exc:
            await stack.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        self._stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack, self._http = self._stack, None, None
        if stack is not None:
            await stack.__aexit__(exc_type, exc, tb)

    def request(self, method: str, url: str, **kwargs: Any) -> Awaitable[httpx.Response]:
        """Send an HTTP request; keyword arguments as for ``httpx.AsyncClient.request``."""
        if self._http is None:
            raise RuntimeError("use the client as 'async with client:' before sending requests")
        return self._http.request(method, url, **kwargs)

    @asynccontextmanager
    async def websocket_connect(
        self,
        path: str,
        subprotocols: Sequence[str] | None = None,
        headers: HeaderInput = None,
        *,
        timeout: float | None = None,
    ) -> AsyncIterator[AsyncWebSocketTestSession]:
        """Open a websocket to ``path`` (query string included).

        Raises:
            WebSocketDenied: The app refused the handshake (with its HTTP status).
        """
        scope = websocket_scope(
            self.base_url,
            path,
            subprotocols=subprotocols,
            headers=headers,
            denial_response=self.websocket_denial_response,
        )
        async with connect_websocket(
            self.app,
            scope,
            self.timeout if timeout is None else timeout,
            self.raise_server_exceptions,
        ) as session:
            yield session


def _http_app(client: AsyncTestClient | TestClient) -> ASGIApp:
    """The app as the client's HTTP requests reach it.

    With ``raise_server_exceptions``, a handler's failure (that triows answers with a 500) is
    raised from the call, which httpx raises in the test.
    """
    app = client.app
    if not client.raise_server_exceptions:
        return app

    async def reporting(scope: Scope, receive: Receive, send: Send) -> None:
        failures: list[BaseException] = []
        extensions = {**(scope.get("extensions") or {}), SERVER_ERRORS: failures.append}
        await app({**scope, "extensions": extensions}, receive, send)
        if failures:
            raise failures[0]

    return reporting


class _Portal:
    """A trio loop in a daemon thread, running coroutines for synchronous callers."""

    def __init__(self) -> None:
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._stop: trio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="triows-testclient", daemon=True)
        self._thread.start()
        self._ready.wait()

    def _main(self) -> None:
        trio.run(self._serve)

    async def _serve(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._ready.set()
            await self._stop.wait()
            nursery.cancel_scope.cancel()

    def run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``await fn(*args)`` in the portal's loop and return its result."""
        with collapse_single():
            return trio.from_thread.run(fn, *args, trio_token=self._token)

    def enter(self, manager: AbstractAsyncContextManager[T]) -> tuple[T, Callable[[], None]]:
        """Enter ``manager`` in the loop; return its value and a function that exits it."""
        held = _Held[T]()
        assert self._nursery is not None
        nursery = self._nursery
        self.run(nursery.start, held.hold, manager)

        def leave() -> None:
            self.run(held.leave)

        return held.value, leave

    def stop(self, wait: bool = True) -> None:
        """End the loop (cancelling whatever still runs there); with ``wait``, join the thread.

        Safe from any thread, a trio one included: the garbage collector may call it anywhere.
        """
        if self._token is None or self._stop is None or not self._thread.is_alive():
            return
        try:
            self._token.run_sync_soon(self._stop.set)
        except trio.RunFinishedError:
            return
        if wait and threading.current_thread() is not self._thread:
            self._thread.join()


class _Held(Generic[T]):
    """An async context manager kept open in the portal between synchronous calls."""

    value: T

    def __init__(self) -> None:
        self._exit = trio.Event()
        self._done = trio.Event()
        self._error: BaseException | None = None

    async def hold(
        self, manager: AbstractAsyncContextManager[T], task_status: trio.TaskStatus[None]
    ) -> None:
        entered = False
        try:
            async with manager as value:
                self.value = value
                entered = True
                task_status.started()
                await self._exit.wait()
        except BaseException as exc:
            if not entered:
                raise
            self._error = exc
        finally:
            self._done.set()

    async def leave(self) -> None:
        self._exit.set()
        await self._done.wait()
        if self._error is not None:
            raise self._error


class _PortalTransport(httpx.BaseTransport):
    """A synchronous httpx transport that runs httpx's ASGITransport in the portal."""

    def __init__(self, client: TestClient) -> None:
        self._client = client

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        body = request.content

        async def call() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
            transport = httpx.ASGITransport(app=_http_app(self._client))
            replay = httpx.Request(
                request.method, request.url, headers=request.headers, content=body
            )
            response = await transport.handle_async_request(replay)
            content = await response.aread()
            return response.status_code, response.headers.raw, content

        status, headers, content = self._client._portal_run(call)
        return httpx.Response(status, headers=headers, content=content, request=request)


class WebSocketTestSession:
    """The synchronous face of an in-process websocket (``with client.websocket_connect()``)."""

    def __init__(self, client: TestClient, session: AsyncWebSocketTestSession) -> None:
        self._client = client
        self._session = session

    @property
    def accepted_subprotocol(self) -> str | None:
        """The subprotocol the app accepted, if any."""
        return self._session.accepted_subprotocol

    @property
    def extra_headers(self) -> list[tuple[bytes, bytes]]:
        """Extra headers the app sent with ``accept()``, as ``(name, value)`` bytes."""
        return self._session.extra_headers

    def _run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        return self._client._portal_run(fn, *args)

    def send(self, message: dict[str, Any]) -> None:
        """Send a raw ASGI ``websocket.receive`` message."""
        self._run(self._session.send, message)

    def send_text(self, data: str) -> None:
        """Send a text frame."""
        self._run(self._session.send_text, data)

    def send_bytes(self, data: bytes) -> None:
        """Send a binary frame."""
        self._run(self._session.send_bytes, data)

    def send_json(self, data: Any, mode: str = "text") -> None:
        """Send ``data`` as JSON."""
        self._run(self._session.send_json, data, mode)

    def receive(self, timeout: float | None = None) -> dict[str, Any]:
        """The app's next ``websocket.send`` message."""
        return dict(self._run(self._session.receive, timeout))

    def receive_text(self, timeout: float | None = None) -> str:
        """The next message, which must be text."""
        return self._run(self._session.receive_text, timeout)

    def receive_bytes(self, timeout: float | None = None) -> bytes:
        """The next message, which must be binary."""
        return self._run(self._session.receive_bytes, timeout)

    def receive_json(self, mode: str = "text", timeout: float | None = None) -> Any:
        """The next message parsed as JSON."""
        return self._run(self._session.receive_json, mode, timeout)

    def assert_no_message(self, within: float = 0.1) -> None:
        """Fail if the app sends anything within ``within`` seconds."""
        self._run(self._session.assert_no_message, within)

    def close(self, code: int = CloseCode.NORMAL, reason: str | None = None) -> None:
        """Close from the client's side."""
        self._run(self._session.close, code, reason)


class TestClient(_HTTPMethods):
    """Talk to an app in-process from ordinary synchronous tests, as Ellar's guide does.

    The app runs (lifespan included) in a trio loop on a background thread, started on first use
    and stopped by :meth:`close` or the end of a ``with TestClient(app):`` block (or, failing
    both, when the client is garbage-collected).

    Args:
        app: The ASGI app (a :class:`~triows.App`).
        base_url: The URL requests appear to go to.
        timeout: Default seconds for any receive, the handshake and the app's ending.
        lifespan: Run the app's lifespan.
        websocket_denial_response: Offer the ASGI ``websocket.http.response`` extension.
        raise_server_exceptions: Raise in the test what a handler, hook or guard raised (as
            itself); ``False`` shows the HTTP 500 or close 1011 a real client sees instead.
    """

    __test__ = False

    def __init__(
        self,
        app: ASGIApp,
        base_url: str = "http://testserver",
        *,
        timeout: float = DEFAULT_TIMEOUT,
        lifespan: bool = True,
        websocket_denial_response: bool = True,
        raise_server_exceptions: bool = True,
    ) -> None:
        self.app = app
        self.base_url = base_url
        self.timeout = timeout
        self.lifespan = lifespan
        self.websocket_denial_response = websocket_denial_response
        self.raise_server_exceptions = raise_server_exceptions
        self._portal: _Portal | None = None
        self._leave_lifespan: Callable[[], None] | None = None
        self._http = httpx.Client(transport=_PortalTransport(self), base_url=base_url)
        self._finalizer: weakref.finalize[Any, Any] | None = None

    def __enter__(self) -> TestClient:
        self._start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _start(self) -> _Portal:
        if self._portal is None:
            portal = _Portal()
            self._finalizer = weakref.finalize(self, portal.stop, wait=False)
            self._portal = portal
            if self.lifespan:
                try:
                    _, self._leave_lifespan = portal.enter(
                        run_lifespan(self.app, self.timeout, self.raise_server_exceptions)
                    )
                except BaseException:
                    self.close()
                    raise
        return self._portal

    def _portal_run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        return self._start().run(fn, *args)

    def close(self) -> None:
        """Run the app's shutdown and stop the background loop."""
        portal, self._portal = self._portal, None
        leave, self._leave_lifespan = self._leave_lifespan, None
        try:
            if leave is not None:
                leave()
        finally:
            if portal is not None:
                portal.stop()
            if self._finalizer is not None:
                self._finalizer.detach()

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send an HTTP request; keyword arguments as for ``httpx.Client.request``."""
        return self._http.request(method, url, **kwargs)

    @contextmanager
    def websocket_connect(
        self,
        path: str,
        subprotocols: Sequence[str] | None = None,
        headers: HeaderInput = None,
        *,
        timeout: float | None = None,
    ) -> Iterator[WebSocketTestSession]:
        """Open a websocket to ``path``: ``with client.websocket_connect('/ws') as ws:``.

        Raises:
            WebSocketDenied: The app refused the handshake (with its HTTP status).
        """
        scope = websocket_scope(
            self.base_url,
            path,
            subprotocols=subprotocols,
            headers=headers,
            denial_response=self.websocket_denial_response,
        )
        manager = connect_websocket(
            self.app,
            scope,
            self.timeout if timeout is None else timeout,
            self.raise_server_exceptions,
        )
        session, leave = self._start().enter(manager)
        try:
            yield WebSocketTestSession(self, session)
        finally:
            leave()
