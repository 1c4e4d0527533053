"""Dependency injection (triows/di.py): scopes, recursive constructor injection, providers,
overrides in tests, and the misconfigurations that fail the build with the chain named.

Services that handlers, controllers or guards annotate live at module level (annotations are
resolved with ``get_type_hints``). What a handler saw is either sent back to the test or kept in
a :class:`Journal`, a plain class each test provides by value, so nothing leaks between tests.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
from support import TIMEOUT, client_for

from triows import (
    App,
    ConfigurationError,
    Controller,
    ControllerBase,
    GuardCanActivate,
    Guards,
    IExecutionContext,
    Inject,
    Provider,
    get,
    injectable,
    ws_route,
)
from triows.testing import Test, TestClient


class Journal:
    """Not @injectable: tests provide one with ``Provider(Journal, use_value=...)``."""

    def __init__(self) -> None:
        self.seen: list[Any] = []


def journal_provider(journal: Journal) -> Provider:
    return Provider(Journal, use_value=journal)


# -- services --------------------------------------------------------------------------------------


@injectable
class HitCounter:
    def __init__(self) -> None:
        self.hits = 0

    def hit(self) -> int:
        self.hits += 1
        return self.hits


@injectable(scope="request")
class RequestState:
    def __init__(self) -> None:
        self.marks: list[str] = []


@injectable(scope="request")
class RequestUser:
    """A request-scoped service that depends on another one."""

    def __init__(self, state: RequestState) -> None:
        self.state = state
        state.marks.append("dependent")


@injectable(scope="request")
class RequestGuard(GuardCanActivate):
    def __init__(self, state: RequestState) -> None:
        self.state = state

    async def can_activate(self, context: IExecutionContext) -> bool:
        self.state.marks.append("guard")
        return True


@injectable(scope="transient")
class Fresh:
    pass


@injectable(scope="request")
class PerRequestHits:
    def __init__(self, counter: HitCounter) -> None:
        self.counter = counter


@injectable(scope="transient")
class FreshHits:
    def __init__(self, counter: HitCounter) -> None:
        self.counter = counter


# A needs B needs C; none is listed in providers.
@injectable
class Leaf:
    def __init__(self, journal: Journal) -> None:
        journal.seen.append(self)


@injectable
class Middle:
    def __init__(self, leaf: Leaf) -> None:
        self.leaf = leaf


@injectable
class Top:
    def __init__(self, middle: Middle, retries: int = 3) -> None:
        self.middle = middle
        self.retries = retries


class Greeter:
    """Not @injectable: injectable only when listed in providers."""

    def greet(self) -> str:
        return "hello"


class Clock:
    """A token provided by ``use_class``."""

    def now(self) -> str:
        raise NotImplementedError


class FixedClock(Clock):
    def __init__(self, counter: HitCounter) -> None:
        self.counter = counter

    def now(self) -> str:
        return "12:00"


class Settings:
    """A token provided by ``use_value``."""

    def __init__(self, name: str) -> None:
        self.name = name


# -- services that cannot be built ---------------------------------------------------------------


@injectable
class CycleA:
    def __init__(self, b: CycleB) -> None:
        self.b = b


@injectable
class CycleB:
    def __init__(self, a: CycleA) -> None:
        self.a = a


@injectable
class SelfLoop:
    def __init__(self, again: SelfLoop) -> None:
        self.again = again


@injectable
class NeedsGreeter:
    def __init__(self, greeter: Greeter) -> None:
        self.greeter = greeter


@injectable
class NeedsUnannotated:
    def __init__(self, thing) -> None:
        self.thing = thing


@injectable
class SessionCache:
    """A singleton holding a request-scoped service: the captive dependency."""

    def __init__(self, state: RequestState) -> None:
        self.state = state


@injectable
class CaptiveGuard(GuardCanActivate):
    """A guard is a singleton unless marked otherwise: it cannot hold a request service."""

    def __init__(self, state: RequestState) -> None:
        self.state = state

    async def can_activate(self, context: IExecutionContext) -> bool:
        return True


# Two distinct classes with the same __name__, as `db.Client` and `http.Client` would be.
class Http:
    @injectable
    class Client:
        pass


class Db:
    @injectable
    class Client:
        def __init__(self, http: Http.Client) -> None:
            self.http = http


# -- services overridden in tests ----------------------------------------------------------------


@injectable
class Mailer:
    def send(self) -> str:
        return "real"


class FakeMailer:
    def __init__(self, label: str = "fake class") -> None:
        self.label = label

    def send(self) -> str:
        return self.label


@injectable
class Notifier:
    def __init__(self, mailer: Mailer) -> None:
        self.mailer = mailer


class FakeRequestState:
    """Unmarked: overriding a request-scoped token with it keeps the token's scope."""

    def __init__(self) -> None:
        self.marks = ["fake"]


