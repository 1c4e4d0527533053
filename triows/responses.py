"""HTTP responses, and how a handler's return value becomes one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pydantic_core

from ._types import Send

__all__ = [
    "HTMLResponse",
    "JSONResponse",
    "PlainTextResponse",
    "RedirectResponse",
    "Response",
    "to_response",
]


class Response:
    """An HTTP response with its whole body in memory.

    Args:
        content: The body; ``str`` is encoded as UTF-8.
        status_code: The HTTP status.
        headers: Extra headers.
        media_type: The ``content-type`` (``; charset=utf-8`` is added for text types).
    """

    media_type: str | None = None

    def __init__(
        self,
        content: bytes | str = b"",
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.body = self.render(content)
        self.headers: dict[str, str] = {k.lower(): v for k, v in (headers or {}).items()}
        media_type = media_type or self.media_type
        if media_type is not None and "content-type" not in self.headers:
            if media_type.startswith("text/") and "charset" not in media_type:
                media_type += "; charset=utf-8"
            self.headers["content-type"] = media_type

    def render(self, content: Any) -> bytes:
        """Turn ``content`` into the body bytes."""
        if isinstance(content, str):
            return content.encode("utf-8")
        return bytes(content)

    @property
    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        """Headers as ASGI wants them, ``content-length`` included (as Starlette's attribute)."""
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in self.headers.items()]
        raw.append((b"content-length", str(len(self.body)).encode()))
        return raw

    async def send(self, send: Send, *, head: bool = False) -> None:
        """Send this response over ASGI (headers only for ``HEAD``)."""
        await send(
            {
                "type": "http.response.start",
                "status": self.status_code,
                "headers": self.raw_headers,
            }
        )
        await send({"type": "http.response.body", "body": b"" if head else self.body})


class PlainTextResponse(Response):
    """A ``text/plain`` response."""

    media_type = "text/plain"


class HTMLResponse(Response):
    """A ``text/html`` response."""

    media_type = "text/html"


class JSONResponse(Response):
    """A JSON response; anything pydantic can serialise is accepted as content."""

    media_type = "application/json"

    def __init__(
        self,
        content: Any,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
    ) -> None:
        super().__init__(content, status_code, headers, media_type)

    def render(self, content: Any) -> bytes:
        """Serialise ``content`` to compact JSON."""
        return pydantic_core.to_json(content)


class RedirectResponse(Response):
    """A redirect to ``url`` (307 by default: the method and body are kept)."""

    def __init__(
        self, url: str, status_code: int = 307, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(b"", status_code, headers)
        self.headers["location"] = url


def to_response(result: Any) -> Response:
    """What a handler's return value means.

    A :class:`Response` is sent as it is; ``str`` becomes ``text/plain``; ``bytes`` becomes
    ``application/octet-stream``; anything else (dict, list, model, ``None``…) becomes JSON.
    """
    if isinstance(result, Response):
        return result
    if isinstance(result, str):
        return PlainTextResponse(result)
    if isinstance(result, (bytes, bytearray)):
        return Response(bytes(result), media_type="application/octet-stream")
    return JSONResponse(result)
