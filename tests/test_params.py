"""Handler parameters (triows/params.py): every kind on HTTP and websocket routes.

Query, Path, Header, Cookie and the ``Annotated`` form on both kinds of route; Body on HTTP;
type conversion and constraints; the connection objects; what a missing or invalid value gives
(HTTP 422, or a websocket handshake refused with 422 before the upgrade); the errors raised when
the app is built; and that the signature is read once, at build time.

Each section's controllers stand just above its tests, which are a class whose ``app`` fixture
builds the section's own small app (the ``client`` fixture serves it).
"""

# Markers as parameter defaults (``b: int = Query(0)``) are the documented spelling.

from __future__ import annotations

import enum
import inspect
import logging
import typing
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Literal

import pydantic
import pytest
import trio
from support import TIMEOUT, error_records, refusal

from triows import (
    App,
    Body,
    ConfigurationError,
    Controller,
    ControllerBase,
    Cookie,
    ExecutionContext,
    Header,
    Inject,
    Path,
    Query,
    Request,
    WebSocket,
    WsBody,
    get,
    injectable,
    post,
    ws_route,
)
from triows import params as params_module
from triows.testing import AsyncTestClient, TestClient, WebSocketDenied

#: Names of the handlers that ran, to prove a refused handshake never reached its handler.
ran: list[str] = []


@pytest.fixture(autouse=True)
def _forget_ran() -> None:
    ran.clear()


class Item(pydantic.BaseModel):
    name: str
    quantity: int = 1


def kinds(**values: Any) -> dict[str, Any]:
    """Each value with the name of its exact type, to check conversions through JSON."""
    return {name: [value, type(value).__name__] for name, value in values.items()}


class WsReplies(ControllerBase):
    """What the websocket controllers below share: ``reply`` accepts and sends one JSON message."""

    @property
    def ws(self) -> WebSocket:
        return self.context.switch_to_websocket().get_client()

    async def reply(self, data: Any) -> None:
        await self.ws.accept()
        await self.ws.send_json(data)


@pytest.fixture
async def client(app: App) -> AsyncIterator[AsyncTestClient]:
    """An in-process client on the ``app`` of the test's class."""
    async with AsyncTestClient(app, timeout=TIMEOUT) as test_client:
        yield test_client


async def ws_json(client: AsyncTestClient, path: str, headers: dict[str, str] | None = None) -> Any:
    """Connect, read the one JSON message the handler sends, and leave."""
    with trio.fail_after(TIMEOUT):
        async with client.websocket_connect(path, headers=headers) as ws:
            return await ws.receive_json()


def int_parsing(loc: list[Any], value: str) -> dict[str, Any]:
    return {
        "type": "int_parsing",
        "loc": loc,
        "msg": "Input should be a valid integer, unable to parse string as an integer",
        "input": value,
    }


def missing(loc: list[Any]) -> dict[str, Any]:
    return {"type": "missing", "loc": loc, "msg": "Field required", "input": None}


# -- query -------------------------------------------------------------------------------------


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


@Controller("/h")
class HTTPQuery(ControllerBase):
    @get("/query")
    async def query(self, b: int = Query(0)) -> dict[str, Any]:
        return kinds(b=b)

    @get("/required")
    async def required(self, name: str = Query()) -> dict[str, Any]:
        ran.append("required")
        return {"name": name}

    @get("/alias")
    async def alias(self, page_size: int = Query(10, alias="page-size", ge=1, le=50)) -> Any:
        return kinds(page_size=page_size)

    @get("/annotated")
    async def annotated(
        self,
        limit: Annotated[int, Query(ge=1, le=5)] = 3,
        q: Annotated[str | None, Query(max_length=3)] = None,
        offset: Annotated[int, Query(alias="start")] = 0,
    ) -> dict[str, Any]:
        return kinds(limit=limit, q=q, offset=offset)

    @get("/annotated-metadata")
    async def annotated_metadata(
        self,
        n: Annotated[int, pydantic.Field(ge=1)] = 5,
        m: Annotated[int, Query(alias="em"), pydantic.Field(le=3)] = 0,
        s: Annotated[str, pydantic.AfterValidator(str.upper)] = "x",
    ) -> dict[str, Any]:
        return kinds(n=n, m=m, s=s)

    @get("/unmarked")
    async def unmarked(self, n: int, word: str = "hi", maybe: int | None = None) -> Any:
        return kinds(n=n, word=word, maybe=maybe)

    @get("/types")
    async def types(
        self,
        flag: bool = Query(False),
        ratio: float = Query(0.5),
        uid: uuid.UUID | None = Query(None),
        color: Color = Query(Color.RED),
        mode: Literal["fast", "slow"] = Query("slow"),
        maybe: int | None = Query(None),
    ) -> dict[str, Any]:
        return {
            **kinds(flag=flag, ratio=ratio, mode=mode, maybe=maybe),
            "uid": [str(uid) if uid else None, type(uid).__name__],
            "color": [color.value, type(color).__name__],
        }

    @get("/list")
    async def many(self, n: list[int], tag: list[str] | None = None) -> dict[str, Any]:
        return {"n": n, "n_types": [type(x).__name__ for x in n], "tag": tag}

    @get("/model-names")
    async def model_names(
        self,
        json: str = "j",
        schema: str = "s",
        copy: int = 0,
        model_config: str = "m",
        fields: str = "f",
        p0: str = "zero",
    ) -> dict[str, Any]:
        return kinds(
            json=json, schema=schema, copy=copy, model_config=model_config, fields=fields, p0=p0
        )


