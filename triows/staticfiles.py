"""Serving files from the app's ``static_folder`` under ``/static``."""

from __future__ import annotations

import mimetypes
import os
from email.utils import formatdate
from pathlib import Path
from stat import S_ISREG

import trio

from .errors import HTTPException
from .responses import Response

__all__ = ["StaticFiles"]


class StaticFiles:
    """Files below one folder, read off the event loop.

    Args:
        folder: The folder to serve.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder).resolve()

    async def response(self, relative: str) -> Response:
        """The response for ``/static/<relative>``.

        Raises:
            HTTPException: 404 for anything missing, a folder, or outside the static folder.
        """
        target = (self.folder / relative).resolve()
        if not target.is_relative_to(self.folder) or target == self.folder:
            raise HTTPException(404)
        try:
            stat = await trio.to_thread.run_sync(os.stat, target)
            if not S_ISREG(stat.st_mode):
                raise HTTPException(404)
            body = await trio.Path(target).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError):
            raise HTTPException(404) from None
        media_type, _ = mimetypes.guess_type(target.name)
        headers = {"last-modified": formatdate(stat.st_mtime, usegmt=True)}
        return Response(body, headers=headers, media_type=media_type or "application/octet-stream")
