"""Serving an app in production: what ``triows run`` does, on hypercorn's trio worker.

``triows run MODULE:ATTR`` (``triows/cli.py``) builds :class:`RunSettings` and calls :func:`run`.
The app is served by hypercorn through its own Python API (``hypercorn.trio.run.worker_serve``,
the function behind ``hypercorn.trio.serve`` that also takes sockets made beforehand, so that
several worker processes can share them), with what plain ``hypercorn`` does not do:

- **one setting, one meaning**: the app's config decides the server's settings that concern it
  (hypercorn's ``graceful_timeout`` is the drain timeout plus :data:`EXIT_MARGIN`, its message
  limit the largest of the app's routes); the flags ``--drain-timeout``,
  ``--max-message-size`` and ``--compression`` override the app's config keys, as if written
  there, before the routes are resolved;
- **a graceful drain** on SIGTERM or SIGINT: hypercorn stops accepting, the app tells every
  websocket at once (``triows/_drain.py``), then exits 0; a second signal exits at once (1);
- **dead peers are cut**: ``TCP_USER_TIMEOUT`` on the listening sockets (inherited by each
  connection) bounds how long sent data may stay unacknowledged, a client that stopped reading
  with a full window included (Linux);
- **pings**: triows pings every client (``WEBSOCKET_PING_INTERVAL``, 20 s; ``--ping-interval``),
  which gives an idle connection TCP data to acknowledge, so a vanished peer is cut too
  (hypercorn's own pings are left off: each is a task that outlives its connection by up to an
  interval, and holds the graceful stop that long);
- **errors you can see**: a log handler on stderr for ``triows`` when logging is not
  configured, at ``--log-level``.

With ``--workers N`` or ``--reload``, this process supervises worker processes (spawned, as
hypercorn does) that share its sockets; each drains on its own when told to stop.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

import trio

from ._logging import logger
from .errors import exception_leaves

if TYPE_CHECKING:
    from hypercorn.config import Config as HypercornConfig
    from hypercorn.config import Sockets

__all__ = [
    "EXIT_MARGIN",
    "AppNotFound",
    "RunSettings",
    "configure_logging",
    "create_sockets",
    "find_app",
    "hypercorn_config",
    "load",
    "run",
    "serve_here",
]

#: Seconds hypercorn's ``graceful_timeout`` exceeds the drain timeout: triows cuts what still
#: runs at the drain timeout; hypercorn's own deadline is only a backstop.
EXIT_MARGIN = 1.0

#: The exit status when the app cannot be loaded or built, and when its startup fails (as
#: uvicorn's).
EXIT_LOAD_FAILED = 1
EXIT_STARTUP_FAILED = 3

#: The log line format of ``triows run`` (hypercorn's, with the logger's name).
LOG_FORMAT = "%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s"
LOG_DATE_FORMAT = "[%Y-%m-%d %H:%M:%S %z]"

#: Seconds a supervised worker may take to exit beyond its drain before it is killed.
KILL_AFTER = 5.0


class AppNotFound(Exception):
    """``MODULE:ATTR`` names nothing that can be served; the message says what is wrong."""


@dataclass(frozen=True)
class RunSettings:
    """What ``triows run`` was asked for (the flags of ``triows run --help``).

    ``None`` for ``drain_timeout``, ``max_message_size`` and ``compression`` leaves the app's
    config key as it is.
    """

    target: str
    host: str = "127.0.0.1"
    port: int = 8000
    uds: str | None = None
    workers: int = 1
    reload: bool = False
    log_level: str = "info"
    access_log: bool = True
    log_config: str | None = None
    drain_timeout: float | None = None
    #: Seconds; ``0``: no pings; ``None``: the app's ``WEBSOCKET_PING_INTERVAL``.
    ping_interval: float | None = None
    max_message_size: int | None = None
    #: ``"off"``, ``"deflate"`` or ``"deflate-context"``; ``None``: the app's.
    compression: str | None = None
    tcp_user_timeout: float | None = 30.0
    certfile: str | None = None
    keyfile: str | None = None
    root_path: str = ""
    backlog: int = 2048

    def overrides(self) -> dict[str, Any]:
        """The app config keys the flags set."""
        found: dict[str, Any] = {}
        if self.drain_timeout is not None:
            found["WEBSOCKET_DRAIN_TIMEOUT"] = self.drain_timeout
        if self.max_message_size is not None:
            found["WEBSOCKET_MAX_MESSAGE_SIZE"] = self.max_message_size
        if self.ping_interval is not None:
            found["WEBSOCKET_PING_INTERVAL"] = self.ping_interval or None
        if self.compression is not None:
            found["WEBSOCKET_COMPRESSION"] = None if self.compression == "off" else self.compression
        return found


# -- the app ---------------------------------------------------------------------------------


def load(settings: RunSettings) -> Any:
    """Import ``settings.target`` (``"module:attr"``) and apply the flags' config overrides.

    The current directory comes first on ``sys.path``, as with ``hypercorn`` and ``uvicorn``.

    Raises:
        AppNotFound: The module or the attribute does not exist, or the flags' overrides need
            a triows ``App``.
        ConfigurationError: The app (or an override) is misconfigured.
    """
    module_name, _, attr = settings.target.partition(":")
    if not module_name or not attr:
        raise AppNotFound(f"{settings.target!r} is not MODULE:ATTR (for example app:app)")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not module_name.startswith(exc.name):
            raise  # a module the app itself imports is missing: its traceback says which
        raise AppNotFound(f"no module named {module_name!r} (from {os.getcwd()})") from None
    found: Any = module
    for part in attr.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise AppNotFound(f"module {module_name!r} has no attribute {attr!r}") from None
    overrides = settings.overrides()
    if overrides:
        inner = find_app(found)
        if inner is None:
            flags = ", ".join(sorted(overrides))
            raise AppNotFound(
                f"{settings.target} is not a triows App: the flags that set {flags} need one"
            )
        inner._reconfigure(overrides)
    return found


def find_app(served: Any) -> Any:
    """The triows ``App`` that ``served`` is or wraps (``ProxyFixMiddleware(app)``…), or ``None``.

    Middleware keeps what it wraps as ``.app`` (hypercorn's, Starlette's, asgiref's).
    """
    from .app import App

    for _ in range(8):
        if isinstance(served, App):
            return served
        served = getattr(served, "app", None)
        if served is None:
            break
    return None


def _is_triows(app: Any) -> bool:
    return find_app(app) is not None


def _drain_timeout(app: Any) -> float:
    config = getattr(find_app(app), "config", None)
    timeout = getattr(config, "WEBSOCKET_DRAIN_TIMEOUT", None)
    return float(timeout) if isinstance(timeout, (int, float)) else 10.0


def _largest_message(app: Any) -> int | None:
    """The largest message any websocket route of a triows app allows, or ``None``."""
    router = getattr(find_app(app), "websocket_router", None)
    sizes = [
        route.endpoint.settings.max_message_size
        for route in getattr(router, "routes", ())
        if hasattr(getattr(route, "endpoint", None), "settings")
    ]
    return max(sizes) if sizes else None


def hypercorn_config(app: Any, settings: RunSettings) -> HypercornConfig:
    """Hypercorn's settings for ``app`` as ``settings`` ask."""
    from hypercorn.config import Config as HypercornConfig

    config = HypercornConfig()
    if settings.uds is not None:
        config.bind = [f"unix:{settings.uds}"]
    else:
        host = f"[{settings.host}]" if ":" in settings.host else settings.host
        config.bind = [f"{host}:{settings.port}"]
    config.backlog = settings.backlog
    config.workers = settings.workers
    config.graceful_timeout = _drain_timeout(app) + EXIT_MARGIN
    if _is_triows(app):
        config.websocket_ping_interval = None  # triows pings (WEBSOCKET_PING_INTERVAL)
    else:
        interval = 20.0 if settings.ping_interval is None else settings.ping_interval
        config.websocket_ping_interval = interval or None
    largest = _largest_message(app)
    if largest is not None:
        config.websocket_max_message_size = largest
    config.accesslog = "-" if settings.access_log else None
    config.errorlog = "-"
    config.loglevel = settings.log_level.upper()
    config.logconfig = settings.log_config
    config.certfile = settings.certfile
    config.keyfile = settings.keyfile
    config.root_path = settings.root_path
    return config


def create_sockets(config: HypercornConfig, settings: RunSettings) -> Sockets:
    """The listening sockets, with ``TCP_USER_TIMEOUT`` where the system has it.

    Linux copies the option to every connection accepted on the socket.
    """
    sockets = config.create_sockets()
    timeout = settings.tcp_user_timeout
    for sock in (*sockets.secure_sockets, *sockets.insecure_sockets):
        if timeout and hasattr(socket, "TCP_USER_TIMEOUT") and sock.family != socket.AF_UNIX:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, int(timeout * 1000))
        sock.listen(config.backlog)
    return sockets