@Controller("/w")
class WsQuery(WsReplies):
    @ws_route("/query")
    async def query(self, b: int = Query(0)) -> None:
        await self.reply(kinds(b=b))

    @ws_route("/annotated")
    async def annotated(
        self,
        limit: Annotated[int, Query(ge=1, le=5)] = 3,
        offset: Annotated[int, Query(alias="start")] = 0,
        word: str = "hi",
    ) -> None:
        await self.reply(kinds(limit=limit, offset=offset, word=word))

    @ws_route("/annotated-metadata")
    async def annotated_metadata(
        self,
        n: Annotated[int, pydantic.Field(ge=1)] = 5,
        s: Annotated[str, pydantic.AfterValidator(str.upper)] = "x",
    ) -> None:
        ran.append("ws-annotated-metadata")
        await self.reply(kinds(n=n, s=s))

    @ws_route("/types")
    async def types(
        self,
        flag: bool = Query(False),
        ratio: float = Query(0.5),
        uid: uuid.UUID | None = Query(None),
        color: Color = Query(Color.RED),
        mode: Literal["fast", "slow"] = Query("slow"),
        maybe: int | None = None,
    ) -> None:
        await self.reply(
            {
                **kinds(flag=flag, ratio=ratio, mode=mode, maybe=maybe),
                "uid": [str(uid) if uid else None, type(uid).__name__],
                "color": [color.value, type(color).__name__],
            }
        )

    @ws_route("/list")
    async def many(self, n: list[int]) -> None:
        await self.reply({"n": n, "n_types": [type(x).__name__ for x in n]})

    @ws_route("/model-names")
    async def model_names(
        self, json: str = "j", schema: str = "s", copy: int = 0, model_config: str = "m"
    ) -> None:
        await self.reply(kinds(json=json, schema=schema, copy=copy, model_config=model_config))


def query_app() -> App:
    return App(controllers=[HTTPQuery, WsQuery])


