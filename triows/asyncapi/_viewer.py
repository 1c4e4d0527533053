"""The AsyncAPI viewer: the official React component's standalone bundle, fetched once.

The page at ``/asyncapi`` renders the app's document with ``@asyncapi/react-component``'s
standalone browser bundle (React included), which this module downloads from the npm registry
once, by a build step (``python -m triows.asyncapi.fetch_viewer``), checks against the
registry's published integrity, and keeps in a folder the app serves the files from. Nothing is
ever loaded from a CDN: the page works on a closed network, and what runs in the browser is the
exact file that was checked.

The bundle is not part of triows' own distribution (3 MB of someone else's JavaScript): when it
is missing, :func:`missing_page` says how to get it.
"""

from __future__ import annotations

import base64
import hashlib
import html
import http.client
import io
import json
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ASSETS",
    "ENV_VAR",
    "INTEGRITY",
    "PACKAGE",
    "TARBALL_SIZE",
    "TARBALL_URL",
    "VERSION",
    "Asset",
    "ViewerDownloadError",
    "ViewerError",
    "ViewerIntegrityError",
    "default_folder",
    "fetch",
    "find",
    "missing_page",
    "page",
]

#: The npm package of the viewer.
PACKAGE = "@asyncapi/react-component"
#: Its pinned version: the newest release when this was written; it renders AsyncAPI 3.0.0.
VERSION = "3.2.1"
#: Where the registry serves that version's tarball.
TARBALL_URL = "https://registry.npmjs.org/@asyncapi/react-component/-/react-component-3.2.1.tgz"
#: The registry's ``dist.integrity`` for that tarball (Subresource Integrity form).
INTEGRITY = "sha512-k5ZqJd6+oxYaQ2o6F3rGWJ1MTIjXdpsUYB3NKQbVqr4yzrN0Ovj5c7eZx8NGd3wfKPhbOrLREtYl9K2OPfnSsA=="  # noqa: E501 (as the registry spells it)
#: The tarball's size in bytes.
TARBALL_SIZE = 2_752_867
#: The environment variable that names the folder to keep the files in.
ENV_VAR = "TRIOWS_ASYNCAPI_VIEWER"

#: Seconds the download may take to connect, and between two reads.
_TIMEOUT = 60.0
#: A tarball larger than this is refused before its hash is even computed.
_MAX_DOWNLOAD = 4 * TARBALL_SIZE


@dataclass(frozen=True)
class Asset:
    """One file of the viewer: where it is in the tarball, its name in the folder, and its check.

    Args:
        member: The file's path in the tarball.
        name: The file's name in the viewer's folder (and under the page's assets URL).
        size: Its size in bytes.
        sha256: Its SHA-256, hex.
        media_type: The ``content-type`` to serve it with.
    """

    member: str
    name: str
    size: int
    sha256: str
    media_type: str


#: The files kept from the tarball: the bundle, its third-party licence notices (the bundle's
#: first line points to them by this name, beside it), the stylesheet and the package's licence.
ASSETS: tuple[Asset, ...] = (
    Asset(
        "package/browser/standalone/index.js",
        "index.js",
        3_042_659,
        "719f29a62127c5c406af8b3b016167d69e43624200354966cc4997bdce5e4c54",
        "text/javascript; charset=utf-8",
    ),
    Asset(
        "package/browser/standalone/index.js.LICENSE.txt",
        "index.js.LICENSE.txt",
        4_573,
        "d31d55d9a7c4009c45af4cd2d84e15e88518796c4c1f95cdc38acc605f3d6549",
        "text/plain; charset=utf-8",
    ),
    Asset(
        "package/styles/default.min.css",
        "default.min.css",
        24_647,
        "c8093f9b6441559267845abc24611f7721d075e4f278a8143857bcdc348df410",
        "text/css; charset=utf-8",
    ),
    Asset(
        "package/LICENSE",
        "LICENSE",
        11_356,
        "43070e2d4e532684de521b885f385d0841030efa2b1a20bafb76133a5e1379c1",
        "text/plain; charset=utf-8",
    ),
)


class ViewerError(Exception):
    """The viewer's files could not be had."""


class ViewerDownloadError(ViewerError):
    """The registry could not be reached, or the download broke off."""


