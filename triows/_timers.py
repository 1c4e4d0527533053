"""Deadlines for many connections, kept by one task.

A connection that must act at some moment (check whether its client has gone silent, cut a
close handshake that does not complete) asks :class:`Timers` for a call at that moment rather
than starting a task of its own: a parked trio task costs about 2.5 KiB and a task switch per
wake-up, a heap entry a few dozen bytes. The app runs one ``Timers`` in its nursery from
startup to shutdown; a connection served without the app's lifespan runs a private one in its
own nursery instead.

Callbacks are plain functions, run in the timers' task one after another; anything that must
await is started in :attr:`Timers.nursery`.

Moments are rounded up to a grid of :data:`GRID` seconds: every call due in one slot is made by
one wake-up of the task, so a thousand connections that end in a second cost a few wake-ups,
not a thousand. Most calls are cancelled before they are due (the connection ended in time);
their entries are dropped in bulk once they are half the heap.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable
from typing import Any

import trio

from ._logging import logger

__all__ = ["GRID", "Timer", "Timers"]

#: Seconds between the moments a call can be made at: a call is never early, at most this late.
GRID = 0.125


class Timer:
    """One pending call; :meth:`cancel` it if it is no longer wanted."""

    __slots__ = ("_timers", "args", "fn", "when")

    def __init__(
        self, timers: Timers, when: float, fn: Callable[..., Any], args: tuple[Any, ...]
    ) -> None:
        self._timers: Timers | None = timers
        self.when = when
        self.fn: Callable[..., Any] | None = fn
        self.args = args

    def cancel(self) -> None:
        """Do not call it (a no-op once it has run)."""
        timers = self._timers
        if timers is not None:
            self._timers = None
            self.fn = None
            self.args = ()
            timers._cancelled += 1


class Timers:
    """Calls at given moments, for every connection of an app, from one task."""

    __slots__ = ("_cancelled", "_counter", "_heap", "_lingering", "_nursery", "_sleep", "_sweep")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Timer]] = []
        self._counter = itertools.count()
        self._cancelled = 0
        #: Things given a last moment (:meth:`linger`), and that moment.
        self._lingering: dict[Any, tuple[float, Callable[[], Any]]] = {}
        self._sweep: Timer | None = None
        self._nursery: trio.Nursery | None = None
        self._sleep: trio.CancelScope | None = None

    @property
    def running(self) -> bool:
        """Whether :meth:`run` is serving calls."""
        return self._nursery is not None

    @property
    def nursery(self) -> trio.Nursery:
        """Where callbacks start what they must await (the nursery :meth:`run` runs in)."""
        if self._nursery is None:
            raise RuntimeError("the timers are not running")
        return self._nursery

    def call_at(self, when: float, fn: Callable[..., Any], *args: Any) -> Timer:
        """Call ``fn(*args)`` once at trio time ``when`` (at most :data:`GRID` after)."""
        when = math.ceil(when / GRID) * GRID
        timer = Timer(self, when, fn, args)
        heap = self._heap
        if self._cancelled > 64 and self._cancelled * 2 > len(heap):
            heap[:] = [entry for entry in heap if entry[2].fn is not None]
            heapq.heapify(heap)
            self._cancelled = 0
        heapq.heappush(heap, (when, next(self._counter), timer))
        if self._sleep is not None and heap[0][2] is timer:
            self._sleep.deadline = when  # earlier than what the task sleeps until
        return timer

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any) -> Timer:
        """Call ``fn(*args)`` once, ``delay`` seconds from now."""
        return self.call_at(trio.current_time() + delay, fn, *args)

    def linger(self, key: Any, delay: float, fn: Callable[[], Any]) -> None:
        """Call ``fn()`` in ``delay`` seconds unless :meth:`release` of ``key`` comes first.

        For what nearly always ends in time (a connection whose handler returns once it has
        ended): one dict entry each, and one sweep for all of them, instead of a timer each.
        Given again for the same ``key``, the sooner moment stands (and the first ``fn``).
        """
        when = trio.current_time() + delay
        given = self._lingering.get(key)
        if given is not None:
            if given[0] <= when:
                return
            fn = given[1]
        self._lingering[key] = (when, fn)
        sweep = self._sweep
        if sweep is None or when < sweep.when:  # none planned, or this one is due sooner
            if sweep is not None:
                sweep.cancel()
            self._sweep = self.call_at(when, self._swept)

    def release(self, key: Any) -> None:
        """``key`` ended in time: forget its :meth:`linger`."""
        self._lingering.pop(key, None)

    def _swept(self) -> None:
        self._sweep = None
        lingering = self._lingering
        now = trio.current_time()
        due = [key for key, (when, _) in lingering.items() if when <= now]
        try:
            for key in due:
                _, fn = lingering.pop(key)
                try:
                    fn()
                except Exception:  # a bug in triows: say so, keep the others
                    logger.exception("a timer failed")
        finally:
            if lingering:
                soonest = min(when for when, _ in lingering.values())
                self._sweep = self.call_at(soonest, self._swept)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve calls until cancelled (``await nursery.start(timers.run)``)."""
        heap = self._heap
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            try:
                while True:
                    with trio.CancelScope(deadline=heap[0][0] if heap else math.inf) as sleep:
                        self._sleep = sleep
                        await trio.sleep_forever()
                    self._sleep = None
                    now = trio.current_time()
                    while heap and heap[0][0] <= now:
                        timer = heapq.heappop(heap)[2]
                        fn, args = timer.fn, timer.args
                        if fn is None:
                            self._cancelled -= 1
                            continue
                        timer._timers = None  # it has run: cancelling it now does nothing
                        timer.fn, timer.args = None, ()
                        try:
                            fn(*args)
                        except Exception:  # a bug in triows: say so, keep the others
                            logger.exception("a timer failed")
            finally:
                self._nursery = None
                self._sleep = None