def configure_logging(settings: RunSettings, config: HypercornConfig) -> None:
    """Where this process's records go; called once the app is imported.

    ``--log-config`` is applied (hypercorn applies it again in each worker it serves in).
    Otherwise, unless the app (or anything before it) configured logging, triows' records go to
    stderr at ``--log-level``; a configuration of the app's own keeps its handlers and levels.
    """
    if settings.log_config is not None:
        config.log  # noqa: B018 - hypercorn's Logger applies the file when it is made
        return
    triows_logger = logging.getLogger("triows")
    if logging.getLogger().handlers or triows_logger.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT, LOG_DATE_FORMAT))
    triows_logger.addHandler(handler)
    triows_logger.setLevel(logging.getLevelName(settings.log_level.upper()))


# -- one worker ------------------------------------------------------------------------------


def serve_here(settings: RunSettings, app: Any, sockets: Sockets, *, supervised: bool) -> int:
    """Serve ``app`` in this process until told to stop; the exit status.

    SIGTERM (and SIGINT, unless ``supervised``: the supervisor then forwards it as SIGTERM)
    begins the graceful stop; a second one exits at once.
    """
    from hypercorn.trio.run import worker_serve
    from hypercorn.utils import LifespanFailureError, wrap_app

    config = hypercorn_config(app, settings)
    stop_on = (signal.SIGTERM,) if supervised else (signal.SIGTERM, signal.SIGINT)
    if supervised:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the supervisor too

    async def main() -> None:
        stopping = trio.Event()
        with trio.open_signal_receiver(*stop_on) as received:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_listen, received, stopping)
                await worker_serve(
                    wrap_app(app, config.wsgi_max_body_size, None),
                    config,
                    sockets=sockets,
                    shutdown_trigger=stopping.wait,
                )
                nursery.cancel_scope.cancel()

    try:
        trio.run(main)
    except BaseException as exc:  # hypercorn's error comes out of nurseries: in a group
        failed = [leaf for leaf in exception_leaves(exc) if isinstance(leaf, LifespanFailureError)]
        if not failed:
            raise
        logger.error("the app did not start: %s", failed[0])
        return EXIT_STARTUP_FAILED
    return 0


