"""Testing triows apps: in-process clients, test modules and a live server.

``TestClient`` is synchronous (as in Ellar's guide); ``AsyncTestClient`` is for pytest-trio.
Both speak to the app in-process and behave like hypercorn where a test can tell. ``serve``
(and ``serve_in``) run the app on real hypercorn in the test's trio loop; its
``websocket_connect`` gives sessions with the in-process session's methods. ``RedisServer`` runs
a real, throw-away ``redis-server`` for tests of Redis-backed code. The pytest plugin
(``triows.testing.pytest_plugin``, loaded automatically) provides fixtures over all of them.
"""

from __future__ import annotations

from ..errors import WebSocketDisconnect as WebSocketDisconnect
from ._client import AsyncTestClient as AsyncTestClient
from ._client import TestClient as TestClient
from ._client import WebSocketTestSession as WebSocketTestSession
from ._errors import ReceiveTimeout as ReceiveTimeout
from ._errors import UnexpectedMessage as UnexpectedMessage
from ._errors import WebSocketDenied as WebSocketDenied
from ._lifespan import LifespanError as LifespanError
from ._module import Test as Test
from ._module import TestingModule as TestingModule
from ._redis import RedisCommandError as RedisCommandError
from ._redis import RedisServer as RedisServer
from ._redis import RedisServerError as RedisServerError
from ._redis import RedisServerMissing as RedisServerMissing
from ._server import LiveServer as LiveServer
from ._server import LiveWebSocketSession as LiveWebSocketSession
from ._server import serve as serve
from ._server import serve_in as serve_in
from ._session import AsyncWebSocketTestSession as AsyncWebSocketTestSession

__all__ = [
    "AsyncTestClient",
    "AsyncWebSocketTestSession",
    "LifespanError",
    "LiveServer",
    "LiveWebSocketSession",
    "ReceiveTimeout",
    "RedisCommandError",
    "RedisServer",
    "RedisServerError",
    "RedisServerMissing",
    "Test",
    "TestClient",
    "TestingModule",
    "UnexpectedMessage",
    "WebSocketDenied",
    "WebSocketDisconnect",
    "WebSocketTestSession",
    "serve",
    "serve_in",
]
