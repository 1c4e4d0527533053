"""The ASGI types, for apps and middleware written with triows (as ``starlette.types``)."""

from __future__ import annotations

from ._types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ASGIApp", "Message", "Receive", "Scope", "Send"]
