"""The browser client, ``triows.js``, and its TypeScript declarations, served by the app.

``App(client_script="/triows.js")`` (the default) serves ``triows/static/triows.js`` there and
``triows.d.ts`` beside it; a page imports it as an ES module (``docs/client.md``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import cache
from pathlib import Path

from .requests import Request
from .responses import Response
from .routing import PathTemplate, Route

__all__ = ["SCRIPT", "TYPES", "client_routes"]

STATIC = Path(__file__).resolve().parent / "static"
#: The client, and its declarations.
SCRIPT = STATIC / "triows.js"
TYPES = STATIC / "triows.d.ts"

_MEDIA = {SCRIPT: "text/javascript; charset=utf-8", TYPES: "text/plain; charset=utf-8"}


@cache
def _body(path: Path) -> bytes:
    return path.read_bytes()


def _serve(path: Path) -> Callable[[Request], Awaitable[Response]]:
    async def serve(request: Request) -> Response:
        headers = {"cache-control": "no-cache"}  # revalidated: a new triows is a new client
        return Response(_body(path), 200, headers, media_type=_MEDIA[path])

    return serve


def client_routes(path: str) -> list[Route[Callable[[Request], Awaitable[Response]]]]:
    """The routes of the client at ``path`` (``/triows.js``) and its declarations beside it."""
    types = path.removesuffix(".js") + ".d.ts"
    methods = frozenset({"GET", "HEAD"})
    return [
        Route(PathTemplate(path), _serve(SCRIPT), "triows_js", methods),
        Route(PathTemplate(types), _serve(TYPES), "triows_d_ts", methods),
    ]