# -- @injectable -----------------------------------------------------------------------------------


def test_injectable_returns_the_class_itself() -> None:
    class Plain:
        pass

    assert injectable(Plain) is Plain
    assert injectable(scope="transient")(Plain) is Plain


def test_unknown_scope_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError) as raised:
        injectable(scope="session")
    assert str(raised.value) == (
        "@injectable: unknown scope 'session'; use one of ['request', 'singleton', 'transient']"
    )


def test_injectable_decorates_classes_only() -> None:
    async def handler() -> None:
        pass

    with pytest.raises(ConfigurationError, match=r"^@injectable decorates a class, got <function"):
        injectable(handler)


def test_providers_take_classes_or_provider_entries() -> None:
    with pytest.raises(ConfigurationError) as raised:
        App(providers=["Greeter"])
    assert str(raised.value) == "providers=[...] takes classes or Provider(...), got 'Greeter'"


# -- singleton -------------------------------------------------------------------------------------


@Controller("/single")
class SingletonController(ControllerBase):
    def __init__(self, counter: HitCounter) -> None:
        self.counter = counter

    @get("/")
    async def http(self, counter: HitCounter, same: Inject[HitCounter]) -> dict[str, Any]:
        return {"hits": counter.hit(), "same": counter is same is self.counter}

    @ws_route("/ws")
    async def ws(self, counter: HitCounter, same: Inject[HitCounter]) -> None:
        websocket = self.context.switch_to_websocket().get_client()
        await websocket.accept()
        await websocket.send_json({"hits": counter.hit(), "same": counter is same is self.counter})
        await websocket.receive_text()  # until the client leaves


async def test_singleton_is_shared_across_requests_and_connections() -> None:
    async with client_for(App(controllers=[SingletonController])) as client:
        first = await client.get("/single/")
        async with client.websocket_connect("/single/ws") as one:
            assert await one.receive_json() == {"hits": 2, "same": True}
            async with client.websocket_connect("/single/ws") as two:  # both open at once
                assert await two.receive_json() == {"hits": 3, "same": True}
        last = await client.get("/single/")
    assert first.status_code == last.status_code == 200
    assert first.json() == {"hits": 1, "same": True}
    assert last.json() == {"hits": 4, "same": True}


async def test_each_app_has_its_own_singletons() -> None:
    async with client_for(App(controllers=[SingletonController])) as client:
        assert (await client.get("/single/")).json() == {"hits": 1, "same": True}
    async with client_for(App(controllers=[SingletonController])) as client:
        assert (await client.get("/single/")).json() == {"hits": 1, "same": True}


# -- request scope ---------------------------------------------------------------------------------

#: Every injection point of one request/connection touched the same RequestState once.
ONE_REQUEST = {"marks": ["controller", "dependent", "guard"], "same": True}


@Controller("/scoped")
@Guards(RequestGuard)
class RequestScopeController(ControllerBase):
    def __init__(self, state: RequestState, journal: Journal) -> None:
        self.state = state
        self.journal = journal
        state.marks.append("controller")

    def report(self, state: RequestState, same: RequestState, user: RequestUser) -> dict[str, Any]:
        self.journal.seen.append(state)
        return {
            "marks": sorted(state.marks),
            "same": state is same is self.state is user.state,
        }

    @get("/")
    async def http(
        self, state: RequestState, same: Inject[RequestState], user: RequestUser
    ) -> dict[str, Any]:
        return self.report(state, same, user)

    @ws_route("/ws")
    async def ws(self, state: RequestState, same: Inject[RequestState], user: RequestUser) -> None:
        websocket = self.context.switch_to_websocket().get_client()
        await websocket.accept()
        await websocket.send_json(self.report(state, same, user))
        await websocket.receive_text()  # until the client leaves


