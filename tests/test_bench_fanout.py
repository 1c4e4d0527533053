"""The fan-out benchmark (bench/fanout.py) still runs, so it cannot silently rot.

Nothing here looks at speed: the apps fan out what the load process expects, its frame parser
and message stamps read what each system sends, the summary and the acceptance verdicts come
out of a set of runs, and one quick run of two real servers (a triows app under hypercorn and
python-socketio under uvicorn, spoken to in Engine.IO) delivers every message.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

from bench import fanclient, fanout, fanout_apps
from triows.testing import AsyncTestClient

ROOT = Path(__file__).resolve().parent.parent


def _members(name: str) -> int:
    if name == "triows_loop":
        return len(fanout_apps.room)
    return len(fanout_apps.triows_channels.channels.members(fanout_apps.ROOM))


@pytest.mark.parametrize("name", ["triows_channels", "triows_loop"])
async def test_triows_apps_fan_out_to_every_subscriber(name: str) -> None:
    message = {"t": 1, "seq": 0, "pad": "x"}
    with trio.fail_after(5):
        async with (
            AsyncTestClient(getattr(fanout_apps, name)) as client,
            client.websocket_connect("/sub") as one,
            client.websocket_connect("/sub") as two,
            client.websocket_connect("/pub") as publisher,
        ):
            for _ in range(200):  # the subscribers' handlers join once they run
                if _members(name) == 2:
                    break
                await trio.sleep(0.01)
            await publisher.send_text(json.dumps(message, separators=(",", ":")))
            assert json.loads(await one.receive_text()) == message
            assert json.loads(await two.receive_text()) == message


def test_frames_and_stamps_of_each_system_are_read() -> None:
    plain = b'{"t":123,"seq":7,"pad":"xx"}'
    socketio = b'42["m", {"t": 123, "seq": 7, "pad": "xx"}]'  # python-socketio's json.dumps
    assert fanclient._stamp(plain) == (123, 7)
    assert fanclient._stamp(socketio) == (123, 7)
    assert fanclient._stamp(b'{"t":5,"seq":-1,"pad":"probe"}') == (5, -1)
    big = b"y" * 70_000
    stream = b"\x81" + bytes([len(plain)]) + plain + b"\x81\x7e\x01\x00" + b"z" * 256
    stream += b"\x82\x7f" + len(big).to_bytes(8, "big") + big + b"\x81\x05par"
    frames, rest = fanclient.parse_frames(stream)
    assert frames == [(0x81, plain), (0x81, b"z" * 256), (0x82, big)]
    assert rest == b"\x81\x05par"
    masked = fanclient.client_frame(b"hello")
    assert masked[:2] == b"\x81\x85"
    key = masked[2:6]
    assert bytes(b ^ key[i % 4] for i, b in enumerate(masked[6:])) == b"hello"


def _run(system: str, round_: int, **values: Any) -> dict[str, Any]:
    base = {"scenario": "fanout200", "round": round_, "system": system, "variant": ""}
    base.update({"mode": "fanout", "errors": 0, "p50_us": 1.0, "p99_us": 2.0, "closed": 0})
    return {**base, **values}


def test_summary_ratios_and_verdicts() -> None:
    runs = [
        _run("triows_channels", 1, per_s=900.0, server_us_per_delivery=10.0),
        _run("triows_loop", 1, per_s=1000.0, server_us_per_delivery=9.0),
        _run("socketio_rooms", 1, per_s=800.0, server_us_per_delivery=12.0),
        _run("triows_channels", 2, per_s=1100.0, server_us_per_delivery=10.0),
        _run("triows_loop", 2, per_s=1000.0, server_us_per_delivery=11.0),
        _run("socketio_rooms", 2, per_s=700.0, server_us_per_delivery=12.0),
    ]
    summary = fanout.summarize(runs, ["fanout200"])
    rows = summary["fanout200"]["systems"]
    assert rows["triows_loop"]["channels_vs_this"] == pytest.approx(1.0)
    assert rows["triows_loop"]["channels_vs_this_per_round"] == [0.9, 1.1]
    assert rows["socketio_rooms"]["channels_vs_this_per_round"] == [1.125, 1.571]
    checks = {c["point"].split("/ ")[1].split()[0]: c for c in fanout.acceptance(summary)}
    assert checks["triows_loop"]["verdict"] == "noise"  # one round each side of 1.0
    assert checks["socketio_rooms"]["verdict"] == "met"
    report = {"summary": summary, "acceptance": fanout.acceptance(summary)}
    assert "triows_loop" in fanout.terminal(report)


@pytest.mark.live
def test_a_quick_run_delivers_everything(tmp_path: Path) -> None:
    pytest.importorskip("socketio", reason="pip install -e '.[bench]'")
    out = tmp_path / "fanout.json"
    command = [sys.executable, "-m", "bench.fanout", "--quick", "--scenarios", "burst2000"]
    command += ["--systems", "triows_channels", "socketio_rooms", "--json", str(out)]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["skipped"] == {}
    assert [(r["system"], r["mode"]) for r in result["runs"]] == [
        ("triows_channels", "burst"),
        ("socketio_rooms", "burst"),
    ]
    for run in result["runs"]:
        assert run["errors"] == 0, run["error_samples"]
        assert run["delivered"] == run["expected"] > 0
        assert run["evicted"] == 0
        assert run["server_us_per_delivery"] > 0
    assert "burst2000" in done.stdout