class TestQuery:
    """Query and unmarked scalar parameters: conversion, defaults, aliases, constraints."""

    @pytest.fixture
    def app(self) -> App:
        return query_app()

    async def test_query_int_converted_and_defaulted(self, client: AsyncTestClient) -> None:
        assert (await client.get("/h/query?b=42")).json() == {"b": [42, "int"]}
        assert (await client.get("/h/query")).json() == {"b": [0, "int"]}
        assert await ws_json(client, "/w/query?b=42") == {"b": [42, "int"]}
        assert await ws_json(client, "/w/query") == {"b": [0, "int"]}

    def test_query_with_the_sync_client(self) -> None:
        with TestClient(query_app(), timeout=TIMEOUT) as client:
            response = client.get("/h/query?b=-7")
            assert response.status_code == 200
            assert response.json() == {"b": [-7, "int"]}
            with client.websocket_connect("/w/query?b=-7") as ws:
                assert ws.receive_json() == {"b": [-7, "int"]}

    async def test_query_invalid_int_is_422(self, client: AsyncTestClient) -> None:
        response = await client.get("/h/query?b=abc")
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {"detail": [int_parsing(["query", "b"], "abc")]}

    async def test_query_required_missing_is_422(self, client: AsyncTestClient) -> None:
        response = await client.get("/h/required")
        assert response.status_code == 422
        assert response.json() == {"detail": [missing(["query", "name"])]}
        assert ran == []
        response = await client.get("/h/required?name=Ann")
        assert (response.status_code, response.json()) == (200, {"name": "Ann"})
        assert ran == ["required"]

    async def test_query_alias_and_constraints(self, client: AsyncTestClient) -> None:
        assert (await client.get("/h/alias?page-size=20")).json() == {"page_size": [20, "int"]}
        # The parameter's own name is not what the client sends once it has an alias.
        assert (await client.get("/h/alias?page_size=20")).json() == {"page_size": [10, "int"]}
        response = await client.get("/h/alias?page-size=0")
        assert response.status_code == 422
        assert response.json() == {
            "detail": [
                {
                    "type": "greater_than_equal",
                    "loc": ["query", "page-size"],
                    "msg": "Input should be greater than or equal to 1",
                    "input": "0",
                    "ctx": {"ge": 1},
                }
            ]
        }
        response = await client.get("/h/alias?page-size=51")
        assert response.status_code == 422
        assert response.json()["detail"][0]["type"] == "less_than_equal"
        assert response.json()["detail"][0]["loc"] == ["query", "page-size"]

    async def test_annotated_query_with_default_as_parameter_default(
        self,
        client: AsyncTestClient,
    ) -> None:
        expected_default = {"limit": [3, "int"], "q": [None, "NoneType"], "offset": [0, "int"]}
        assert (await client.get("/h/annotated")).json() == expected_default
        response = await client.get("/h/annotated?limit=5&q=abc&start=9")
        assert response.json() == {"limit": [5, "int"], "q": ["abc", "str"], "offset": [9, "int"]}
        response = await client.get("/h/annotated?limit=6&q=abcd")
        assert response.status_code == 422
        assert response.json() == {
            "detail": [
                {
                    "type": "less_than_equal",
                    "loc": ["query", "limit"],
                    "msg": "Input should be less than or equal to 5",
                    "input": "6",
                    "ctx": {"le": 5},
                },
                {
                    "type": "string_too_long",
                    "loc": ["query", "q"],
                    "msg": "String should have at most 3 characters",
                    "input": "abcd",
                    "ctx": {"max_length": 3},
                },
            ]
        }
        ws_default = {"limit": [3, "int"], "offset": [0, "int"], "word": ["hi", "str"]}
        assert await ws_json(client, "/w/annotated") == ws_default
        ws_given = {"limit": [1, "int"], "offset": [4, "int"], "word": ["yo", "str"]}
        assert await ws_json(client, "/w/annotated?limit=1&start=4&word=yo") == ws_given

    async def test_annotated_keeps_other_metadata(self, client: AsyncTestClient) -> None:
        # Pydantic metadata beside (or instead of) the marker still applies: constraints,
        # validators.
        response = await client.get("/h/annotated-metadata?n=2&em=3&s=abc")
        assert response.json() == {"n": [2, "int"], "m": [3, "int"], "s": ["ABC", "str"]}
        response = await client.get("/h/annotated-metadata?n=0&em=4")
        assert response.status_code == 422
        assert response.json() == {
            "detail": [
                {
                    "type": "greater_than_equal",
                    "loc": ["query", "n"],
                    "msg": "Input should be greater than or equal to 1",
                    "input": "0",
                    "ctx": {"ge": 1},
                },
                {
                    "type": "less_than_equal",
                    "loc": ["query", "em"],
                    "msg": "Input should be less than or equal to 3",
                    "input": "4",
                    "ctx": {"le": 3},
                },
            ]
        }
        assert await ws_json(client, "/w/annotated-metadata?s=yo") == {
            "n": [5, "int"],
            "s": ["YO", "str"],
        }
        denied = await refusal(client, "/w/annotated-metadata?n=0")
        assert denied.status_code == 422
        assert [e["loc"] for e in denied.json()["detail"]] == [["query", "n"]]
        assert ran == ["ws-annotated-metadata"]

    async def test_unmarked_scalars_are_query_params(self, client: AsyncTestClient) -> None:
        response = await client.get("/h/unmarked?n=5")
        assert response.json() == {
            "n": [5, "int"],
            "word": ["hi", "str"],
            "maybe": [None, "NoneType"],
        }
        response = await client.get("/h/unmarked?n=5&word=yo&maybe=8")
        assert response.json() == {"n": [5, "int"], "word": ["yo", "str"], "maybe": [8, "int"]}
        response = await client.get("/h/unmarked?maybe=x")
        assert response.status_code == 422
        assert response.json() == {
            "detail": [missing(["query", "n"]), int_parsing(["query", "maybe"], "x")]
        }

    async def test_type_conversions(self, client: AsyncTestClient) -> None:
        uid = "12345678-1234-5678-1234-567812345678"
        query = f"?flag=true&ratio=2.5&uid={uid}&color=green&mode=fast&maybe=3"
        expected = {
            "flag": [True, "bool"],
            "ratio": [2.5, "float"],
            "uid": [uid, "UUID"],
            "color": ["green", "Color"],
            "mode": ["fast", "str"],
            "maybe": [3, "int"],
        }
        assert (await client.get("/h/types" + query)).json() == expected
        assert await ws_json(client, "/w/types" + query) == expected
        defaults = {
            "flag": [False, "bool"],
            "ratio": [0.5, "float"],
            "uid": [None, "NoneType"],
            "color": ["red", "Color"],
            "mode": ["slow", "str"],
            "maybe": [None, "NoneType"],
        }
        assert (await client.get("/h/types")).json() == defaults
        assert await ws_json(client, "/w/types") == defaults
        # Other spellings of booleans are accepted, as pydantic does.
        assert (await client.get("/h/types?flag=0")).json()["flag"] == [False, "bool"]
        assert (await client.get("/h/types?flag=yes")).json()["flag"] == [True, "bool"]

    async def test_type_conversion_errors(self, client: AsyncTestClient) -> None:
        query = "?flag=maybe&ratio=x&uid=nope&color=blue&mode=medium"
        response = await client.get("/h/types" + query)
        assert response.status_code == 422
        errors = response.json()["detail"]
        assert [(e["type"], e["loc"], e["input"]) for e in errors] == [
            ("bool_parsing", ["query", "flag"], "maybe"),
            ("float_parsing", ["query", "ratio"], "x"),
            ("uuid_parsing", ["query", "uid"], "nope"),
            ("enum", ["query", "color"], "blue"),
            ("literal_error", ["query", "mode"], "medium"),
        ]
        assert errors[3]["msg"] == "Input should be 'red' or 'green'"
        assert errors[4]["msg"] == "Input should be 'fast' or 'slow'"
        denied = await refusal(client, "/w/types" + query)
        assert denied.status_code == 422
        assert denied.json() == {"detail": errors}

    async def test_unmarked_list_collects_repeated_keys(self, client: AsyncTestClient) -> None:
        response = await client.get("/h/list?n=1&n=2&n=3&tag=a&tag=b")
        assert response.json() == {"n": [1, 2, 3], "n_types": ["int"] * 3, "tag": ["a", "b"]}
        response = await client.get("/h/list?n=7")
        assert response.json() == {"n": [7], "n_types": ["int"], "tag": None}
        assert await ws_json(client, "/w/list?n=1&n=2") == {"n": [1, 2], "n_types": ["int", "int"]}

    async def test_list_query_errors(self, client: AsyncTestClient) -> None:
        response = await client.get("/h/list")
        assert response.status_code == 422
        assert response.json() == {"detail": [missing(["query", "n"])]}
        response = await client.get("/h/list?n=1&n=x")
        assert response.status_code == 422
        assert response.json() == {"detail": [int_parsing(["query", "n", 1], "x")]}

    async def test_query_names_like_basemodel_attributes(self, client: AsyncTestClient) -> None:
        response = await client.get("/h/model-names")
        assert response.json() == {
            "json": ["j", "str"],
            "schema": ["s", "str"],
            "copy": [0, "int"],
            "model_config": ["m", "str"],
            "fields": ["f", "str"],
            "p0": ["zero", "str"],
        }
        query = "?json=J&schema=S&copy=3&model_config=M&fields=F&p0=P"
        response = await client.get("/h/model-names" + query)
        assert response.json() == {
            "json": ["J", "str"],
            "schema": ["S", "str"],
            "copy": [3, "int"],
            "model_config": ["M", "str"],
            "fields": ["F", "str"],
            "p0": ["P", "str"],
        }
        response = await client.get("/h/model-names?copy=x")
        assert response.status_code == 422
        assert response.json() == {"detail": [int_parsing(["query", "copy"], "x")]}
        expected_ws = {
            "json": ["J", "str"],
            "schema": ["S", "str"],
            "copy": [3, "int"],
            "model_config": ["M", "str"],
        }
        assert await ws_json(client, "/w/model-names?json=J&schema=S&copy=3&model_config=M") == (
            expected_ws
        )

    def test_building_with_basemodel_attribute_names_warns_nothing(
        self,
        recwarn: pytest.WarningsRecorder,
    ) -> None:
        query_app()
        assert [str(w.message) for w in recwarn.list] == []


