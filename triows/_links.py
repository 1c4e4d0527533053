"""How a connection hooks into the server that carries it.

A server that triows knows gives each connection a :class:`Link`: the server then hands its
messages straight to the connection's :class:`~triows._inbox.Inbox` (no task in between) and
triows can end a connection the server cannot (see ``_hypercorn.py``). Two servers are known:
hypercorn's trio worker, recognised by the shape of its objects, and triows' own in-process
test client, which offers a link itself (``send.__self__.__triows_link__()``). On any other
server a small task of the connection pumps ASGI ``receive`` into the inbox instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from . import _hypercorn
from ._inbox import Inbox
from ._types import Message, Receive, Send

__all__ = ["Link", "attach"]


class Link(Protocol):
    """What triows needs of a server for one connection."""

    #: The ``(code, reason)`` of the client's close frame, where the server reports another.
    close_frame: tuple[int, str] | None
    #: Whether the server itself refuses messages over the size limit.
    limits_size: bool
    #: Whether :meth:`ping` sends a ping frame.
    pings: bool

    def first_message(self) -> Message:
        """The ``websocket.connect`` message, queued before the app ran."""

    def install(
        self,
        inbox: Inbox,
        max_message_size: int,
        on_too_big: Callable[[], None],
        compression: str | None,
    ) -> None:
        """From now on, deliver every message to ``inbox``; negotiate ``compression``."""

    def write_now(self, text: str) -> bytes | None:
        """Write a text frame now, without waiting; what is left of it, or ``None`` if not."""

    async def send_raw(self, data: bytes) -> None:
        """Write bytes of a frame :meth:`write_now` began."""

    def unsent(self) -> int | None:
        """Bytes the kernel still holds for the socket, if it can be told."""

    async def send_many(self, messages: Sequence[Message]) -> bool:
        """Write these ``websocket.send`` messages in one write; ``False`` if it cannot."""

    async def ping(self) -> None:
        """Send the client a ping (a no-op where the server cannot)."""

    def server_stopping(self) -> tuple[Callable[[], Awaitable[object]], float] | None:
        """What returns once the server begins to stop, and the seconds it then allows."""

    def sync(self, inbox: Inbox) -> None:
        """Tell ``inbox`` if the server closed the stream without delivering its end."""

    def detach(self) -> None:
        """The app is done with the connection: the server no longer refers to it."""

    async def abort(self) -> None:
        """End the connection at once, without a close handshake (a stuck write included)."""


def attach(receive: Receive, send: Send) -> Link | None:
    """The link of a connection whose ASGI callables are ``receive`` and ``send``, if any."""
    found = _hypercorn.attach(receive, send)
    if found is not None:
        return found
    offer = getattr(getattr(send, "__self__", None), "__triows_link__", None)
    if offer is not None:
        link: Link = offer()
        return link
    return None
