"""The AsyncAPI viewer's files for the tests that need the real ones (not part of triows).

:func:`viewer_folder` fetches them into the user's cache the first time (the same folder
``python -m triows.asyncapi.fetch_viewer`` uses), and skips the test loudly when the npm
registry cannot be reached and they are not cached. A download that is not the pinned release
is no reason to skip: that error fails the test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from triows.asyncapi._viewer import PACKAGE, VERSION, ViewerDownloadError, default_folder, fetch


def viewer_folder() -> Path:
    """The folder of the viewer's files, fetched if need be; skips loudly if they can't be had."""
    try:
        return fetch()
    except ViewerDownloadError as exc:
        pytest.skip(
            f"SKIPPED LOUDLY: the AsyncAPI viewer ({PACKAGE} {VERSION}) is not in "
            f"{default_folder()} and could not be downloaded from the npm registry ({exc}); "
            "run `python -m triows.asyncapi.fetch_viewer` where the registry can be reached"
        )


__all__ = ["viewer_folder"]
