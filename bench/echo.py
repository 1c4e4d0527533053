"""The benchmark suite's measurements: triows side by side with a bare ASGI app, and others.

Each scenario pits systems against its baseline, a bare ASGI app doing the same work with no
framework, on the same server (``hypercorn --worker-class trio``) and the same load:

- ``bytes256_c1``: 1 connection echoing 256-byte binary frames (``bare_echo`` vs ``triows_echo``,
  and ``starlette_echo`` for reference)
- ``bytes256_c64``: the same with 64 connections (and ``fastapi_echo`` too)
- ``bytes4k_c64``: 64 connections echoing 4 KiB binary frames
- ``json250_c64``: 64 connections echoing a 250-byte JSON object (``bare_json_echo``, which
  parses and re-encodes it, vs ``triows_json_model``, which validates it into a model)
- ``handshake_c16``: 16 loops of connect, receive ``welcome``, close (``bare_accept`` vs
  ``triows_guarded``: a guard, a query parameter and an injected service; ``triows_accept``, the
  same route without them, for reference)
- ``idle2000`` and ``idle2000_deflate``: the server's resident memory per idle connection over
  2,000 connections, without and with permessage-deflate offered (``bare_echo`` vs
  ``triows_echo``, and ``starlette_echo``; and ``triows_echo`` served by ``triows run``:
  ``triows_run_echo`` with its defaults, ``triows_run_deflate`` with ``--compression deflate``)

Every round serves each system in a fresh hypercorn process (A B C, then C B A, …, all on
127.0.0.1) and drives it with the load process ``bench.client`` in its own process. The summary
gives, per scenario and system, the median over the rounds, its spread, the median p50/p99
latency and the ratio to the baseline; ``TARGETS`` are checked against those medians. A system
whose app cannot be served (say, a feature it uses has not landed yet) is skipped with the
reason, and the run goes on.

``python -m bench`` (``bench/__main__.py``) runs this and reports. This module itself uses only
the standard library; the load process needs the ``bench`` extra (``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from bench import MARK_ALL, MARK_END, MARK_START, MARK_WARM, raise_fd_limit

ROOT = Path(__file__).resolve().parent.parent

#: Seconds hypercorn may take to start serving, and to exit after SIGTERM.
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
#: Seconds the load process may take beyond its warm-up and measured time.
CLIENT_SLACK = 60.0
#: Seconds the idle scenarios may take to open their connections.
IDLE_TIMEOUT = 120.0
#: Seconds to let the server settle before its memory is read.
SETTLE = 0.3


@dataclass(frozen=True)
class Pinning:
    """The CPU of the server processes and the CPU of the load process (Linux, 2+ CPUs)."""

    server: int
    client: int


def pinning() -> Pinning | None:
    """One CPU for the servers, another for the load process; None where that cannot be done.

    Pinned, the two never share a core and never migrate: with one connection, whether they
    happened to share a core would otherwise move the rate by several per cent from run to run.
    """
    if not hasattr(os, "sched_getaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    return Pinning(cpus[0], cpus[1]) if len(cpus) >= 2 else None


def _pin(pid: int, cpu: int | None) -> None:
    if cpu is not None:
        with contextlib.suppress(OSError):  # it may have exited meanwhile
            os.sched_setaffinity(pid, {cpu})


Kind = Literal["echo", "handshake", "idle"]
#: What each kind of scenario measures, and whether more is better.
METRIC: dict[str, tuple[str, bool]] = {
    "echo": ("msgs/s", True),
    "handshake": ("handshakes/s", True),
    "idle": ("KiB/conn", False),
}


@dataclass(frozen=True)
class Scenario:
    kind: Kind
    #: (system, websocket path) pairs; the first one is the baseline.
    systems: tuple[tuple[str, str], ...]
    #: Echo: connections; handshake: concurrent loops; idle: connections measured.
    connections: int
    #: Echo: the message (a ``bench.client.PAYLOADS`` name).
    payload: str = ""
    #: Idle: whether the client offers permessage-deflate (``"deflate"``) or not (``"none"``).
    compression: str = "none"

    @property
    def baseline(self) -> str:
        return self.systems[0][0]

    @property
    def metric(self) -> str:
        return METRIC[self.kind][0]

    @property
    def higher_is_better(self) -> bool:
        return METRIC[self.kind][1]


#: The handshake request every system gets: the guard's header is always sent (bench.client).
_GUARDED = "/guarded?name=bench"
_ECHO = (("bare_echo", "/"), ("triows_echo", "/bytes"))
_STARLETTE = (("starlette_echo", "/bytes"),)
_IDLE = (("bare_echo", "/text"), ("triows_echo", "/text"), ("starlette_echo", "/text"))
_RUN = (("triows_run_echo", "/text"), ("triows_run_deflate", "/text"))
#: Systems served by ``triows run`` instead of the hypercorn CLI: (the bench.apps app, flags).
RUN_SYSTEMS: dict[str, tuple[str, tuple[str, ...]]] = {
    "triows_run_echo": ("triows_echo", ()),
    "triows_run_deflate": ("triows_echo", ("--compression", "deflate")),
}
SCENARIOS = {
    "bytes256_c1": Scenario("echo", _ECHO + _STARLETTE, 1, "bytes256"),
    "bytes256_c64": Scenario(
        "echo", (*_ECHO, *_STARLETTE, ("fastapi_echo", "/bytes")), 64, "bytes256"
    ),
    "bytes4k_c64": Scenario("echo", _ECHO, 64, "bytes4k"),
    "json250_c64": Scenario(
        "echo",
        (("bare_json_echo", "/"), ("triows_json_model", "/json"), ("triows_events", "/events")),
        64,
        "json250",
    ),
    "handshake_c16": Scenario(
        "handshake",
        (("bare_accept", _GUARDED), ("triows_guarded", _GUARDED), ("triows_accept", "/accept")),
        16,
    ),
    "idle2000": Scenario("idle", (*_IDLE, _RUN[0]), 2000, compression="none"),
    "idle2000_deflate": Scenario("idle", _IDLE + _RUN, 2000, compression="deflate"),
}
SYSTEMS = sorted({system for s in SCENARIOS.values() for system, _ in s.systems})


@dataclass(frozen=True)
class Target:
    """What the issue asks of triows, checked against the medians of one run."""

    scenario: str
    system: str
    versus: str
    #: ``system``'s value over ``versus``'s must be at least this (rates)…
    min_ratio: float | None = None
    #: …or ``system``'s value may exceed ``versus``'s by at most this (KiB per connection)…
    max_excess: float | None = None
    #: …or ``system``'s value may be at most this (KiB per connection; ``versus`` unused).
    max_value: float | None = None

    @property
    def kind(self) -> str:
        if self.min_ratio is not None:
            return "ratio"
        return "excess_kib" if self.max_excess is not None else "max_kib"

    @property
    def goal(self) -> str:
        if self.min_ratio is not None:
            return f"≥ {self.min_ratio:.2f}x"
        if self.max_excess is not None:
            return f"≤ +{self.max_excess:g} KiB"
        return f"≤ {self.max_value:g} KiB"


TARGETS = (
    Target("bytes256_c1", "triows_echo", "bare_echo", min_ratio=0.97),
    Target("bytes256_c64", "triows_echo", "bare_echo", min_ratio=0.97),
    Target("bytes4k_c64", "triows_echo", "bare_echo", min_ratio=0.97),
    Target("json250_c64", "triows_json_model", "bare_json_echo", min_ratio=0.92),
    # Issue #14: dispatching among 4 typed events costs at most 5% over the one-model route.
    Target("json250_c64", "triows_events", "triows_json_model", min_ratio=0.95),
    # Where the server is saturated: with one connection the rate is bound by the round trip
    # (~200 µs here), of which any framework's share is ~1%, so no framework can be 3% faster
    # than another there (bytes256_c1 still shows Starlette, for reference).
    Target("bytes256_c64", "triows_echo", "starlette_echo", min_ratio=1.03),
    Target("handshake_c16", "triows_guarded", "bare_accept", min_ratio=0.90),
    Target("idle2000", "triows_echo", "bare_echo", max_excess=3.0),
    Target("idle2000_deflate", "triows_echo", "bare_echo", max_excess=3.0),
    # Issue #11: a browser-style connection (deflate offered) on the `triows run` path.
    Target("idle2000_deflate", "triows_run_echo", "", max_value=30.0),
)


class ServerDidNotStart(RuntimeError):
    """hypercorn exited, or stayed silent, before serving; the message says why."""


class _Stderr:
    """Drains a server's stderr on a thread: finds the port and keeps the last lines."""

    RUNNING_ON = re.compile(r"Running on http://127\.0\.0\.1:(\d+) ")
    EXCEPTION = re.compile(r"[\w.]+(Error|Exception|Exit|Interrupt|Group)\b")

    def __init__(self, stream: Any) -> None:
        self.lines: collections.deque[str] = collections.deque(maxlen=60)
        self.port: int | None = None
        self.ready = threading.Event()  # set on the "Running on" line, or at end of stream
        self._stream = stream
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        for raw in self._stream:
            line = raw.decode("utf-8", "replace").rstrip()
            self.lines.append(line)
            found = self.RUNNING_ON.search(line) if self.port is None else None
            if found:
                self.port = int(found.group(1))
                self.lines.clear()  # from now on: only what the server says while serving
                self.ready.set()
        self.ready.set()

    def why(self) -> str:
        """The line that says why it stopped: the last exception line, or the last line."""
        said = [line.strip(" |") for line in self.lines if line.strip(" |+-")]
        for line in reversed(said):
            if self.EXCEPTION.match(line):
                return line
        return said[-1] if said else "(no output)"