class ViewerIntegrityError(ViewerError):
    """What was downloaded, or what is in the folder, is not the pinned release's files."""


def default_folder() -> Path:
    """Where the files are kept when no folder is given.

    ``$TRIOWS_ASYNCAPI_VIEWER`` if it is set, else
    ``asyncapi-react-component-<version>`` in ``triows`` under the user's cache folder
    (``$XDG_CACHE_HOME``, or ``~/.cache``).
    """
    chosen = os.environ.get(ENV_VAR)
    if chosen:
        return Path(chosen).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "triows" / f"asyncapi-react-component-{VERSION}"


def find(folder: Path | None = None) -> Path | None:
    """The viewer's folder if every file is there and is the pinned release's, else ``None``.

    It reads and hashes the files (3 MB, about 2 ms): call it once, at start-up, or off the event
    loop, rather than on every request.

    Args:
        folder: The folder to look in; :func:`default_folder` if ``None``.
    """
    folder = default_folder() if folder is None else folder
    return folder if _complete(folder) else None


def fetch(folder: Path | None = None) -> Path:
    """Make sure the viewer's files are in ``folder``: download and check them if they are not.

    The tarball is checked against :data:`INTEGRITY` before anything is written. Only the files
    of :data:`ASSETS` are written, into a new folder beside the target that is then renamed to it,
    so the target never holds half a viewer. Files that are already there and complete are kept:
    nothing is downloaded.

    Args:
        folder: Where to keep the files; :func:`default_folder` if ``None``.

    Returns:
        The folder.

    Raises:
        ViewerDownloadError: The registry could not be reached, or the download broke off.
        ViewerIntegrityError: The download is not the pinned tarball.
        ViewerError: The folder exists and holds other files than the viewer's.
    """
    folder = default_folder() if folder is None else folder
    if _complete(folder):
        return folder
    _check_replaceable(folder)
    files = _extract(_verified(_download(TARBALL_URL)))
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        staging.chmod(0o755)  # mkdtemp's is 0o700: a server of another user reads the files
        for asset in ASSETS:
            (staging / asset.name).write_bytes(files[asset.name])
        _move_into_place(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _complete(folder: Path) -> bool:
    """Whether every file of :data:`ASSETS` is in ``folder``, of the right size and hash."""
    for asset in ASSETS:
        path = folder / asset.name
        try:
            if not path.is_file() or path.stat().st_size != asset.size:
                return False
            if hashlib.sha256(path.read_bytes()).hexdigest() != asset.sha256:
                return False
        except OSError:
            return False
    return True


def _check_replaceable(folder: Path) -> None:
    """Refuse to replace a folder that holds anything but (some of) the viewer's files."""
    if not folder.exists():
        return
    if not folder.is_dir():
        raise ViewerError(f"{folder} exists and is not a folder")
    names = {asset.name for asset in ASSETS}
    others = sorted(entry.name for entry in folder.iterdir() if entry.name not in names)
    if others:
        raise ViewerError(
            f"{folder} holds other files than the AsyncAPI viewer's ({', '.join(others[:5])}): "
            f"remove them, or choose another folder"
        )


def _move_into_place(staging: Path, folder: Path) -> None:
    """Rename ``staging`` to ``folder``; an incomplete ``folder`` is moved aside and removed."""
    aside = None
    if folder.exists() and not _complete(folder):
        aside = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old.", dir=folder.parent))
        folder.rename(aside / folder.name)
    try:
        staging.rename(folder)
    except OSError:
        if not _complete(folder):  # not another process's complete copy: a real failure
            raise
    finally:
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)


def _download(url: str) -> bytes:
    """The bytes at ``url``, read with a timeout and a size limit."""
    request = urllib.request.Request(url, headers={"User-Agent": "triows (asyncapi viewer)"})
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:
            data: bytes = response.read(_MAX_DOWNLOAD + 1)
            # A read of a given size ends quietly where the connection did: what the
            # content-length promised and did not come is still counted here.
            missing = response.length
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise ViewerDownloadError(f"could not download {url}: {exc}") from exc
    if len(data) > _MAX_DOWNLOAD:
        raise ViewerIntegrityError(f"{url} is larger than {_MAX_DOWNLOAD} bytes")
    if missing:
        raise ViewerDownloadError(
            f"could not download {url}: the connection closed after {len(data)} bytes, "
            f"{missing} short"
        )
    return data


