"""What every test session has, built on its own ``receive`` and ``send_text``/``send_bytes``.

The in-process session and the live one differ in how a frame travels; the typed receives and
``send_json`` on top of that are the same, and live here once.
"""

from __future__ import annotations

import abc
from typing import Any

import pydantic_core

from .._types import Message
from ._errors import UnexpectedMessage

__all__ = ["SessionBase"]


class SessionBase(abc.ABC):
    """Typed receives and JSON sends over a session's raw ``receive`` and frame sends."""

    @abc.abstractmethod
    async def receive(self, timeout: float | None = None) -> Message:
        """The next ``websocket.send``-shaped message from the server side."""

    @abc.abstractmethod
    async def send_text(self, data: str) -> None:
        """Send a text frame."""

    @abc.abstractmethod
    async def send_bytes(self, data: bytes) -> None:
        """Send a binary frame."""

    async def receive_text(self, timeout: float | None = None) -> str:
        """The next message, which must be text."""
        message = await self.receive(timeout)
        text: str | None = message.get("text")
        if text is None:
            raise UnexpectedMessage(f"expected a text message, got bytes {message.get('bytes')!r}")
        return text

    async def receive_bytes(self, timeout: float | None = None) -> bytes:
        """The next message, which must be binary."""
        message = await self.receive(timeout)
        data: bytes | None = message.get("bytes")
        if data is None:
            raise UnexpectedMessage(f"expected a binary message, got text {message.get('text')!r}")
        return data

    async def receive_json(self, mode: str = "text", timeout: float | None = None) -> Any:
        """The next message parsed as JSON (from a text frame, or binary with ``mode``)."""
        if mode == "text":
            return pydantic_core.from_json(await self.receive_text(timeout))
        return pydantic_core.from_json(await self.receive_bytes(timeout))

    async def send_json(self, data: Any, mode: str = "text") -> None:
        """Send ``data`` as JSON in a text frame (or binary, with ``mode``)."""
        encoded = pydantic_core.to_json(data)
        if mode == "text":
            await self.send_text(encoded.decode())
        else:
            await self.send_bytes(encoded)