async def test_request_scope_is_one_instance_per_websocket_connection() -> None:
    journal = Journal()
    app = App(controllers=[RequestScopeController], providers=[journal_provider(journal)])
    async with (
        client_for(app) as client,
        client.websocket_connect("/scoped/ws") as one,
        client.websocket_connect("/scoped/ws") as two,
    ):
        # Both connections are open at once: each has its own instance, shared by its guard,
        # controller, handler parameters and the service depending on it.
        assert await one.receive_json() == ONE_REQUEST
        assert await two.receive_json() == ONE_REQUEST
    first, second = journal.seen
    assert first is not second


async def test_request_scope_is_one_instance_per_http_request() -> None:
    journal = Journal()
    app = App(controllers=[RequestScopeController], providers=[journal_provider(journal)])
    async with client_for(app) as client:
        responses = [await client.get("/scoped/"), await client.get("/scoped/")]
    assert [r.status_code for r in responses] == [200, 200]
    assert [r.json() for r in responses] == [ONE_REQUEST, ONE_REQUEST]
    first, second = journal.seen
    assert first is not second


# -- transient -------------------------------------------------------------------------------------


@Controller("/fresh")
class TransientController(ControllerBase):
    def __init__(self, fresh: Fresh, journal: Journal) -> None:
        self.fresh = fresh
        self.journal = journal

    @get("/")
    async def http(self, a: Fresh, b: Inject[Fresh]) -> int:
        self.journal.seen.extend([a, b, self.fresh])
        return len(self.journal.seen)

    @ws_route("/ws")
    async def ws(self, a: Fresh, b: Inject[Fresh]) -> None:
        self.journal.seen.extend([a, b, self.fresh])
        websocket = self.context.switch_to_websocket().get_client()
        await websocket.accept()
        await websocket.send_json(len(self.journal.seen))


async def test_transient_is_a_fresh_instance_at_each_injection_point() -> None:
    journal = Journal()
    app = App(controllers=[TransientController], providers=[journal_provider(journal)])
    async with client_for(app) as client:
        assert (await client.get("/fresh/")).json() == 3
        assert (await client.get("/fresh/")).json() == 6
        async with client.websocket_connect("/fresh/ws") as ws:
            assert await ws.receive_json() == 9
    assert all(type(seen) is Fresh for seen in journal.seen)
    # All kept alive by the journal, so equal ids would mean one shared instance.
    assert len({id(seen) for seen in journal.seen}) == 9


# -- recursive constructor injection and providers ------------------------------------------------


@Controller("/tree")
class TreeController(ControllerBase):
    @get("/")
    async def show(self, top: Top, leaf: Leaf) -> dict[str, Any]:
        return {
            "chain": [type(o).__name__ for o in (top, top.middle, top.middle.leaf)],
            "shared_leaf": top.middle.leaf is leaf,
            "retries": top.retries,
        }


async def test_recursive_constructor_injection_built_on_first_use() -> None:
    journal = Journal()
    app = App(controllers=[TreeController], providers=[journal_provider(journal)])
    assert journal.seen == []  # planned at build, built on first use
    async with client_for(app) as client:
        first = await client.get("/tree/")
        second = await client.get("/tree/")
    assert (
        first.json()
        == second.json()
        == {
            "chain": ["Top", "Middle", "Leaf"],
            "shared_leaf": True,
            "retries": 3,  # an unknown parameter with a default keeps its default
        }
    )
    assert len(journal.seen) == 1  # singletons all the way down: built once


@Controller("/providers")
class ProvidersController(ControllerBase):
    @get("/")
    async def show(
        self, greeter: Greeter, clock: Clock, settings: Inject[Settings], journal: Journal
    ) -> dict[str, Any]:
        journal.seen.append(clock)
        return {
            "greeting": greeter.greet(),
            "clock": type(clock).__name__,
            "now": clock.now(),
            "clock_counter": type(clock.counter).__name__,
            "settings": settings.name,
        }


async def test_listed_classes_use_value_and_use_class_providers() -> None:
    journal = Journal()
    settings = Settings("production")
    app = App(
        controllers=[ProvidersController],
        providers=[
            Greeter,  # a plain class, injectable because it is listed
            Provider(Clock, use_class=FixedClock),
            Provider(Settings, use_value=settings),
            journal_provider(journal),
        ],
    )
    async with client_for(app) as client:
        responses = [await client.get("/providers/"), await client.get("/providers/")]
    assert [r.json() for r in responses] == 2 * [
        {
            "greeting": "hello",
            "clock": "FixedClock",
            "now": "12:00",
            "clock_counter": "HitCounter",
            "settings": "production",
        }
    ]
    first, second = journal.seen
    assert first is second  # use_class providers are singletons by default