# -- path --------------------------------------------------------------------------------------


@Controller("/h")
class HTTPPath(ControllerBase):
    @get("/items/{id:int}")
    async def item(self, id: int = Path(ge=1)) -> dict[str, Any]:
        ran.append("item")
        return kinds(id=id)

    @get("/aliased/{item_id:int}")
    async def aliased(self, ident: Annotated[int, Path(alias="item_id", le=10)]) -> Any:
        return kinds(ident=ident)

    @get("/slug/{slug}")
    async def slug(self, slug: str) -> dict[str, Any]:
        return {"slug": slug}


@Controller("/w")
class WsPath(WsReplies):
    @ws_route("/items/{id:int}")
    async def item(self, id: int = Path(ge=1)) -> None:
        ran.append("ws-item")
        await self.reply(kinds(id=id))

    @ws_route("/slug/{slug}")
    async def slug(self, slug: str) -> None:
        await self.reply({"slug": slug})


def path_app() -> App:
    return App(controllers=[HTTPPath, WsPath])


class TestPath:
    """Path parameters: the converter, constraints, aliases."""

    @pytest.fixture
    def app(self) -> App:
        return path_app()

    async def test_path_converter_and_constraint(self, client: AsyncTestClient) -> None:
        assert (await client.get("/h/items/5")).json() == {"id": [5, "int"]}
        assert await ws_json(client, "/w/items/5") == {"id": [5, "int"]}
        ran.clear()
        response = await client.get("/h/items/0")
        assert response.status_code == 422
        error = {
            "type": "greater_than_equal",
            "loc": ["path", "id"],
            "msg": "Input should be greater than or equal to 1",
            "input": 0,
            "ctx": {"ge": 1},
        }
        assert response.json() == {"detail": [error]}
        denied = await refusal(client, "/w/items/0")
        assert denied.status_code == 422
        assert denied.json() == {"detail": [error]}
        assert ran == []
        # The {id:int} converter itself still decides what matches at all.
        assert (await client.get("/h/items/abc")).status_code == 404

    async def test_path_alias(self, client: AsyncTestClient) -> None:
        assert (await client.get("/h/aliased/7")).json() == {"ident": [7, "int"]}
        response = await client.get("/h/aliased/11")
        assert response.status_code == 422
        assert response.json() == {
            "detail": [
                {
                    "type": "less_than_equal",
                    "loc": ["path", "item_id"],
                    "msg": "Input should be less than or equal to 10",
                    "input": 11,
                    "ctx": {"le": 10},
                }
            ]
        }

    async def test_unmarked_parameter_named_like_path_param(self, client: AsyncTestClient) -> None:
        assert (await client.get("/h/slug/hello?slug=other")).json() == {"slug": "hello"}
        assert await ws_json(client, "/w/slug/hello?slug=other") == {"slug": "hello"}


# -- headers and cookies -----------------------------------------------------------------------


@Controller("/h")
class HTTPHeaders(ControllerBase):
    @get("/header-list")
    async def header_list(self, x_tag: list[str] = Header([])) -> dict[str, Any]:
        return {"x_tag": x_tag}

    @get("/headers")
    async def headers(
        self,
        user_agent: str = Header(),
        x_token: str = Header(),
        custom: str = Header("none", alias="X-Custom-Thing"),
        x_count: int = Header(0),
    ) -> dict[str, Any]:
        return kinds(user_agent=user_agent, x_token=x_token, custom=custom, x_count=x_count)

    @get("/cookies")
    async def cookies(
        self, session: str = Cookie(), visits: int = Cookie(0), theme: str = Cookie(alias="ui")
    ) -> dict[str, Any]:
        return kinds(session=session, visits=visits, theme=theme)


@Controller("/w")
class WsHeaders(WsReplies):
    @ws_route("/headers")
    async def headers(
        self,
        user_agent: str = Header(),
        x_token: str = Header(),
        custom: str = Header("none", alias="X-Custom-Thing"),
        x_count: int = Header(0),
    ) -> None:
        ran.append("ws-headers")
        await self.reply(
            kinds(user_agent=user_agent, x_token=x_token, custom=custom, x_count=x_count)
        )

    @ws_route("/cookies")
    async def cookies(
        self, session: str = Cookie(), visits: int = Cookie(0), theme: str = Cookie(alias="ui")
    ) -> None:
        ran.append("ws-cookies")
        await self.reply(kinds(session=session, visits=visits, theme=theme))


def headers_app() -> App:
    return App(controllers=[HTTPHeaders, WsHeaders])


