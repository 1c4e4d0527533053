"""Path templates, the route table and reverse URL building (``App.url_path_for``)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from triows import (
    App,
    ConfigurationError,
    Controller,
    ControllerBase,
    NoMatchFound,
    WebSocket,
    get,
    post,
    ws_route,
)
from triows.routing import PathTemplate, Route, Router
from triows.testing import AsyncTestClient

STATIC = Path(__file__).parent / "fixtures" / "static"
SOME_UUID = uuid.UUID("12345678-1234-5678-1234-567812345678")


# -- PathTemplate: matching and converting -------------------------------------------------------
@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        ("/users/{name}", "/users/alice", {"name": "alice"}),
        ("/users/{name:str}", "/users/bob smith", {"name": "bob smith"}),
        ("/items/{id:int}", "/items/42", {"id": 42}),
        ("/items/{id:int}", "/items/007", {"id": 7}),
        ("/price/{x:float}", "/price/1.5", {"x": 1.5}),
        ("/price/{x:float}", "/price/3", {"x": 3.0}),
        ("/u/{u:uuid}", f"/u/{SOME_UUID}", {"u": SOME_UUID}),
        ("/u/{u:uuid}", f"/u/{str(SOME_UUID).upper()}", {"u": SOME_UUID}),
        ("/files/{rest:path}", "/files/a/b/c.txt", {"rest": "a/b/c.txt"}),
        (
            "/car/{id:int}/parts/{rest:path}",
            "/car/3/parts/engine/valve",
            {"id": 3, "rest": "engine/valve"},
        ),
        ("/static/page", "/static/page", {}),
    ],
)
def test_template_matches_and_converts(template: str, path: str, expected: dict[str, Any]) -> None:
    params = PathTemplate(template).match(path)
    assert params == expected
    assert params is not None
    # The converted values have the converter's type, not just an equal value.
    assert {k: type(v) for k, v in params.items()} == {k: type(v) for k, v in expected.items()}


@pytest.mark.parametrize(
    ("template", "path"),
    [
        ("/users/{name}", "/users/"),
        ("/users/{name}", "/users/a/b"),
        ("/users/{name}", "/users"),
        ("/items/{id:int}", "/items/abc"),
        ("/items/{id:int}", "/items/-1"),
        ("/items/{id:int}", "/items/4.2"),
        ("/items/{id:int}", "/items/"),
        ("/price/{x:float}", "/price/abc"),
        ("/price/{x:float}", "/price/1."),
        ("/price/{x:float}", "/price/-1.5"),
        ("/price/{x:float}", "/price/nan"),
        ("/u/{u:uuid}", "/u/not-a-uuid"),
        ("/u/{u:uuid}", "/u/12345678123456781234567812345678"),
        ("/files/{rest:path}", "/other/a/b"),
        ("/a.b/{x}", "/aXb/1"),  # the static part is literal, not a regex
        ("/static/page", "/static/page/"),
        ("/static/page", "/static/pag"),
    ],
)
def test_template_rejects(template: str, path: str) -> None:
    assert PathTemplate(template).match(path) is None


def test_template_is_static_only_without_parameters() -> None:
    assert PathTemplate("/a/b").is_static
    assert not PathTemplate("/a/{b}").is_static


def test_unknown_converter_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match=r"unknown converter 'slug'.*float, int, path"):
        PathTemplate("/posts/{title:slug}")


def test_repeated_parameter_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match=r"repeats parameter 'id'"):
        PathTemplate("/a/{id}/b/{id:int}")


@pytest.mark.parametrize("template", ["items", "", "{id}"])
def test_path_must_start_with_a_slash(template: str) -> None:
    with pytest.raises(ConfigurationError, match="must start with '/'"):
        PathTemplate(template)


# -- PathTemplate.format: writing parameters back ------------------------------------------------
@pytest.mark.parametrize(
    ("template", "params", "expected"),
    [
        ("/users/{name}", {"name": "alice"}, "/users/alice"),
        ("/items/{id:int}", {"id": 42}, "/items/42"),
        ("/price/{x:float}", {"x": 2.5}, "/price/2.5"),
        ("/price/{x:float}", {"x": 2}, "/price/2.0"),
        ("/u/{u:uuid}", {"u": SOME_UUID}, f"/u/{SOME_UUID}"),
        ("/files/{rest:path}", {"rest": "a/b.txt"}, "/files/a/b.txt"),
        ("/plain", {}, "/plain"),
    ],
)
def test_format(template: str, params: dict[str, Any], expected: str) -> None:
    assert PathTemplate(template).format(params) == expected


@pytest.mark.parametrize(
    ("template", "params"),
    [
        ("/items/{id:int}", {}),
        ("/items/{id:int}", {"id": 1, "extra": 2}),
        ("/items/{id:int}", {"id": -1}),
        ("/price/{x:float}", {"x": float("nan")}),
        ("/price/{x:float}", {"x": -1.0}),
        ("/users/{name}", {"name": "a/b"}),
        ("/users/{name}", {"name": ""}),
    ],
)
def test_format_rejects(template: str, params: dict[str, Any]) -> None:
    with pytest.raises(NoMatchFound):
        PathTemplate(template).format(params)


@pytest.mark.parametrize(
    ("template", "value"),
    [
        ("/items/{x:int}", 12),
        ("/price/{x:float}", 0.25),
        ("/u/{x:uuid}", SOME_UUID),
        ("/users/{x}", "alice"),
        ("/files/{x:path}", "a/b"),
    ],
)
def test_format_output_routes_back_to_the_same_value(template: str, value: Any) -> None:
    compiled = PathTemplate(template)
    assert compiled.match(compiled.format({"x": value})) == {"x": value}


@pytest.mark.parametrize(
    ("template", "value"),
    [
        ("/price/{x:float}", 1e20),
        ("/price/{x:float}", 1e-7),
        ("/u/{x:uuid}", "not-a-uuid"),
    ],
)
def test_format_never_writes_a_path_its_route_would_not_match(template: str, value: Any) -> None:
    # What url_path_for writes must reach the route it was written for, with the same value; a
    # value that cannot be written that way is a NoMatchFound, not a link that 404s.
    compiled = PathTemplate(template)
    try:
        path = compiled.format({"x": value})
    except NoMatchFound:
        return
    assert compiled.match(path) == {"x": value}


# -- Router: static routes win over dynamic ones -------------------------------------------------
def _route(template: str, endpoint: str) -> Route[str]:
    return Route(PathTemplate(template), endpoint, endpoint, frozenset({"GET"}), endpoint)


@pytest.mark.parametrize("static_first", [True, False])
def test_router_static_wins_regardless_of_order(static_first: bool) -> None:
    routes = [_route("/items/new", "new"), _route("/items/{id}", "item")]
    router = Router(routes if static_first else routes[::-1], "http")
    assert [(r.endpoint, p) for r, p in router.match("/items/new")] == [
        ("new", {}),
        ("item", {"id": "new"}),
    ]
    assert [(r.endpoint, p) for r, p in router.match("/items/3")] == [("item", {"id": "3"})]
    found = router.match_first("/items/new")
    assert found is not None
    assert (found[0].endpoint, found[1]) == ("new", {})


@Controller("/items")
class ItemsStaticFirst(ControllerBase):
    @get("/new")
    async def new_item(self):
        return "new form"

    @get("/{id}")
    async def item(self, id: str):
        return f"item {id}"


@Controller("/items")
class ItemsDynamicFirst(ControllerBase):
    @get("/{id}")
    async def item(self, id: str):
        return f"item {id}"

    @get("/new")
    async def new_item(self):
        return "new form"


@pytest.mark.parametrize("controller", [ItemsStaticFirst, ItemsDynamicFirst])
async def test_static_http_route_wins_over_dynamic(controller: type) -> None:
    async with AsyncTestClient(App([controller])) as client:
        new = await client.get("/items/new")
        other = await client.get("/items/new-ish")
    assert (new.status_code, new.text) == (200, "new form")
    assert (other.status_code, other.text) == (200, "item new-ish")


@Controller("/ws")
class SocketsDynamicFirst(ControllerBase):
    @ws_route("/{room}")
    async def room(self, websocket: WebSocket, room: str):
        await websocket.accept()
        await websocket.send_text(f"room {room}")

    @ws_route("/lobby")
    async def lobby(self, websocket: WebSocket):
        await websocket.accept()
        await websocket.send_text("lobby")


async def test_static_websocket_route_wins_over_dynamic() -> None:
    async with AsyncTestClient(App([SocketsDynamicFirst])) as client:
        async with client.websocket_connect("/ws/lobby") as ws:
            assert await ws.receive_text() == "lobby"
        async with client.websocket_connect("/ws/kitchen") as ws:
            assert await ws.receive_text() == "room kitchen"


@Controller("/items")
class ItemsByMethod(ControllerBase):
    @post("/new")
    async def create(self):
        return "created"

    @get("/{id:int}")
    async def item(self, id: int):
        return {"id": id}


async def test_static_route_with_other_method_falls_through_to_405() -> None:
    async with AsyncTestClient(App([ItemsByMethod])) as client:
        created = await client.post("/items/new")
        got = await client.get("/items/new")
        item = await client.get("/items/5")
    assert (created.status_code, created.text) == (200, "created")
    # {id:int} does not match "new", so only the POST route fits the path.
    assert got.status_code == 405
    assert got.headers["allow"] == "POST"
    assert item.json() == {"id": 5}


# -- url_path_for --------------------------------------------------------------------------------
@Controller("/shop")
class ShopController(ControllerBase):
    @get("/")
    async def index(self):
        return "shop"

    @get("/items/{id:int}")
    async def item(self, id: int):
        return id

    @get("/price/{x:float}/{u:uuid}")
    async def price(self, x: float, u: uuid.UUID):
        return "price"

    @get("/files/{rest:path}", name="shop-file")
    async def file(self, rest: str):
        return rest

    @ws_route("/live/{room}")
    async def live(self, websocket: WebSocket, room: str):
        pass


@Controller("/blog")
class BlogController(ControllerBase):
    @get("/")
    async def index(self):
        return "blog"


def test_url_path_for_plain_names() -> None:
    app = App([ShopController])
    assert app.url_path_for("index") == "/shop/"
    assert app.url_path_for("item", id=5) == "/shop/items/5"
    assert app.url_path_for("price", x=1.5, u=SOME_UUID) == f"/shop/price/1.5/{SOME_UUID}"
    assert app.url_path_for("shop-file", rest="a/b.txt") == "/shop/files/a/b.txt"
    assert app.url_path_for("live", room="kitchen") == "/shop/live/kitchen"


def test_url_path_for_controller_method_names() -> None:
    app = App([ShopController])
    assert app.url_path_for("ShopController.index") == "/shop/"
    assert app.url_path_for("ShopController.item", id=9) == "/shop/items/9"
    # An explicit name= replaces the function's name, but Controller.method still works.
    assert app.url_path_for("ShopController.file", rest="x") == "/shop/files/x"
    assert app.url_path_for("ShopController.live", room="r") == "/shop/live/r"
    with pytest.raises(NoMatchFound, match="'file'"):
        app.url_path_for("file", rest="x")


@pytest.mark.parametrize(
    "params",
    [{}, {"id": 1, "page": 2}, {"page": 2}, {"id": -3}],
    ids=["missing", "extra", "wrong-name", "negative-int"],
)
def test_url_path_for_bad_params(params: dict[str, Any]) -> None:
    app = App([ShopController])
    with pytest.raises(NoMatchFound, match=r"/shop/items/\{id:int\}"):
        app.url_path_for("item", **params)


def test_url_path_for_unknown_name() -> None:
    app = App([ShopController])
    with pytest.raises(NoMatchFound, match="no route is named 'nope'"):
        app.url_path_for("nope")
    with pytest.raises(NoMatchFound, match=r"no route is named 'BlogController\.index'"):
        app.url_path_for("BlogController.index")


def test_url_path_for_ambiguous_default_name() -> None:
    app = App([ShopController, BlogController])
    with pytest.raises(NoMatchFound, match="ambiguous") as raised:
        app.url_path_for("index")
    assert "BlogController.index" in str(raised.value)
    assert "ShopController.index" in str(raised.value)
    assert app.url_path_for("ShopController.index") == "/shop/"
    assert app.url_path_for("BlogController.index") == "/blog/"


def test_url_path_for_static() -> None:
    app = App(static_folder=STATIC)
    assert app.url_path_for("static", path="a.css") == "/static/a.css"
    assert app.url_path_for("static", path="css/site.css") == "/static/css/site.css"
    with pytest.raises(NoMatchFound):
        app.url_path_for("static")


def test_url_path_for_static_needs_a_static_folder() -> None:
    with pytest.raises(NoMatchFound, match="no route is named 'static'"):
        App([ShopController]).url_path_for("static", path="a.css")