async def _listen(received: Any, stopping: trio.Event) -> None:
    async for signum in received:
        name = signal.Signals(signum).name
        if not stopping.is_set():
            logger.info("%s: stopping (open websockets are drained)", name)
            stopping.set()
            continue
        logger.warning("%s again: exiting at once", name)
        logging.shutdown()
        os._exit(1)


def _worker(settings: RunSettings, sockets: Sockets) -> None:
    """A supervised worker process (the target of ``multiprocessing``)."""
    try:
        app = load(settings)
    except Exception:
        logger.exception("the worker could not load %s", settings.target)
        sys.exit(EXIT_LOAD_FAILED)
    configure_logging(settings, hypercorn_config(app, settings))
    sys.exit(serve_here(settings, app, sockets, supervised=True))


# -- supervising workers ---------------------------------------------------------------------


def run(settings: RunSettings) -> int:
    """Serve ``settings.target`` until stopped; the exit status (0 after a graceful stop).

    Raises:
        AppNotFound: ``settings.target`` names nothing servable.
        ConfigurationError: The app is misconfigured.
    """
    app = load(settings)  # here too with workers: a broken app fails before any worker starts
    config = hypercorn_config(app, settings)
    configure_logging(settings, config)
    sockets = create_sockets(config, settings)
    try:
        if settings.workers == 1 and not settings.reload:
            return serve_here(settings, app, sockets, supervised=False)
        return _supervise(settings, sockets, _drain_timeout(app))
    finally:
        for sock in (*sockets.secure_sockets, *sockets.insecure_sockets):
            sock.close()


