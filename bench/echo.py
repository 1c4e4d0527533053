"""Websocket echo throughput and latency of triows, side by side with a bare ASGI app.

Each scenario pits triows against its baseline, a bare ASGI app doing the same work with no
framework, on the same server (``hypercorn --worker-class trio``) and the same load:

- ``bytes256_c1``: 1 connection echoing 256-byte binary frames (``bare_echo`` vs ``triows_echo``)
- ``bytes256_c64``: the same with 64 connections
- ``bytes4k_c64``: 64 connections echoing 4 KiB binary frames
- ``json250_c64``: 64 connections echoing a 250-byte JSON object (``bare_json_echo``, which
  parses and re-encodes it, vs ``triows_json_model``, which validates it into a model)

Every round serves each system in a fresh hypercorn process (A B A B …, all on 127.0.0.1) and
drives it with the load process ``bench.client`` in its own process; the report gives the
median messages per second over the rounds, its spread, the median p50/p99 round-trip latency and
the ratio to the baseline. A system whose app cannot be served (say, a feature it uses has not
landed yet) is skipped with the reason, and the run goes on.

    python -m bench.echo [--rounds 3] [--seconds 3] [--scenarios ...] [--systems ...]
                         [--json bench/results/echo.json]

Needs the ``bench`` extra (``pip install -e '.[bench]'``) for the client. This orchestrator
itself uses only the standard library.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime
import json
import os
import platform
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
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

#: The lines ``bench.client --marks`` writes on stderr (kept in step with bench/client.py, which
#: this module does not import: it needs ``websockets``).
MARK_START = "bench.client: window start"
MARK_END = "bench.client: window end"

#: Seconds hypercorn may take to start serving, and to exit after SIGTERM.
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
#: Seconds the load process may take beyond its warm-up and measured time.
CLIENT_SLACK = 60.0


@dataclass(frozen=True)
class Scenario:
    payload: str
    connections: int
    #: (system, websocket path) pairs; the first one is the baseline.
    systems: tuple[tuple[str, str], ...]

    @property
    def baseline(self) -> str:
        return self.systems[0][0]


_ECHO = (("bare_echo", "/"), ("triows_echo", "/bytes"))
SCENARIOS = {
    "bytes256_c1": Scenario("bytes256", 1, _ECHO),
    "bytes256_c64": Scenario("bytes256", 64, _ECHO),
    "bytes4k_c64": Scenario("bytes4k", 64, _ECHO),
    "json250_c64": Scenario(
        "json250", 64, (("bare_json_echo", "/"), ("triows_json_model", "/json"))
    ),
}
SYSTEMS = sorted({system for s in SCENARIOS.values() for system, _ in s.systems})


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


@contextlib.contextmanager
def serve(app: str) -> Iterator[Server]:
    """Run ``hypercorn --worker-class trio bench.apps:APP`` on 127.0.0.1; stop it after.

    hypercorn gets SIGTERM (a graceful stop); if it is still there after ``STOP_TIMEOUT``, or
    something it started outlives it, its process group is killed.

    Raises:
        ServerDidNotStart: hypercorn exited or was silent for ``START_TIMEOUT`` before serving.
    """
    # No access log (hypercorn's default). The log level stays INFO: hypercorn says where it
    # listens in an INFO line, and logs nothing else at INFO while websockets are served.
    command = [sys.executable, "-m", "hypercorn", "--worker-class", "trio"]
    command += ["--bind", "127.0.0.1:0", "--graceful-timeout", "1", f"bench.apps:{app}"]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
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


def _group(pgid: int) -> Iterator[list[str]]:
    """The ``/proc/PID/stat`` fields after ``(comm)`` of each process in the group (Linux)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # "pid (comm) state ppid pgrp ...": comm may hold spaces, so split after ")".
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid:
            yield fields


def _group_alive(pgid: int) -> bool:
    """Whether a live (not zombie) process is left in the group."""
    if not Path("/proc").is_dir():  # not Linux: a zombie counts as alive
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    return any(fields[0] != "Z" for fields in _group(pgid))


