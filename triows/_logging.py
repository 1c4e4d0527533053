"""The one logger of the package, ``logging.getLogger("triows")``, and how it names a request.

triows adds no handler of its own (not even a ``NullHandler``): with no logging configured at
all, Python's last-resort handler prints warnings and errors, tracebacks included, to stderr, so
a failing handler is never silent. ``triows run`` configures a handler (``triows/server.py``);
an app that configures logging gets the records wherever it sends them (``docs/logging.md``).

What is logged, and at which level:

- ``ERROR`` with the traceback, once: a server-side failure (a handler, a hook, a guard that
  raised something other than ``HTTPException``/``WebSocketException``, a lifespan, a timer);
- ``DEBUG``: how each websocket connection ended (its code and reason), client mistakes
  included (bad JSON, a failed validation, a message too big): they are the client's to fix and
  never logged above ``DEBUG``;
- ``INFO``: a drain beginning and ending (the server stopping).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

__all__ = ["SERVER_ERRORS", "logger", "server_error", "where"]

logger = logging.getLogger("triows")

#: The ASGI scope extension through which the test clients hear of a server-side failure
#: (``raise_server_exceptions``): a callable taking the exception. Servers do not offer it.
SERVER_ERRORS = "triows.server_errors"


def where(scope: Mapping[str, Any]) -> str:
    """``"/path from 10.0.0.7:51234"``: what a log line says about a request or connection."""
    client = scope.get("client")
    source = f"{client[0]}:{client[1]}" if client else "an unknown client"
    return f"{scope.get('path', '?')} from {source}"


def server_error(scope: Mapping[str, Any], exc: BaseException, message: str, *args: Any) -> None:
    """Log a server-side failure once, with its traceback, and tell a test client that asks.

    Args:
        scope: The request's or connection's scope.
        exc: What the app's code raised.
        message: The log message (``%`` arguments in ``args``).
        *args: The message's arguments.
    """
    logger.error(message, *args, exc_info=exc)
    observer = (scope.get("extensions") or {}).get(SERVER_ERRORS)
    if observer is not None:
        observer(exc)
