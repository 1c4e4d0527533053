"""Dependency injection: ``@injectable`` services resolved by constructor type hints.

How it works: when the app is built, the :class:`Container` turns every service a handler,
guard or controller needs into a :class:`Plan` — the provider to call and the plans of its
constructor's parameters, recursively. Cycles, unknown parameters and a singleton depending on a
shorter-lived service fail then, with the chain named. Per call, a plan only looks up caches and
calls constructors.

Scopes:

* ``singleton`` (default): one instance per app;
* ``request``: one per HTTP request or websocket connection;
* ``transient``: a new instance each time one is needed.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, overload

from .errors import ConfigurationError

__all__ = ["Container", "Plan", "Provider", "Scope", "injectable", "is_injectable"]

T = TypeVar("T")
Scope = Literal["singleton", "request", "transient"]
SCOPES: frozenset[str] = frozenset({"singleton", "request", "transient"})
_SCOPE_ATTR = "__triows_scope__"
_UNSET: Any = object()


@overload
def injectable(cls: type[T], /) -> type[T]: ...
@overload
def injectable(*, scope: Scope = "singleton") -> Callable[[type[T]], type[T]]: ...


def injectable(cls: type[T] | None = None, /, *, scope: Scope = "singleton") -> Any:
    """Mark a class as a service the container may build.

    Use as ``@injectable`` or ``@injectable(scope="request")``.

    Raises:
        ConfigurationError: An unknown scope.
    """
    if scope not in SCOPES:
        raise ConfigurationError(
            f"@injectable: unknown scope {scope!r}; use one of {sorted(SCOPES)}"
        )

    def mark(target: type[T]) -> type[T]:
        if not inspect.isclass(target):
            raise ConfigurationError(f"@injectable decorates a class, got {target!r}")
        setattr(target, _SCOPE_ATTR, scope)
        return target

    return mark(cls) if cls is not None else mark


def is_injectable(cls: Any) -> bool:
    """Whether ``cls`` was marked ``@injectable`` (on itself, not inherited)."""
    return inspect.isclass(cls) and _SCOPE_ATTR in vars(cls)


@dataclass(frozen=True)
class Provider:
    """How one service type is provided.

    ``Provider(Token, use_class=Impl)`` or ``Provider(Token, use_value=obj)``.

    Attributes:
        token: The type asked for.
        use_class: The class to build (its constructor is injected).
        use_value: A ready instance (a singleton; ``None`` is a value too).
        scope: The lifetime of built instances; by default ``use_class``'s own ``@injectable``
            scope, else the token's, else singleton.

    Raises:
        ConfigurationError: Neither or both of ``use_class`` and ``use_value``.
    """

    token: type
    use_class: type | None = None
    use_value: Any = _UNSET
    scope: Scope | None = None

    def __post_init__(self) -> None:
        if (self.use_class is None) == (self.use_value is _UNSET):
            raise ConfigurationError(
                f"Provider({getattr(self.token, '__name__', self.token)}) takes exactly one of "
                "use_class= and use_value="
            )
        if self.scope is None:
            scope = getattr(self.use_class, _SCOPE_ATTR, None) or getattr(
                self.token, _SCOPE_ATTR, "singleton"
            )
            object.__setattr__(self, "scope", scope)

    @classmethod
    def of(cls, item: type | Provider) -> Provider:
        """A provider from an ``App(providers=[...])`` entry: a class or a Provider."""
        if isinstance(item, Provider):
            return item
        if not inspect.isclass(item):
            raise ConfigurationError(
                f"providers=[...] takes classes or Provider(...), got {item!r}"
            )
        return cls(item, use_class=item)


class Plan:
    """How to produce one instance: the provider plus the plans of its constructor arguments."""

    __slots__ = ("arguments", "factory", "key", "scope", "value")

    def __init__(
        self,
        key: type,
        scope: Scope,
        factory: Callable[..., Any] | None,
        arguments: dict[str, Plan],
        value: Any = None,
    ) -> None:
        self.key = key
        self.scope = scope
        self.factory = factory
        self.arguments = arguments
        self.value = value

    def build(self, request_cache: dict[type, Any] | None) -> Any:
        """An instance for one call; ``request_cache`` holds request-scoped ones."""
        if self.factory is None:
            return self.value
        if self.scope == "request":
            if request_cache is None:  # pragma: no cover - the endpoints always pass one
                raise RuntimeError(f"{self.key.__name__} is request-scoped: no request in progress")
            try:
                return request_cache[self.key]
            except KeyError:
                pass
        instance = self.factory(
            **{name: plan.build(request_cache) for name, plan in self.arguments.items()}
        )
        if self.scope == "request":
            assert request_cache is not None
            request_cache[self.key] = instance
        elif self.scope == "singleton":
            # Built once, on first use; afterwards the plan returns the value directly.
            self.value, self.factory, self.arguments = instance, None, {}
        return instance


class Container:
    """The app's providers and the plans built from them.

    Args:
        providers: Classes (their ``@injectable`` scope, singleton otherwise) or
            :class:`Provider` entries.
        overrides: Providers that replace the ones for their token (tests).
    """

    def __init__(self, providers: Iterable[type | Provider], overrides: Iterable[Provider] = ()):
        self._providers: dict[type, Provider] = {}
        for item in providers:
            provider = Provider.of(item)
            self._providers[provider.token] = provider
        for provider in overrides:
            self._providers[provider.token] = provider
        self._plans: dict[type, Plan] = {}
        self._building: list[type] = []

    def knows(self, cls: Any) -> bool:
        """Whether ``cls`` can be injected (listed, or marked ``@injectable``)."""
        return inspect.isclass(cls) and (cls in self._providers or is_injectable(cls))

    def plan(self, cls: type, *, needed_by: str, implicit: bool = False) -> Plan:
        """The plan for ``cls``, built (and checked) once.

        Args:
            cls: The type asked for.
            needed_by: Who needs it, for error messages.
            implicit: Build ``cls`` as a singleton even if it is not ``@injectable`` or listed
                (guards are built this way).

        Raises:
            ConfigurationError: ``cls`` or something it needs cannot be provided, there is a
                cycle, or a longer-lived service needs a shorter-lived one.
        """
        if implicit and not self.knows(cls):
            self._providers[cls] = Provider.of(cls)
        return self._plan(cls, (needed_by,))

    def _plan(self, cls: type, chain: tuple[str, ...]) -> Plan:
        if cls in self._plans:
            return self._plans[cls]
        name = getattr(cls, "__name__", repr(cls))
        if cls in self._building:  # the types, not their names: two classes may share one
            raise ConfigurationError(f"dependency cycle: {' -> '.join([*chain, name])}")
        self._building.append(cls)
        try:
            return self._make_plan(cls, name, chain)
        finally:
            self._building.pop()

    def _make_plan(self, cls: type, name: str, chain: tuple[str, ...]) -> Plan:
        provider = self._providers.get(cls)
        if provider is None:
            if not is_injectable(cls):
                raise ConfigurationError(
                    f"cannot inject {name} into {chain[-1]} ({' -> '.join(chain)}): "
                    "mark it @injectable or list it in App(providers=[...])"
                )
            provider = Provider.of(cls)
        if provider.use_class is None:
            plan = Plan(cls, "singleton", None, {}, provider.use_value)
        else:
            scope: Scope = provider.scope or "singleton"
            arguments = self._constructor(provider.use_class, scope, (*chain, name))
            plan = Plan(cls, scope, provider.use_class, arguments)
        self._plans[cls] = plan
        return plan

    def constructor_plans(self, cls: type, *, needed_by: str) -> dict[str, Plan]:
        """Plans for the parameters of ``cls.__init__`` (controllers use this)."""
        return self._constructor(cls, "transient", (needed_by,))

    def _constructor(self, cls: type, scope: Scope, chain: tuple[str, ...]) -> dict[str, Plan]:
        init: Callable[..., Any] = cls.__init__  # type: ignore[misc]  # the class's own
        if init is object.__init__:
            return {}
        try:
            hints = typing.get_type_hints(init)
        except Exception as exc:
            raise ConfigurationError(
                f"{' -> '.join(chain)}: cannot read the constructor's annotations ({exc})"
            ) from exc
        arguments: dict[str, Plan] = {}
        for parameter in list(inspect.signature(init).parameters.values())[1:]:
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                continue
            annotation = hints.get(parameter.name)
            if annotation is None or not inspect.isclass(annotation):
                if parameter.default is not parameter.empty:
                    continue
                raise ConfigurationError(
                    f"{' -> '.join(chain)}: constructor parameter {parameter.name!r} needs a "
                    "class annotation to be injected"
                )
            if not self.knows(annotation) and parameter.default is not parameter.empty:
                continue
            plan = self._plan(annotation, chain)
            if plan.scope == "request" and scope == "singleton":
                # A transient one is fine (the singleton keeps the instance it was given); a
                # request-scoped one would be captured by the first request and leak into all.
                raise ConfigurationError(
                    f"{' -> '.join(chain)}: a singleton cannot depend on the request-scoped "
                    f"{annotation.__name__} (the first request's instance would serve all)"
                )
            arguments[parameter.name] = plan
        return arguments
