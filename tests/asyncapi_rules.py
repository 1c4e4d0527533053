r"""What AsyncAPI 3.0.0 requires of a document beyond its JSON Schema.

The JSON Schema checks shapes: to it a ``$ref`` is any URI reference, an operation's messages any
references. These are the specification's MUSTs that a generated document can break, most of
them checked by the official parser (@asyncapi/parser: its v3 core ruleset, its dereferencing):

- every ``$ref`` resolves inside the document (the parser dereferences the whole document, so
  pydantic's ``#/$defs/User`` fails there: ``Token "$defs" does not exist``);
- an operation under the root ``operations`` is on a channel of the root ``channels``;
- an operation's messages (and its reply's) are messages of its channel (of the reply's);
- a channel's ``parameters`` are exactly the ``{expressions}`` of its address;
- the names in ``components`` match ``^[a-zA-Z0-9.\-_]+$`` (the JSON Schema does not validate an
  entry whose name doesn't: it lets it through unchecked);
- a websocket binding's ``query`` and ``headers`` are object schemas with ``properties``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import unquote

#: Keywords whose values are data (examples, defaults, constants): a ``$ref`` in them is data.
DATA = frozenset({"examples", "example", "default", "const", "enum"})
#: Keywords whose values map names to schemas: there ``default`` or ``examples`` is a name.
NAMES = frozenset({"properties", "patternProperties", "definitions", "$defs", "dependencies"})
EXPRESSION = re.compile(r"\{([^{}]+)\}")
COMPONENT_NAME = re.compile(r"^[a-zA-Z0-9.\-_]+$")
HOIST = "pydantic's $defs go to #/components/schemas: ref_template='#/components/schemas/{model}'"

_MISSING = object()
Path = tuple[str | int, ...]


def pointer(path: Iterable[str | int]) -> str:
    """The JSON Pointer of a place in the document, e.g. ``/operations/say/action``."""
    parts = [str(part).replace("~", "~0").replace("/", "~1") for part in path]
    return "/" + "/".join(parts) if parts else "(the document root)"


def references(node: Any, path: Path = (), names: bool = False) -> Iterator[tuple[Path, str]]:
    """Every ``$ref`` of *node* with the place of the object holding it, data left out."""
    if isinstance(node, Mapping):
        ref = node.get("$ref")
        if isinstance(ref, str) and not names:
            yield path, ref
        for key, value in node.items():
            if names or key not in DATA:
                yield from references(value, (*path, key), key in NAMES)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from references(item, (*path, index))


def resolve(document: Any, ref: str) -> Any:
    """What the local reference *ref* (``#/a/b``) points to in *document*, or ``_MISSING``."""
    if not ref.startswith("#/") and ref != "#":
        return _MISSING
    node = document
    for token in unquote(ref[2:]).split("/") if ref != "#" else []:
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return _MISSING
    return node


def _ref(node: Any) -> str | None:
    ref = node.get("$ref") if isinstance(node, Mapping) else None
    return ref if isinstance(ref, str) else None


def _entries(document: Mapping[str, Any], kind: str) -> Iterator[tuple[Path, Mapping[str, Any]]]:
    """The root's and the components' objects of *kind* (``channels``, ``operations``)."""
    components = document.get("components")
    groups: list[tuple[Path, Any]] = [((kind,), document.get(kind))]
    if isinstance(components, Mapping):
        groups.append((("components", kind), components.get(kind)))
    for path, group in groups:
        if isinstance(group, Mapping):
            for name, entry in group.items():
                if isinstance(entry, Mapping) and "$ref" not in entry:
                    yield (*path, name), entry


def dangling(document: Mapping[str, Any]) -> Iterator[str]:
    """References that point outside the document, or nowhere in it."""
    for path, ref in references(document):
        where = f"{pointer((*path, '$ref'))}: {ref!r}"
        if not ref.startswith("#"):
            yield f"{where} points outside the document; a generated one is self-contained"
        elif resolve(document, ref) is _MISSING:
            hint = f" ({HOIST})" if "/$defs/" in ref or "/definitions/" in ref else ""
            yield f"{where} does not resolve in the document{hint}"


def _messages_of(channel: str, messages: Any, path: Path, what: str) -> Iterator[str]:
    for index, message in enumerate(messages if isinstance(messages, list) else []):
        ref = _ref(message)
        if ref is not None and not ref.startswith(f"{channel}/messages/"):
            yield (
                f"{pointer((*path, index, '$ref'))}: {ref!r} is not a message of {what} "
                f"{channel!r}; reference it as {channel}/messages/<name>"
            )


def operations(document: Mapping[str, Any]) -> Iterator[str]:
    """Operations on channels outside the root, and messages not of their channel."""
    for path, operation in _entries(document, "operations"):
        channel = _ref(operation.get("channel"))
        if channel is None:
            continue
        if path[0] == "operations" and not channel.startswith("#/channels/"):
            yield (
                f"{pointer((*path, 'channel', '$ref'))}: {channel!r}: an operation of the root "
                "operations must be on a channel of the root channels (#/channels/<name>)"
            )
        yield from _messages_of(channel, operation.get("messages"), (*path, "messages"), "channel")
        reply, reply_path = operation.get("reply"), (*path, "reply")
        if _ref(reply) is not None:
            reply = resolve(document, _ref(reply) or "")
        reply_channel = _ref(reply.get("channel")) if isinstance(reply, Mapping) else None
        if isinstance(reply, Mapping) and reply_channel is not None:
            messages = reply.get("messages")
            yield from _messages_of(reply_channel, messages, (*reply_path, "messages"), "channel")


def parameters(document: Mapping[str, Any]) -> Iterator[str]:
    """Channels whose ``parameters`` are not exactly their address's expressions."""
    for path, channel in _entries(document, "channels"):
        address = channel.get("address")
        expressions = EXPRESSION.findall(address) if isinstance(address, str) else []
        given = channel.get("parameters")
        given = given if isinstance(given, Mapping) else {}
        missing = [name for name in expressions if name not in given]
        if missing:
            yield (
                f"{pointer((*path, 'parameters'))}: the address {address!r} has parameters "
                f"{', '.join(missing)} that 'parameters' does not describe"
            )
        for name in given:
            if name not in expressions:
                yield (
                    f"{pointer((*path, 'parameters', name))}: {name!r} is not an expression of "
                    f"the address {address!r}"
                )


def component_names(document: Mapping[str, Any]) -> Iterator[str]:
    """Names in ``components`` the specification's regular expression does not match."""
    components = document.get("components")
    for kind, group in components.items() if isinstance(components, Mapping) else []:
        for name in group if isinstance(group, Mapping) and not kind.startswith("x-") else []:
            if not COMPONENT_NAME.match(name):
                yield (
                    f"{pointer(('components', kind, name))}: a component's name must match "
                    f"{COMPONENT_NAME.pattern} (the JSON Schema skips this one unchecked)"
                )


def websocket_bindings(document: Mapping[str, Any]) -> Iterator[str]:
    """Websocket channel bindings whose ``query`` or ``headers`` is not an object schema."""
    for path, channel in _entries(document, "channels"):
        bindings = channel.get("bindings")
        ws = bindings.get("ws") if isinstance(bindings, Mapping) else None
        for field in ("query", "headers"):
            schema = ws.get(field) if isinstance(ws, Mapping) else None
            if not isinstance(schema, Mapping) or "$ref" in schema:
                continue
            if schema.get("type") != "object" or "properties" not in schema:
                yield (
                    f"{pointer((*path, 'bindings', 'ws', field))}: the websocket binding's "
                    f"{field} must be a schema of type object with properties"
                )


def rule_problems(document: Mapping[str, Any]) -> list[str]:
    """Every problem the rules above find, each with its place in the document."""
    return [
        *dangling(document),
        *operations(document),
        *parameters(document),
        *component_names(document),
        *websocket_bindings(document),
    ]