class TestHeadersAndCookies:
    """Header and Cookie parameters."""

    @pytest.fixture
    def app(self) -> App:
        return headers_app()

    async def test_headers(self, client: AsyncTestClient) -> None:
        response = await client.get(
            "/h/headers",
            headers={
                "User-Agent": "probe/1",
                "X-Token": "t0k",
                "x-custom-thing": "c",
                "X-Count": "4",
            },
        )
        assert response.json() == {
            "user_agent": ["probe/1", "str"],
            "x_token": ["t0k", "str"],
            "custom": ["c", "str"],
            "x_count": [4, "int"],
        }
        response = await client.get("/h/headers", headers={"x-token": "t", "user-agent": "ua"})
        assert response.json() == {
            "user_agent": ["ua", "str"],
            "x_token": ["t", "str"],
            "custom": ["none", "str"],
            "x_count": [0, "int"],
        }
        got = await ws_json(
            client, "/w/headers", {"X-TOKEN": "w", "X-Custom-Thing": "C", "x-count": "2"}
        )
        assert got == {
            "user_agent": ["testclient", "str"],
            "x_token": ["w", "str"],
            "custom": ["C", "str"],
            "x_count": [2, "int"],
        }

    async def test_header_list_collects_repeated_headers(self, client: AsyncTestClient) -> None:
        response = await client.get("/h/header-list", headers=[("X-Tag", "a"), ("x-tag", "b")])
        assert response.json() == {"x_tag": ["a", "b"]}
        assert (await client.get("/h/header-list")).json() == {"x_tag": []}

    async def test_header_errors(
        self, client: AsyncTestClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG, logger="triows")
        response = await client.get("/h/headers", headers={"x-count": "many"})
        assert response.status_code == 422
        detail = [missing(["header", "x-token"]), int_parsing(["header", "x-count"], "many")]
        assert response.json() == {"detail": detail}
        denied = await refusal(client, "/w/headers", headers={"x-count": "many"})
        assert denied.status_code == 422
        assert ("content-type", "application/json") in denied.headers.multi_items()
        assert denied.json() == {"detail": detail}
        assert ran == []
        assert error_records(caplog) == []

    async def test_cookies(self, client: AsyncTestClient) -> None:
        cookie = {"cookie": "session=abc; visits=3; ui=dark"}
        expected = {"session": ["abc", "str"], "visits": [3, "int"], "theme": ["dark", "str"]}
        assert (await client.get("/h/cookies", headers=cookie)).json() == expected
        assert await ws_json(client, "/w/cookies", cookie) == expected
        defaulted = {"session": ["s", "str"], "visits": [0, "int"], "theme": ["t", "str"]}
        got = await client.get("/h/cookies", headers={"cookie": "session=s; ui=t"})
        assert got.json() == defaulted

    async def test_cookie_errors(self, client: AsyncTestClient) -> None:
        response = await client.get("/h/cookies", headers={"cookie": "visits=x; ui=dark"})
        assert response.status_code == 422
        detail = [missing(["cookie", "session"]), int_parsing(["cookie", "visits"], "x")]
        assert response.json() == {"detail": detail}
        denied = await refusal(client, "/w/cookies", headers={"cookie": "visits=x; ui=dark"})
        assert (denied.status_code, denied.json()) == (422, {"detail": detail})
        assert ran == []


# -- every source at once, and the websocket denial --------------------------------------------


@Controller("/h")
class HTTPMixed(ControllerBase):
    @get("/mixed/{id:int}")
    async def mixed(
        self,
        id: int = Path(ge=1),
        b: int = Query(),
        x_token: str = Header(),
        session: str = Cookie(),
    ) -> dict[str, Any]:
        ran.append("mixed")
        return {"id": id, "b": b, "x_token": x_token, "session": session}


@Controller("/w")
class WsMixed(WsReplies):
    @ws_route("/required")
    async def required(self, name: str = Query()) -> None:
        ran.append("ws-required")
        await self.reply({"name": name})

    @ws_route("/mixed/{id:int}")
    async def mixed(
        self,
        id: int = Path(ge=1),
        b: int = Query(),
        x_token: str = Header(),
        session: str = Cookie(),
    ) -> None:
        ran.append("ws-mixed")
        await self.reply({"id": id, "b": b, "x_token": x_token, "session": session})


def mixed_app() -> App:
    """The routes above, and ``WsQuery``'s ``/w/query``."""
    return App(controllers=[HTTPMixed, WsMixed, WsQuery])


MIXED_ERRORS = [
    {
        "type": "greater_than_equal",
        "loc": ["path", "id"],
        "msg": "Input should be greater than or equal to 1",
        "input": 0,
        "ctx": {"ge": 1},
    },
    int_parsing(["query", "b"], "x"),
    missing(["header", "x-token"]),
    missing(["cookie", "session"]),
]


class TestEverySource:
    """All sources in one handler; invalid parameters refuse the handshake."""

    @pytest.fixture
    def app(self) -> App:
        return mixed_app()

    async def test_every_source_together(self, client: AsyncTestClient) -> None:
        headers = {"x-token": "tk", "cookie": "session=sid"}
        expected = {"id": 3, "b": 4, "x_token": "tk", "session": "sid"}
        assert (await client.get("/h/mixed/3?b=4", headers=headers)).json() == expected
        assert await ws_json(client, "/w/mixed/3?b=4", headers) == expected
        assert ran == ["mixed", "ws-mixed"]

    async def test_invalid_parameters_refuse_the_handshake_before_upgrade(
        self, client: AsyncTestClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG, logger="triows")
        http = await client.get("/h/mixed/0?b=x")
        assert http.status_code == 422
        assert http.json() == {"detail": MIXED_ERRORS}
        denied = await refusal(client, "/w/mixed/0?b=x")
        assert denied.status_code == 422
        assert ("content-type", "application/json") in denied.headers.multi_items()
        assert denied.json() == {"detail": MIXED_ERRORS}
        assert denied.json() == http.json()
        assert ran == []
        assert error_records(caplog) == []

    async def test_missing_required_query_refuses_the_handshake(
        self, client: AsyncTestClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG, logger="triows")
        denied = await refusal(client, "/w/required")
        assert denied.status_code == 422
        assert denied.json() == {"detail": [missing(["query", "name"])]}
        assert ran == []
        assert await ws_json(client, "/w/required?name=Bo") == {"name": "Bo"}
        assert ran == ["ws-required"]
        assert error_records(caplog) == []

    async def test_invalid_parameters_without_the_denial_extension_give_403(
        self,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.DEBUG, logger="triows")
        app = mixed_app()
        async with AsyncTestClient(app, timeout=TIMEOUT, websocket_denial_response=False) as client:
            denied = await refusal(client, "/w/mixed/0?b=x")
            assert (denied.status_code, denied.body) == (403, b"")
            denied = await refusal(client, "/w/required")
            assert (denied.status_code, denied.body) == (403, b"")
            assert ran == []
            assert await ws_json(client, "/w/required?name=Cy") == {"name": "Cy"}
        assert ran == ["ws-required"]
        assert error_records(caplog) == []

    def test_denial_with_the_sync_client(self) -> None:
        with TestClient(mixed_app(), timeout=TIMEOUT) as client:
            with pytest.raises(WebSocketDenied) as denied, client.websocket_connect("/w/query?b=z"):
                pass
            assert denied.value.status_code == 422
            assert denied.value.json() == {"detail": [int_parsing(["query", "b"], "z")]}


