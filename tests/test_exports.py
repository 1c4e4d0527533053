"""The public API is a curated list: what ``__all__`` names exists, and nothing is missing."""

from __future__ import annotations

import triows
import triows.testing

EXPECTED = {
    "APP_DEFAULT", "App", "CloseCode", "Config", "ConfigurationError", "Controller",
    "ControllerBase", "ExecutionContext", "HTMLResponse", "HTTPException", "IExecutionContext",
    "JSONResponse", "NoMatchFound", "OutboxPolicy", "PlainTextResponse", "RedirectResponse",
    "Request", "Response", "WebSocket",
    "WebSocketDisconnect", "WebSocketException", "WebSocketState", "WebSocketStateError",
    "delete", "get", "patch", "post", "put", "render", "ws_route",
    "Body", "Cookie", "GuardCanActivate", "Guards", "Header", "Inject", "Path", "Provider",
    "Query", "RequestValidationError", "WsBody", "injectable",
    "Channels", "Membership",
}  # fmt: skip


def test_top_level_exports() -> None:
    assert set(triows.__all__) == EXPECTED
    for name in triows.__all__:
        assert getattr(triows, name) is not None


def test_testing_exports_resolve() -> None:
    for name in triows.testing.__all__:
        assert getattr(triows.testing, name) is not None
    assert triows.testing.WebSocketDisconnect is triows.WebSocketDisconnect


def test_guide_alias() -> None:
    assert triows.IExecutionContext is triows.ExecutionContext
