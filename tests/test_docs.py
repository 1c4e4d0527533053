"""Every ```python block in docs/*.md runs, and the test functions it defines pass.

A block is a complete program. It runs as a module of its own, with the repository root as the
working directory; afterwards each ``test_*`` function it defined is called (``async`` ones under
``trio.run``), and each ``Test*`` class's ``test_*`` methods with ``setup_method`` and
``teardown_method`` around them.
"""

from __future__ import annotations

import inspect
import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import trio

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
    if inspect.iscoroutinefunction(fn):
        trio.run(fn)
    else:
        fn()


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
