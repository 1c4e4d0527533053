"""Serving the viewer page and its files (``/asyncapi``, ``/asyncapi/assets/...``)."""

from __future__ import annotations

import logging
from pathlib import Path

from ..requests import Request
from ..responses import HTMLResponse, PlainTextResponse, Response
from ._document import AsyncAPI
from ._viewer import ASSETS, find, missing_page, page
from .fetch_viewer import COMMAND

__all__ = ["AsyncAPIViewer"]

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
