"""The benchmark harness (bench/) still runs, so it cannot silently rot.

Speed is measured, not asserted: nothing here looks at how fast anything is, only that the
harness produces a result and that the apps it serves echo what they are sent.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import apps
from triows.testing import AsyncTestClient

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.live
def test_echo_harness_measures_the_bare_app(tmp_path: Path) -> None:
    pytest.importorskip(
        "websockets", reason="the bench client needs websockets: pip install -e '.[bench]'"
    )
    out = tmp_path / "echo.json"
    command = [sys.executable, "-m", "bench.echo", "--rounds", "1", "--seconds", "0.5"]
    command += ["--warmup", "0.2", "--scenarios", "bytes256_c1", "--systems", "bare_echo"]
    command += ["--json", str(out)]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["skipped"] == {}
    [run] = report["runs"]
    assert run["system"] == "bare_echo"
    assert "failed" not in run, run
    assert run["errors"] == 0, run["error_samples"]
    assert run["messages"] > 0
    assert run["msgs_per_s"] > 0
    assert report["summary"]["bytes256_c1"]["systems"]["bare_echo"]["msgs_per_s"] > 0
    assert "bare_echo" in done.stdout  # the table


JSON250 = {"user": "ada", "text": "hello", "seq": 7, "tags": ["a", "b"]}


@pytest.mark.parametrize(
    ("name", "path", "send", "expected"),
    [
        ("bare_echo", "/", b"\x00\x01binary", b"\x00\x01binary"),
        ("bare_echo", "/", "text", "text"),
        ("bare_json_echo", "/", json.dumps(JSON250), json.dumps(JSON250, separators=(",", ":"))),
        ("triows_echo", "/bytes", b"\x00\x01binary", b"\x00\x01binary"),
        ("triows_echo", "/text", "text", "text"),
        ("triows_json_model", "/json", json.dumps(JSON250), JSON250),
    ],
)
async def test_bench_apps_echo(name: str, path: str, send: str | bytes, expected: Any) -> None:
    if name in apps.UNAVAILABLE:
        pytest.skip(f"bench.apps:{name} cannot be built here: {apps.UNAVAILABLE[name]}")
    async with (
        AsyncTestClient(getattr(apps, name)) as client,
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