async def test_use_value_provider_injects_that_very_object() -> None:
    settings = Settings("production")

    @Controller("/")
    class SettingsController(ControllerBase):
        def __init__(self, settings: Settings) -> None:
            self.settings = settings

        @get("/")
        async def show(self, journal: Journal) -> str:
            journal.seen.append(self.settings)
            return self.settings.name

    journal = Journal()
    app = App(
        controllers=[SettingsController],
        providers=[Provider(Settings, use_value=settings), journal_provider(journal)],
    )
    async with client_for(app) as client:
        assert (await client.get("/")).text == "production"
    assert journal.seen == [settings]
    assert journal.seen[0] is settings


async def test_providers_listed_later_win() -> None:
    @Controller("/")
    class SettingsController(ControllerBase):
        @get("/")
        async def show(self, settings: Settings) -> str:
            return settings.name

    app = App(
        controllers=[SettingsController],
        providers=[
            Provider(Settings, use_value=Settings("first")),
            Provider(Settings, use_value=Settings("second")),
        ],
    )
    async with client_for(app) as client:
        assert (await client.get("/")).text == "second"


def test_plain_class_not_listed_is_not_injected() -> None:
    @Controller("/")
    class GreeterController(ControllerBase):
        @get("/")
        async def show(self, greeter: Greeter) -> str:
            return greeter.greet()

    with pytest.raises(ConfigurationError, match=r"parameter 'greeter' has no source"):
        App(controllers=[GreeterController])


def test_inject_marker_on_a_plain_class_not_listed_fails_the_build() -> None:
    @Controller("/")
    class GreeterController(ControllerBase):
        @get("/")
        async def show(self, greeter: Inject[Greeter]) -> str:
            return greeter.greet()

    owner = GreeterController.show.__qualname__
    with pytest.raises(ConfigurationError) as raised:
        App(controllers=[GreeterController])
    assert str(raised.value) == (
        f"cannot inject Greeter into {owner} ({owner}): "
        "mark it @injectable or list it in App(providers=[...])"
    )


async def test_same_named_classes_are_not_a_cycle() -> None:
    @Controller("/")
    class ClientController(ControllerBase):
        @get("/")
        async def show(self, client: Db.Client) -> str:
            return type(client.http).__qualname__

    app = App(controllers=[ClientController])
    async with client_for(app) as client:
        response = await client.get("/")
    assert response.status_code == 200
    assert response.text == "Http.Client"


# -- build-time errors -----------------------------------------------------------------------------


def test_dependency_cycle_fails_the_build_with_the_chain() -> None:
    @Controller("/")
    class CycleController(ControllerBase):
        @get("/")
        async def show(self, a: CycleA) -> None:
            pass

    with pytest.raises(ConfigurationError) as raised:
        App(controllers=[CycleController])
    owner = CycleController.show.__qualname__
    assert str(raised.value) == f"dependency cycle: {owner} -> CycleA -> CycleB -> CycleA"


def test_dependency_cycle_through_a_controller_constructor() -> None:
    @Controller("/")
    class CycleController(ControllerBase):
        def __init__(self, b: CycleB) -> None:
            self.b = b

        @get("/")
        async def show(self) -> None:
            pass

    with pytest.raises(ConfigurationError) as raised:
        App(controllers=[CycleController])
    assert str(raised.value) == "dependency cycle: CycleController -> CycleB -> CycleA -> CycleB"


def test_a_service_needing_itself_is_a_cycle() -> None:
    @Controller("/")
    class LoopController(ControllerBase):
        @ws_route("/ws")
        async def ws(self, loop: Inject[SelfLoop]) -> None:
            pass

    with pytest.raises(ConfigurationError) as raised:
        App(controllers=[LoopController])
    owner = LoopController.ws.__qualname__
    assert str(raised.value) == f"dependency cycle: {owner} -> SelfLoop -> SelfLoop"


