"""Controllers, route decorators, misconfiguration errors, instances and ExecutionContext."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import trio

from triows import (
    App,
    ConfigurationError,
    Controller,
    ControllerBase,
    ExecutionContext,
    IExecutionContext,
    Request,
    WebSocket,
    WebSocketStateError,
    delete,
    get,
    patch,
    post,
    put,
    render,
    ws_route,
)
from triows.testing import AsyncTestClient, TestClient

# -- prefixes ------------------------------------------------------------------------------------


@Controller("/car")
class PrefixedController(ControllerBase):
    @get("/wheels")
    async def wheels(self):
        return "four"


@Controller
class CarController(ControllerBase):
    @get("/wheels")
    async def wheels(self):
        return "bare"


@Controller
class Garage(ControllerBase):
    @get("/doors")
    async def doors(self):
        return "two"


@Controller("bus/")
class SloppyPrefix(ControllerBase):
    @get("seats")
    async def seats(self):
        return "forty"


def test_controller_prefix() -> None:
    with TestClient(App([PrefixedController])) as client:
        response = client.get("/car/wheels")
        missing = client.get("/wheels")
    assert (response.status_code, response.text) == (200, "four")
    assert missing.status_code == 404


def test_bare_controller_derives_the_prefix_from_the_class_name() -> None:
    with TestClient(App([CarController, Garage])) as client:
        car = client.get("/car/wheels")
        garage = client.get("/garage/doors")
    assert (car.status_code, car.text) == (200, "bare")
    assert (garage.status_code, garage.text) == (200, "two")


def test_prefix_and_path_slashes_are_normalised() -> None:
    app = App([SloppyPrefix])
    assert app.url_path_for("seats") == "/bus/seats"
    with TestClient(app) as client:
        response = client.get("/bus/seats")
    assert (response.status_code, response.text) == (200, "forty")


# -- one decorator per HTTP method ---------------------------------------------------------------
@Controller("/thing")
class MethodsController(ControllerBase):
    @get("/")
    async def read(self):
        return "GET"

    @post("/")
    async def create(self):
        return "POST"

    @put("/")
    async def replace(self):
        return "PUT"

    @patch("/")
    async def update(self):
        return "PATCH"

    @delete("/")
    async def remove(self):
        return "DELETE"


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
async def test_each_method_decorator_routes_its_method(method: str) -> None:
    async with AsyncTestClient(App([MethodsController])) as client:
        response = await client.request(method, "/thing/")
    assert (response.status_code, response.text) == (200, method)


@pytest.mark.parametrize(
    ("decorator", "method"),
    [(get, "GET"), (post, "POST"), (put, "PUT"), (patch, "PATCH"), (delete, "DELETE")],
)
async def test_a_method_decorator_routes_only_its_method(
    decorator: Callable[..., Any], method: str
) -> None:
    @Controller("/only")
    class OnlyController(ControllerBase):
        @decorator("/x")
        async def handler(self):
            return "reached"

    allowed = "GET, HEAD" if method == "GET" else method
    async with AsyncTestClient(App([OnlyController])) as client:
        ok = await client.request(method, "/only/x")
        other = await client.request("OPTIONS", "/only/x")
    assert (ok.status_code, ok.text) == (200, "reached")
    assert other.status_code == 405
    assert other.headers["allow"] == allowed


def test_one_handler_may_carry_several_routes() -> None:
    @Controller("/multi")
    class MultiController(ControllerBase):
        @get("/a")
        @post("/b")
        async def handler(self, request: Request):
            return f"{request.method} {request.url.path}"

    with TestClient(App([MultiController])) as client:
        a = client.get("/multi/a")
        b = client.post("/multi/b")
        wrong = client.post("/multi/a")
    assert (a.text, b.text) == ("GET /multi/a", "POST /multi/b")
    assert wrong.status_code == 405


@Controller("/chat")
class ChatController(ControllerBase):
    @ws_route("/echo")
    async def echo(self, websocket: WebSocket):
        await websocket.accept()
        async for text in websocket.iter_text():
            await websocket.send_text(f"echo: {text}")


def test_ws_route() -> None:
    with TestClient(App([ChatController])) as client:
        with client.websocket_connect("/chat/echo") as ws:
            ws.send_text("hi")
            assert ws.receive_text() == "echo: hi"
        # A websocket route is not an HTTP route.
        response = client.get("/chat/echo")
    assert response.status_code == 404


# -- misconfiguration at decoration time ---------------------------------------------------------
@pytest.mark.parametrize(
    ("decorator", "name"),
    [
        (get("/x"), "@get"),
        (post("/x"), "@post"),
        (put("/x"), "@put"),
        (patch("/x"), "@patch"),
        (delete("/x"), "@delete"),
        (ws_route("/x"), "@ws_route"),
        (render(template_name="page.html"), "@render"),
    ],
)
def test_sync_handler_is_rejected_at_decoration(decorator: Callable[[Any], Any], name: str) -> None:
    with pytest.raises(
        ConfigurationError,
        match=rf"SyncController\.handler must be 'async def' to be used with {name}",
    ):

        class SyncController(ControllerBase):
            @decorator
            def handler(self):
                return None


def test_ws_route_without_parentheses_names_the_handler() -> None:
    with pytest.raises(
        ConfigurationError, match=r"@ws_route needs parentheses: .* above .*Bad\.live_support$"
    ):

        class Bad(ControllerBase):
            @ws_route  # type: ignore[arg-type]
            async def live_support(self):
                pass


@pytest.mark.parametrize(("decorator", "name"), [(get, "get"), (post, "post"), (delete, "delete")])
def test_http_decorator_without_parentheses_names_the_handler(
    decorator: Callable[..., Any], name: str
) -> None:
    with pytest.raises(
        ConfigurationError, match=rf"@{name} needs parentheses: .* above .*Bad\.index$"
    ):

        class Bad(ControllerBase):
            @decorator
            async def index(self):
                return None


def test_render_without_parentheses_names_the_handler() -> None:
    with pytest.raises(ConfigurationError, match=r"@render needs a template name.*Bad\.page$"):

        class Bad(ControllerBase):
            @render  # type: ignore[arg-type]
            async def page(self):
                return {}


def test_unknown_ws_encoding_names_the_handler() -> None:
    with pytest.raises(ConfigurationError, match=r"unknown encoding 'xml'") as raised:

        class XmlController(ControllerBase):
            @ws_route("/feed", encoding="xml")  # type: ignore[arg-type]
            async def feed(self):
                pass

    assert "XmlController.feed" in str(raised.value)


def test_controller_decorates_only_classes() -> None:
    async def not_a_class():
        pass

    with pytest.raises(ConfigurationError, match="@Controller decorates a class"):
        Controller("/x")(not_a_class)  # type: ignore[type-var]


# -- misconfiguration at App-build time ----------------------------------------------------------
def same_websocket_path_in_two_controllers() -> list[type]:
    @Controller("/car")
    class FirstController(ControllerBase):
        @ws_route("/live")
        async def live(self):
            pass

    @Controller("/car")
    class SecondController(ControllerBase):
        @ws_route("/live")
        async def support(self):
            pass

    return [FirstController, SecondController]


def same_get_path_twice() -> list[type]:
    @Controller("/car")
    class TwiceController(ControllerBase):
        @get("/{id:int}")
        async def first(self, id: int):
            return id

        @get("/{number:int}")
        async def second(self, number: int):
            return number

    return [TwiceController]


def class_without_controller_decorator() -> list[type]:
    class PlainController(ControllerBase):
        @get("/")
        async def index(self):
            return None

    return [PlainController]


def subclass_without_its_own_decorator() -> list[type]:
    @Controller("/base")
    class BaseController(ControllerBase):
        @get("/")
        async def index(self):
            return None

    class ChildController(BaseController):
        pass

    return [ChildController]


def render_on_a_websocket_route() -> list[type]:
    @Controller("/r")
    class RenderWsController(ControllerBase):
        @ws_route("/live")
        @render(template_name="page.html")
        async def live(self):
            pass

    return [RenderWsController]


def extra_handler_without_a_ws_body_parameter() -> list[type]:
    @Controller("/x")
    class ExtraController(ControllerBase):
        @ws_route("/feed", use_extra_handler=True, encoding="text")
        async def feed(self, message: str = ""):
            pass

    return [ExtraController]


def parameter_without_a_source() -> list[type]:
    @Controller("/x")
    class SourcelessController(ControllerBase):
        @get("/{id:int}")
        async def item(self, id: int, user: User):
            return id

    return [SourcelessController]


def websocket_parameter_on_an_http_route() -> list[type]:
    @Controller("/x")
    class WrongConnectionController(ControllerBase):
        @get("/")
        async def index(self, websocket: WebSocket):
            return None

    return [WrongConnectionController]


#: Controllers that must not make an app, each with the build error's message (a regex).
APP_BUILD_ERRORS = [
    pytest.param(
        same_websocket_path_in_two_controllers,
        r"websocket route '/car/live' is registered twice: "
        r"by FirstController\.live and by SecondController\.support",
        id="same-websocket-path-in-two-controllers",
    ),
    pytest.param(
        same_get_path_twice,
        r"http route 'GET, HEAD /car/\{number:int\}' is registered twice: "
        r"by TwiceController\.first and by TwiceController\.second",
        id="same-GET-path-twice",
    ),
    pytest.param(
        class_without_controller_decorator,
        r"'PlainController' is listed .* not decorated with @Controller",
        id="class-without-@Controller",
    ),
    pytest.param(
        subclass_without_its_own_decorator,
        r"'ChildController' is listed",
        id="subclass-without-its-own-@Controller",
    ),
    pytest.param(
        lambda: [ChatController, ChatController],
        r"ChatController is listed twice in controllers",
        id="controller-listed-twice",
    ),
    pytest.param(
        render_on_a_websocket_route,
        r"RenderWsController\.live: @render cannot decorate a websocket route",
        id="@render-on-a-websocket-route",
    ),
    pytest.param(
        extra_handler_without_a_ws_body_parameter,
        r"ExtraController\.feed: a use_extra_handler=True route receives each message in "
        r"a WsBody\(\) parameter",
        id="use_extra_handler-without-WsBody",
    ),
    pytest.param(
        parameter_without_a_source,
        r"SourcelessController\.item: parameter 'user' has no source",
        id="parameter-without-a-source",
    ),
    pytest.param(
        websocket_parameter_on_an_http_route,
        r"WrongConnectionController\.index: parameter 'websocket' is a WebSocket, "
        r"but this is a http route",
        id="WebSocket-on-an-http-route",
    ),
]


@pytest.mark.parametrize(("controllers", "message"), APP_BUILD_ERRORS)
def test_a_misconfigured_app_fails_to_build(
    controllers: Callable[[], list[Any]], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        App(controllers())


def test_same_path_with_other_methods_is_fine() -> None:
    @Controller("/car")
    class CrudController(ControllerBase):
        @get("/{id:int}")
        async def read(self, id: int):
            return {"read": id}

        @delete("/{id:int}")
        async def remove(self, id: int):
            return {"deleted": id}

    with TestClient(App([CrudController])) as client:
        read = client.get("/car/4")
        removed = client.delete("/car/4")
        other = client.put("/car/4")
    assert read.json() == {"read": 4}
    assert removed.json() == {"deleted": 4}
    assert other.status_code == 405
    assert other.headers["allow"] == "DELETE, GET, HEAD"


def test_render_with_a_missing_template(tmp_path: Any) -> None:
    @Controller("/r")
    class MissingTemplateController(ControllerBase):
        @get("/")
        @render(template_name="no-such-page.html")
        async def page(self):
            return {}

    with pytest.raises(
        ConfigurationError,
        match=r"MissingTemplateController\.page renders 'no-such-page\.html', which is not in ",
    ) as raised:
        App([MissingTemplateController], template_folder=tmp_path)
    assert str(tmp_path) in str(raised.value)


def test_render_without_any_template_folder_names_the_handler() -> None:
    @Controller("/r")
    class NoTemplatesController(ControllerBase):
        # A module that does not exist has no 'templates' folder beside it.
        __module__ = "triows_tests_module_without_templates"

        @get("/")
        @render(template_name="page.html")
        async def page(self):
            return {}

    with pytest.raises(ConfigurationError, match="no templates") as raised:
        App([NoTemplatesController])
    assert "NoTemplatesController.page" in str(raised.value)


class User:
    """Neither a scalar, a model, nor injectable: a parameter of this type has no source."""


def test_parameter_with_a_default_needs_no_source() -> None:
    @Controller("/x")
    class DefaultController(ControllerBase):
        @get("/")
        async def index(self, limit: int = 10):
            return limit

    with TestClient(App([DefaultController])) as client:
        assert client.get("/x/").json() == 10


def test_unknown_converter_in_a_route_names_the_handler() -> None:
    @Controller("/x")
    class SlugController(ControllerBase):
        @get("/{title:slug}")
        async def post_by_slug(self, title: str):
            return title

    with pytest.raises(ConfigurationError, match="unknown converter 'slug'") as raised:
        App([SlugController])
    assert "SlugController.post_by_slug" in str(raised.value)


# -- inheritance ---------------------------------------------------------------------------------
class PingMixin:
    @get("/ping")
    async def ping(self):
        return f"pong from {type(self).__name__}"


class EchoBase(ControllerBase):
    @ws_route("/echo")
    async def echo(self, websocket: WebSocket):
        await websocket.accept()
        await websocket.send_text(f"echo from {type(self).__name__}")

    @get("/hidden")
    async def hidden(self):
        return "the base route"

    @get("/moved")
    async def moved(self):
        return "old place"


@Controller("/svc")
class ServiceController(PingMixin, EchoBase):
    async def hidden(self):  # undecorated: the route is gone
        return "a plain method"

    @get("/moved-here")
    async def moved(self):
        return "new place"


def test_routes_are_inherited_from_mixins_and_bases() -> None:
    app = App([ServiceController])
    assert app.url_path_for("ServiceController.ping") == "/svc/ping"
    with TestClient(app) as client:
        ping = client.get("/svc/ping")
        with client.websocket_connect("/svc/echo") as ws:
            echoed = ws.receive_text()
        hidden = client.get("/svc/hidden")
        old = client.get("/svc/moved")
        new = client.get("/svc/moved-here")
    assert (ping.status_code, ping.text) == (200, "pong from ServiceController")
    assert echoed == "echo from ServiceController"
    assert hidden.status_code == 404
    assert old.status_code == 404
    assert (new.status_code, new.text) == (200, "new place")


def test_a_mixin_route_serves_each_controller_using_it() -> None:
    @Controller("/one")
    class OneController(PingMixin, ControllerBase):
        pass

    @Controller("/two")
    class TwoController(PingMixin, ControllerBase):
        pass

    app = App([OneController, TwoController])
    assert app.url_path_for("OneController.ping") == "/one/ping"
    assert app.url_path_for("TwoController.ping") == "/two/ping"
    with TestClient(app) as client:
        assert client.get("/one/ping").text == "pong from OneController"
        assert client.get("/two/ping").text == "pong from TwoController"


# -- one controller instance per request or connection -------------------------------------------
async def test_fresh_instance_per_request() -> None:
    instances: list[Any] = []

    @Controller("/fresh")
    class FreshController(ControllerBase):
        def __init__(self) -> None:
            self.calls = 0

        @get("/")
        async def index(self):
            self.calls += 1
            instances.append(self)
            return self.calls

    async with AsyncTestClient(App([FreshController])) as client:
        first = await client.get("/fresh/")
        second = await client.get("/fresh/")
    # A shared instance would have counted to 2.
    assert (first.json(), second.json()) == (1, 1)
    assert len(instances) == 2
    assert instances[0] is not instances[1]
    assert all(type(instance) is FreshController for instance in instances)


async def test_concurrent_connections_each_have_their_own_instance_and_context() -> None:
    seen: list[tuple[Any, WebSocket]] = []

    @Controller("/room")
    class RoomController(ControllerBase):
        @ws_route("/{who}")
        async def join(self, websocket: WebSocket, who: str):
            seen.append((self, websocket))
            await websocket.accept()
            await websocket.receive_text()  # both connections are open by now
            client = self.context.switch_to_websocket().get_client()
            await websocket.send_json(
                {
                    "who": who,
                    "context_who": client.path_params["who"],
                    "own_websocket": client is websocket,
                }
            )

    with trio.fail_after(5):
        async with (
            AsyncTestClient(App([RoomController])) as client,
            client.websocket_connect("/room/alice") as alice,
            client.websocket_connect("/room/bob") as bob,
        ):
            await alice.send_text("go")
            assert await alice.receive_json() == {
                "who": "alice",
                "context_who": "alice",
                "own_websocket": True,
            }
            await bob.send_text("go")
            assert await bob.receive_json() == {
                "who": "bob",
                "context_who": "bob",
                "own_websocket": True,
            }
    assert len(seen) == 2
    (first, first_ws), (second, second_ws) = seen
    assert first is not second
    assert first_ws is not second_ws


def test_context_outside_a_handler() -> None:
    with pytest.raises(RuntimeError, match=r"ServiceController\.context is set only while"):
        _ = ServiceController().context


# -- ExecutionContext ----------------------------------------------------------------------------
def test_execution_context_in_an_http_handler() -> None:
    seen: dict[str, Any] = {}

    @Controller("/ctx")
    class ContextController(ControllerBase):
        @get("/")
        async def http_handler(self, request: Request, context: ExecutionContext):
            seen["request"] = request
            seen["param_context"] = context
            seen["context"] = self.context
            seen["switched"] = self.context.switch_to_http().get_request()
            with pytest.raises(WebSocketStateError, match="switch_to_websocket"):
                self.context.switch_to_websocket()
            seen["wrong_switch_checked"] = True
            return "ok"

    with TestClient(App([ContextController])) as client:
        response = client.get("/ctx/")
    assert response.text == "ok"
    context = seen["context"]
    assert isinstance(context, ExecutionContext)
    assert context is seen["param_context"]
    assert seen["switched"] is seen["request"]
    assert isinstance(seen["request"], Request)
    assert seen["wrong_switch_checked"] is True
    assert context.scope_type == "http"
    assert context.get_class() is ContextController
    assert context.get_handler() is ContextController.__dict__["http_handler"]


def test_execution_context_in_a_websocket_handler() -> None:
    seen: dict[str, Any] = {}

    @Controller("/ctx")
    class WsContextController(ControllerBase):
        @ws_route("/live")
        async def live(self, websocket: WebSocket, context: IExecutionContext):
            seen["websocket"] = websocket
            seen["param_context"] = context
            seen["context"] = self.context
            seen["client"] = self.context.switch_to_websocket().get_client()
            with pytest.raises(WebSocketStateError, match="switch_to_http"):
                self.context.switch_to_http()
            seen["wrong_switch_checked"] = True
            await websocket.accept()
            await websocket.send_text("ok")

    with (
        TestClient(App([WsContextController])) as client,
        client.websocket_connect("/ctx/live") as ws,
    ):
        assert ws.receive_text() == "ok"
    context = seen["context"]
    assert context is seen["param_context"]
    assert seen["client"] is seen["websocket"]
    assert isinstance(seen["websocket"], WebSocket)
    assert seen["wrong_switch_checked"] is True
    assert context.scope_type == "websocket"
    assert context.get_class() is WsContextController
    assert context.get_handler() is WsContextController.__dict__["live"]


def test_wrong_switch_raises_a_runtime_error() -> None:
    assert issubclass(WebSocketStateError, RuntimeError)


def test_iexecutioncontext_is_executioncontext() -> None:
    assert IExecutionContext is ExecutionContext


def test_a_controller_must_derive_from_controller_base() -> None:
    class Plain:
        @get("/x")
        async def x(self) -> dict[str, str]:
            return {}

    with pytest.raises(ConfigurationError) as raised:
        Controller("/plain")(Plain)
    assert str(raised.value) == (
        "@Controller class test_a_controller_must_derive_from_controller_base.<locals>.Plain "
        "must derive from ControllerBase (class Plain(ControllerBase): ...), which gives its "
        "handlers self.context"
    )
