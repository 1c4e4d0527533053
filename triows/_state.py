"""The connection state machine: one table, in the manner of h11's ``_state.py``.

=================  =============================================================================
state              meaning
=================  =============================================================================
``CONNECTING``     the handshake arrived and has not been answered
``CONNECTED``      ``accept()`` was sent: messages flow both ways
``CLOSING``        triows is ending it (idle client, slow consumer, message too big): the
                   handler is told, the close frame goes out when it ends
``CLOSED``         the app closed it (after accept, or before: the client got HTTP 403)
``DENIED``         the app refused the handshake with an HTTP response
``DISCONNECTED``   the peer closed it or went away
=================  =============================================================================

Only :meth:`WebSocket._move <triows.WebSocket>` takes an :class:`Event` through
:data:`TRANSITIONS`; the endpoint drives the connection through the websocket's methods, never
by writing its fields.
"""

from __future__ import annotations

import enum

__all__ = ["OPEN", "TRANSITIONS", "Event", "WebSocketState"]


class WebSocketState(enum.Enum):
    """Where a connection stands, from the application's side (see ``triows._state``)."""

    # Members are singletons compared by identity: hash them so too, in C (Enum's own __hash__
    # is a Python function, and the state table is looked up on every transition).
    __hash__ = object.__hash__

    CONNECTING = "connecting"
    CONNECTED = "connected"
    CLOSING = "closing"
    CLOSED = "closed"
    DENIED = "denied"
    DISCONNECTED = "disconnected"
    #: Starlette's name for ``DENIED`` (the same member).
    RESPONSE = "denied"  # noqa: PIE796 - an alias on purpose


class Event(enum.Enum):
    """What moves a connection from one state to another."""

    __hash__ = object.__hash__

    #: The app accepted the handshake.
    ACCEPT = "accept"
    #: The app answered the handshake with an HTTP response.
    DENY = "deny"
    #: The app closed the connection (or triows sent the close frame of a ``CLOSING`` one).
    CLOSE = "close"
    #: triows decided to end the connection (a limit, a timeout).
    END = "end"
    #: The server reported that the peer left (``websocket.disconnect``).
    PEER_LEFT = "peer left"


_S, _E = WebSocketState, Event

#: ``(state, event) -> next state``. A pair that is not here is a programming error.
TRANSITIONS: dict[tuple[WebSocketState, Event], WebSocketState] = {
    (_S.CONNECTING, _E.ACCEPT): _S.CONNECTED,
    (_S.CONNECTING, _E.DENY): _S.DENIED,
    (_S.CONNECTING, _E.CLOSE): _S.CLOSED,
    (_S.CONNECTING, _E.END): _S.CLOSING,
    (_S.CONNECTING, _E.PEER_LEFT): _S.DISCONNECTED,
    (_S.CONNECTED, _E.CLOSE): _S.CLOSED,
    (_S.CONNECTED, _E.END): _S.CLOSING,
    (_S.CONNECTED, _E.PEER_LEFT): _S.DISCONNECTED,
    # A handshake the server's drain ended before it was answered is still refused.
    (_S.CLOSING, _E.DENY): _S.DENIED,
    (_S.CLOSING, _E.CLOSE): _S.CLOSED,
    (_S.CLOSING, _E.END): _S.CLOSING,
    (_S.CLOSING, _E.PEER_LEFT): _S.CLOSING,
    # Once it has ended, nothing changes any more: later ends are facts that came too late.
    **{
        (state, event): state
        for state in (_S.CLOSED, _S.DENIED, _S.DISCONNECTED)
        for event in (_E.CLOSE, _E.END, _E.PEER_LEFT)
    },
}

OPEN = frozenset({_S.CONNECTING, _S.CONNECTED})

#: The ASGI message key of each JSON ``mode``.
