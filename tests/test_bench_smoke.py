"""The benchmark harness (bench/) still runs, so it cannot silently rot.

Speed is measured, not asserted: nothing here looks at how fast anything is, only that the
harness produces a result of each kind (echo, handshake, idle memory), a table, a JSON file, a
chart and a docs section, and that the apps it serves do what the load process expects.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import apps, echo, report
from triows.testing import AsyncTestClient, WebSocketDenied

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.live
def test_harness_measures_each_kind_of_scenario(tmp_path: Path) -> None:
    pytest.importorskip(
        "websockets", reason="the bench client needs websockets: pip install -e '.[bench]'"
    )
    out, chart = tmp_path / "bench.json", tmp_path / "bench.png"
    command = [sys.executable, "-m", "bench", "--quick", "--seconds", "0.3", "--warmup", "0.1"]
    command += ["--scenarios", "bytes256_c1", "handshake_c16", "idle2000"]
    command += ["--systems", "bare_echo", "triows_guarded", "--idle-connections", "40"]
    command += ["--json", str(out), "--chart", str(chart)]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["skipped"] == {}
    assert [(r["scenario"], r["system"]) for r in result["runs"]] == [
        ("bytes256_c1", "bare_echo"),
        ("handshake_c16", "triows_guarded"),
        ("idle2000", "bare_echo"),
    ]
    for run in result["runs"]:
        assert "failed" not in run, run
        assert run["errors"] == 0, run["error_samples"]
        assert run["value"] > 0, run
    echo, handshake, idle = result["runs"]
    assert echo["count"] > 0
    assert handshake["count"] > 0
    assert idle["connected"] == idle["warm"] + 40
    assert idle["rss_all_kib"] > 0
    assert result["meta"]["machine"]["cpus"]
    # No baseline in this run for the handshake, no second system for the targets: not met,
    # not missed.
    assert {t["met"] for t in result["targets"]} == {None}
    assert "bare_echo" in done.stdout  # the tables
    assert "KiB/conn" in done.stdout
    if importlib.util.find_spec("matplotlib") is not None:
        assert chart.read_bytes().startswith(b"\x89PNG")

    page = tmp_path / "page.md"
    page.write_text(f"# Benchmarks\n\n{report.DOCS_START}\nold\n{report.DOCS_END}\n\nafter\n")
    report.write_docs(result, page)
    written = page.read_text()
    assert "old" not in written
    assert written.endswith(f"{report.DOCS_END}\n\nafter\n")
    assert "| idle2000 | bare_echo |" in written


def test_benchmarks_page_has_the_generated_section() -> None:
    text = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    assert text.index(report.DOCS_START) < text.index(report.DOCS_END)
    assert "![benchmarks](benchmarks.png)" in text


JSON250 = {"event": "message", "user": "ada", "text": "hello", "seq": 7, "tags": ["a", "b"]}
ECHO_CASES = [
    ("bare_echo", "/", b"\x00\x01binary", b"\x00\x01binary"),
    ("bare_echo", "/", "text", "text"),
    ("bare_json_echo", "/", json.dumps(JSON250), json.dumps(JSON250, separators=(",", ":"))),
    ("triows_json_model", "/json", json.dumps(JSON250), JSON250),
    ("triows_events", "/events", json.dumps(JSON250), JSON250),
]
ECHO_CASES += [
    (name, path, send, send)
    for name in ("triows_echo", "starlette_echo", "fastapi_echo")
    for path, send in (("/bytes", b"\x00\x01binary"), ("/text", "text"))
]


def _app(name: str) -> Any:
    if name in ("starlette_echo", "fastapi_echo"):
        pytest.importorskip(name.split("_")[0], reason="pip install -e '.[bench]'")
    if name in apps.UNAVAILABLE:
        pytest.skip(f"bench.apps:{name} cannot be built here: {apps.UNAVAILABLE[name]}")
    return getattr(apps, name)


@pytest.mark.parametrize(("name", "path", "send", "expected"), ECHO_CASES)
async def test_bench_apps_echo(name: str, path: str, send: str | bytes, expected: Any) -> None:
    async with (
        AsyncTestClient(_app(name)) as client,
        client.websocket_connect(path) as ws,
    ):
        for _ in range(2):
            if isinstance(send, bytes):
                await ws.send_bytes(send)
                assert await ws.receive_bytes() == expected
            elif isinstance(expected, dict):
                await ws.send_text(send)
                assert json.loads(await ws.receive_text()) == expected
            else:
                await ws.send_text(send)
                assert await ws.receive_text() == expected


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("bare_accept", "/guarded?name=bench"),
        ("triows_guarded", "/guarded?name=bench"),
        ("triows_accept", "/accept"),
    ],
)
async def test_bench_apps_welcome(name: str, path: str) -> None:
    headers = {apps.TOKEN_HEADER: apps.TOKEN}
    async with (
        AsyncTestClient(_app(name)) as client,
        client.websocket_connect(path, headers=headers) as ws,
    ):
        assert await ws.receive_text() == apps.WELCOME


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/guarded?name=bench", {}),  # the guard says no
        ("/guarded", {apps.TOKEN_HEADER: apps.TOKEN}),  # the query parameter is required
    ],
)
async def test_triows_guarded_checks_what_it_claims_to(path: str, headers: dict[str, str]) -> None:
    async with AsyncTestClient(apps.triows_guarded) as client:
        with pytest.raises(WebSocketDenied):
            async with client.websocket_connect(path, headers=headers):
                pass


@pytest.mark.live
@pytest.mark.parametrize("system", ["triows_guarded", "triows_echo"])
def test_instruction_counter_drives_each_workload(system: str) -> None:
    # Natively, not under valgrind (slow): the server, the load and their checks still run.
    pytest.importorskip("websockets", reason="the load needs websockets: pip install -e '.[bench]'")
    from bench import instructions

    instructions.drive(system, 20)


def test_instruction_counter_reads_callgrind_totals() -> None:
    from bench import instructions

    sample = "events: Ir\nsummary: 123\nfn=(1) main\n5 100\ntotals: 123456\n"
    assert instructions.totals(sample) == 123456
    with pytest.raises(ValueError, match="no totals"):
        instructions.totals("events: Ir\n")


@pytest.mark.parametrize(
    ("target", "met", "rounds", "expected"),
    [
        (echo.Target("s", "a", "b", min_ratio=0.97), True, [0.98, 0.99, 1.01], "met"),
        (echo.Target("s", "a", "b", min_ratio=0.97), False, [0.90, 0.95, 0.96], "missed"),
        (echo.Target("s", "a", "b", min_ratio=0.97), True, [0.96, 0.98, 0.99], "noise"),
        (echo.Target("s", "a", "b", min_ratio=0.97), False, [0.96, 0.965, 0.98], "noise"),
        (echo.Target("s", "a", "b", max_excess=3.0), True, [2.4, 2.5], "met"),
        (echo.Target("s", "a", "b", max_excess=3.0), False, [3.4, 3.5], "missed"),
        (echo.Target("s", "a", "b", max_excess=3.0), True, [2.9, 3.1], "noise"),
        (echo.Target("s", "a", "b", min_ratio=0.97), True, [0.99], "met"),
        (echo.Target("s", "a", "b", min_ratio=0.97), None, [], "unknown"),
    ],
)
def test_a_verdict_says_when_the_rounds_disagree_with_the_median(
    target: Any, met: bool | None, rounds: list[float], expected: str
) -> None:
    assert echo.verdict(target, met, rounds) == expected