@dataclass(frozen=True)
class Server:
    """A running hypercorn."""

    port: int
    #: The hypercorn CLI; its process group holds its worker process too.
    process: subprocess.Popen[bytes]
    stderr: _Stderr

    def check_alive(self) -> None:
        """Raise ServerDidNotStart if hypercorn has exited (say, its app failed at startup)."""
        if self.process.poll() is not None:
            self.stderr.thread.join(STOP_TIMEOUT)
            raise ServerDidNotStart(
                f"hypercorn exited ({self.process.returncode}) while serving: {self.stderr.why()}"
            )

    def log(self) -> list[str]:
        """What it said on stderr since it started serving."""
        return [line for line in self.stderr.lines if line.strip()]

    def cpu_seconds(self) -> float | None:
        """CPU time used so far by the live processes of its group (None: not on Linux)."""
        return _group_cpu(self.process.pid)

    def worker_pid(self) -> int | None:
        """The process that serves the app (None: not on Linux).

        hypercorn runs its app in a worker it spawns (``multiprocessing.spawn``), beside a
        ``multiprocessing.resource_tracker``; with ``--workers 0`` it would be hypercorn itself.
        """
        if not Path("/proc").is_dir():
            return None
        for pid, fields in _group(self.process.pid):
            if int(fields[1]) != self.process.pid or fields[0] == "Z":
                continue
            with contextlib.suppress(OSError):
                if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    return pid
        return self.process.pid

    def rss_kib(self) -> int | None:
        """The resident memory of the worker, in KiB (``VmRSS``; None: not on Linux)."""
        pid = self.worker_pid()
        if pid is None:
            return None
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return None
        found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        return int(found.group(1)) if found else None