def _group_cpu(pgid: int) -> float | None:
    if not Path("/proc").is_dir():
        return None
    ticks = sum(int(fields[11]) + int(fields[12]) for fields in _group(pgid))  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def run_client(
    server: Server, path: str, scenario: Scenario, seconds: float, warmup: float
) -> dict[str, Any]:
    """One run of the load process: its JSON line, or ``{"failed": reason}``.

    The client marks its measured window on stderr; the server's CPU time is read at both marks,
    which gives ``server_cpu`` (the share of one core) and ``server_us_per_msg``.
    """
    command = [sys.executable, "-m", "bench.client", "--marks"]
    command += ["--url", f"ws://127.0.0.1:{server.port}{path}"]
    command += ["--connections", str(scenario.connections), "--payload", scenario.payload]
    command += ["--seconds", str(seconds), "--warmup", str(warmup)]
    limit = warmup + seconds + CLIENT_SLACK
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(limit, process.kill)
    watchdog.start()
    marks: list[tuple[float, float | None]] = []
    tail: collections.deque[str] = collections.deque(maxlen=20)
    try:
        for line in process.stderr or ():  # ends when the client exits (or is killed)
            if line.rstrip() in (MARK_START, MARK_END):
                marks.append((time.perf_counter(), server.cpu_seconds()))
            else:
                tail.append(line.rstrip())
        out = process.stdout.read() if process.stdout else ""
        process.wait()
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
    if process.returncode == -signal.SIGKILL:
        return {"failed": f"the load process did not finish within {CLIENT_SLACK}s of its time"}
    try:
        result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    except (IndexError, ValueError):
        why = next((line for line in reversed(tail) if line.strip()), "(no output)")
        return {"failed": f"the load process exited ({process.returncode}): {why}"}
    if len(marks) == 2 and marks[0][1] is not None and marks[1][1] is not None:
        (start, cpu_start), (end, cpu_end) = marks
        used = cpu_end - cpu_start
        result["server_cpu"] = round(used / (end - start), 3)
        if result["messages"]:
            result["server_us_per_msg"] = round(used / result["messages"] * 1e6, 1)
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
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Every run, in order, and the systems skipped (with why)."""
    runs: list[dict[str, Any]] = []
    wanted = {s for name in scenarios for s, _ in SCENARIOS[name].systems if s in systems}
    skipped = unavailable(sorted(wanted))
    for system, reason in skipped.items():
        _progress(f"SKIPPED {system}: bench.apps:{system} cannot be served: {reason}")
    for name in scenarios:
        scenario = SCENARIOS[name]
        for round_ in range(1, rounds + 1):
            for system, path in scenario.systems:
                if system not in systems or system in skipped:
                    continue
                run: dict[str, Any] = {"scenario": name, "round": round_, "system": system}
                try:
                    with serve(system) as server:
                        run.update(run_client(server, path, scenario, seconds, warmup))
                        server.check_alive()
                        server_log = server.log()
                except ServerDidNotStart as exc:
                    skipped[system] = str(exc)
                    _progress(f"SKIPPED {system}: bench.apps:{system} cannot be served: {exc}")
                    continue
                if server_log:
                    run["server_log"] = server_log
                runs.append(run)
                _progress(f"[{name} {round_}/{rounds}] {system:<18} {_describe(run)}")
    return runs, skipped


def _describe(run: dict[str, Any]) -> str:
    if "failed" in run:
        return f"FAILED: {run['failed']}"
    text = f"{run['msgs_per_s']:>9,.0f} msg/s"
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
    """Per scenario and system: medians over the rounds and the ratio to the baseline."""
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
            rates = [r["msgs_per_s"] for r in ok]
            by_system[system] = {
                "path": path,
                "rounds": len(ok),
                "failed_rounds": failed,
                "msgs_per_s": statistics.median(rates) if rates else None,
                "msgs_per_s_min": min(rates, default=None),
                "msgs_per_s_max": max(rates, default=None),
                "p50_us": _median(r["p50_us"] for r in ok),
                "p99_us": _median(r["p99_us"] for r in ok),
                "errors": sum(r["errors"] for r in ok),
                "server_cpu": _median(r.get("server_cpu") for r in ok),
                "server_us_per_msg": _median(r.get("server_us_per_msg") for r in ok),
                "client_cpu": _median(r.get("client_cpu") for r in ok),
            }
        base = by_system.get(scenario.baseline, {})
        for system, row in by_system.items():
            row["ratio"] = _ratio(row["msgs_per_s"], base.get("msgs_per_s"))
            # Server CPU per message against the baseline's: the framework's cost, even when
            # the rate is limited by something else (one connection waits for each echo).
            row["cost_ratio"] = _ratio(row["server_us_per_msg"], base.get("server_us_per_msg"))
            # The same ratio round by round (neighbouring runs): its spread shows the noise.
            paired = []
            for r in mine:
                if r["system"] != system or "failed" in r:
                    continue
                twin = [
                    b
                    for b in mine
                    if b["system"] == scenario.baseline
                    and b["round"] == r["round"]
                    and "failed" not in b
                ]
                if twin and (value := _ratio(r["msgs_per_s"], twin[0]["msgs_per_s"])) is not None:
                    paired.append(value)
            row["ratio_per_round"] = paired
        summary[name] = {
            "payload": scenario.payload,
            "connections": scenario.connections,
            "baseline": scenario.baseline,
            "systems": by_system,
        }
    return summary


def _median(values: Any) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _ratio(value: float | None, baseline: float | None) -> float | None:
    if value is None or not baseline:
        return None
    return value / baseline


def table(summary: dict[str, Any], rounds: int) -> str:
    header = (
        f"{'scenario':<13} {'system':<18} {'msgs/s':>8} {'min':>8} {'max':>8} {'p50 µs':>7} "
        f"{'p99 µs':>7} {'err':>4} {'srv cpu':>7} {'srv µs/msg':>10} {'cli cpu':>7}  "
        "msgs/s vs base (per round)  µs/msg vs base"
    )
    lines = [f"medians of {rounds} round(s) per system", header, "-" * len(header)]
    for name, scenario in summary.items():
        first = True
        for system, row in scenario["systems"].items():
            if system == scenario["baseline"]:
                versus, cost = "1.00 (baseline)", "1.00"
            else:
                versus = _times(row["ratio"])
                if len(row["ratio_per_round"]) > 1:
                    low, high = min(row["ratio_per_round"]), max(row["ratio_per_round"])
                    versus += f" ({low:.2f}-{high:.2f})"
                cost = _times(row["cost_ratio"])
            if row["failed_rounds"]:
                cost += f"  {row['failed_rounds']} round(s) FAILED"
            lines.append(
                f"{name if first else '':<13} {system:<18} {_us(row['msgs_per_s']):>8} "
                f"{_us(row['msgs_per_s_min']):>8} {_us(row['msgs_per_s_max']):>8} "
                f"{_us(row['p50_us']):>7} {_us(row['p99_us']):>7} {row['errors']:>4} "
                f"{_share(row['server_cpu']):>7} {_us1(row['server_us_per_msg']):>10} "
                f"{_share(row['client_cpu']):>7}  {versus:<26} {cost}"
            )
            first = False
    lines.append(
        "srv/cli cpu: share of one core used by the server (hypercorn worker) / the load "
        "process during the measured window; srv µs/msg: server CPU per echoed message."
    )
    return "\n".join(lines)


def _times(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _us1(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 if every run finished without errors (skipped systems aside)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=0.5, help="unmeasured seconds per run")
    parser.add_argument("--scenarios", nargs="+", choices=list(SCENARIOS), default=list(SCENARIOS))
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, default=SYSTEMS)
    parser.add_argument("--json", type=Path, metavar="FILE", help="write every result here")
    args = parser.parse_args(argv)
    if not 1 <= args.rounds <= 100 or not 0 < args.seconds <= 600 or not 0 <= args.warmup <= 60:
        parser.error("need 1 <= --rounds <= 100, 0 < --seconds <= 600, 0 <= --warmup <= 60")

    started = time.monotonic()
    runs, skipped = measure(args.scenarios, args.systems, args.rounds, args.seconds, args.warmup)
    summary = summarize(runs, args.scenarios)
    elapsed = time.monotonic() - started

    print(table(summary, args.rounds))
    for system, reason in skipped.items():
        print(f"skipped {system}: {reason}")
    print(f"took {elapsed:.1f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = {
            "meta": {
                "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                "python": sys.version,
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
                "rounds": args.rounds,
                "seconds": args.seconds,
                "warmup": args.warmup,
                "elapsed_s": elapsed,
            },
            "summary": summary,
            "skipped": skipped,
            "runs": runs,
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    bad = any("failed" in r or r["errors"] for r in runs)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
