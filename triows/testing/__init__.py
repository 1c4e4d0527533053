"""Testing triows apps: in-process clients and test modules.

``TestClient`` is synchronous (the guide's tests); ``AsyncTestClient`` is for pytest-trio.
Both speak to the app in-process and behave like hypercorn where a test can tell.
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
from ._session import AsyncWebSocketTestSession as AsyncWebSocketTestSession

__all__ = [
    "AsyncTestClient",
    "AsyncWebSocketTestSession",
    "LifespanError",
    "ReceiveTimeout",
    "Test",
    "TestClient",
    "TestingModule",
    "UnexpectedMessage",
    "WebSocketDenied",
    "WebSocketDisconnect",
    "WebSocketTestSession",
]
