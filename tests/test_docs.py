"""Every ```python block in docs/*.md runs, and the API reference names every public name.

A block is a complete program. It runs as a module of its own, with the repository root as the
working directory; afterwards each ``test_*`` function it defined is called (``async`` ones under
``trio.run``), and each ``Test*`` class's ``test_*`` methods with ``setup_method`` and
``teardown_method`` around them.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import trio

from triows.testing import RedisServerMissing
from triows.testing.pytest_plugin import REDIS_MISSING

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _snippets() -> list[Any]:
    found = []
    for page in sorted((ROOT / "docs").glob("*.md")):
        text = page.read_text()
        for number, match in enumerate(BLOCK.finditer(text), start=1):
            line = text.count("\n", 0, match.start()) + 2
            found.append(pytest.param(page, line, match.group(1), id=f"{page.stem}-{number}"))
    return found


def _call(fn: Any) -> None:
    try:
        if inspect.iscoroutinefunction(fn):
            trio.run(fn)
        else:
            fn()
    except RedisServerMissing as missing:  # a snippet on a real Redis, without redis-server
        pytest.skip(f"{REDIS_MISSING}: {missing}")


@pytest.mark.parametrize(("page", "line", "code"), _snippets())
def test_snippet(page: Path, line: int, code: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    name = f"docs_{page.stem}_{line}"
    module = types.ModuleType(name)
    module.__file__ = str(page)
    monkeypatch.setitem(sys.modules, name, module)
    exec(compile("\n" * (line - 1) + code, str(page), "exec"), module.__dict__)
    for attr, value in list(vars(module).items()):
        if attr.startswith("test_") and callable(value):
            _call(value)
        elif attr.startswith("Test") and isinstance(value, type):
            for method in [m for m in vars(value) if m.startswith("test_")]:
                instance = value()
                getattr(instance, "setup_method", lambda: None)()
                try:
                    _call(getattr(instance, method))
                finally:
                    getattr(instance, "teardown_method", lambda: None)()


def test_docs_have_snippets() -> None:
    assert len(_snippets()) >= 8


# -- the API reference -------------------------------------------------------------------------

DIRECTIVE = re.compile(r"^::: (\S+)\n((?:[ \t]+\S.*\n)*)", re.MULTILINE)


def _directives() -> dict[str, str]:
    """Each ``::: identifier`` of docs/reference/*.md, with its indented options."""
    found: dict[str, str] = {}
    for page in sorted((ROOT / "docs" / "reference").glob("*.md")):
        for match in DIRECTIVE.finditer(page.read_text()):
            assert match.group(1) not in found, f"{match.group(1)} is documented twice"
            found[match.group(1)] = match.group(2)
    return found


def _resolve(identifier: str) -> Any:
    module, _, rest = identifier.partition(".")
    assert module == "triows", identifier
    obj: Any = importlib.import_module("triows")
    for part in rest.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            obj = importlib.import_module(f"{obj.__name__}.{part}")
    return obj


def test_reference_documents_every_public_name() -> None:
    import triows
    import triows.testing

    documented = _directives()
    missing = [f"triows.{name}" for name in triows.__all__ if f"triows.{name}" not in documented]
    for module_name in ("asyncapi", "channels", "routes"):
        module = importlib.import_module(f"triows.{module_name}")
        for name in module.__all__:
            here, there = f"triows.{module_name}.{name}", f"triows.{name}"
            reexported = getattr(triows, name, None) is getattr(module, name)
            if here not in documented and not (reexported and there in documented):
                missing.append(here)
    for name in triows.testing.__all__:
        here, there = f"triows.testing.{name}", f"triows.{name}"
        # A re-export of a triows name (WebSocketDisconnect) is documented where triows has it.
        reexported = getattr(triows, name, None) is getattr(triows.testing, name)
        if here not in documented and not (reexported and there in documented):
            missing.append(here)
    assert not missing, f"public names with no ::: directive in docs/reference/: {missing}"


def test_reference_directives_name_what_exists() -> None:
    for identifier in _directives():
        assert _resolve(identifier) is not None


def test_reference_documents_the_pytest_fixtures() -> None:
    from triows.testing import pytest_plugin

    options = _directives()["triows.testing.pytest_plugin"]
    listed = set(re.findall(r"^\s+- (\w+)$", options, re.MULTILINE))
    assert listed == set(pytest_plugin.__all__)


def test_no_unexplained_guide() -> None:
    # "The guide" once meant Ellar's websocket guide without saying so: docs/index.md explains
    # it, and every other page says "Ellar's guide".
    pages = [*(ROOT / "docs").rglob("*.md"), ROOT / "README.md", *(ROOT / "triows").rglob("*.py")]
    found = [
        f"{page.relative_to(ROOT)}:{number}"
        for page in pages
        for number, line in enumerate(page.read_text().splitlines(), start=1)
        if re.search(r"\bthe guide\b", line, re.IGNORECASE)
    ]
    assert not found
