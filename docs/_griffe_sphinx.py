"""A griffe extension for the API reference: the Sphinx habits of triows' docstrings.

triows' docstrings are Google style, with two habits from Sphinx that griffe and mkdocstrings do
not read, and this extension translates when griffe loads the package:

* roles naming other objects (:class:`~triows.App`, :meth:`close`), which Markdown would show as
  written: a role whose object is public (in ``triows.__all__`` or ``triows.testing.__all__``, or
  a public member of one) becomes a link to it on the reference pages, any other inline code;
* ``#:`` comments above an attribute (``APP_DEFAULT``, ``App.container``), griffe knowing only a
  string below it: they become the attribute's docstring.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

import triows
import triows.testing

ROLE = re.compile(r":(?:class|func|meth|attr|data|mod|exc|obj):`(?P<body>[^`]+)`")
EXPLICIT = re.compile(r"(?P<title>.+?)\s*<(?P<target>[^>]+)>$")

# Short name -> the public path the reference documents it under (triows' own names first).
PUBLIC = {name: f"triows.testing.{name}" for name in triows.testing.__all__}
PUBLIC.update({name: f"triows.{name}" for name in triows.__all__})


def _public_path(target: str, scope: str | None) -> str | None:
    """The public path of ``target`` as a docstring wrote it, or ``None`` for none."""
    parts = target.split(".")
    # The public name is the last part naming an exported object: "triows.testing._x.Name.m".
    for index in range(len(parts) - 1, -1, -1):
        if parts[index] in PUBLIC:
            rest = parts[index + 1 :]
            if len(rest) > 1 or any(part.startswith("_") for part in rest):
                return None
            path = ".".join([PUBLIC[parts[index]], *rest])
            return path if _exists(path) else None
    # A bare member name, written inside a public class: ":meth:`close`" in WebSocket.
    if len(parts) == 1 and scope is not None and not target.startswith("_"):
        path = f"{scope}.{target}"
        return path if _exists(path) else None
    return None


def _exists(path: str) -> bool:
    module, _, rest = path.partition(".")
    obj: Any = {"triows": triows}[module]
    for part in rest.split("."):
        if not hasattr(obj, part):
            return False
        obj = getattr(obj, part)
    return True


def _rewrite(text: str, scope: str | None) -> str:
    def replace(match: re.Match[str]) -> str:
        role = match.group(0)[1:].split(":", 1)[0]
        body = match.group("body")
        explicit = EXPLICIT.match(body)
        if explicit:
            title, target = explicit.group("title"), explicit.group("target")
        else:
            target = body.lstrip("~")
            title = target.rsplit(".", 1)[-1] if body.startswith("~") else target
            if role in ("func", "meth"):
                title += "()"
        path = _public_path(target, scope)
        return f"[`{title}`][{path}]" if path else f"`{title}`"

    return ROLE.sub(replace, text)


def _scope(obj: griffe.Object) -> str | None:
    """The public path of the class ``obj`` is (or is a member of), when there is one."""
    cls = obj if obj.is_class else obj.parent
    if cls is None or not cls.is_class:
        return None
    name = cls.name
    return PUBLIC.get(name) if PUBLIC.get(name) and _exists(PUBLIC[name]) else None


def _comment_docstring(obj: griffe.Object) -> griffe.Docstring | None:
    """The ``#:`` comment lines right above the attribute ``obj``, as its docstring."""
    if obj.lineno is None or obj.filepath is None or isinstance(obj.filepath, list):
        return None
    try:
        lines = obj.lines_collection[obj.filepath]
    except KeyError:
        return None
    found: list[str] = []
    index = obj.lineno - 2  # the line above the assignment (lineno counts from 1)
    while index >= 0 and lines[index].strip().startswith("#:"):
        found.insert(0, lines[index].strip()[2:].strip())
        index -= 1
    if not found:
        return None
    return griffe.Docstring("\n".join(found), lineno=index + 2, parent=obj)


class SphinxHabits(griffe.Extension):
    """Translate the Sphinx habits of every object griffe loads."""

    def on_instance(self, *, obj: griffe.Object | griffe.Alias, **kwargs: Any) -> None:
        """Give ``obj`` its ``#:`` docstring, and rewrite the roles of its docstring."""
        if isinstance(obj, griffe.Alias):
            return
        if obj.docstring is None and obj.is_attribute:
            obj.docstring = _comment_docstring(obj)
        if obj.docstring is not None:
            obj.docstring.value = _rewrite(obj.docstring.value, _scope(obj))