# -- connection objects and injection ----------------------------------------------------------


@injectable
class Greeter:
    def greet(self, name: str) -> str:
        return f"hello {name}"


@Controller("/h")
class HTTPObjects(ControllerBase):
    @get("/objects")
    async def objects(
        self, request: Request, context: ExecutionContext, greeter: Greeter
    ) -> dict[str, Any]:
        return {
            "request": request is self.context.switch_to_http().get_request(),
            "context": context is self.context,
            "greeting": greeter.greet("you"),
        }

    @get("/inject")
    async def inject(self, greeter: Inject[Greeter], name: str = "x") -> dict[str, Any]:
        return {"greeting": greeter.greet(name)}


@Controller("/w")
class WsObjects(ControllerBase):
    @ws_route("/objects")
    async def objects(
        self, websocket: WebSocket, context: ExecutionContext, greeter: Greeter
    ) -> None:
        await websocket.accept()
        await websocket.send_json(
            {
                "websocket": websocket is self.context.switch_to_websocket().get_client(),
                "context": context is self.context,
                "greeting": greeter.greet("ws"),
            }
        )


def objects_app() -> App:
    return App(controllers=[HTTPObjects, WsObjects])


class TestConnectionObjects:
    """The request, websocket and context parameters, and injected services."""

    @pytest.fixture
    def app(self) -> App:
        return objects_app()

    async def test_request_context_and_service_parameters(self, client: AsyncTestClient) -> None:
        response = await client.get("/h/objects")
        assert response.json() == {"request": True, "context": True, "greeting": "hello you"}
        response = await client.get("/h/inject?name=Al")
        assert response.json() == {"greeting": "hello Al"}

    async def test_websocket_context_and_service_parameters(self, client: AsyncTestClient) -> None:
        got = await ws_json(client, "/w/objects")
        assert got == {"websocket": True, "context": True, "greeting": "hello ws"}


# -- body --------------------------------------------------------------------------------------


@Controller("/h")
class HTTPBody(ControllerBase):
    @post("/body/model")
    async def body_model(self, item: Item = Body()) -> dict[str, Any]:
        return {"type": type(item).__name__, "item": item.model_dump()}

    @post("/body/unmarked")
    async def body_unmarked(self, item: Item) -> dict[str, Any]:
        return {"type": type(item).__name__, "item": item.model_dump()}

    @post("/body/dict")
    async def body_dict(self, data: dict[str, int] = Body()) -> dict[str, Any]:
        return {"data": data, "types": sorted({type(v).__name__ for v in data.values()})}

    @post("/body/list")
    async def body_list(self, numbers: list[int] = Body()) -> dict[str, Any]:
        return {"numbers": numbers, "sum": sum(numbers)}

    @post("/body/two")
    async def body_two(self, item: Item = Body(), count: int = Body(gt=0)) -> dict[str, Any]:
        return {"item": item.model_dump(), "count": kinds(count=count)["count"]}

    @post("/body/embed")
    async def body_embed(self, item: Item = Body(embed=True)) -> dict[str, Any]:
        return {"item": item.model_dump()}

    @post("/body/embed-annotated")
    async def body_embed_annotated(self, item: Annotated[Item, Body(embed=True)]) -> Any:
        return {"item": item.model_dump()}

    @post("/body/aliases")
    async def body_aliases(self, item: Item = Body(alias="thing"), n: int = Body(alias="N")) -> Any:
        return {"item": item.model_dump(), "n": n}

    @post("/body/optional")
    async def body_optional(self, item: Item | None = Body(None)) -> dict[str, Any]:
        return {"item": item.model_dump() if item else None}

    @post("/body/with-query")
    async def body_with_query(self, item: Item, verbose: bool = False) -> dict[str, Any]:
        return {"item": item.model_dump(), "verbose": verbose}


def body_app() -> App:
    return App(controllers=[HTTPBody])


