"""Driving an app's ASGI lifespan from a test, as a server does."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from .._logging import SERVER_ERRORS
from .._types import ASGIApp, Message
from ._errors import collapse_single

__all__ = ["LifespanError", "run_lifespan"]


class LifespanError(RuntimeError):
    """The app reported ``lifespan.startup.failed`` or ``lifespan.shutdown.failed``."""


@asynccontextmanager
async def run_lifespan(
    app: ASGIApp, timeout: float, raise_server_exceptions: bool = True
) -> AsyncIterator[None]:
    """Start the app's lifespan, yield while it runs, then shut it down.

    An app that raises on the lifespan scope before sending anything does not support it
    (hypercorn's rule too): it is then served without one.

    Raises:
        Exception: With ``raise_server_exceptions``, what a triows app's startup, shutdown or
            service raised, as itself.
        LifespanError: Startup or shutdown failed (and the app did not say with what); the
            app's message is the error's text.
        TimeoutError: The app did not answer within ``timeout`` seconds.
    """
    to_app, inbox = trio.open_memory_channel[Message](math.inf)
    outbox, from_app = trio.open_memory_channel[Message](math.inf)
    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
    failures: list[BaseException] = []
    if raise_server_exceptions:
        scope["extensions"] = {SERVER_ERRORS: failures.append}
    answered = unsupported = False

    async def send(message: Message) -> None:
        nonlocal answered
        answered = True
        await outbox.send(message)

    async def run_app() -> None:
        nonlocal unsupported
        async with outbox:
            try:
                await app(scope, inbox.receive, send)
            except Exception:
                if answered:
                    raise
                # As hypercorn: an app that fails on the lifespan scope before saying anything
                # (a bare websocket app, say) does not support the lifespan; it runs without.
                unsupported = True

    async def expect(phase: str) -> None:
        with trio.move_on_after(timeout):
            async for message in from_app:
                if message["type"] == f"lifespan.{phase}.complete":
                    return
                if message["type"] == f"lifespan.{phase}.failed":
                    if failures:
                        raise failures[0]
                    raise LifespanError(f"{phase} failed: {message.get('message', '')}")
            if unsupported:
                return
            raise LifespanError(f"the app returned during {phase} without answering")
        raise TimeoutError(f"the app did not complete lifespan {phase} within {timeout}s")

    with collapse_single():
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_app)
            to_app.send_nowait({"type": "lifespan.startup"})
            await expect("startup")
            try:
                yield
            finally:
                if not unsupported:
                    with trio.CancelScope(shield=True):
                        to_app.send_nowait({"type": "lifespan.shutdown"})
                        await expect("shutdown")
