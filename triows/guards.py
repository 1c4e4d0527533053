"""Guards: checks that run before a handler, and for websockets before the handshake completes.

A route's guards are the app's global guards, then its controller's, then its own, in that
order, and **all** must pass: a handler's ``@Guards`` adds to the global ones, never replaces
them. A guard returning ``False`` refuses with HTTP 403 ``{"detail": "Forbidden"}``; a guard may
also raise ``HTTPException`` (say 401 with ``WWW-Authenticate``) to refuse with that status.
Anything else it raises is a server error (HTTP 500, logged): the connection is never accepted.
"""

from __future__ import annotations

import abc
import inspect
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import ConfigurationError, HTTPException

if TYPE_CHECKING:
    from .context import ExecutionContext
    from .di import Container, Plan

__all__ = ["GuardCanActivate", "Guards", "RouteGuards", "guards_of"]

T = TypeVar("T")
_GUARDS_ATTR = "__triows_guards__"


class GuardCanActivate(abc.ABC):
    """Base class of guards."""

    @abc.abstractmethod
    async def can_activate(self, context: ExecutionContext) -> bool:
        """Whether the call may proceed.

        For a websocket this runs before ``accept()``: read the handshake through
        ``context.switch_to_websocket().get_client()`` (headers, query, cookies), but do not
        accept or send.
        """


GuardSpec = type[GuardCanActivate] | GuardCanActivate


def Guards(*guards: GuardSpec) -> Callable[[T], T]:  # Ellar's spelling
    """Attach guards to a handler or a controller class (above or below ``@ws_route``).

    Args:
        *guards: Guard classes (built by dependency injection) or guard instances.

    Raises:
        ConfigurationError: Something that is not a guard.
    """
    for guard in guards:
        target = guard if inspect.isclass(guard) else type(guard)
        if not (inspect.isclass(target) and issubclass(target, GuardCanActivate)):
            raise ConfigurationError(
                f"@Guards takes GuardCanActivate subclasses or instances, got {guard!r}"
            )
        if not inspect.iscoroutinefunction(target.can_activate):
            raise ConfigurationError(
                f"{target.__name__}.can_activate must be 'async def': guards are awaited on trio"
            )

    def attach(target: T) -> T:
        # Decorators apply bottom-up; prepending keeps the run order the reading order.
        existing: tuple[GuardSpec, ...] = vars(target).get(_GUARDS_ATTR, ())
        setattr(target, _GUARDS_ATTR, (*guards, *existing))
        return target

    return attach


def guards_of(target: Any) -> tuple[GuardSpec, ...]:
    """The guards attached to ``target`` (a handler, or a controller class and its bases)."""
    if inspect.isclass(target):
        found: list[GuardSpec] = []
        for klass in reversed(target.__mro__):
            found.extend(vars(klass).get(_GUARDS_ATTR, ()))
        return tuple(found)
    guards: tuple[GuardSpec, ...] = getattr(target, _GUARDS_ATTR, ())
    return guards


class RouteGuards:
    """The compiled guard list of one route.

    Args:
        specs: Guards in run order (global, controller, handler).
        container: Builds guard classes.
        owner: The handler, for error messages.
    """

    __slots__ = ("_guards",)

    def __init__(self, specs: Sequence[GuardSpec], container: Container, owner: str) -> None:
        # Each entry: a guard instance, or the plan that builds one. A guard class is a
        # singleton unless declared otherwise; once built, a singleton replaces its plan (and
        # no ABC isinstance check runs per call).
        self._guards: list[tuple[GuardCanActivate | None, Plan | None]] = []
        for spec in specs:
            if isinstance(spec, GuardCanActivate):
                self._guards.append((spec, None))
            else:
                plan = container.plan(spec, needed_by=f"{owner} (guard)", implicit=True)
                self._guards.append((None, plan))

    def __bool__(self) -> bool:
        return bool(self._guards)

    async def check(self, context: ExecutionContext, request_cache: dict[type, Any]) -> None:
        """Run every guard in order.

        Raises:
            HTTPException: 403 when a guard returns a false value; or what a guard raised.
        """
        for index, (guard, plan) in enumerate(self._guards):
            if guard is None:
                assert plan is not None
                guard = plan.build(request_cache)
                if plan.scope == "singleton":
                    self._guards[index] = (guard, None)
            if not await guard.can_activate(context):
                raise HTTPException(403, "Forbidden")