class TestBody:
    """Body parameters on HTTP routes."""

    @pytest.fixture
    def app(self) -> App:
        return body_app()

    async def test_single_body_model_gets_the_whole_body(self, client: AsyncTestClient) -> None:
        for path in ("/h/body/model", "/h/body/unmarked"):
            response = await client.post(path, json={"name": "pen", "quantity": "2"})
            assert response.status_code == 200
            assert response.json() == {"type": "Item", "item": {"name": "pen", "quantity": 2}}

    async def test_single_body_model_errors(self, client: AsyncTestClient) -> None:
        for path in ("/h/body/model", "/h/body/unmarked"):
            response = await client.post(path, json={"quantity": "many"})
            assert response.status_code == 422
            assert response.json() == {
                "detail": [missing(["body", "name"]), int_parsing(["body", "quantity"], "many")]
            }
            response = await client.post(path)
            assert response.status_code == 422
            assert response.json() == {"detail": [missing(["body"])]}
            response = await client.post(path, json=[1])
            assert response.status_code == 422
            assert response.json() == {
                "detail": [
                    {
                        "type": "model_type",
                        "loc": ["body"],
                        "msg": "Input should be a valid dictionary or instance of Item",
                        "input": [1],
                        "ctx": {"class_name": "Item"},
                    }
                ]
            }

    async def test_body_dict_and_list(self, client: AsyncTestClient) -> None:
        response = await client.post("/h/body/dict", json={"a": 1, "b": "2"})
        assert response.json() == {"data": {"a": 1, "b": 2}, "types": ["int"]}
        response = await client.post("/h/body/list", json=[1, "2", 3])
        assert response.json() == {"numbers": [1, 2, 3], "sum": 6}
        response = await client.post("/h/body/list", json=[1, "x"])
        assert response.status_code == 422
        assert response.json() == {"detail": [int_parsing(["body", 1], "x")]}
        response = await client.post("/h/body/dict", json={"a": "x"})
        assert response.status_code == 422
        assert response.json() == {"detail": [int_parsing(["body", "a"], "x")]}

    async def test_two_body_params_are_embedded(self, client: AsyncTestClient) -> None:
        response = await client.post("/h/body/two", json={"item": {"name": "cup"}, "count": "5"})
        assert response.status_code == 200
        assert response.json() == {"item": {"name": "cup", "quantity": 1}, "count": [5, "int"]}
        response = await client.post("/h/body/two", json={"item": {}, "count": 0})
        assert response.status_code == 422
        assert response.json() == {
            "detail": [
                missing(["body", "item", "name"]),
                {
                    "type": "greater_than",
                    "loc": ["body", "count"],
                    "msg": "Input should be greater than 0",
                    "input": 0,
                    "ctx": {"gt": 0},
                },
            ]
        }
        response = await client.post("/h/body/two", json={"name": "cup"})
        assert response.status_code == 422
        assert response.json() == {
            "detail": [missing(["body", "item"]), missing(["body", "count"])]
        }

    async def test_embedded_body_that_is_not_an_object(self, client: AsyncTestClient) -> None:
        response = await client.post("/h/body/two", json=[1, 2])
        assert response.status_code == 422
        assert response.json() == {
            "detail": [
                {
                    "type": "dict_type",
                    "loc": ["body"],
                    "msg": "Input should be an object",
                    "input": [1, 2],
                }
            ]
        }

    async def test_body_embed_true(self, client: AsyncTestClient) -> None:
        response = await client.post("/h/body/embed", json={"item": {"name": "mug", "quantity": 3}})
        assert response.status_code == 200
        assert response.json() == {"item": {"name": "mug", "quantity": 3}}
        response = await client.post("/h/body/embed", json={"name": "mug"})
        assert response.status_code == 422
        assert response.json() == {"detail": [missing(["body", "item"])]}

    async def test_body_embed_true_in_annotated(self, client: AsyncTestClient) -> None:
        response = await client.post(
            "/h/body/embed-annotated", json={"item": {"name": "mug", "quantity": 3}}
        )
        assert response.status_code == 200
        assert response.json() == {"item": {"name": "mug", "quantity": 3}}

    async def test_body_aliases(self, client: AsyncTestClient) -> None:
        response = await client.post("/h/body/aliases", json={"thing": {"name": "box"}, "N": 2})
        assert response.status_code == 200
        assert response.json() == {"item": {"name": "box", "quantity": 1}, "n": 2}
        response = await client.post("/h/body/aliases", json={"item": {"name": "box"}, "n": 2})
        assert response.status_code == 422
        assert response.json() == {"detail": [missing(["body", "thing"]), missing(["body", "N"])]}

    async def test_optional_body(self, client: AsyncTestClient) -> None:
        assert (await client.post("/h/body/optional")).json() == {"item": None}
        response = await client.post("/h/body/optional", json={"name": "lid"})
        assert response.json() == {"item": {"name": "lid", "quantity": 1}}

    async def test_body_beside_a_query_param(self, client: AsyncTestClient) -> None:
        response = await client.post("/h/body/with-query?verbose=true", json={"name": "a"})
        assert response.json() == {"item": {"name": "a", "quantity": 1}, "verbose": True}
        response = await client.post("/h/body/with-query?verbose=nah", json={"name": 5})
        assert response.status_code == 422
        errors = response.json()["detail"]
        assert [(e["type"], e["loc"], e["input"]) for e in errors] == [
            ("string_type", ["body", "name"], 5),
            ("bool_parsing", ["query", "verbose"], "nah"),
        ]

    async def test_malformed_json_body(self, client: AsyncTestClient) -> None:
        for path in ("/h/body/model", "/h/body/two"):
            response = await client.post(
                path, content=b"{not json", headers={"content-type": "application/json"}
            )
            assert response.status_code == 422
            [error] = response.json()["detail"]
            assert error["type"] == "json_invalid"
            assert error["loc"] == ["body"]
            assert error["msg"].startswith("Invalid JSON: ")
            # Every error has the same keys as pydantic's: type, loc, msg, input.
            assert {"type", "loc", "msg", "input"} <= error.keys()


# -- build-time errors -------------------------------------------------------------------------


class Unknown:
    """A class that is neither injectable nor a value triows can validate."""


def build(controller: type) -> str:
    """Build an app with ``controller``; the ConfigurationError's message."""
    with pytest.raises(ConfigurationError) as raised:
        App(controllers=[controller])
    return str(raised.value)


def test_ws_body_with_extra_handler_builds() -> None:
    @Controller("/later")
    class Later(ControllerBase):
        @ws_route("/ws", use_extra_handler=True)
        async def handler(self, item: Item = WsBody()) -> None: ...

    app = App(controllers=[Later])
    assert app.url_path_for("handler") == "/later/ws"


def body_on_a_websocket_route() -> type:
    @Controller("/bad")
    class Bad(ControllerBase):
        @ws_route("/ws")
        async def handler(self, item: Item = Body()) -> None: ...

    return Bad


def ws_body_without_extra_handler() -> type:
    @Controller("/bad")
    class Bad(ControllerBase):
        @ws_route("/ws")
        async def handler(self, item: Item = WsBody()) -> None: ...

    return Bad


def ws_body_on_an_http_route() -> type:
    @Controller("/bad")
    class Bad(ControllerBase):
        @post("/x")
        async def handler(self, item: Annotated[Item, WsBody()]) -> None: ...

    return Bad


