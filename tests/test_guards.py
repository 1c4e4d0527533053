"""Guards (triows/guards.py): the guide's snippet, where guards attach, their order, and what a
refusing or failing guard looks like to a websocket client and to an HTTP client.

Most tests use :class:`Recording` guard instances that append their name to a list (handlers
append ``"handler"``), so a test sees which guards ran, in which order, and whether the handler
ran at all.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio
from support import TIMEOUT, client_for, error_records, refusal

from triows import (
    App,
    ConfigurationError,
    Controller,
    ControllerBase,
    ExecutionContext,
    GuardCanActivate,
    Guards,
    HTTPException,
    IExecutionContext,
    Provider,
    Query,
    WebSocketState,
    WebSocketStateError,
    get,
    injectable,
    ws_route,
)
from triows.testing import AsyncTestClient, Test, TestClient

WELCOME = "Welcome {} to our live support room!\nHow can we help you?"
FORBIDDEN = b'{"detail":"Forbidden"}'
FORBIDDEN_HEADERS = [("content-type", "application/json"), ("content-length", "22")]
SERVER_ERROR = {"detail": "Internal Server Error"}


# -- the guide's snippet, with only the imports changed (and `await ws.close()`) -----------------


# fmt: off
@injectable
class MyGuard(GuardCanActivate):
    async def can_activate(self, context: IExecutionContext) -> bool:
        print('MyGuard was called.')
        return False


@Controller('/car')
class CarController(ControllerBase):
    @ws_route('/live-support')
    @Guards(MyGuard)
    async def live_support(self, name: str = Query('John')):
        ws = self.context.switch_to_websocket().get_client()
        await ws.accept()
        await ws.send_text(f'Welcome {name} to our live support room!\nHow can we help you?')

        while True:
            try:
                data = await ws.receive_text()
                await ws.send_text(f'We have received you complain:<br><br><strong>"{data}"</strong><br><br>We shall get back to you.')  # noqa: E501
            except Exception as ex:  # noqa: F841 - the guide's
                await ws.close()  # the guide writes `assert ws.close()`, which never awaits
                break
# fmt: on


class AllowingMyGuard(MyGuard):
    """MyGuard as the guide's text describes the passing case: it is called, and says yes."""

    async def can_activate(self, context: IExecutionContext) -> bool:
        await super().can_activate(context)
        return True


# -- helpers ---------------------------------------------------------------------------------------


async def welcome(client: AsyncTestClient, path: str, **kwargs: Any) -> str:
    """The first text message of an accepted connection to ``path``."""
    async with client.websocket_connect(path, **kwargs) as ws:
        return await ws.receive_text()


class Recording(GuardCanActivate):
    """A guard instance that records its name and answers ``allow``."""

    def __init__(self, name: str, calls: list[str], allow: bool = True) -> None:
        self.name = name
        self.calls = calls
        self.allow = allow

    async def can_activate(self, context: ExecutionContext) -> bool:
        self.calls.append(self.name)
        return self.allow


class Raising(GuardCanActivate):
    """A guard instance that raises ``exc`` (and records it was called)."""

    def __init__(self, exc: BaseException, calls: list[str]) -> None:
        self.exc = exc
        self.calls = calls

    async def can_activate(self, context: ExecutionContext) -> bool:
        self.calls.append("raising")
        raise self.exc


def open_controller(calls: list[str], *guards: GuardCanActivate, prefix: str = "") -> type:
    """A controller whose ``/ws`` and ``/http`` routes carry ``guards`` and record ``"handler"``."""

    class GuardedController(ControllerBase):
        @ws_route("/ws")
        @Guards(*guards)
        async def ws(self) -> None:
            calls.append("handler")
            websocket = self.context.switch_to_websocket().get_client()
            await websocket.accept()
            await websocket.send_text("welcome")

        @get("/http")
        @Guards(*guards)
        async def http(self) -> str:
            calls.append("handler")
            return "welcome"

    return Controller(prefix)(GuardedController)


# -- the guide -------------------------------------------------------------------------------------