def test_constructor_parameter_of_a_non_injectable_class_fails_the_build() -> None:
    @Controller("/")
    class NeedsController(ControllerBase):
        @get("/")
        async def show(self, needs: NeedsGreeter) -> None:
            pass

    with pytest.raises(ConfigurationError) as raised:
        App(controllers=[NeedsController])
    owner = NeedsController.show.__qualname__
    assert str(raised.value) == (
        f"cannot inject Greeter into NeedsGreeter ({owner} -> NeedsGreeter): "
        "mark it @injectable or list it in App(providers=[...])"
    )


async def test_the_same_class_builds_once_it_is_listed() -> None:
    @Controller("/")
    class NeedsController(ControllerBase):
        @get("/")
        async def show(self, needs: NeedsGreeter) -> str:
            return needs.greeter.greet()

    async with client_for(App(controllers=[NeedsController], providers=[Greeter])) as client:
        assert (await client.get("/")).text == "hello"


def test_unannotated_constructor_parameter_fails_the_build() -> None:
    @Controller("/")
    class NeedsController(ControllerBase):
        @get("/")
        async def show(self, needs: NeedsUnannotated) -> None:
            pass

    with pytest.raises(ConfigurationError) as raised:
        App(controllers=[NeedsController])
    owner = NeedsController.show.__qualname__
    assert str(raised.value) == (
        f"{owner} -> NeedsUnannotated: constructor parameter 'thing' needs a class annotation "
        "to be injected"
    )


def test_controller_constructor_parameter_that_cannot_be_injected_fails_the_build() -> None:
    @Controller("/")
    class PlainController(ControllerBase):
        def __init__(self, greeter: Greeter) -> None:
            self.greeter = greeter

        @get("/")
        async def show(self) -> None:
            pass

    with pytest.raises(ConfigurationError) as raised:
        App(controllers=[PlainController])
    assert str(raised.value) == (
        "cannot inject Greeter into PlainController (PlainController): "
        "mark it @injectable or list it in App(providers=[...])"
    )


def test_singleton_depending_on_a_request_service_is_a_captive_dependency() -> None:
    @Controller("/")
    class CacheController(ControllerBase):
        @get("/")
        async def show(self, cache: SessionCache) -> None:
            pass

    with pytest.raises(ConfigurationError) as raised:
        App(controllers=[CacheController])
    owner = CacheController.show.__qualname__
    assert str(raised.value) == (
        f"{owner} -> SessionCache: a singleton cannot depend on the request-scoped "
        "RequestState (the first request's instance would serve all)"
    )


def test_default_singleton_guard_cannot_hold_a_request_service() -> None:
    @Controller("/")
    class GuardedController(ControllerBase):
        @ws_route("/ws")
        @Guards(CaptiveGuard)
        async def ws(self) -> None:
            pass

    with pytest.raises(ConfigurationError) as raised:
        App(controllers=[GuardedController])
    assert str(raised.value) == (
        "GuardedController.ws (guard) -> CaptiveGuard: a singleton cannot depend on the "
        "request-scoped RequestState (the first request's instance would serve all)"
    )


async def test_request_and_transient_services_may_hold_singletons() -> None:
    @Controller("/")
    class CountController(ControllerBase):
        @get("/")
        async def show(self, per_request: PerRequestHits, fresh: FreshHits) -> int:
            assert per_request.counter is fresh.counter
            return per_request.counter.hit()

    async with client_for(App(controllers=[CountController])) as client:
        responses = [await client.get("/"), await client.get("/")]
    assert [(r.status_code, r.json()) for r in responses] == [(200, 1), (200, 2)]


# -- overrides in tests ----------------------------------------------------------------------------


@Controller("/mail")
class MailController(ControllerBase):
    @get("/")
    async def http(self, mailer: Mailer, notifier: Notifier) -> dict[str, str]:
        return {"direct": mailer.send(), "via": notifier.mailer.send()}

    @ws_route("/ws")
    async def ws(self, mailer: Inject[Mailer]) -> None:
        websocket = self.context.switch_to_websocket().get_client()
        await websocket.accept()
        await websocket.send_text(mailer.send())


async def mail_seen(module: Any) -> tuple[dict[str, str], str]:
    """What the HTTP and the websocket handler of ``MailController`` got as their Mailer."""
    with trio.fail_after(TIMEOUT):
        async with module.get_async_client(timeout=TIMEOUT) as client:
            response = await client.get("/mail/")
            assert response.status_code == 200
            async with client.websocket_connect("/mail/ws") as ws:
                text = await ws.receive_text()
    return response.json(), text


