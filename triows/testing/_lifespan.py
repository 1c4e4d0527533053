"""Driving an app's ASGI lifespan from a test, as a server does."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from .._types import ASGIApp, Message
from ._errors import collapse_single

__all__ = ["LifespanError", "run_lifespan"]


class LifespanError(RuntimeError):
    """The app reported ``lifespan.startup.failed`` or ``lifespan.shutdown.failed``."""


@asynccontextmanager
async def run_lifespan(app: ASGIApp, timeout: float) -> AsyncIterator[None]:
    """Start the app's lifespan, yield while it runs, then shut it down.

    Raises:
        LifespanError: Startup or shutdown failed; the app's message is the error's text.
        TimeoutError: The app did not answer within ``timeout`` seconds.
    """
    to_app, inbox = trio.open_memory_channel[Message](math.inf)
    outbox, from_app = trio.open_memory_channel[Message](math.inf)
    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}

    async def run_app() -> None:
        async with outbox:
            await app(scope, inbox.receive, outbox.send)

    async def expect(phase: str) -> None:
        with trio.move_on_after(timeout):
            async for message in from_app:
                if message["type"] == f"lifespan.{phase}.complete":
                    return
                if message["type"] == f"lifespan.{phase}.failed":
                    raise LifespanError(f"{phase} failed: {message.get('message', '')}")
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
                with trio.CancelScope(shield=True):
                    to_app.send_nowait({"type": "lifespan.shutdown"})
                    await expect("shutdown")
