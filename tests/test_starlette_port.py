"""Starlette's own websocket tests, run against triows with only the imports and renames changed.

The test file is not copied into this repository: it comes from Starlette's published source
distribution (pinned version, checked hash), fetched from the package index once and cached.
The changes made to it are the table :data:`REWRITES`, the same one ``docs/compatibility.md``
shows; the tests that fail are exactly the deliberate differences that page lists.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

STARLETTE = "0.47.3"
#: The sha256 of ``starlette-0.47.3.tar.gz`` as published on PyPI.
SDIST_SHA256 = "6bc94f839cc176c4858894f1f8908f0ab79dfec1a6b8402f6da9be26ebea52e9"
MEMBER = f"starlette-{STARLETTE}/tests/test_websockets.py"

#: Every change made to Starlette's test file: imports, and the renames of the names triows
#: spells otherwise. ``docs/compatibility.md`` shows this table.
REWRITES: list[tuple[str, str]] = [
    ("from starlette import status\n", "from triows import CloseCode\n"),
    ("from starlette.responses import Response\n", "from triows import Response\n"),
    (
        "from starlette.testclient import WebSocketDenialResponse\n",
        "from triows.testing import WebSocketDenied as WebSocketDenialResponse\n",
    ),
    ("from starlette.types import ", "from triows.types import "),
    ("from starlette.websockets import ", "from triows import "),
    ("status.WS_1000_NORMAL_CLOSURE", "CloseCode.NORMAL"),
    ("status.WS_1001_GOING_AWAY", "CloseCode.GOING_AWAY"),
    ("status.WS_1006_ABNORMAL_CLOSURE", "CloseCode.ABNORMAL"),
]

#: Starlette's tests/conftest.py and tests/types.py, written for triows: the factory is
#: triows' TestClient (it has no anyio backend to choose; its one anyio test runs on trio).
CONFTEST = """
import pytest

from triows.testing import TestClient


@pytest.fixture
def test_client_factory():
    return TestClient


@pytest.fixture
def anyio_backend():
    return "trio"
"""
TYPES = "from typing import Callable\n\nTestClientFactory = Callable[..., object]\n"


def _cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "triows-tests"


def _sdist() -> bytes:
    """Starlette's sdist, from the cache or the package index (skips loudly if unreachable)."""
    cache = _cache()
    path = cache / f"starlette-{STARLETTE}.tar.gz"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
        command += ["--dest", str(cache), "--quiet", f"starlette=={STARLETTE}"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode != 0 or not path.exists():
            pytest.skip(
                f"SKIPPED LOUDLY: could not download Starlette {STARLETTE}'s sdist from the "
                f"package index (pip said: {done.stderr.strip()[-300:]})"
            )
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    assert digest == SDIST_SHA256, f"{path} is not Starlette {STARLETTE}'s sdist ({digest})"
    return data


def ported(source: str) -> str:
    """Starlette's test file with :data:`REWRITES` applied; each must apply."""
    for old, new in REWRITES:
        assert old in source, f"Starlette's test file no longer contains {old!r}"
        source = source.replace(old, new)
    leftover = re.findall(r"^.*\bstarlette\b.*$", source, re.MULTILINE)
    assert not leftover, f"Starlette imports left after the rewrites: {leftover}"
    return source


def deliberate_differences() -> set[str]:
    """The tests ``docs/compatibility.md`` names as deliberate differences."""
    page = (ROOT / "docs" / "compatibility.md").read_text()
    section = page.split("## Deliberate differences", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(test_\w+)` \|", section, re.MULTILINE))


def test_starlettes_websocket_tests_pass_but_the_deliberate_differences(tmp_path: Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(_sdist())) as archive:
        member = archive.extractfile(MEMBER)
        assert member is not None
        source = member.read().decode()
    package = tmp_path / "tests"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "types.py").write_text(TYPES)
    (package / "conftest.py").write_text(CONFTEST)
    (package / "test_websockets.py").write_text(ported(source))
    report = tmp_path / "report.xml"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
    command += [f"--junitxml={report}", "--rootdir", str(tmp_path), "tests/test_websockets.py"]
    subprocess.run(command, cwd=tmp_path, capture_output=True, timeout=120, check=False)

    outcomes: dict[str, str] = {}
    for case in ElementTree.parse(report).iter("testcase"):
        failed = case.find("failure") is not None or case.find("error") is not None
        skipped = case.find("skipped") is not None
        outcomes[case.attrib["name"]] = "failed" if failed else "skipped" if skipped else "passed"
    failing = {name for name, outcome in outcomes.items() if outcome != "passed"}
    assert len(outcomes) == 38  # every test of Starlette 0.47.3's file ran
    assert failing == deliberate_differences()
    assert len(failing) <= 4