class _Workers:
    """The worker processes of a supervisor, and what each has been told."""

    def __init__(self, settings: RunSettings, sockets: Sockets, drain: float) -> None:
        self.settings = settings
        self.sockets = sockets
        #: Seconds a worker may take to stop once told, before it is killed.
        self.limit = drain + EXIT_MARGIN + KILL_AFTER
        self.context = multiprocessing.get_context("spawn")
        self.running: list[BaseProcess] = []
        #: How many SIGTERMs each worker got (one: drain; two: exit at once).
        self.told: dict[int, int] = {}
        #: SIGTERM/SIGINT the supervisor got.
        self.signals = 0

    def spawn(self) -> None:
        # Children inherit an ignored SIGINT: Ctrl-C in a terminal reaches the whole process
        # group, and only the supervisor decides (it forwards SIGTERM).
        before = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            for _ in range(self.settings.workers):
                worker = self.context.Process(target=_worker, args=(self.settings, self.sockets))
                worker.start()
                self.running.append(worker)
        finally:
            signal.signal(signal.SIGINT, before)

    def tell(self, times: int) -> None:
        """Send each running worker SIGTERM until it has had ``times`` of them."""
        for worker in self.running:
            pid = worker.pid
            if pid is None or worker.exitcode is not None:
                continue
            while self.told.get(pid, 0) < times:
                self.told[pid] = self.told.get(pid, 0) + 1
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)

    def on_signal(self, signum: int, frame: Any) -> None:
        """SIGTERM/SIGINT: the first drains every worker, a second one makes them exit now."""
        self.signals += 1
        self.tell(min(self.signals, 2))

    def stop(self) -> int:
        """Tell the workers to stop (once), wait, kill what stays; the first failure's status.

        A worker ended by a signal (killed) counts as status 1.
        """
        self.tell(max(1, min(self.signals, 2)))
        status = 0
        for worker in self.running:
            worker.join(self.limit)
            if worker.exitcode is None:
                logger.warning("worker %s did not stop in %.0f s: killed", worker.pid, self.limit)
                worker.kill()
                worker.join()
            code = worker.exitcode or 0
            status = status or (code if code > 0 else 1 if code else 0)  # < 0: killed
        self.running.clear()
        self.told.clear()
        return status

    def wait(self, timeout: float | None) -> BaseProcess | None:
        """A worker that has exited, or ``None`` after ``timeout`` (or a signal)."""
        ended = wait([w.sentinel for w in self.running], timeout=timeout)
        return next((w for w in self.running if w.sentinel in ended), None)


def _supervise(settings: RunSettings, sockets: Sockets, drain: float) -> int:
    """Run ``settings.workers`` worker processes; restart them all on a change (``--reload``).

    A worker that exits on its own stops the others and the supervisor with its status, except
    with ``--reload``, where the next change starts them again (a file saved half-written
    should not end a development server).
    """
    from hypercorn.utils import check_for_updates, files_to_watch

    workers = _Workers(settings, sockets, drain)
    previous = {s: signal.signal(s, workers.on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    status = 0
    try:
        while not workers.signals:
            workers.spawn()
            watched = files_to_watch() if settings.reload else {}
            changed = False
            while not workers.signals and not changed:
                ended = workers.wait(1.0 if watched else None)
                if ended is not None and not workers.signals:
                    code = ended.exitcode or 1
                    if not watched:
                        logger.error("a worker exited (%s): stopping", code)
                        return workers.stop() or code
                    logger.error("a worker exited (%s): restarting on the next change", code)
                    workers.stop()
                    while not workers.signals and not check_for_updates(watched):
                        time.sleep(1.0)
                    changed = True
                    break
                changed = bool(watched) and check_for_updates(watched)
            if changed and not workers.signals:
                logger.info("a file changed: restarting the workers")
            status = workers.stop()
    finally:
        workers.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return status
