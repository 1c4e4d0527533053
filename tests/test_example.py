"""The live-support example (``examples/live_support``): in-process, then as users run it.

The live tests start the real ``hypercorn`` CLI in a subprocess, once from the example's folder
(``app:app``, as its docstring says) and once from the repository root
(``examples.live_support.app:app``), and talk to it over 127.0.0.1.
"""

from __future__ import annotations

import html
import signal
import sys
from pathlib import Path

import httpx
import pytest
import trio
from live import Server, command, hypercorn_cli, open_websocket

from examples.live_support.app import WELCOME, app
from triows.testing import AsyncTestClient, TestClient

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "live_support"
STATIC = EXAMPLE / "static"

#: The text of the guide, which the example must keep.
GUIDE_WELCOME = "Welcome to our live support room!\nHow can we help you?"
COMPLAINT = 'My <b>car</b> & "its" <script>alert(1)</script> won\'t start'


def expected_answer(complaint: str) -> str:
    return (
        f'We have received your complaint:<br><br><strong>"{html.escape(complaint)}"</strong>'
        "<br><br>We shall get back to you."
    )


def test_expected_answer_escapes_what_the_guide_would_not() -> None:
    # Pin the escaping the tests below rely on, so they cannot pass on unescaped text.
    assert expected_answer(COMPLAINT) == (
        "We have received your complaint:<br><br><strong>"
        '"My &lt;b&gt;car&lt;/b&gt; &amp; &quot;its&quot; &lt;script&gt;alert(1)&lt;/script&gt;'
        ' won&#x27;t start"</strong><br><br>We shall get back to you.'
    )


def assert_is_the_page(text: str) -> None:
    assert '<form id="complaint-form" class="composer" autocomplete="off">' in text
    assert '<textarea id="messageText"' in text
    assert '<button id="send" type="submit">Send Message</button>' in text
    assert (
        '<ul id="messages" class="messages" data-ws-path="/car/live-support" '
        'aria-live="polite"></ul>'
    ) in text
    assert '<link rel="stylesheet" href="/static/chat.css">' in text
    assert '<script type="module" src="/static/chat.js"></script>' in text
    assert_no_remote_urls(text)


def assert_no_remote_urls(text: str) -> None:
    assert "http://" not in text
    assert "https://" not in text
    assert "//cdn" not in text.lower()


# -- in-process ----------------------------------------------------------------------------------


def test_page_renders_the_form_the_messages_and_local_assets() -> None:
    with TestClient(app) as client:
        page = client.get("/car/ws-index")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert_is_the_page(page.text)


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("chat.css", "text/css; charset=utf-8"),
        ("chat.js", "text/javascript; charset=utf-8"),
    ],
)
def test_static_assets_are_served(name: str, content_type: str) -> None:
    with TestClient(app) as client:
        asset = client.get(f"/static/{name}")
    assert asset.status_code == 200
    assert asset.headers["content-type"] == content_type
    assert asset.content == (STATIC / name).read_bytes()
    assert_no_remote_urls(asset.text)


def test_static_misses_are_404() -> None:
    with TestClient(app) as client:
        for path in (
            "/static/nope.css",
            "/static/",
            "/static/%2e%2e/app.py",  # the app sees /static/../app.py, which exists
            "/static/..%2fapp.py",
        ):
            missing = client.get(path)
            assert (path, missing.status_code) == (path, 404)
            assert missing.json() == {"detail": "Not Found"}


def test_home_redirects_to_the_page() -> None:
    with TestClient(app) as client:
        home = client.get("/")
        assert home.status_code == 307
        assert home.headers["location"] == "/car/ws-index"
        followed = client.get("/", follow_redirects=True)
        assert followed.status_code == 200
        assert str(followed.url) == "http://testserver/car/ws-index"


def test_live_support_welcomes_and_answers_escaped() -> None:
    assert WELCOME == GUIDE_WELCOME
    with TestClient(app) as client, client.websocket_connect("/car/live-support") as ws:
        assert ws.receive_text() == GUIDE_WELCOME
        ws.send_text("Message from client")
        assert ws.receive_text() == (
            'We have received your complaint:<br><br><strong>"Message from client"</strong>'
            "<br><br>We shall get back to you."
        )
        ws.send_text(COMPLAINT)
        assert ws.receive_text() == expected_answer(COMPLAINT)
        ws.assert_no_message(within=0.01)


async def test_live_support_serves_clients_concurrently() -> None:
    async def one(client: AsyncTestClient, n: int) -> None:
        async with client.websocket_connect("/car/live-support") as ws:
            assert await ws.receive_text() == GUIDE_WELCOME
            await ws.send_text(f"complaint {n}")
            assert await ws.receive_text() == expected_answer(f"complaint {n}")

    with trio.fail_after(10):
        async with AsyncTestClient(app) as client, trio.open_nursery() as nursery:
            for n in range(10):
                nursery.start_soon(one, client, n)


# -- the real CLI --------------------------------------------------------------------------------


async def exercise(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        page = await http.get("/car/ws-index")
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert_is_the_page(page.text)
        css = await http.get("/static/chat.css")
        assert css.status_code == 200
        assert css.content == (STATIC / "chat.css").read_bytes()
        home = await http.get("/")
        assert (home.status_code, home.headers["location"]) == (307, "/car/ws-index")
    async with open_websocket(server, "/car/live-support") as ws:
        assert await ws.get_message() == GUIDE_WELCOME
        await ws.send_message(COMPLAINT)
        assert await ws.get_message() == expected_answer(COMPLAINT)


#: The example served as its README says: from its own folder, or from the repository's root.
WHERE_FROM = pytest.mark.parametrize(
    ("app_path", "cwd"),
    [("app:app", EXAMPLE), ("examples.live_support.app:app", REPO)],
    ids=["from-the-example-folder", "from-the-repository-root"],
)


@pytest.mark.live
@WHERE_FROM
async def test_example_under_the_hypercorn_cli(app_path: str, cwd: Path) -> None:
    with trio.fail_after(40):
        async with hypercorn_cli(app_path, cwd) as server:
            assert server.url == f"http://127.0.0.1:{server.port}"
            with trio.fail_after(10):
                await exercise(server)


@pytest.mark.live
@WHERE_FROM
async def test_example_under_triows_run(app_path: str, cwd: Path) -> None:
    """The README's command: ``triows run examples.live_support.app:app``."""
    args = [sys.executable, "-m", "triows", "run", app_path, "--port", "0"]
    with trio.fail_after(40):
        async with command(args, cwd) as running:
            url = await running.url()
            with trio.fail_after(10):
                await exercise(Server(url))
            running.process.send_signal(signal.SIGTERM)
            await running.process.wait()
    assert running.process.returncode == 0
    assert '"GET /car/ws-index 1.1" 200' in running.text("stdout")  # the access log is on
