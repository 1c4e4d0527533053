"""The AsyncAPI viewer's files: fetched once, checked, written whole; and the pages around them.

Most tests run on a fake release: a small tarball made here, with the module's pins (``ASSETS``,
``INTEGRITY``) pointed at it and the download replaced, so they need no network. One test checks
the real files in the cache (fetched the first time; skipped loudly when they can't be had).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import tarfile
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from viewer_support import viewer_folder

from triows.asyncapi import _viewer, fetch_viewer
from triows.asyncapi._viewer import (
    ASSETS,
    ENV_VAR,
    Asset,
    ViewerDownloadError,
    ViewerError,
    ViewerIntegrityError,
    default_folder,
    fetch,
    find,
    missing_page,
    page,
)

#: The fake release's files, by their path in its tarball.
FAKE_FILES = {
    "package/browser/standalone/index.js": b"window.AsyncApiStandalone = {};\n",
    "package/styles/default.min.css": b"body{color:black}\n",
    "package/LICENSE": b"Apache License\n",
}
#: What else is in the fake tarball: none of it may be written.
FAKE_OTHERS = {
    "package/README.md": b"# readme\n",
    "package/browser/index.js": b"// the non-standalone bundle\n",
    "package/lib/cjs/index.js": b"module.exports = {};\n",
}


def integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def tarball(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class Registry:
    """Stands in for the npm registry: serves one tarball and counts the downloads."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.downloads = 0

    def download(self, url: str) -> bytes:
        assert url == _viewer.TARBALL_URL
        self.downloads += 1
        return self.data


@pytest.fixture
def fake_release(monkeypatch: pytest.MonkeyPatch) -> Registry:
    """The module pinned to a fake release, which a fake registry serves."""
    data = tarball({**FAKE_FILES, **FAKE_OTHERS})
    assets = tuple(
        Asset(member, member.rsplit("/", 1)[1], len(body), hashlib.sha256(body).hexdigest(), "x/y")
        for member, body in FAKE_FILES.items()
    )
    registry = Registry(data)
    monkeypatch.setattr(_viewer, "ASSETS", assets)
    monkeypatch.setattr(_viewer, "INTEGRITY", integrity(data))
    monkeypatch.setattr(_viewer, "_download", registry.download)
    return registry


