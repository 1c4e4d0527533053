"""The ``triows`` command (also ``python -m triows``): ``triows run MODULE:ATTR``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from . import __version__
from .errors import ConfigurationError
from .server import AppNotFound, RunSettings, run

__all__ = ["main", "parser"]

_LEVELS = ("critical", "error", "warning", "info", "debug")
_COMPRESSIONS = ("off", "deflate", "deflate-context")

_DESCRIPTION = """\
Serve a triows app (or any ASGI app) on hypercorn's trio worker, ready for production:
a graceful drain on SIGTERM/SIGINT (every open websocket is told at once, handlers get the
drain timeout to finish, then the process exits 0; a second signal exits at once), dead peers
cut by TCP_USER_TIMEOUT, pings to every client, and errors logged to stderr.

The app's config decides what concerns it (WEBSOCKET_DRAIN_TIMEOUT,
WEBSOCKET_MAX_MESSAGE_SIZE, WEBSOCKET_COMPRESSION); the flags of the same name override it.
See docs/deployment.md."""


def _number(kind: Callable[[str], Any], minimum: float, allow_zero: bool = False) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value < minimum and not (allow_zero and value == 0):
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {text}")
        return value

    return parse


def parser() -> argparse.ArgumentParser:
    """The command line of ``triows``."""
    top = argparse.ArgumentParser(prog="triows", description="The triows command.")
    top.add_argument("--version", action="version", version=f"triows {__version__}")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub = commands.add_parser(
        "run",
        help="serve an app (triows run --help)",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub.add_argument("target", metavar="MODULE:ATTR", help="the app, e.g. app:app")
    where = sub.add_argument_group("where to listen")
    where.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    where.add_argument(
        "--port", type=_number(int, 0), default=8000, help="port to bind; 0: any (default 8000)"
    )
    where.add_argument("--uds", metavar="PATH", help="bind a Unix socket instead of host:port")
    where.add_argument("--certfile", help="TLS certificate (PEM): serve https and wss")
    where.add_argument("--keyfile", help="TLS private key (PEM)")
    where.add_argument(
        "--root-path", default="", help="the ASGI root_path, when mounted below a path by a proxy"
    )
    where.add_argument(
        "--backlog", type=_number(int, 1), default=2048, help="listen backlog (default 2048)"
    )
    how = sub.add_argument_group("processes")
    how.add_argument(
        "--workers",
        type=_number(int, 1),
        default=1,
        help="worker processes sharing the sockets (default 1: this process serves); each "
        "has its own app, so in-memory state is per worker",
    )
    how.add_argument(
        "--reload", action="store_true", help="restart the workers when a file changes (dev)"
    )
    logs = sub.add_argument_group("logging")
    logs.add_argument(
        "--log-level", choices=_LEVELS, default="info", help="triows' and hypercorn's (info)"
    )
    logs.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="one line per request/handshake on stdout (default: on)",
    )
    logs.add_argument(
        "--log-config",
        metavar="FILE",
        help="logging configuration: json:FILE, toml:FILE (dictConfig) or an ini FILE",
    )
    websockets = sub.add_argument_group("websockets")
    websockets.add_argument(
        "--drain-timeout",
        type=_number(float, 0.001),
        metavar="SECONDS",
        help="seconds handlers get once told the server stops (default: the app's "
        "WEBSOCKET_DRAIN_TIMEOUT, 10)",
    )
    websockets.add_argument(
        "--ping-interval",
        type=_number(float, 0.001, allow_zero=True),
        metavar="SECONDS",
        help="seconds between pings to each client; 0: none (default: the app's "
        "WEBSOCKET_PING_INTERVAL, 20)",
    )
    websockets.add_argument(
        "--max-message-size",
        type=_number(int, 1),
        metavar="BYTES",
        help="largest message a client may send (default: the app's "
        "WEBSOCKET_MAX_MESSAGE_SIZE, 1 MiB; routes' own limits stand)",
    )
    websockets.add_argument(
        "--compression",
        choices=_COMPRESSIONS,
        help="permessage-deflate (default: the app's WEBSOCKET_COMPRESSION, off)",
    )
    websockets.add_argument(
        "--tcp-user-timeout",
        type=_number(float, 0.001, allow_zero=True),
        default=30.0,
        metavar="SECONDS",
        help="cut a connection whose sent data stays unacknowledged this long, a client that "
        "stopped reading included (Linux); 0: the system's (default 30)",
    )
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``triows`` command; its exit status."""
    args = parser().parse_args(argv)
    settings = RunSettings(
        target=args.target,
        host=args.host,
        port=args.port,
        uds=args.uds,
        workers=args.workers,
        reload=args.reload,
        log_level=args.log_level,
        access_log=args.access_log,
        log_config=args.log_config,
        drain_timeout=args.drain_timeout,
        ping_interval=args.ping_interval,
        max_message_size=args.max_message_size,
        compression=args.compression,
        tcp_user_timeout=args.tcp_user_timeout or None,
        certfile=args.certfile,
        keyfile=args.keyfile,
        root_path=args.root_path,
        backlog=args.backlog,
    )
    try:
        return run(settings)
    except (AppNotFound, ConfigurationError) as exc:
        print(f"triows run: {exc}", file=sys.stderr)
        return 1