def unmarked_model_on_a_websocket_route() -> type:
    @Controller("/bad")
    class Bad(ControllerBase):
        @ws_route("/ws")
        async def handler(self, item: Item) -> None: ...

    return Bad


def path_marker_for_a_name_not_in_the_path() -> type:
    @Controller("/bad")
    class Bad(ControllerBase):
        @get("/items/{id:int}")
        async def handler(self, item_id: int = Path()) -> None: ...

    return Bad


def path_marker_on_a_websocket_route_not_in_the_path() -> type:
    @Controller("/bad")
    class Bad(ControllerBase):
        @ws_route("/ws")
        async def handler(self, room: Annotated[str, Path()]) -> None: ...

    return Bad


def arbitrary_class_parameter() -> type:
    @Controller("/bad")
    class Bad(ControllerBase):
        @get("/x")
        async def handler(self, thing: Unknown) -> None: ...

    return Bad


def arbitrary_class_parameter_on_a_websocket_route() -> type:
    @Controller("/bad")
    class Bad(ControllerBase):
        @ws_route("/ws")
        async def handler(self, thing: Unknown) -> None: ...

    return Bad


def var_args() -> type:
    @Controller("/bad")
    class Bad(ControllerBase):
        @get("/x")
        async def handler(self, *extra: Any) -> None: ...

    return Bad


def var_kwargs() -> type:
    @Controller("/bad")
    class Bad(ControllerBase):
        @get("/x")
        async def handler(self, **extra: Any) -> None: ...

    return Bad


def websocket_parameter_on_an_http_route() -> type:
    @Controller("/bad")
    class Bad(ControllerBase):
        @get("/x")
        async def handler(self, ws: WebSocket) -> None: ...

    return Bad


def request_parameter_on_a_websocket_route() -> type:
    @Controller("/bad")
    class Bad(ControllerBase):
        @ws_route("/ws")
        async def handler(self, request: Request) -> None: ...

    return Bad


#: A controller whose one handler has a bad parameter, and what the build error must say of it
#: (beside the handler's name, ``Bad.handler``).
BAD_PARAMETERS = [
    pytest.param(
        body_on_a_websocket_route,
        ["'item'", "Body() is for HTTP routes"],
        id="Body-on-a-websocket-route",
    ),
    pytest.param(
        ws_body_without_extra_handler,
        ["'item'", "use_extra_handler=True"],
        id="WsBody-without-use_extra_handler",
    ),
    pytest.param(ws_body_on_an_http_route, ["'item'", "WsBody()"], id="WsBody-on-an-http-route"),
    pytest.param(
        unmarked_model_on_a_websocket_route,
        ["'item'", "WsBody()"],
        id="unmarked-model-on-a-websocket-route",
    ),
    pytest.param(
        path_marker_for_a_name_not_in_the_path,
        ["'item_id'", "{item_id}"],
        id="Path-for-a-name-not-in-the-path",
    ),
    pytest.param(
        path_marker_on_a_websocket_route_not_in_the_path,
        ["'room'"],
        id="Path-on-a-websocket-route-not-in-the-path",
    ),
    pytest.param(
        arbitrary_class_parameter, ["'thing'", "Unknown", "@injectable"], id="arbitrary-class"
    ),
    pytest.param(
        arbitrary_class_parameter_on_a_websocket_route,
        ["'thing'"],
        id="arbitrary-class-on-a-websocket-route",
    ),
    pytest.param(var_args, ["*args/**kwargs", "'extra'"], id="var-args"),
    pytest.param(var_kwargs, ["*args/**kwargs", "'extra'"], id="var-kwargs"),
    pytest.param(
        websocket_parameter_on_an_http_route, ["'ws'", "WebSocket"], id="WebSocket-on-an-http-route"
    ),
    pytest.param(
        request_parameter_on_a_websocket_route,
        ["'request'", "Request"],
        id="Request-on-a-websocket-route",
    ),
]


@pytest.mark.parametrize(("bad", "expected"), BAD_PARAMETERS)
def test_a_bad_parameter_is_refused_when_the_app_is_built(
    bad: Callable[[], type], expected: list[str]
) -> None:
    message = build(bad())
    assert "Bad.handler" in message
    for part in expected:
        assert part in message


# -- compiled once -----------------------------------------------------------------------------


def compiled_app() -> App:
    """The routes the test below speaks to: HTTP and websocket, query, body and every source."""
    return App(controllers=[HTTPQuery, WsQuery, HTTPBody, HTTPMixed, WsMixed])


async def test_signature_is_read_once_at_build(monkeypatch: pytest.MonkeyPatch) -> None:
    app = compiled_app()

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("handler signatures must not be read per request")

    monkeypatch.setattr(params_module.inspect, "signature", boom)
    monkeypatch.setattr(params_module.typing, "get_type_hints", boom)
    monkeypatch.setattr(params_module.pydantic, "create_model", boom)
    assert params_module.inspect is inspect
    assert params_module.typing is typing
    with pytest.raises(ConfigurationError, match="must not be read per request"):
        compiled_app()  # the patches do reach the code that reads signatures
    with trio.fail_after(TIMEOUT):
        async with AsyncTestClient(app, timeout=TIMEOUT) as client:
            for b in range(3):
                assert (await client.get(f"/h/query?b={b}")).json() == {"b": [b, "int"]}
                assert await ws_json(client, f"/w/query?b={b}") == {"b": [b, "int"]}
            response = await client.post("/h/body/two", json={"item": {"name": "x"}, "count": 1})
            assert response.json() == {"item": {"name": "x", "quantity": 1}, "count": [1, "int"]}
            response = await client.get("/h/mixed/0?b=x")
            assert (response.status_code, response.json()) == (422, {"detail": MIXED_ERRORS})
            denied = await refusal(client, "/w/mixed/0?b=x")
            assert (denied.status_code, denied.json()) == (422, {"detail": MIXED_ERRORS})