async def test_without_override_the_real_provider_is_used() -> None:
    module = Test.create_test_module(controllers=[MailController])
    assert await mail_seen(module) == ({"direct": "real", "via": "real"}, "real")


async def test_override_provider_with_a_value() -> None:
    module = Test.create_test_module(controllers=[MailController])
    returned = module.override_provider(Mailer, use_value=FakeMailer("fake value"))
    assert returned is module
    assert await mail_seen(module) == ({"direct": "fake value", "via": "fake value"}, "fake value")


async def test_override_provider_with_a_class() -> None:
    module = Test.create_test_module(controllers=[MailController]).override_provider(
        Mailer, use_class=FakeMailer
    )
    assert await mail_seen(module) == ({"direct": "fake class", "via": "fake class"}, "fake class")


async def test_override_replaces_a_listed_provider() -> None:
    module = Test.create_test_module(
        controllers=[MailController], providers=[Provider(Mailer, use_value=FakeMailer("listed"))]
    ).override_provider(Mailer, use_value=FakeMailer("override"))
    assert await mail_seen(module) == ({"direct": "override", "via": "override"}, "override")


async def test_override_with_a_class_keeps_the_tokens_scope() -> None:
    journal = Journal()

    @Controller("/")
    class StateController(ControllerBase):
        def __init__(self, state: RequestState) -> None:
            self.state = state

        @get("/")
        async def show(self, state: RequestState) -> dict[str, Any]:
            journal.seen.append(state)
            return {"marks": state.marks, "same": state is self.state}

    module = Test.create_test_module(controllers=[StateController]).override_provider(
        RequestState, use_class=FakeRequestState
    )
    with trio.fail_after(TIMEOUT):
        async with module.get_async_client(timeout=TIMEOUT) as client:
            responses = [await client.get("/"), await client.get("/")]
    assert [r.json() for r in responses] == 2 * [{"marks": ["fake"], "same": True}]
    first, second = journal.seen
    assert type(first) is FakeRequestState
    assert first is not second  # still one per request, not a singleton


def test_override_after_the_app_is_built_is_an_error() -> None:
    module = Test.create_test_module(controllers=[MailController])
    app = module.create_application()
    with pytest.raises(RuntimeError, match=r"^override_provider\(\) must be called before"):
        module.override_provider(Mailer, use_value=FakeMailer())
    assert module.create_application() is app


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"use_value": FakeMailer(), "use_class": FakeMailer}],
    ids=["neither", "both"],
)
def test_override_takes_exactly_one_of_use_value_and_use_class(kwargs: dict[str, Any]) -> None:
    module = Test.create_test_module(controllers=[MailController])
    with pytest.raises(ValueError, match=r"^override_provider\(\) takes exactly one of"):
        module.override_provider(Mailer, **kwargs)


@injectable(scope="transient")
class Formatter:
    pass


@injectable
class Reporter:
    def __init__(self, formatter: Formatter) -> None:
        self.formatter = formatter


def test_a_singleton_may_hold_a_transient_service() -> None:
    @Controller("/")
    class ReportController(ControllerBase):
        @get("/")
        async def index(self, first: Reporter, second: Reporter, fresh: Formatter) -> list[bool]:
            return [first is second, first.formatter is second.formatter, fresh is first.formatter]

    with TestClient(App(controllers=[ReportController])) as client:
        assert client.get("/").json() == [True, True, False]


def test_provider_takes_exactly_one_source() -> None:
    with pytest.raises(ConfigurationError, match=r"Provider\(Reporter\) takes exactly one of"):
        Provider(Reporter)
    with pytest.raises(ConfigurationError, match="exactly one of"):
        Provider(Reporter, use_class=Reporter, use_value=Reporter(Formatter()))
    assert Provider(Reporter, use_value=None).use_value is None


def test_provider_use_class_keeps_its_own_scope() -> None:
    @injectable(scope="request")
    class PerRequestReporter(Reporter):
        pass

    assert Provider(Reporter, use_class=PerRequestReporter).scope == "request"
    assert Provider(Formatter, use_class=Formatter).scope == "transient"
    assert Provider(Reporter, use_class=Reporter, scope="transient").scope == "transient"