@contextlib.contextmanager
def serve(
    app: str,
    cpu: int | None = None,
    *,
    module: str = "bench.apps",
    cwd: Path = ROOT,
    command: Sequence[str] | None = None,
) -> Iterator[Server]:
    """Run ``hypercorn --worker-class trio MODULE:APP`` (in ``cwd``) on 127.0.0.1; stop it after.

    A system of ``RUN_SYSTEMS`` is served by ``triows run MODULE:ITS_APP`` with its flags instead
    (one process: it is its own worker). With ``command``, that command is run instead (a server
    of another kind, which must say ``Running on http://127.0.0.1:PORT (...)`` on stderr as
    hypercorn does; the fan-out benchmark's uvicorn and websockets servers).

    With ``cpu``, hypercorn and the processes it started (its worker) are pinned to that CPU
    once it serves.

    hypercorn gets SIGTERM (a graceful stop); if it is still there after ``STOP_TIMEOUT``, or
    something it started outlives it, its process group is killed.

    Raises:
        ServerDidNotStart: hypercorn exited or was silent for ``START_TIMEOUT`` before serving.
    """
    # No access log (hypercorn's default). The log level stays INFO: hypercorn says where it
    # listens in an INFO line, and logs nothing else at INFO while websockets are served.
    if command is not None:
        command = list(command)
    elif app in RUN_SYSTEMS:
        served, flags = RUN_SYSTEMS[app]
        command = [sys.executable, "-m", "triows", "run", f"{module}:{served}", "--port", "0"]
        command += ["--no-access-log", "--drain-timeout", "1", *flags]
    else:
        command = [sys.executable, "-m", "hypercorn", "--worker-class", "trio"]
        command += ["--bind", "127.0.0.1:0", "--graceful-timeout", "1", f"{module}:{app}"]
    process = subprocess.Popen(
        command,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: the worker can be killed with it
    )
    stderr = _Stderr(process.stderr)
    try:
        stderr.ready.wait(START_TIMEOUT)
        if stderr.port is None:
            if process.poll() is None:
                raise ServerDidNotStart(f"hypercorn was not serving after {START_TIMEOUT}s")
            process.wait()
            stderr.thread.join(STOP_TIMEOUT)
            raise ServerDidNotStart(f"hypercorn exited ({process.returncode}): {stderr.why()}")
        if cpu is not None:
            for pid, _ in _group(process.pid):
                _pin(pid, cpu)
        yield Server(stderr.port, process, stderr)
    finally:
        _stop(process)
        stderr.thread.join(STOP_TIMEOUT)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(STOP_TIMEOUT)
    if process.returncode is not None:
        # It exited: give what it started (its worker, multiprocessing's resource tracker) a
        # moment to follow.
        deadline = time.monotonic() + 2.0
        while _group_alive(process.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
    if _group_alive(process.pid):  # stuck: hypercorn itself, or something it left behind
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    if process.stderr is not None:
        process.stderr.close()


def _group(pgid: int) -> Iterator[tuple[int, list[str]]]:
    """Each process in the group, and its ``/proc/PID/stat`` fields after ``(comm)`` (Linux)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # "pid (comm) state ppid pgrp ...": comm may hold spaces, so split after ")".
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid:
            yield int(entry.name), fields


def _group_alive(pgid: int) -> bool:
    """Whether a live (not zombie) process is left in the group."""
    if not Path("/proc").is_dir():  # not Linux: a zombie counts as alive
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    return any(fields[0] != "Z" for _, fields in _group(pgid))


def _group_cpu(pgid: int) -> float | None:
    if not Path("/proc").is_dir():
        return None
    ticks = sum(int(fields[11]) + int(fields[12]) for _, fields in _group(pgid))  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def _client(args: list[str], stdin: int, cpu: int | None) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.client", *args],
        cwd=ROOT,
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _pin(process.pid, cpu)  # it is still importing: long before it connects
    return process


def _finish(process: subprocess.Popen[str], tail: Sequence[str], limit: float) -> dict[str, Any]:
    """The load process's JSON line once it has exited, or ``{"failed": reason}``."""
    out = process.stdout.read() if process.stdout else ""
    process.wait()
    if process.returncode == -signal.SIGKILL:
        return {"failed": f"the load process did not finish within {limit:.0f}s"}
    try:
        result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    except (IndexError, ValueError):
        why = next((line for line in reversed(tail) if line.strip()), "(no output)")
        return {"failed": f"the load process exited ({process.returncode}): {why}"}
    return result


@contextlib.contextmanager
def _watched(process: subprocess.Popen[str], limit: float) -> Iterator[None]:
    """Kill the load process if it outlives ``limit`` seconds; always reap it."""
    watchdog = threading.Timer(limit, process.kill)
    watchdog.start()
    try:
        yield
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def run_client(
    server: Server,
    path: str,
    scenario: Scenario,
    seconds: float,
    warmup: float,
    cpu: int | None = None,
) -> dict[str, Any]:
    """One timed run of the load process (echo, handshake): its JSON line, or ``{"failed"}``.

    The client marks its measured window on stderr; the server's CPU time is read at both marks,
    which gives ``server_cpu`` (the share of one core) and ``server_us_per_op`` (per echoed
    message, or per handshake).
    """
    args = ["--mode", scenario.kind, "--marks", "--url", f"ws://127.0.0.1:{server.port}{path}"]
    args += ["--connections", str(scenario.connections)]
    args += ["--seconds", str(seconds), "--warmup", str(warmup)]
    if scenario.payload:
        args += ["--payload", scenario.payload]
    limit = warmup + seconds + CLIENT_SLACK
    process = _client(args, subprocess.DEVNULL, cpu)
    marks: list[tuple[float, float | None]] = []
    tail: collections.deque[str] = collections.deque(maxlen=20)
    with _watched(process, limit):
        for line in process.stderr or ():  # ends when the client exits (or is killed)
            if line.rstrip() in (MARK_START, MARK_END):
                marks.append((time.perf_counter(), server.cpu_seconds()))
            else:
                tail.append(line.rstrip())
        result = _finish(process, tail, limit)
    if "failed" in result:
        return result
    result["value"] = result["per_s"]
    if len(marks) == 2 and marks[0][1] is not None and marks[1][1] is not None:
        (start, cpu_start), (end, cpu_end) = marks
        used = cpu_end - cpu_start
        result["server_cpu"] = round(used / (end - start), 3)
        if result["count"]:
            result["server_us_per_op"] = round(used / result["count"] * 1e6, 1)
    return result


def run_idle(
    server: Server, path: str, scenario: Scenario, warm: int, cpu: int | None = None
) -> dict[str, Any]:
    """One run of the idle scenario: the worker's memory growth per connection.

    The load process opens ``warm`` connections first (so that what the first connections cost
    once — imports, caches, buffers — is paid), then ``scenario.connections`` more; the
    worker's resident memory is read once each batch is open (the client waits for it), and the
    growth between the two, divided by the connections, is ``kib_per_conn``.
    """
    args = ["--mode", "idle", "--url", f"ws://127.0.0.1:{server.port}{path}"]
    args += ["--connections", str(scenario.connections), "--warm", str(warm)]
    args += ["--compression", scenario.compression]
    process = _client(args, subprocess.PIPE, cpu)
    rss: dict[str, int | None] = {}
    tail: collections.deque[str] = collections.deque(maxlen=20)
    with _watched(process, IDLE_TIMEOUT):
        for line in process.stderr or ():
            mark = line.rstrip()
            if mark in (MARK_WARM, MARK_ALL):
                time.sleep(SETTLE)
                rss[mark] = server.rss_kib()
                with contextlib.suppress(OSError):  # it may have been killed meanwhile
                    assert process.stdin is not None
                    process.stdin.write("\n")
                    process.stdin.flush()
            else:
                tail.append(mark)
        result = _finish(process, tail, IDLE_TIMEOUT)
    if "failed" in result:
        return result
    before, after = rss.get(MARK_WARM), rss.get(MARK_ALL)
    if before is None or after is None:
        return {**result, "failed": "the worker's memory could not be read (/proc)"}
    result["rss_warm_kib"], result["rss_all_kib"] = before, after
    result["value"] = result["kib_per_conn"] = round((after - before) / scenario.connections, 2)
    if result["open_at_mark"] != result["connected"]:
        result["errors"] += 1
        result["error_samples"].append(
            f"{result['connected'] - result['open_at_mark']} connection(s) closed while idle"
        )
    return result


def unavailable(apps: Sequence[str]) -> dict[str, str]:
    """Why each of these ``bench.apps`` apps cannot be served, asked of ``python -m bench.apps``.

    An app that uses a feature this version of triows lacks fails when it is built; bench.apps
    catches that and says so, rather than letting hypercorn start and crash.
    """
    if not apps:
        return {}
    command = [sys.executable, "-m", "bench.apps", *apps]
    try:
        done = subprocess.run(
            command,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
            check=False,
        )
        status: dict[str, str | None] = json.loads(done.stdout.strip().splitlines()[-1])
    except subprocess.TimeoutExpired:
        return dict.fromkeys(apps, f"python -m bench.apps took over {START_TIMEOUT}s")
    except (IndexError, ValueError):  # bench.apps itself is broken: nothing can be served
        why = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        return dict.fromkeys(apps, f"python -m bench.apps failed ({done.returncode}): {why}")
    return {app: reason for app in apps if (reason := status.get(app, "unknown app"))}


def measure(
    scenarios: Sequence[str],
    systems: Sequence[str],
    rounds: int,
    seconds: float,
    warmup: float,
    idle_connections: int | None = None,
    idle_warm: int = 100,
    pin: bool = True,
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Every run, in order, and the systems skipped (with why).

    ``idle_connections`` overrides the idle scenarios' 2,000 connections (a quick run). With
    ``pin``, the servers and the load process run on two different CPUs (see ``pinning``).
    """
    cpus = pinning() if pin else None
    server_cpu, client_cpu = (cpus.server, cpus.client) if cpus else (None, None)
    runs: list[dict[str, Any]] = []
    wanted = {s for name in scenarios for s, _ in SCENARIOS[name].systems if s in systems}
    apps = {system: RUN_SYSTEMS.get(system, (system, ()))[0] for system in wanted}
    cannot = unavailable(sorted(set(apps.values())))
    skipped = {system: cannot[app] for system, app in apps.items() if app in cannot}
    for system, reason in skipped.items():
        _progress(f"SKIPPED {system}: bench.apps:{system} cannot be served: {reason}")
    idle = [SCENARIOS[name] for name in scenarios if SCENARIOS[name].kind == "idle"]
    if idle:  # the servers inherit it
        raise_fd_limit(idle_warm + max(idle_connections or s.connections for s in idle) + 512)
    for name in scenarios:
        scenario = SCENARIOS[name]
        if scenario.kind == "idle" and idle_connections:
            scenario = Scenario(
                "idle", scenario.systems, idle_connections, compression=scenario.compression
            )
        for round_ in range(1, rounds + 1):
            # A B C, then C B A, …: a drift during the run favours no one.
            order = scenario.systems if round_ % 2 else scenario.systems[::-1]
            for system, path in order:
                if system not in systems or system in skipped:
                    continue
                run: dict[str, Any] = {"scenario": name, "round": round_, "system": system}
                try:
                    with serve(system, server_cpu) as server:
                        if scenario.kind == "idle":
                            run.update(run_idle(server, path, scenario, idle_warm, client_cpu))
                        else:
                            run.update(
                                run_client(server, path, scenario, seconds, warmup, client_cpu)
                            )
                        server.check_alive()
                        server_log = server.log()
                except ServerDidNotStart as exc:
                    skipped[system] = str(exc)
                    _progress(f"SKIPPED {system}: bench.apps:{system} cannot be served: {exc}")
                    continue
                if server_log:
                    run["server_log"] = server_log
                runs.append(run)
                _progress(f"[{name} {round_}/{rounds}] {system:<18} {_describe(scenario, run)}")
    return runs, skipped


def _describe(scenario: Scenario, run: dict[str, Any]) -> str:
    if "failed" in run:
        return f"FAILED: {run['failed']}"
    if scenario.kind == "idle":
        text = f"{run['value']:>9,.1f} KiB/conn  ({run['rss_warm_kib']:,} -> "
        text += f"{run['rss_all_kib']:,} KiB; opened in {run['open_s']:.1f} s"
        text += f"; {'+'.join(run['extensions']) or 'no extension'})"
    else:
        text = f"{run['value']:>9,.0f} {scenario.metric}"
        text += f"  p50 {_us(run['p50_us'])} µs  p99 {_us(run['p99_us'])} µs"
    if run["errors"]:
        text += f"  {run['errors']} ERRORS: {'; '.join(run['error_samples'])}"
    if "server_log" in run:
        text += f"  (server said: {run['server_log'][-1]})"
    return text


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def summarize(runs: list[dict[str, Any]], scenarios: Sequence[str]) -> dict[str, Any]:
    """Per scenario and system: medians over the rounds and the ratio to the baseline.

    ``value`` is the scenario's metric (``metric``: msgs/s, handshakes/s, KiB/conn).
    """
    summary: dict[str, Any] = {}
    for name in scenarios:
        scenario = SCENARIOS[name]
        mine = [r for r in runs if r["scenario"] == name]
        by_system: dict[str, dict[str, Any]] = {}
        for system, path in scenario.systems:
            ok = [r for r in mine if r["system"] == system and "failed" not in r]
            failed = sum(1 for r in mine if r["system"] == system and "failed" in r)
            if not ok and not failed:
                continue
            values = [r["value"] for r in ok]
            row: dict[str, Any] = {
                "path": path,
                "rounds": len(ok),
                "failed_rounds": failed,
                "value": statistics.median(values) if values else None,
                "value_min": min(values, default=None),
                "value_max": max(values, default=None),
                "errors": sum(r["errors"] for r in ok),
            }
            if scenario.kind == "idle":
                row["rss_warm_kib"] = _median(r["rss_warm_kib"] for r in ok)
                row["open_s"] = _median(r["open_s"] for r in ok)
                row["extensions"] = sorted({e for r in ok for e in r["extensions"]})
            else:
                row["p50_us"] = _median(r["p50_us"] for r in ok)
                row["p99_us"] = _median(r["p99_us"] for r in ok)
                row["server_cpu"] = _median(r.get("server_cpu") for r in ok)
                row["server_us_per_op"] = _median(r.get("server_us_per_op") for r in ok)
                row["client_cpu"] = _median(r.get("client_cpu") for r in ok)
            by_system[system] = row
        base = by_system.get(scenario.baseline, {})
        for system, row in by_system.items():
            row["ratio"] = _ratio(row["value"], base.get("value"))
            if scenario.kind == "idle":
                row["excess"] = _minus(row["value"], base.get("value"))
                row["excess_per_round"] = _paired(mine, system, scenario.baseline, _minus)
            else:
                # Server CPU per operation against the baseline's: the framework's cost, even
                # when the rate is limited by something else (one connection waits for each
                # echo; the client may be the bottleneck of the handshakes).
                row["cost_ratio"] = _ratio(row["server_us_per_op"], base.get("server_us_per_op"))
            # The same ratio round by round (neighbouring runs): its spread shows the noise.
            row["ratio_per_round"] = _paired(mine, system, scenario.baseline, _ratio)
        summary[name] = {
            "kind": scenario.kind,
            "metric": scenario.metric,
            "higher_is_better": scenario.higher_is_better,
            "payload": scenario.payload or None,
            "compression": scenario.compression if scenario.kind == "idle" else None,
            "connections": scenario.connections,
            "baseline": scenario.baseline,
            "systems": by_system,
        }
    return summary


def _paired(runs: list[dict[str, Any]], system: str, versus: str, how: Any) -> list[float]:
    """``how(system's value, versus's value)`` round by round, where both rounds succeeded."""
    paired = []
    for r in runs:
        if r["system"] != system or "failed" in r:
            continue
        twin = [
            b
            for b in runs
            if b["system"] == versus and b["round"] == r["round"] and "failed" not in b
        ]
        if twin and (value := how(r["value"], twin[0]["value"])) is not None:
            paired.append(value)
    return paired


def _median(values: Any) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _ratio(value: float | None, baseline: float | None) -> float | None:
    if value is None or not baseline:
        return None
    return value / baseline


def _minus(value: float | None, baseline: float | None) -> float | None:
    if value is None or baseline is None:
        return None
    return value - baseline


def check_targets(summary: dict[str, Any], runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each of ``TARGETS`` whose scenario ran: the measured medians and whether it is met.

    ``met`` is None when one of the two systems has no result (skipped, failed, not selected).
    """
    checked = []
    for target in TARGETS:
        if target.scenario not in summary:
            continue
        systems = summary[target.scenario]["systems"]
        value = systems.get(target.system, {}).get("value")
        versus = systems.get(target.versus, {}).get("value")
        mine = [r for r in runs if r["scenario"] == target.scenario]
        if target.max_value is not None:
            measured = value
            met = None if value is None else value <= target.max_value
            per_round = [r["value"] for r in mine if r["system"] == target.system and "value" in r]
        else:
            how = _ratio if target.min_ratio is not None else _minus
            measured = how(value, versus)
            met = None
            if measured is not None:
                if target.min_ratio is not None:
                    met = measured >= target.min_ratio
                else:
                    met = measured <= (target.max_excess or 0.0)
            per_round = _paired(mine, target.system, target.versus, how)
        checked.append(
            {
                "scenario": target.scenario,
                "system": target.system,
                "versus": target.versus,
                "kind": target.kind,
                "goal": target.goal,
                "min_ratio": target.min_ratio,
                "max_excess_kib": target.max_excess,
                "max_kib": target.max_value,
                "measured": measured,
                "per_round": per_round,
                "met": met,
                "verdict": verdict(target, met, per_round),
            }
        )
    return checked


def verdict(target: Target, met: bool | None, per_round: list[float]) -> str:
    """``met`` or ``missed`` when every round agrees with the median, ``noise`` otherwise.

    On a shared machine one round can land on either side of a goal that the median only just
    meets or misses; the verdict says so instead of pretending the median settles it.
    """
    if met is None:
        return "unknown"
    if len(per_round) < 2:
        return "met" if met else "missed"
    if target.min_ratio is not None:
        all_met, all_missed = min(per_round) >= target.min_ratio, max(per_round) < target.min_ratio
    else:
        limit = target.max_excess if target.max_excess is not None else target.max_value or 0.0
        all_met, all_missed = max(per_round) <= limit, min(per_round) > limit
    if all_met:
        return "met"
    if all_missed:
        return "missed"
    return "noise"