def listing(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


# -- fetch and find -----------------------------------------------------------------------------


def test_fetch_writes_only_the_pinned_files_and_downloads_once(
    fake_release: Registry, tmp_path: Path
) -> None:
    folder = tmp_path / "viewer"
    assert find(folder) is None

    assert fetch(folder) == folder
    assert fake_release.downloads == 1
    assert listing(folder) == ["LICENSE", "default.min.css", "index.js"]
    for member, body in FAKE_FILES.items():
        assert (folder / member.rsplit("/", 1)[1]).read_bytes() == body
    assert listing(tmp_path) == ["viewer"]  # no staging folder left behind
    assert find(folder) == folder

    assert fetch(folder) == folder  # already there: nothing downloaded
    assert fake_release.downloads == 1


def test_a_changed_file_in_the_folder_is_found_and_replaced(
    fake_release: Registry, tmp_path: Path
) -> None:
    folder = fetch(tmp_path / "viewer")
    script = folder / "index.js"
    original = script.read_bytes()
    script.write_bytes(original.replace(b"window", b"WINDOW"))  # same size, other content
    assert find(folder) is None

    assert fetch(folder) == folder
    assert fake_release.downloads == 2
    assert script.read_bytes() == original
    assert find(folder) == folder
    assert listing(tmp_path) == ["viewer"]


def test_a_missing_file_is_fetched_again(fake_release: Registry, tmp_path: Path) -> None:
    folder = fetch(tmp_path / "viewer")
    (folder / "default.min.css").unlink()
    assert find(folder) is None
    fetch(folder)
    assert fake_release.downloads == 2
    assert find(folder) == folder


def test_a_write_that_fails_halfway_leaves_no_folder(
    fake_release: Registry, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    written: list[str] = []
    write_bytes = Path.write_bytes

    def disk_full_at_the_second_file(self: Path, data: bytes) -> int:
        if written:
            raise OSError(28, "No space left on device")
        written.append(self.name)
        return write_bytes(self, data)

    monkeypatch.setattr(Path, "write_bytes", disk_full_at_the_second_file)
    folder = tmp_path / "viewer"
    with pytest.raises(OSError, match="No space left"):
        fetch(folder)
    assert written == ["index.js"]
    assert listing(tmp_path) == []  # neither the folder nor the staging one


def test_a_tampered_download_is_refused(fake_release: Registry, tmp_path: Path) -> None:
    data = bytearray(fake_release.data)
    data[len(data) // 2] ^= 0xFF
    fake_release.data = bytes(data)
    folder = tmp_path / "viewer"
    with pytest.raises(ViewerIntegrityError, match="is not the published tarball"):
        fetch(folder)
    assert listing(tmp_path) == []  # nothing written


def test_a_download_with_other_files_of_the_right_names_is_refused(
    fake_release: Registry, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Other contents under the pinned names, the integrity matching them: the files' own pins
    # still refuse them.
    other = tarball({name: body + b"// changed\n" for name, body in FAKE_FILES.items()})
    fake_release.data = other
    monkeypatch.setattr(_viewer, "INTEGRITY", integrity(other))
    with pytest.raises(ViewerIntegrityError, match="is not the file this version pins"):
        fetch(tmp_path / "viewer")
    assert listing(tmp_path) == []


def test_a_download_without_a_pinned_file_is_refused(
    fake_release: Registry, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    partial = tarball({**FAKE_OTHERS, "package/LICENSE": FAKE_FILES["package/LICENSE"]})
    fake_release.data = partial
    monkeypatch.setattr(_viewer, "INTEGRITY", integrity(partial))
    with pytest.raises(ViewerIntegrityError, match="unusable"):
        fetch(tmp_path / "viewer")
    assert listing(tmp_path) == []


def test_the_real_pins_refuse_a_tarball_that_is_not_the_release(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(_viewer, "_download", lambda url: tarball(FAKE_FILES))
    with pytest.raises(ViewerIntegrityError, match=re.escape(_viewer.INTEGRITY)):
        fetch(tmp_path / "viewer")
    assert listing(tmp_path) == []


def test_a_folder_holding_other_files_is_left_alone(fake_release: Registry, tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(ViewerError, match=r"notes\.txt"):
        fetch(folder)
    assert listing(folder) == ["notes.txt"]
    assert fake_release.downloads == 0


def test_an_empty_folder_is_filled(fake_release: Registry, tmp_path: Path) -> None:
    folder = tmp_path / "viewer"
    folder.mkdir()
    assert fetch(folder) == folder
    assert listing(folder) == ["LICENSE", "default.min.css", "index.js"]


def test_the_default_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "chosen"))
    assert default_folder() == tmp_path / "chosen"
    monkeypatch.delenv(ENV_VAR)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    expected = tmp_path / "cache" / "triows" / f"asyncapi-react-component-{_viewer.VERSION}"
    assert default_folder() == expected


def test_the_cached_release_is_complete_and_not_downloaded_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = viewer_folder()
    assert find(folder) == folder
    assert find() == folder
    assert listing(folder) == sorted(asset.name for asset in ASSETS)
    for asset in ASSETS:
        assert (folder / asset.name).stat().st_size == asset.size

    def no_download(url: str) -> bytes:
        raise AssertionError(f"downloaded {url} again")

    monkeypatch.setattr(_viewer, "_download", no_download)
    assert fetch() == folder
    assert fetch(folder) == folder
    assert b"Apache License" in (folder / "LICENSE").read_bytes()


class Tarballs(BaseHTTPRequestHandler):
    """``/whole`` is served whole; ``/broken`` breaks off after 10 of its 100 bytes."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "100")
        self.end_headers()
        self.wfile.write(b"x" * (100 if self.path == "/whole" else 10))

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def tarballs() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Tarballs)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_the_download_reads_the_whole_answer(tarballs: str) -> None:
    assert _viewer._download(f"{tarballs}/whole") == b"x" * 100


def test_a_download_that_breaks_off_is_a_download_error(tarballs: str) -> None:
    with pytest.raises(ViewerDownloadError, match="could not download"):
        _viewer._download(f"{tarballs}/broken")


def test_an_unreachable_registry_is_a_download_error() -> None:
    with pytest.raises(ViewerDownloadError, match="could not download"):
        _viewer._download("http://127.0.0.1:9/tarball.tgz")  # the discard port: refused


# -- the command --------------------------------------------------------------------------------


def test_the_command_fetches_and_prints_the_folder(
    fake_release: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "viewer"
    assert fetch_viewer.main(["--folder", str(folder)]) == 0
    out, err = capsys.readouterr()
    assert out == f"{folder}\n"
    assert "downloading @asyncapi/react-component" in err
    assert fetch_viewer.main(["--folder", str(folder)]) == 0
    out, err = capsys.readouterr()
    assert (out, err) == (f"{folder}\n", "")
    assert fake_release.downloads == 1


def test_the_command_fails_plainly_when_the_registry_is_unreachable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def unreachable(url: str) -> bytes:
        raise ViewerDownloadError(f"could not download {url}: no route to host")

    monkeypatch.setattr(_viewer, "_download", unreachable)
    assert fetch_viewer.main(["--folder", str(tmp_path / "viewer")]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "error: could not download https://registry.npmjs.org/" in err
    assert listing(tmp_path) == []


# -- the pages ----------------------------------------------------------------------------------


class Elements(HTMLParser):
    """The page's elements as a browser's parser sees them: each tag's attributes, scripts' text."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._in_script = True
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data

    def attributes(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]


HOSTILE_DOCUMENT = "/docs/a\"b'c</script><script>alert(1)</script>&amp;.json"
HOSTILE_ASSETS = '/assets/"><script>alert(2)</script>'


def test_the_page_loads_the_files_and_renders_the_document() -> None:
    elements = Elements(page("/asyncapi.json", "/asyncapi/assets/"))
    assert [tag for tag, _ in elements.tags].count("title") == 1
    assert elements.attributes("link") == [
        {"rel": "icon", "href": "data:,"},  # no request for /favicon.ico
        {"rel": "stylesheet", "href": "/asyncapi/assets/default.min.css"},
    ]
    assert [attrs.get("src") for attrs in elements.attributes("script")] == [
        "/asyncapi/assets/index.js",
        None,
    ]
    assert elements.attributes("div") == [{"id": "asyncapi"}]
    inline = elements.scripts[1]
    assert "AsyncApiStandalone.render(" in inline
    assert 'document.getElementById("asyncapi")' in inline


def test_the_page_escapes_the_urls() -> None:
    text = page(HOSTILE_DOCUMENT, HOSTILE_ASSETS)
    elements = Elements(text)
    # Nothing of the URLs became markup: the same elements as for plain URLs, and the URLs
    # come back whole from the attributes and from the script's JSON.
    assert [tag for tag, _ in elements.tags] == [
        tag for tag, _ in Elements(page("/asyncapi.json", "/assets")).tags
    ]
    assert elements.attributes("link")[1]["href"] == f"{HOSTILE_ASSETS}/default.min.css"
    assert elements.attributes("script")[0]["src"] == f"{HOSTILE_ASSETS}/index.js"
    assert elements.attributes("a")[0]["href"] == HOSTILE_DOCUMENT
    inline = elements.scripts[1]
    assert "</script" not in inline.lower()
    literal = re.search(r"new URL\((\"(?:[^\"\\]|\\.)*\"), document\.baseURI\)", inline)
    assert literal is not None
    assert json.loads(literal.group(1)) == HOSTILE_DOCUMENT
    assert "alert(1)</script>" not in text
    assert "<script>alert(2)" not in text


def test_the_missing_page_says_what_to_run() -> None:
    command = "python -m triows.asyncapi.fetch_viewer --folder '<here>'"
    text = missing_page(command, document_url="/api/asyncapi.json?x=1&y=2")
    elements = Elements(text)
    assert [tag for tag, _ in elements.tags].count("script") == 0
    assert "are not installed" in text
    assert "python -m triows.asyncapi.fetch_viewer --folder &#x27;&lt;here&gt;&#x27;" in text
    assert elements.attributes("a") == [{"href": "/api/asyncapi.json?x=1&y=2"}]
    assert "/api/asyncapi.json?x=1&amp;y=2" in text
    assert f"@asyncapi/react-component {_viewer.VERSION}" in text


def test_the_missing_page_links_the_document_by_default() -> None:
    elements = Elements(missing_page(fetch_viewer.COMMAND))
    assert elements.attributes("a") == [{"href": "/asyncapi.json"}]
