"""HTTP: requests, responses, errors, REDIRECT_SLASHES, ``@render`` templates and static files."""

from __future__ import annotations

import importlib.util
import logging
import sys
import traceback
from email.utils import formatdate
from pathlib import Path
from types import ModuleType
from typing import Any

import pydantic_core
import pytest
import trio
from support import error_records

from triows import (
    App,
    ConfigurationError,
    Controller,
    ControllerBase,
    HTMLResponse,
    HTTPException,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Request,
    Response,
    get,
    post,
    render,
)
from triows.datastructures import Headers
from triows.testing import AsyncTestClient

FIXTURES = Path(__file__).parent / "fixtures"
TEMPLATES = FIXTURES / "templates"
STATIC = FIXTURES / "static"
NOT_FOUND = {"detail": "Not Found"}


async def asgi_request(
    app: App, path: str, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    """Call the app with a hand-made scope: the path reaches it exactly as written (no client
    normalises ``..`` away)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 5000),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    with trio.fail_after(5):
        await app(scope, receive, send)
    start, body = sent
    assert (start["type"], body["type"]) == ("http.response.start", "http.response.body")
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in start["headers"]}
    return start["status"], headers, body["body"]


# -- Request -------------------------------------------------------------------------------------
@Controller("/req")
class RequestController(ControllerBase):
    @get("/query")
    async def query(self, request: Request):
        params = request.query_params
        return {
            "tag": params["tag"],
            "tags": params.getlist("tag"),
            "blank": params["blank"],
            "items": params.multi_items(),
            "has_missing": "missing" in params,
        }

    @get("/headers")
    async def headers(self, request: Request):
        headers = request.headers
        return {
            "mixed": headers["X-Custom"],
            "lower": headers["x-custom"],
            "upper_in": "X-CUSTOM" in headers,
            "get": headers.get("X-Custom"),
            "many": headers.getlist("X-MANY"),
        }

    @get("/cookies")
    async def cookies(self, request: Request):
        return request.cookies

    @get("/items/{id:int}/{price:float}/{rest:path}")
    async def path(self, request: Request, id: int, price: float, rest: str):
        return {
            "types": [type(id).__name__, type(price).__name__, type(rest).__name__],
            "args": [id, price, rest],
            "path_params": request.path_params,
            "method": request.method,
            "url": request.url,
        }

    @post("/body")
    async def body(self, request: Request):
        first = await request.body()
        second = await request.body()  # cached: the ASGI body is read only once
        return {"body": first.decode(), "cached": first is second}

    @post("/json")
    async def json(self, request: Request):
        return {"got": await request.json()}


async def test_query_params_with_repeated_keys() -> None:
    async with AsyncTestClient(App([RequestController])) as client:
        response = await client.get("/req/query?tag=a&tag=b&blank=&x=1")
    assert response.status_code == 200
    assert response.json() == {
        "tag": "b",
        "tags": ["a", "b"],
        "blank": "",
        "items": [["tag", "a"], ["tag", "b"], ["blank", ""], ["x", "1"]],
        "has_missing": False,
    }


async def test_headers_are_case_insensitive() -> None:
    async with AsyncTestClient(App([RequestController])) as client:
        response = await client.get(
            "/req/headers", headers=[("X-Custom", "value"), ("X-Many", "1"), ("x-many", "2")]
        )
    assert response.json() == {
        "mixed": "value",
        "lower": "value",
        "upper_in": True,
        "get": "value",
        "many": ["1", "2"],
    }


async def test_cookies() -> None:
    async with AsyncTestClient(App([RequestController])) as client:
        response = await client.get(
            "/req/cookies", headers={"cookie": 'session=abc123; theme="dark"; junk; =nokey'}
        )
        none = await client.get("/req/cookies")
    assert response.json() == {"session": "abc123", "theme": "dark"}
    assert none.json() == {}


async def test_path_params_are_converted() -> None:
    async with AsyncTestClient(App([RequestController])) as client:
        response = await client.get("/req/items/42/9.5/a/b.txt?x=1")
    assert response.json() == {
        "types": ["int", "float", "str"],
        "args": [42, 9.5, "a/b.txt"],
        "path_params": {"id": 42, "price": 9.5, "rest": "a/b.txt"},
        "method": "GET",
        "url": "http://testserver/req/items/42/9.5/a/b.txt?x=1",
    }


async def test_request_body() -> None:
    async with AsyncTestClient(App([RequestController])) as client:
        response = await client.post("/req/body", content=b"raw bytes \xc3\xa9")
    assert response.json() == {"body": "raw bytes é", "cached": True}


async def test_request_json() -> None:
    async with AsyncTestClient(App([RequestController])) as client:
        response = await client.post("/req/json", json={"a": [1, 2, None]})
    assert response.status_code == 200
    assert response.json() == {"got": {"a": [1, 2, None]}}


@pytest.mark.parametrize("body", [b"{not json", b"", b'{"a": 1'])
async def test_malformed_json_body_is_a_400(body: bytes) -> None:
    with pytest.raises(ValueError, match="line 1 column") as parse_error:
        pydantic_core.from_json(body)
    async with AsyncTestClient(App([RequestController])) as client:
        response = await client.post("/req/json", content=body)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"detail": f"request body is not valid JSON: {parse_error.value}"}


# -- responses -----------------------------------------------------------------------------------
@Controller("/resp")
class ResponsesController(ControllerBase):
    @get("/dict")
    async def a_dict(self):
        return {"a": 1, "b": [True, None]}

    @get("/list")
    async def a_list(self):
        return [1, "two", 3.5]

    @get("/str")
    async def a_str(self):
        return "héllo"

    @get("/bytes")
    async def some_bytes(self):
        return b"\x00\x01binary"

    @get("/none")
    async def nothing(self):
        return None

    @get("/response")
    async def response(self):
        return Response(b"a,b\n1,2\n", 201, {"X-Thing": "yes"}, media_type="text/csv")

    @get("/html")
    async def html(self):
        return HTMLResponse("<h1>hi</h1>", status_code=202)

    @get("/json")
    async def json(self):
        return JSONResponse({"ok": True}, status_code=203, headers={"x-json": "1"})

    @get("/text")
    async def text(self):
        return PlainTextResponse("plain", headers={"Cache-Control": "no-store"})

    @get("/redirect")
    async def redirect(self):
        return RedirectResponse("/resp/dict")

    @get("/moved")
    async def moved(self):
        return RedirectResponse("https://example.com/new", status_code=301)

    @get("/teapot")
    async def teapot(self):
        raise HTTPException(418, "short and stout", headers={"X-Tea": "earl grey"})

    @get("/forbidden")
    async def forbidden(self):
        raise HTTPException(403)

    @get("/structured")
    async def structured(self):
        raise HTTPException(422, {"field": "name", "problem": "missing"})

    @post("/only-post")
    async def only_post(self):
        return "posted"


@pytest.mark.parametrize(
    ("path", "status", "content_type", "body"),
    [
        ("/resp/dict", 200, "application/json", b'{"a":1,"b":[true,null]}'),
        ("/resp/list", 200, "application/json", b'[1,"two",3.5]'),
        ("/resp/str", 200, "text/plain; charset=utf-8", "héllo".encode()),
        ("/resp/bytes", 200, "application/octet-stream", b"\x00\x01binary"),
        ("/resp/none", 200, "application/json", b"null"),
        ("/resp/response", 201, "text/csv; charset=utf-8", b"a,b\n1,2\n"),
        ("/resp/html", 202, "text/html; charset=utf-8", b"<h1>hi</h1>"),
        ("/resp/json", 203, "application/json", b'{"ok":true}'),
        ("/resp/text", 200, "text/plain; charset=utf-8", b"plain"),
    ],
)
async def test_return_values_become_responses(
    path: str, status: int, content_type: str, body: bytes
) -> None:
    async with AsyncTestClient(App([ResponsesController])) as client:
        response = await client.get(path)
    assert response.status_code == status
    assert response.headers["content-type"] == content_type
    assert response.headers["content-length"] == str(len(body))
    assert response.content == body


async def test_response_headers_are_kept() -> None:
    async with AsyncTestClient(App([ResponsesController])) as client:
        custom = await client.get("/resp/response")
        as_json = await client.get("/resp/json")
        text = await client.get("/resp/text")
    assert custom.headers["x-thing"] == "yes"
    assert as_json.headers["x-json"] == "1"
    assert text.headers["cache-control"] == "no-store"


async def test_redirect_responses() -> None:
    async with AsyncTestClient(App([ResponsesController])) as client:
        redirect = await client.get("/resp/redirect", follow_redirects=False)
        moved = await client.get("/resp/moved", follow_redirects=False)
    assert (redirect.status_code, redirect.headers["location"]) == (307, "/resp/dict")
    assert redirect.content == b""
    assert (moved.status_code, moved.headers["location"]) == (301, "https://example.com/new")


async def test_http_exception_becomes_json_detail() -> None:
    async with AsyncTestClient(App([ResponsesController])) as client:
        teapot = await client.get("/resp/teapot")
        forbidden = await client.get("/resp/forbidden")
        structured = await client.get("/resp/structured")
    assert teapot.status_code == 418
    assert teapot.headers["content-type"] == "application/json"
    assert teapot.headers["x-tea"] == "earl grey"
    assert teapot.json() == {"detail": "short and stout"}
    assert (forbidden.status_code, forbidden.json()) == (403, {"detail": "Forbidden"})
    assert structured.status_code == 422
    assert structured.json() == {"detail": {"field": "name", "problem": "missing"}}


@pytest.mark.parametrize(
    ("status", "phrase"),
    [
        (400, "Bad Request"),
        (404, "Not Found"),
        (429, "Too Many Requests"),
        (503, "Service Unavailable"),
    ],
)
def test_http_exception_default_detail_is_the_status_phrase(status: int, phrase: str) -> None:
    exc = HTTPException(status)
    assert (exc.status_code, exc.detail, exc.headers) == (status, phrase, {})


async def test_unknown_path_is_404() -> None:
    async with AsyncTestClient(App([ResponsesController])) as client:
        response = await client.get("/nowhere")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json() == NOT_FOUND


async def test_wrong_method_is_405_with_allow() -> None:
    async with AsyncTestClient(App([ResponsesController])) as client:
        post_to_get = await client.post("/resp/dict")
        get_to_post = await client.get("/resp/only-post")
        head_to_post = await client.head("/resp/only-post")
    assert post_to_get.status_code == 405
    assert post_to_get.headers["allow"] == "GET, HEAD"
    assert post_to_get.json() == {"detail": "Method Not Allowed"}
    assert get_to_post.status_code == 405
    assert get_to_post.headers["allow"] == "POST"
    assert head_to_post.status_code == 405
    assert head_to_post.headers["allow"] == "POST"


async def test_head_returns_headers_without_body() -> None:
    async with AsyncTestClient(App([ResponsesController])) as client:
        head = await client.head("/resp/dict")
        head_str = await client.head("/resp/str")
    assert head.status_code == 200
    assert head.headers["content-type"] == "application/json"
    assert head.headers["content-length"] == str(len(b'{"a":1,"b":[true,null]}'))
    assert head.content == b""
    assert head_str.headers["content-type"] == "text/plain; charset=utf-8"
    assert head_str.headers["content-length"] == str(len("héllo".encode()))
    assert head_str.content == b""


# -- unexpected exceptions -----------------------------------------------------------------------
raised: list[BaseException] = []


@Controller("/err")
class FailingController(ControllerBase):
    @get("/boom")
    async def boom(self):
        exc = ValueError("kaboom")
        raised.append(exc)
        raise exc


async def test_handler_exception_is_500_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    raised.clear()
    app = App([FailingController])
    async with AsyncTestClient(app, raise_server_exceptions=False) as client:
        response = await client.get("/err/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"detail": "Internal Server Error"}
    records = error_records(caplog)
    assert [(r.name, r.levelno, r.getMessage()) for r in records] == [
        ("triows", logging.ERROR, "HTTP GET /err/boom from 127.0.0.1:123 failed")
    ]
    assert records[0].exc_info is not None
    assert records[0].exc_info[1] is raised[0]


async def test_debug_500_body_is_the_traceback(caplog: pytest.LogCaptureFixture) -> None:
    raised.clear()
    app = App([FailingController], config={"DEBUG": True})
    async with AsyncTestClient(app, raise_server_exceptions=False) as client:
        response = await client.get("/err/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text == "".join(traceback.format_exception(raised[0]))
    assert response.text.startswith("Traceback (most recent call last):\n")
    assert response.text.endswith("ValueError: kaboom\n")
    assert [r.getMessage() for r in error_records(caplog)] == [
        "HTTP GET /err/boom from 127.0.0.1:123 failed"
    ]


# -- REDIRECT_SLASHES ----------------------------------------------------------------------------
@Controller("/slash")
class SlashController(ControllerBase):
    @get("/page")
    async def page(self):
        return "page"

    @get("/folder/")
    async def folder(self):
        return "folder"

    @get("/names/{name}")
    async def name(self, name: str):
        return name


async def test_redirect_slashes_is_off_by_default() -> None:
    async with AsyncTestClient(App([SlashController])) as client:
        extra = await client.get("/slash/page/", follow_redirects=False)
        missing = await client.get("/slash/folder", follow_redirects=False)
    assert (extra.status_code, extra.json()) == (404, NOT_FOUND)
    assert (missing.status_code, missing.json()) == (404, NOT_FOUND)


async def test_redirect_slashes_on() -> None:
    app = App([SlashController], config={"REDIRECT_SLASHES": True})
    async with AsyncTestClient(app) as client:
        extra = await client.get("/slash/page/?a=1&b=two%20words", follow_redirects=False)
        missing = await client.get("/slash/folder", follow_redirects=False)
        no_twin = await client.get("/slash/nothing/", follow_redirects=False)
        exact = await client.get("/slash/page", follow_redirects=False)
        followed = await client.get("/slash/page/", follow_redirects=True)
    assert extra.status_code == 307
    assert extra.headers["location"] == "/slash/page?a=1&b=two%20words"
    assert extra.content == b""
    assert (missing.status_code, missing.headers["location"]) == (307, "/slash/folder/")
    assert (no_twin.status_code, no_twin.json()) == (404, NOT_FOUND)
    assert (exact.status_code, exact.text) == (200, "page")
    assert (followed.status_code, followed.text) == (200, "page")


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/slash/names/caf%C3%A9/", "/slash/names/caf%C3%A9"),
        ("/slash/names/a%20b/", "/slash/names/a%20b"),
        ("/slash/names/%E6%97%A5%E6%9C%AC/", "/slash/names/%E6%97%A5%E6%9C%AC"),
    ],
)
async def test_redirect_slashes_location_is_percent_encoded(path: str, location: str) -> None:
    app = App([SlashController], config={"REDIRECT_SLASHES": True})
    async with AsyncTestClient(app) as client:
        response = await client.get(path, follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == location


# -- @render -------------------------------------------------------------------------------------
@Controller("/pages")
class PageController(ControllerBase):
    @get("/hello")
    @render(template_name="page.html")
    async def hello(self):
        return {"name": "<script>alert('x')</script> & co"}

    @get("/items/{id:int}")
    async def item(self, id: int):
        return id

    @get("/as-is")
    @render(template_name="page.html")
    async def as_is(self):
        return HTMLResponse("<b>raw</b>", status_code=201)

    @get("/broken")
    @render(template_name="page.html")
    async def broken(self):
        return ["not", "a", "mapping"]


PAGE = (
    '<p class="name">&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co</p>\n'
    '<p class="path">/pages/hello</p>\n'
    '<p class="q">x&lt;y</p>\n'
    '<a href="/pages/items/7">item</a>'
)


async def test_render_escapes_and_offers_request_and_url_for() -> None:
    app = App([PageController], template_folder=TEMPLATES)
    async with AsyncTestClient(app) as client:
        response = await client.get("/pages/hello", params={"q": "x<y"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.text == PAGE


async def test_render_handler_may_return_a_response() -> None:
    app = App([PageController], template_folder=TEMPLATES)
    async with AsyncTestClient(app) as client:
        response = await client.get("/pages/as-is")
    assert (response.status_code, response.text) == (201, "<b>raw</b>")


async def test_render_handler_returning_a_non_mapping_is_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = App([PageController], template_folder=TEMPLATES)
    async with AsyncTestClient(app, raise_server_exceptions=False) as client:
        response = await client.get("/pages/broken")
    assert (response.status_code, response.json()) == (500, {"detail": "Internal Server Error"})
    records = error_records(caplog)
    assert [(r.name, r.getMessage()) for r in records] == [
        ("triows", "HTTP GET /pages/broken from 127.0.0.1:123 failed")
    ]
    assert records[0].exc_info is not None
    error = records[0].exc_info[1]
    assert isinstance(error, TypeError)
    assert str(error) == (
        "PageController.broken is a @render handler and must return a mapping for its "
        "template 'page.html', got list"
    )


def load_beside_module() -> ModuleType:
    """Import tests/fixtures/beside/controller.py, which has a ``templates`` folder beside it."""
    name = "triows_tests_fixtures_beside_controller"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, FIXTURES / "beside" / "controller.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


async def test_templates_beside_the_controller_module() -> None:
    controller = load_beside_module().BesideController
    async with AsyncTestClient(App([controller])) as client:
        page = await client.get("/beside/page")
        shadowed = await client.get("/beside/shadowed")
    assert (page.status_code, page.text) == (200, "<h1>beside &lt;controller&gt;</h1>")
    assert shadowed.text == "<h1>from the controller's own templates folder</h1>"


async def test_template_folder_comes_before_the_controller_folder() -> None:
    controller = load_beside_module().BesideController
    async with AsyncTestClient(App([controller], template_folder=TEMPLATES)) as client:
        page = await client.get("/beside/page")
        shadowed = await client.get("/beside/shadowed")
    assert page.text == "<h1>beside &lt;controller&gt;</h1>"
    assert shadowed.text == "<h1>from template_folder</h1>"


def test_template_folder_that_does_not_exist() -> None:
    with pytest.raises(ConfigurationError, match=r"template_folder .*no-such-folder.* is not"):
        App([PageController], template_folder=FIXTURES / "no-such-folder")


# -- static files --------------------------------------------------------------------------------
HELLO = b"hello, static\n"


async def test_static_file() -> None:
    async with AsyncTestClient(App(static_folder=STATIC)) as client:
        hello = await client.get("/static/hello.txt")
        css = await client.get("/static/css/site.css")
        head = await client.head("/static/hello.txt")
    assert hello.status_code == 200
    assert hello.content == HELLO
    assert hello.headers["content-type"] == "text/plain; charset=utf-8"
    assert hello.headers["content-length"] == str(len(HELLO))
    mtime = (await trio.Path(STATIC / "hello.txt").stat()).st_mtime
    assert hello.headers["last-modified"] == formatdate(mtime, usegmt=True)
    assert css.status_code == 200
    assert css.headers["content-type"] == "text/css; charset=utf-8"
    assert css.content == b"body { color: red; }\n"
    assert head.status_code == 200
    assert head.headers["content-length"] == str(len(HELLO))
    assert head.content == b""


async def test_static_folder_as_a_string() -> None:
    async with AsyncTestClient(App(static_folder=str(STATIC))) as client:
        response = await client.get("/static/hello.txt")
    assert (response.status_code, response.content) == (200, HELLO)


@pytest.mark.parametrize(
    "path",
    [
        "/static/missing.txt",
        "/static/css/missing.css",
        "/static/hello.txt/more",
        "/static/css",  # a directory
        "/static/css/",
        "/static/",
        "/static/%2e%2e/templates/page.html",
        "/static/..%2ftemplates/page.html",
        "/static/css/%2e%2e/%2e%2e/templates/page.html",
    ],
)
async def test_static_404(path: str) -> None:
    async with AsyncTestClient(App(static_folder=STATIC)) as client:
        response = await client.get(path)
    assert response.status_code == 404
    assert response.json() == NOT_FOUND


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ("/static/../templates/page.html", TEMPLATES / "page.html"),
        ("/static/css/../../templates/page.html", TEMPLATES / "page.html"),
        ("/static/../../test_http.py", Path(__file__)),
        # An absolute path: /static//.../page.html
        (f"/static/{(TEMPLATES / 'page.html').resolve()}", TEMPLATES / "page.html"),
    ],
)
async def test_static_path_traversal_is_404(path: str, target: Path) -> None:
    assert await trio.Path(target).is_file()  # it exists, just outside the static folder
    status, headers, body = await asgi_request(App(static_folder=STATIC), path)
    assert (status, body) == (404, b'{"detail":"Not Found"}')
    assert headers["content-type"] == "application/json"


async def test_static_dot_segments_inside_the_folder_are_fine() -> None:
    status, _, body = await asgi_request(App(static_folder=STATIC), "/static/css/../hello.txt")
    assert (status, body) == (200, HELLO)


async def test_static_is_get_and_head_only() -> None:
    async with AsyncTestClient(App(static_folder=STATIC)) as client:
        response = await client.post("/static/hello.txt")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"


@pytest.mark.parametrize("folder", [FIXTURES / "no-such-folder", STATIC / "hello.txt"])
def test_static_folder_must_be_a_folder(folder: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"static_folder .* is not a folder"):
        App(static_folder=folder)


def test_headers_view_over_raw_pairs() -> None:
    headers = Headers.from_raw(
        [(b"host", b"example.org"), (b"x-many", b"1"), (b"x-many", b"2"), (b"x-latin", b"caf\xe9")]
    )
    assert headers["HOST"] == "example.org"
    assert headers.get("X-Many") == "2"  # the last one wins
    assert headers.getlist("x-MANY") == ["1", "2"]
    assert headers.get("x-latin") == "café"
    assert headers.get("absent") is None
    assert headers.get("absent", "dflt") == "dflt"
    assert headers.getlist("absent") == []
    assert "Host" in headers
    assert "absent" not in headers
    assert 42 not in headers
    with pytest.raises(KeyError, match="absent"):
        headers["absent"]
    assert list(headers) == ["host", "x-many", "x-latin"]
    assert len(headers) == 3
    assert dict(headers) == {"host": "example.org", "x-many": "2", "x-latin": "café"}
    assert headers.multi_items() == [
        ("host", "example.org"),
        ("x-many", "1"),
        ("x-many", "2"),
        ("x-latin", "café"),
    ]
