"""The outbox: frames queued for one connection, written in order by a task of its own.

How it works: ``websocket.push_text(...)`` (and ``push_bytes``/``push_json``) appends a frame
and returns at once, so one task can hand a message to a thousand connections without awaiting
any of them. A writer task, started in the connection's nursery on the first push, sends the
frames one after another through the server. An ``await websocket.send_*()`` made while frames
are queued joins the queue too (so frames leave in the order they were given) and returns when
its own frame has been written.

The outbox has limits: frames, bytes, and how long its oldest frame may wait. A push that finds
it over a limit does what the route's policy says (``docs/limits.md``):

=================  ======================================================================
``block``          raise ``trio.WouldBlock`` (``await websocket.drain()`` waits for room)
``drop_oldest``    drop the oldest queued frames until the new one fits
``drop_newest``    drop the new frame (``push_*`` returns ``False``)
``close``          close the connection with 1013 "slow consumer" (the default)
=================  ======================================================================

Nothing a slow client does delays anyone else: pushing never waits, and closing a connection
that is stuck in a write (hypercorn's writes cannot be cancelled) is finished by cutting its
TCP connection once the close timeout has passed.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

import trio

from ._settings import Outbox as Policy
from ._types import Message
from .errors import CloseCode, WebSocketDisconnect, WebSocketStateError

if TYPE_CHECKING:
    from .websocket import WebSocket

__all__ = ["Outbox"]

#: At most this many queued frames, and about this many bytes, go out in one write.
BATCH_FRAMES = 64
BATCH_BYTES = 64 << 10


class _Frame:
    __slots__ = ("done", "message", "sent", "size", "when")

    def __init__(self, message: Message, size: int, when: float, done: trio.Event | None):
        self.message = message
        self.size = size
        self.when = when
        #: Set once the frame was written or dropped, for an awaited send.
        self.done = done
        self.sent = False


class Outbox:
    """The queued frames of one connection and its writer.

    Args:
        websocket: The connection.
        policy: Its route's limits and policy.
    """

    __slots__ = (
        "_bytes",
        "_frames",
        "_idle",
        "_policy",
        "_room",
        "_websocket",
        "_writer_alive",
        "_writing",
        "progressed_at",
    )

    def __init__(self, websocket: WebSocket, policy: Policy) -> None:
        self._websocket = websocket
        self._policy = policy
        self._frames: deque[_Frame] = deque()
        self._bytes = 0
        self._writing = False
        self._writer_alive = True
        #: When the writer last finished writing a frame (or the outbox was made): how a
        #: paced publisher tells a member that is slow from one that stopped reading.
        self.progressed_at = trio.current_time()
        self._idle = trio.lowlevel.ParkingLot()
        self._room: trio.lowlevel.ParkingLot | None = None
        if websocket._nursery is None:
            raise WebSocketStateError(
                "push_*() and drain() need a connection served by an App route "
                "(the outbox's writer runs in websocket.nursery)"
            )
        websocket._nursery.start_soon(self._write)

    @property
    def writing(self) -> bool:
        """Whether a frame is in the server's hands right now (possibly stuck there)."""
        return self._writing

    @property
    def writer_alive(self) -> bool:
        """Whether the writer task still runs (it is cancelled with the connection's nursery)."""
        return self._writer_alive

    @property
    def busy(self) -> bool:
        """Whether frames are queued or being written (a direct send would overtake them)."""
        return self._writing or bool(self._frames)

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def bytes(self) -> int:
        """The size of the queued frames (bytes, text in characters)."""
        return self._bytes

    @property
    def filling(self) -> bool:
        """Whether more than half of a limit is taken (what :meth:`drain` waits below)."""
        policy = self._policy
        return len(self._frames) > policy.max_messages // 2 or self._bytes > policy.max_bytes // 2

    # -- giving frames ---------------------------------------------------------------------

    def push(self, message: Message, size: int) -> bool:
        """Queue ``message`` without waiting; the route's policy applies when over a limit.

        Returns:
            Whether the frame was queued (``False``: dropped, or the connection has ended).

        Raises:
            trio.WouldBlock: The policy is ``block`` and the outbox is over a limit.
        """
        if self._websocket._ending():
            return False
        policy = self._policy
        now = trio.current_time() if policy.max_lag is not None else 0.0
        over = self._over(size, now)
        if over is not None:
            on_full = policy.on_full
            if on_full == "close":
                self._websocket._end(CloseCode.TRY_AGAIN_LATER, f"slow consumer: {over}")
                return False
            if on_full == "drop_newest":
                return False
            if on_full == "block":
                raise trio.WouldBlock
            while over is not None and self._drop_oldest_pushed():
                over = self._over(size, now)
            if over is not None:  # only frames someone awaits are left
                return False
        self._append(_Frame(message, size, now, None))
        return True

    async def send(self, message: Message, size: int) -> None:
        """Queue ``message`` behind the others and wait until it has been written.

        Raises:
            WebSocketDisconnect: The connection ended before the frame could be written.
        """
        frame = _Frame(message, size, trio.current_time(), trio.Event())
        self._append(frame)
        assert frame.done is not None
        try:
            await frame.done.wait()
        except BaseException:
            # Cancelled while still queued: it is not sent later (trio's rule: an operation
            # that raised Cancelled did not happen). One already being written goes out.
            if not frame.sent and frame in self._frames:
                self._frames.remove(frame)
                self._bytes -= frame.size
            raise
        if not frame.sent:
            raise self._websocket._disconnect()

    def _append(self, frame: _Frame) -> None:
        self._frames.append(frame)
        self._bytes += frame.size
        self._idle.unpark()

    def _drop_oldest_pushed(self) -> bool:
        """Drop the oldest queued frame nobody awaits; whether there was one."""
        for index, frame in enumerate(self._frames):
            if frame.done is None:
                del self._frames[index]
                self._bytes -= frame.size
                return True
        return False

    def _over(self, size: int, now: float) -> str | None:
        """Which limit a new frame of ``size`` would break, if any."""
        policy = self._policy
        frames = self._frames
        if not frames:
            return None
        if len(frames) >= policy.max_messages:
            return f"more than {policy.max_messages} messages queued"
        if self._bytes + size > policy.max_bytes:
            return f"more than {policy.max_bytes} bytes queued"
        if policy.max_lag is not None and now - frames[0].when > policy.max_lag:
            return f"a message waited more than {policy.max_lag:g} s"
        return None

    # -- waiting for it --------------------------------------------------------------------

    async def drain(self) -> None:
        """Wait until the outbox is at most half full (or the connection has ended)."""
        while self.filling and not self._websocket._ending():
            if self._room is None:
                self._room = trio.lowlevel.ParkingLot()
            await self._room.park()
        await trio.lowlevel.checkpoint()

    async def flush(self) -> None:
        """Wait until every queued frame has been written (or it cannot be any more)."""
        while self.busy and self._writer_alive and not self._websocket._ending():
            if self._room is None:
                self._room = trio.lowlevel.ParkingLot()
            await self._room.park()

    def fail(self) -> None:
        """The connection has ended: drop what is queued; awaited sends raise."""
        frames = self._frames
        while frames:
            frame = frames.popleft()
            if frame.done is not None:
                frame.done.set()
        self._bytes = 0
        self._idle.unpark_all()
        if self._room is not None:
            self._room.unpark_all()

    # -- the writer ------------------------------------------------------------------------

    async def _write(self) -> None:
        try:
            await self._write_all()
        finally:
            self._writer_alive = False
            if self._room is not None:
                self._room.unpark_all()

    async def _write_all(self) -> None:
        websocket = self._websocket
        frames = self._frames
        policy = self._policy
        while True:
            while not frames:
                if websocket._ending():
                    return
                await self._idle.park()
            frame = frames.popleft()
            self._bytes -= frame.size
            if websocket._ending():
                frames.appendleft(frame)
                self.fail()
                return
            lag = policy.max_lag
            if lag is not None and policy.on_full == "close":
                waited = trio.current_time() - frame.when
                if waited > lag:
                    websocket._end(
                        CloseCode.TRY_AGAIN_LATER, f"slow consumer: a message waited {waited:.3g} s"
                    )
                    frames.appendleft(frame)
                    self.fail()
                    return
            # More queued behind it (a burst, a fan-out faster than this client): written
            # together, in one write to the server where it can take them so.
            batch = [frame]
            if frames:
                size = frame.size
                while (
                    frames
                    and len(batch) < BATCH_FRAMES
                    and size < BATCH_BYTES
                    and frame.message["type"] == "websocket.send"
                    and frames[0].message["type"] == "websocket.send"
                ):
                    more = frames.popleft()
                    self._bytes -= more.size
                    size += more.size
                    batch.append(more)
            self._writing = True
            try:
                if len(batch) == 1 or not await websocket._write_frames(batch):
                    for each in batch:
                        message = each.message
                        if message["type"] == "triows.rest":  # the rest of a fan-out's frame
                            await websocket._write_rest(message["data"])
                        else:
                            await websocket._write_frame(message)
                        each.sent = True
                else:
                    for each in batch:
                        each.sent = True
            except WebSocketDisconnect:
                pass
            finally:
                self._writing = False
                self.progressed_at = trio.current_time()
                for each in batch:
                    if each.done is not None:
                        each.done.set()
                if self._room is not None:
                    self._room.unpark_all()