def _verified(data: bytes) -> bytes:
    """``data`` if its SHA-512 is the one of :data:`INTEGRITY`."""
    algorithm, _, expected = INTEGRITY.partition("-")
    digest = base64.b64encode(hashlib.new(algorithm, data).digest()).decode("ascii")
    if digest != expected:
        raise ViewerIntegrityError(
            f"the download of {PACKAGE} {VERSION} is not the published tarball: "
            f"its integrity is {algorithm}-{digest}, the registry's is {INTEGRITY}"
        )
    return data


def _extract(tarball: bytes) -> dict[str, bytes]:
    """The contents of :data:`ASSETS` from the tarball, each checked, by name."""
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
            for asset in ASSETS:
                member = archive.getmember(asset.member)
                stream = archive.extractfile(member) if member.isfile() else None
                if stream is None:
                    raise ViewerIntegrityError(f"{asset.member} is not a file in the tarball")
                files[asset.name] = stream.read()
    except (KeyError, tarfile.TarError, EOFError, OSError) as exc:
        message = f"the tarball of {PACKAGE} {VERSION} is unusable: {exc}"
        raise ViewerIntegrityError(message) from exc
    for asset in ASSETS:
        data = files[asset.name]
        if len(data) != asset.size or hashlib.sha256(data).hexdigest() != asset.sha256:
            raise ViewerIntegrityError(f"{asset.member} is not the file this version pins")
    return files


#: What the page asks of the component: the sidebar (operations and messages at a glance) and
#: the document's errors if it has any. Nothing in it needs the network.
_CONFIG = {"show": {"sidebar": True, "errors": True}}

#: The component sets no fonts of its own. (The pages' empty icon spares a /favicon.ico 404.)
_STYLE = "body{margin:0;font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}"


def _script_json(value: object) -> str:
    """``value`` as JSON that is safe inside an HTML ``<script>`` element."""
    text = json.dumps(value)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def page(document_url: str, assets_url: str) -> str:
    """The viewer page: the component renders the document at ``document_url``.

    Args:
        document_url: The AsyncAPI document's URL (``/asyncapi.json``); a relative one is taken
            relative to the page.
        assets_url: The URL the files of :data:`ASSETS` are served under, without a trailing
            slash (``/asyncapi/assets``).

    Returns:
        The HTML page.
    """
    assets = assets_url.rstrip("/")
    css = html.escape(f"{assets}/default.min.css")
    js = html.escape(f"{assets}/index.js")
    link = html.escape(document_url)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>AsyncAPI</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{css}">
<style>{_STYLE}</style>
</head>
<body>
<div id="asyncapi"></div>
<noscript><p>This page needs JavaScript. The AsyncAPI document: <a href="{link}">{link}</a></p>
</noscript>
<script src="{js}"></script>
<script>
(function () {{
  var element = document.getElementById("asyncapi");
  var documentUrl = new URL({_script_json(document_url)}, document.baseURI).href;
  if (typeof AsyncApiStandalone === "undefined") {{
    element.textContent = "The AsyncAPI viewer's script did not load: " + {_script_json(js)};
    return;
  }}
  AsyncApiStandalone.render(
    {{schema: {{url: documentUrl}}, config: {_script_json(_CONFIG)}}},
    element
  );
}})();
</script>
</body>
</html>
"""


def missing_page(command: str, document_url: str = "/asyncapi.json") -> str:
    """The page shown instead of the viewer when its files are not installed.

    Args:
        command: The command that fetches them (``python -m triows.asyncapi.fetch_viewer``).
        document_url: The AsyncAPI document's URL, linked from the page.

    Returns:
        The HTML page.
    """
    link = html.escape(document_url)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>AsyncAPI</title>
<link rel="icon" href="data:,">
<style>{_STYLE}body{{margin:2rem;max-width:45rem}}pre{{background:#f3f3f3;padding:1rem}}</style>
</head>
<body>
<h1>AsyncAPI</h1>
<p>The AsyncAPI viewer's files ({html.escape(PACKAGE)} {VERSION}) are not installed on this
server. To install them, run:</p>
<pre><code>{html.escape(command)}</code></pre>
<p>The AsyncAPI document itself: <a href="{link}">{link}</a></p>
</body>
</html>
"""
