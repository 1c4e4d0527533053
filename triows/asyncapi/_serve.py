"""Serving the document (``/asyncapi.json``), the viewer page (``/asyncapi``) and its files."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from ..requests import Request
from ..responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from ..routing import PathTemplate, Route
from ._document import AsyncAPI
from ._viewer import ASSETS, find, missing_page, page
from .fetch_viewer import COMMAND

__all__ = ["AsyncAPIViewer", "asyncapi_routes"]

#: The order of an AsyncAPI document's top-level keys (servers right after info, where readers
#: look for them).
_DOCUMENT_ORDER = (
    "asyncapi",
    "info",
    "servers",
    "defaultContentType",
    "channels",
    "operations",
    "components",
)

Handler = Callable[[Request], Awaitable[Response]]


def asyncapi_routes(spec: AsyncAPI, document: Callable[[], dict[str, Any]]) -> list[Route[Handler]]:
    """The routes of the document ``document()`` gives, and of its viewer, where ``spec`` says."""

    async def serve_document(request: Request) -> Response:
        served = document()
        if spec.servers is None:  # the server it was fetched from
            scheme = "wss" if request.scope.get("scheme") in ("https", "wss") else "ws"
            host = request.headers.get("host") or "localhost"
            served = {**served, "servers": {"this": {"host": host, "protocol": scheme}}}
            served = {key: served[key] for key in _DOCUMENT_ORDER if key in served}
        return JSONResponse(served)

    methods = frozenset({"GET", "HEAD"})
    routes: list[Route[Handler]] = [
        Route(PathTemplate(spec.path), serve_document, "asyncapi", methods)
    ]
    if spec.viewer is not None:
        viewer = AsyncAPIViewer(spec)
        routes.append(Route(PathTemplate(spec.viewer), viewer.page, "asyncapi_viewer", methods))
        assets = PathTemplate(spec.viewer.rstrip("/") + "/assets/{name}")
        routes.append(Route(assets, viewer.asset, "asyncapi_assets", methods))
    return routes


logger = logging.getLogger("triows")

_ASSETS = {asset.name: asset for asset in ASSETS}


class AsyncAPIViewer:
    """The viewer page of one app, and the files it loads, from the folder ``find()`` gives.

    The folder is looked for at the first request (``find`` hashes 3 MB) and remembered once
    found; until then, the page says how to fetch the files (HTTP 503), and the log says it once.

    Args:
        spec: Where the document and the viewer are served.
    """

    def __init__(self, spec: AsyncAPI) -> None:
        assert spec.viewer is not None
        self.document_url = spec.path
        self.assets_url = spec.viewer.rstrip("/") + "/assets"
        self._folder: Path | None = None
        self._warned = False
        self._bodies: dict[str, bytes] = {}

    def _find(self) -> Path | None:
        if self._folder is None:
            self._folder = find()
            if self._folder is None and not self._warned:
                self._warned = True
                logger.warning(
                    "the AsyncAPI viewer's files are not installed: run %s (the page at %s "
                    "says so meanwhile)",
                    COMMAND,
                    self.assets_url.rsplit("/", 1)[0],
                )
        return self._folder

    async def page(self, request: Request) -> Response:
        """The viewer page, or the page that says how to install it."""
        if self._find() is None:
            return HTMLResponse(missing_page(COMMAND, self.document_url), 503)
        return HTMLResponse(page(self.document_url, self.assets_url))

    async def asset(self, request: Request) -> Response:
        """One file of the viewer (the bundle, its stylesheet, the licences)."""
        asset = _ASSETS.get(request.path_params["name"])
        folder = self._find()
        if asset is None or folder is None:
            return PlainTextResponse("Not Found", 404)
        content = self._bodies.get(asset.name)
        if content is None:
            content = self._bodies[asset.name] = (folder / asset.name).read_bytes()
        headers = {"cache-control": "public, max-age=86400"}
        return Response(content, 200, headers, media_type=asset.media_type)