async def test_guide_guard_refuses_the_handshake_with_403(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    module = Test.create_test_module(controllers=[CarController])
    with trio.fail_after(TIMEOUT):
        async with module.get_async_client(timeout=TIMEOUT) as client:
            denied = await refusal(client, "/car/live-support")
            assert capsys.readouterr().out == "MyGuard was called.\n"
            again = await refusal(client, "/car/live-support?name=ellar")
            assert capsys.readouterr().out == "MyGuard was called.\n"
    for refused in (denied, again):
        assert refused.status_code == 403
        assert refused.headers == FORBIDDEN_HEADERS
        assert refused.body == FORBIDDEN
        assert refused.json() == {"detail": "Forbidden"}
    assert error_records(caplog, logging.WARNING) == []  # a refusal is not a server error


async def test_guide_guard_that_passes_lets_john_and_ellar_in(
    capsys: pytest.CaptureFixture[str],
) -> None:
    module = Test.create_test_module(controllers=[CarController]).override_provider(
        MyGuard, use_class=AllowingMyGuard
    )
    with trio.fail_after(TIMEOUT):
        async with module.get_async_client(timeout=TIMEOUT) as client:
            async with client.websocket_connect("/car/live-support") as ws:
                assert await ws.receive_text() == WELCOME.format("John")
                await ws.send_text("Message from client")
                assert await ws.receive_text() == (
                    'We have received you complain:<br><br><strong>"Message from client"'
                    "</strong><br><br>We shall get back to you."
                )
                assert capsys.readouterr().out == "MyGuard was called.\n"  # once, not per message
            async with client.websocket_connect("/car/live-support?name=ellar") as ws:
                assert await ws.receive_text() == WELCOME.format("ellar")
            assert capsys.readouterr().out == "MyGuard was called.\n"


# -- where guards attach ---------------------------------------------------------------------------


async def test_guards_above_and_below_ws_route(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []

    @Controller("")
    class OrderController(ControllerBase):
        @ws_route("/below")
        @Guards(Recording("below", calls, allow=False))
        async def below(self) -> None:
            calls.append("handler")

        @Guards(Recording("above", calls, allow=False))
        @ws_route("/above")
        async def above(self) -> None:
            calls.append("handler")

        @ws_route("/open")
        async def unguarded(self) -> None:
            calls.append("handler")
            websocket = self.context.switch_to_websocket().get_client()
            await websocket.accept()
            await websocket.send_text("welcome")

    async with client_for(App(controllers=[OrderController])) as client:
        below = await refusal(client, "/below")
        above = await refusal(client, "/above")
        assert await welcome(client, "/open") == "welcome"
    for denied in (below, above):
        assert (denied.status_code, denied.headers, denied.body) == (
            403,
            FORBIDDEN_HEADERS,
            FORBIDDEN,
        )
    assert calls == ["below", "above", "handler"]
    assert error_records(caplog, logging.WARNING) == []


async def test_guards_on_the_controller_class_above_and_below_controller() -> None:
    calls: list[str] = []

    @Guards(Recording("above", calls, allow=False))
    @Controller("/above")
    class AboveController(ControllerBase):
        @ws_route("/ws")
        async def ws(self) -> None:
            calls.append("handler")

        @get("/http")
        async def http(self) -> str:
            calls.append("handler")
            return "welcome"

    @Controller("/below")
    @Guards(Recording("below", calls, allow=False))
    class BelowController(ControllerBase):
        @ws_route("/ws")
        async def ws(self) -> None:
            calls.append("handler")

    async with client_for(App(controllers=[AboveController, BelowController])) as client:
        above = await refusal(client, "/above/ws")
        below = await refusal(client, "/below/ws")
        response = await client.get("/above/http")
    assert [(d.status_code, d.body) for d in (above, below)] == 2 * [(403, FORBIDDEN)]
    assert (response.status_code, response.content) == (403, FORBIDDEN)
    assert calls == ["above", "below", "above"]


async def test_global_guards_apply_to_every_route() -> None:
    calls: list[str] = []
    app = App(controllers=[open_controller(calls)], guards=[Recording("global", calls, False)])
    async with client_for(app) as client:
        denied = await refusal(client, "/ws")
        response = await client.get("/http")
    assert (denied.status_code, denied.body) == (403, FORBIDDEN)
    assert (response.status_code, response.content) == (403, FORBIDDEN)
    assert calls == ["global", "global"]


async def test_guards_run_global_then_controller_then_handler() -> None:
    calls: list[str] = []

    @Controller("")
    @Guards(Recording("controller 1", calls), Recording("controller 2", calls))
    class LayeredController(ControllerBase):
        @ws_route("/ws")
        @Guards(Recording("handler 1", calls), Recording("handler 2", calls))
        async def ws(self) -> None:
            calls.append("handler")
            websocket = self.context.switch_to_websocket().get_client()
            await websocket.accept()
            await websocket.send_text("welcome")

        @get("/http")
        @Guards(Recording("handler 1", calls), Recording("handler 2", calls))
        async def http(self) -> str:
            calls.append("handler")
            return "welcome"

    app = App(controllers=[LayeredController], guards=[Recording("global", calls)])
    order = ["global", "controller 1", "controller 2", "handler 1", "handler 2", "handler"]
    async with client_for(app) as client:
        assert await welcome(client, "/ws") == "welcome"
        assert calls == order
        calls.clear()
        response = await client.get("/http")
    assert (response.status_code, response.text) == (200, "welcome")
    assert calls == order


async def test_a_handler_guard_never_drops_the_global_one() -> None:
    calls: list[str] = []
    controller = open_controller(calls, Recording("handler guard", calls, allow=True))
    app = App(controllers=[controller], guards=[Recording("global", calls, allow=False)])
    async with client_for(app) as client:
        denied = await refusal(client, "/ws")
        response = await client.get("/http")
    assert (denied.status_code, denied.body) == (403, FORBIDDEN)
    assert (response.status_code, response.content) == (403, FORBIDDEN)
    assert calls == ["global", "global"]


async def test_the_first_refusing_guard_stops_the_chain() -> None:
    calls: list[str] = []

    @Controller("")
    @Guards(Recording("controller", calls, allow=False))
    class StoppingController(ControllerBase):
        @ws_route("/ws")
        @Guards(Recording("handler guard", calls))
        async def ws(self) -> None:
            calls.append("handler")

    app = App(controllers=[StoppingController], guards=[Recording("global", calls)])
    async with client_for(app) as client:
        denied = await refusal(client, "/ws")
    assert (denied.status_code, denied.body) == (403, FORBIDDEN)
    assert calls == ["global", "controller"]


# -- refusing and failing --------------------------------------------------------------------------


async def test_guard_raising_http_exception_sets_status_headers_and_detail(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[str] = []
    exc = HTTPException(401, "token required", headers={"WWW-Authenticate": "Bearer"})
    async with client_for(App(controllers=[open_controller(calls, Raising(exc, calls))])) as client:
        denied = await refusal(client, "/ws")
        response = await client.get("/http")
    assert denied.status_code == 401
    assert denied.headers == [
        ("content-type", "application/json"),
        ("www-authenticate", "Bearer"),
        ("content-length", "27"),
    ]
    assert denied.body == b'{"detail":"token required"}'
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"detail": "token required"}
    assert calls == ["raising", "raising"]  # the handler never ran
    assert error_records(caplog, logging.WARNING) == []


async def test_guard_raising_anything_else_is_a_500_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[str] = []
    boom = RuntimeError("guard broke")
    broken = open_controller(calls, Raising(boom, calls), prefix="/broken")
    healthy = open_controller(calls, prefix="/healthy")
    # What a real client gets: not the guard's exception raised in the test.
    app = App(controllers=[broken, healthy])
    async with client_for(app, raise_server_exceptions=False) as client:
        denied = await refusal(client, "/broken/ws")
        assert calls == ["raising"]  # never accepted: the handler did not run
        (record,) = error_records(caplog, logging.WARNING)
        # The app keeps serving, that route included.
        assert await welcome(client, "/healthy/ws") == "welcome"
        again = await refusal(client, "/broken/ws")
    assert (denied.status_code, denied.json()) == (500, SERVER_ERROR)
    assert (again.status_code, again.json()) == (500, SERVER_ERROR)
    assert (record.name, record.levelno, record.getMessage()) == (
        "triows",
        logging.ERROR,
        "websocket handler GuardedController.ws failed (/broken/ws from testclient:50000)",
    )
    assert record.exc_info is not None
    assert record.exc_info[1] is boom
    formatted = logging.Formatter().format(record)
    assert "Traceback (most recent call last)" in formatted
    assert "in can_activate" in formatted
    assert formatted.endswith("RuntimeError: guard broke")
    assert calls == ["raising", "handler", "raising"]
    assert len(error_records(caplog, logging.WARNING)) == 2  # once per failed connection


async def test_guard_raising_on_http_is_a_500_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[str] = []
    boom = LookupError("no such user")
    async with client_for(
        App(controllers=[open_controller(calls, Raising(boom, calls))]),
        raise_server_exceptions=False,
    ) as client:
        response = await client.get("/http")
    assert (response.status_code, response.json()) == (500, SERVER_ERROR)
    (record,) = error_records(caplog, logging.WARNING)
    assert (record.name, record.levelno, record.getMessage()) == (
        "triows",
        logging.ERROR,
        "HTTP GET /http from 127.0.0.1:123 failed",
    )
    assert record.exc_info is not None
    assert record.exc_info[1] is boom
    assert calls == ["raising"]


async def test_guard_refusals_without_the_denial_extension_are_a_plain_403() -> None:
    calls: list[str] = []
    unauthorized = Raising(HTTPException(401, headers={"WWW-Authenticate": "Bearer"}), calls)
    app = App(
        controllers=[
            open_controller(calls, Recording("guard", calls, allow=False), prefix="/refuse"),
            open_controller(calls, unauthorized, prefix="/unauthorized"),
        ]
    )
    async with client_for(app, websocket_denial_response=False) as client:
        refused = await refusal(client, "/refuse/ws")
        unauthenticated = await refusal(client, "/unauthorized/ws")
    for denied in (refused, unauthenticated):
        assert (denied.status_code, denied.headers, denied.body) == (403, [], b"")
    assert calls == ["guard", "raising"]


async def test_http_guard_refusal_is_403_json() -> None:
    calls: list[str] = []
    app = App(controllers=[open_controller(calls, Recording("guard", calls, allow=False))])
    async with client_for(app) as client:
        response = await client.get("/http")
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/json"
    assert response.content == FORBIDDEN
    assert calls == ["guard"]


# -- when guards run and what they see -------------------------------------------------------------


@pytest.mark.parametrize(("allow", "status"), [(False, 403), (True, 422)])
async def test_guards_run_before_parameters_are_validated(allow: bool, status: int) -> None:
    calls: list[str] = []

    @Controller("")
    class CountController(ControllerBase):
        @ws_route("/ws")
        @Guards(Recording("guard", calls, allow=allow))
        async def ws(self, count: int = Query()) -> None:
            calls.append("handler")

        @get("/http")
        @Guards(Recording("guard", calls, allow=allow))
        async def http(self, count: int = Query()) -> None:
            calls.append("handler")

    async with client_for(App(controllers=[CountController])) as client:
        denied = await refusal(client, "/ws?count=many")
        response = await client.get("/http?count=many")
    assert denied.status_code == response.status_code == status
    if allow:
        assert denied.json() == response.json()
        assert response.json()["detail"][0]["loc"] == ["query", "count"]
    else:
        assert denied.body == response.content == FORBIDDEN
    assert calls == ["guard", "guard"]


async def test_guard_runs_once_per_connection_not_per_message() -> None:
    calls: list[str] = []

    @Controller("")
    class EchoController(ControllerBase):
        @ws_route("/ws")
        @Guards(Recording("guard", calls))
        async def ws(self) -> None:
            calls.append("handler")
            websocket = self.context.switch_to_websocket().get_client()
            await websocket.accept()
            async for text in websocket.iter_text():
                await websocket.send_text(text.upper())

    async with client_for(App(controllers=[EchoController])) as client:
        async with client.websocket_connect("/ws") as ws:
            for word in ("one", "two", "three"):
                await ws.send_text(word)
                assert await ws.receive_text() == word.upper()
        assert calls == ["guard", "handler"]
        async with client.websocket_connect("/ws") as ws:
            await ws.send_text("four")
            assert await ws.receive_text() == "FOUR"
    assert calls == ["guard", "handler", "guard", "handler"]


class HandshakeGuard(GuardCanActivate):
    """Lets in the clients whose handshake carries ``x-token: secret``."""

    def __init__(self, seen: list[Any]) -> None:
        self.seen = seen

    async def can_activate(self, context: IExecutionContext) -> bool:
        client = context.switch_to_websocket().get_client()
        self.seen.append(
            (
                client.headers.get("x-token"),
                client.query_params.get("room"),
                client.cookies.get("session"),
                client.connection_state,
            )
        )
        return client.headers.get("x-token") == "secret"


async def test_guard_reads_the_handshake_before_accept() -> None:
    seen: list[Any] = []

    @Controller("")
    class RoomController(ControllerBase):
        @ws_route("/ws")
        @Guards(HandshakeGuard(seen))
        async def ws(self, room: int = Query()) -> None:
            websocket = self.context.switch_to_websocket().get_client()
            await websocket.accept()
            await websocket.send_text(f"room {room}")

    headers = {"x-token": "secret", "cookie": "session=abc; theme=dark"}
    async with client_for(App(controllers=[RoomController])) as client:
        assert await welcome(client, "/ws?room=42", headers=headers) == "room 42"
        denied = await refusal(client, "/ws?room=7", headers={"x-token": "guess"})
    assert (denied.status_code, denied.body) == (403, FORBIDDEN)
    assert seen == [
        ("secret", "42", "abc", WebSocketState.CONNECTING),
        ("guess", "7", None, WebSocketState.CONNECTING),
    ]


class AcceptingGuard(GuardCanActivate):
    async def can_activate(self, context: IExecutionContext) -> bool:
        await context.switch_to_websocket().get_client().accept()
        return True


async def test_guard_cannot_accept_the_connection(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []

    @Controller("")
    class AcceptController(ControllerBase):
        @ws_route("/ws")
        @Guards(AcceptingGuard)
        async def ws(self) -> None:
            calls.append("handler")

    app = App(controllers=[AcceptController])
    async with client_for(app, raise_server_exceptions=False) as client:
        denied = await refusal(client, "/ws")
    assert (denied.status_code, denied.json()) == (500, SERVER_ERROR)
    assert calls == []
    (record,) = error_records(caplog, logging.WARNING)
    assert (
        record.getMessage()
        == "websocket handler AcceptController.ws failed (/ws from testclient:50000)"
    )
    assert record.exc_info is not None
    assert type(record.exc_info[1]) is WebSocketStateError
    assert str(record.exc_info[1]) == (
        "a guard cannot accept the connection: return True and let the handler accept"
    )


class ContextGuard(GuardCanActivate):
    """Records the execution context it was given."""

    def __init__(self, seen: list[ExecutionContext]) -> None:
        self.seen = seen

    async def can_activate(self, context: IExecutionContext) -> bool:
        self.seen.append(context)
        return True


async def test_guard_gets_the_execution_context_of_the_call() -> None:
    seen: list[ExecutionContext] = []

    @Controller("/ctx")
    class ContextController(ControllerBase):
        @ws_route("/ws")
        @Guards(ContextGuard(seen))
        async def ws(self) -> None:
            websocket = self.context.switch_to_websocket().get_client()
            await websocket.accept()
            await websocket.send_json({"same": self.context is seen[-1]})

        @get("/http")
        @Guards(ContextGuard(seen))
        async def http(self) -> dict[str, bool]:
            return {"same": self.context is seen[-1]}

    async with client_for(App(controllers=[ContextController])) as client:
        async with client.websocket_connect("/ctx/ws") as ws:
            assert await ws.receive_json() == {"same": True}
        response = await client.get("/ctx/http")
    assert response.json() == {"same": True}
    ws_context, http_context = seen
    assert ws_context.get_handler() is ContextController.ws
    assert http_context.get_handler() is ContextController.http
    assert ws_context.get_class() is http_context.get_class() is ContextController
    assert (ws_context.scope_type, http_context.scope_type) == ("websocket", "http")
    assert ws_context.switch_to_websocket().get_client().url.path == "/ctx/ws"
    assert http_context.switch_to_http().get_request().url.path == "/ctx/http"
    with pytest.raises(WebSocketStateError):
        ws_context.switch_to_http()
    with pytest.raises(WebSocketStateError):
        http_context.switch_to_websocket()


# -- what @Guards accepts, and guards built by dependency injection -------------------------------


class NotAGuard:
    async def can_activate(self, context: IExecutionContext) -> bool:
        return True


@pytest.mark.parametrize("spec", [NotAGuard, NotAGuard(), "MyGuard"], ids=["class", "obj", "str"])
def test_guards_takes_only_guards(spec: Any) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Guards(spec)
    assert str(raised.value) == (
        f"@Guards takes GuardCanActivate subclasses or instances, got {spec!r}"
    )


def test_guards_without_parentheses_is_an_error() -> None:
    async def handler(self: Any) -> None:
        pass

    with pytest.raises(ConfigurationError, match=r"^@Guards takes GuardCanActivate subclasses"):
        Guards(handler)  # type: ignore[arg-type]


def test_global_guards_take_only_guards() -> None:
    with pytest.raises(ConfigurationError, match=r"^@Guards takes GuardCanActivate subclasses"):
        App(guards=[NotAGuard])


class SyncGuard(GuardCanActivate):
    def can_activate(self, context: IExecutionContext) -> bool:  # type: ignore[override]
        return True


def test_a_sync_can_activate_is_refused_when_decorating() -> None:
    # It could only ever fail at run time (`await True`): say so where it is written.
    with pytest.raises(ConfigurationError, match=r"SyncGuard.*async def"):
        Guards(SyncGuard)


@pytest.mark.parametrize(
    ("scope", "builds"),
    [
        (None, 1),  # not @injectable: a singleton, as @injectable's default
        ("request", 3),  # declared per request: built for each of the three calls
    ],
)
async def test_guard_classes_need_not_be_injectable_and_keep_their_scope(
    scope: str | None, builds: int
) -> None:
    built: list[GuardCanActivate] = []

    class PlainGuard(GuardCanActivate):
        def __init__(self) -> None:
            built.append(self)

        async def can_activate(self, context: IExecutionContext) -> bool:
            return True

    guard = PlainGuard if scope is None else injectable(scope=scope)(PlainGuard)
    calls: list[str] = []
    async with client_for(App(controllers=[open_controller(calls)], guards=[guard])) as client:
        assert await welcome(client, "/ws") == "welcome"
        assert (await client.get("/http")).text == "welcome"
        assert await welcome(client, "/ws") == "welcome"
    assert calls == ["handler", "handler", "handler"]
    assert len(built) == builds


@injectable
class TokenStore:
    def __init__(self, tokens: frozenset[str] = frozenset()) -> None:
        self.tokens = tokens


class TokenGuard(GuardCanActivate):
    """Not @injectable; its constructor is injected all the same."""

    def __init__(self, store: TokenStore) -> None:
        self.store = store

    async def can_activate(self, context: IExecutionContext) -> bool:
        token = context.switch_to_websocket().get_client().headers.get("x-token")
        return token in self.store.tokens


class Unlisted:
    pass


class NeedyGuard(GuardCanActivate):
    def __init__(self, unlisted: Unlisted) -> None:
        self.unlisted = unlisted

    async def can_activate(self, context: IExecutionContext) -> bool:
        return True


async def test_guard_constructor_dependencies_are_injected() -> None:
    calls: list[str] = []

    @Controller("")
    class TokenController(ControllerBase):
        @ws_route("/ws")
        @Guards(TokenGuard)
        async def ws(self) -> None:
            calls.append("handler")
            websocket = self.context.switch_to_websocket().get_client()
            await websocket.accept()
            await websocket.send_text("welcome")

    store = TokenStore(frozenset({"secret"}))
    app = App(controllers=[TokenController], providers=[Provider(TokenStore, use_value=store)])
    async with client_for(app) as client:
        assert await welcome(client, "/ws", headers={"x-token": "secret"}) == "welcome"
        denied = await refusal(client, "/ws", headers={"x-token": "guess"})
    assert (denied.status_code, denied.body) == (403, FORBIDDEN)
    assert calls == ["handler"]


def test_guard_with_an_unresolvable_dependency_fails_the_build() -> None:
    @Controller("")
    class NeedyController(ControllerBase):
        @ws_route("/ws")
        @Guards(NeedyGuard)
        async def ws(self) -> None:
            pass

    with pytest.raises(ConfigurationError) as raised:
        App(controllers=[NeedyController])
    assert str(raised.value) == (
        "cannot inject Unlisted into NeedyGuard (NeedyController.ws (guard) -> NeedyGuard): "
        "mark it @injectable or list it in App(providers=[...])"
    )


class _Named(GuardCanActivate):
    def __init__(self, name: str, calls: list[str]) -> None:
        self.name = name
        self.calls = calls

    async def can_activate(self, context: ExecutionContext) -> bool:
        self.calls.append(self.name)
        return True


def test_stacked_guards_decorators_run_in_reading_order() -> None:
    calls: list[str] = []

    @Controller("/")
    class StackedController(ControllerBase):
        @get("/")
        @Guards(_Named("top", calls))
        @Guards(_Named("middle", calls), _Named("middle-2", calls))
        @Guards(_Named("bottom", calls))
        async def index(self) -> str:
            return "ok"

    with TestClient(App(controllers=[StackedController])) as client:
        assert client.get("/").text == "ok"
    assert calls == ["top", "middle", "middle-2", "bottom"]
