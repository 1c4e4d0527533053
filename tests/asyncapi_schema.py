"""Validate documents against the official AsyncAPI 3.0.0 JSON Schema, offline.

The schema is not copied into this repository: it is ``schemas/3.0.0.json`` of the npm package
``@asyncapi/specs`` (pinned version, its registry ``dist.integrity`` checked), downloaded once
and cached in ``~/.cache/triows-tests/`` like Starlette's sdist (tests/test_starlette_port.py).

That file is a bundle: every definition it uses is embedded under ``definitions``, keyed by its
own ``$id`` (``http://asyncapi.com/definitions/3.0.0/info.json`` ...), and the ``$ref``s are those
URLs. They are names, not addresses: :func:`schema_registry` holds every embedded definition
under its ``$id``, and its retrieval refuses, so no ``$ref`` can reach the network.

The JSON Schema checks shapes only. :func:`validate_asyncapi` also applies the specification's
rules beyond it, most of which the official parser checks (``asyncapi_rules``): that references
resolve, that an operation's messages are its channel's, that a channel's parameters are its
address's...
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import io
import json
import os
import re
import tarfile
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from asyncapi_rules import pointer, rule_problems
from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError, relevance
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

#: The newest ``@asyncapi/specs`` (the registry's ``latest``); it has ``schemas/3.0.0.json``.
SPECS = "6.11.1"
TARBALL_URL = f"https://registry.npmjs.org/@asyncapi/specs/-/specs-{SPECS}.tgz"
#: ``versions["6.11.1"].dist.integrity`` of https://registry.npmjs.org/@asyncapi/specs
INTEGRITY = (
    "sha512-A3WBLqAKGoJ2+6FWFtpjBlCQ1oFCcs4GxF7zsIGvNqp/"
    "klGUHjlA3aAcZ9XMMpLGE8zPeYDz2x9FmO6DSuKraQ=="
)
#: The bundle the package exports as ``schemas["3.0.0"]`` (what @asyncapi/parser validates with).
MEMBER = "package/schemas/3.0.0.json"
ROOT_ID = "http://asyncapi.com/definitions/3.0.0/asyncapi.json"

#: Messages longer than this are cut (jsonschema quotes whole instances in some of them).
LONGEST = 240
#: How deep the tree of a ``oneOf``/``anyOf`` failure is shown below its best match.
DEEPEST = 3


class SchemaUnavailable(Exception):
    """The schema is neither cached nor downloadable (offline): the tests skip, loudly."""


class RemoteReference(Exception):
    """A ``$ref`` of the schema names something the bundle does not embed."""


def cache_dir() -> Path:
    """The tests' download cache, shared with tests/test_starlette_port.py."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "triows-tests"


def check_integrity(data: bytes, integrity: str = INTEGRITY) -> None:
    """Fail unless *data* has the npm Subresource Integrity value *integrity* (sha512)."""
    algorithm, _, expected = integrity.partition("-")
    assert algorithm == "sha512", f"unexpected integrity algorithm {algorithm!r}"
    actual = base64.b64encode(hashlib.sha512(data).digest()).decode()
    assert hmac.compare_digest(actual, expected), (
        f"not @asyncapi/specs {SPECS}'s tarball: sha512-{actual} is not {integrity}"
    )


def fetch_tarball(cache: Path | None = None) -> bytes:
    """The package's tarball from *cache*, or downloaded (checked before it is cached)."""
    cache = cache or cache_dir()
    path = cache / f"asyncapi-specs-{SPECS}.tgz"
    data: bytes
    if path.exists():
        data = path.read_bytes()
        check_integrity(data)
        return data
    try:
        with urllib.request.urlopen(TARBALL_URL, timeout=60) as response:
            data = response.read()
    except (urllib.error.URLError, OSError) as error:
        raise SchemaUnavailable(f"could not download {TARBALL_URL}: {error}") from error
    check_integrity(data)
    cache.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")
    partial.write_bytes(data)
    partial.replace(path)
    return data


def load_schema(cache: Path | None = None) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 JSON Schema, read from the (cached) package tarball."""
    with tarfile.open(fileobj=io.BytesIO(fetch_tarball(cache)), mode="r:gz") as archive:
        member = archive.extractfile(MEMBER)
        assert member is not None, f"{MEMBER} is not a file in @asyncapi/specs {SPECS}"
        schema: dict[str, Any] = json.loads(member.read())
    assert schema["$id"] == ROOT_ID, f"{MEMBER} is not the 3.0.0 schema ({schema['$id']})"
    return schema


def _refuse(uri: str) -> Resource[Any]:
    raise RemoteReference(f"the AsyncAPI 3.0.0 schema does not embed {uri}; not fetching it")


def schema_registry(schema: Mapping[str, Any]) -> Registry[Any]:
    """Every definition the bundle embeds, under its ``$id``; anything else is refused."""
    resources = [(ROOT_ID, DRAFT7.create_resource(schema))]
    resources += [(uri, DRAFT7.create_resource(sub)) for uri, sub in schema["definitions"].items()]
    refusing: Registry[Any] = Registry(retrieve=_refuse)  # type: ignore[call-arg]  # attrs alias
    return refusing.with_resources(resources).crawl()


def build_validator(schema: Mapping[str, Any]) -> Draft7Validator:
    """A draft-07 validator of *schema*, its references resolved by :func:`schema_registry`.

    Formats are checked as far as jsonschema can without extra packages: ``email``, ``regex``,
    ``date``, ``ipv4``... (``uri``, ``uri-reference`` and ``date-time`` need packages this
    environment does not install, so those pass unchecked).
    """
    return Draft7Validator(
        schema, registry=schema_registry(schema), format_checker=Draft7Validator.FORMAT_CHECKER
    )


@functools.cache
def _validator_or_reason() -> Draft7Validator | str:
    try:
        return build_validator(load_schema())
    except SchemaUnavailable as missing:
        return str(missing)


def asyncapi_validator() -> Draft7Validator:
    """The validator, built once; skips the calling test loudly if the schema can't be had."""
    found = _validator_or_reason()
    if isinstance(found, str):
        pytest.skip(f"SKIPPED LOUDLY: no AsyncAPI 3.0.0 schema (@asyncapi/specs {SPECS}): {found}")
    return found


def validate_asyncapi(document: Mapping[str, Any]) -> None:
    """Raise :class:`AssertionError` listing what makes *document* invalid AsyncAPI 3.0.0.

    The official JSON Schema first; once the document has its shape, the rules beyond it.
    """
    validator = asyncapi_validator()
    errors = sorted(validator.iter_errors(document), key=lambda error: pointer(error.path))
    if errors:
        lines = [line for error in errors for line in describe(error, validator)]
        heading = _plural(len(errors), "JSON Schema error")
    else:
        lines = [f"- {problem}" for problem in rule_problems(document)]
        heading = _plural(len(lines), "problem") + " beyond the JSON Schema"
    if lines:
        details = "\n".join(lines)
        raise AssertionError(f"not a valid AsyncAPI 3.0.0 document ({heading}):\n{details}")


def _plural(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _short(text: str) -> str:
    return text if len(text) <= LONGEST else text[: LONGEST - 5] + " ...)"


def _message(error: ValidationError, validator: Draft7Validator) -> str:
    """jsonschema's message; for an unexpected field or a ``oneOf`` matched twice, a clearer one."""
    schema, instance = error.schema, error.instance
    if error.validator == "oneOf" and not error.context:
        both = " and ".join(_matching(error, validator))
        return f"valid under more than one alternative ({both}) of a oneOf"
    if error.validator != "additionalProperties" or not isinstance(schema, dict):
        return _short(error.message)
    if error.validator_value is not False or not isinstance(instance, dict):
        return _short(error.message)
    fields = schema.get("properties", {})
    patterns = schema.get("patternProperties", {})
    extras = [
        repr(name)
        for name in instance
        if name not in fields and not any(re.search(pattern, name) for pattern in patterns)
    ]
    return _short(f"unexpected {', '.join(extras)}: the fields here are {', '.join(fields)}")


def _name(branch: Any, index: int) -> str:
    """What a ``oneOf``/``anyOf`` alternative is, e.g. ``Reference`` or ``operationReply``."""
    ref = branch.get("$ref") if isinstance(branch, dict) else None
    if isinstance(ref, str):
        name = ref.removeprefix("http://asyncapi.com/").removeprefix("definitions/3.0.0/")
        return name.removeprefix("#/definitions/").removesuffix("#").removesuffix(".json")
    if isinstance(branch, dict) and isinstance(branch.get("type"), str):
        return f"type {branch['type']}"
    return f"alternative {index + 1}"


def _branches(error: ValidationError) -> list[str]:
    alternatives = error.schema[error.validator] if isinstance(error.schema, dict) else []
    return [_name(branch, index) for index, branch in enumerate(alternatives)]


def _meant(error: ValidationError, sub: ValidationError) -> bool:
    """Whether *sub* is of an alternative *error*'s instance may be meant as.

    An object without ``$ref`` is not meant as a Reference: that "'$ref' is a required property"
    is noise next to what is wrong with it as the object it is.
    """
    name = _branches(error)[sub.relative_schema_path[0]]
    instance = error.instance
    return name != "Reference" or (isinstance(instance, dict) and "$ref" in instance)


def _best(error: ValidationError) -> ValidationError:
    """The deepest error under a failed ``oneOf``/``anyOf``, in the alternatives it's meant as."""
    while error.context:
        meant = [sub for sub in error.context if _meant(error, sub)] or list(error.context)
        error = min(meant, key=relevance)
    return error


def _leaves(error: ValidationError) -> int:
    """How many errors without alternatives there are under *error*, in the meant ones."""
    if not error.context:
        return 1
    return sum(_leaves(sub) for sub in error.context if _meant(error, sub))


def _matching(error: ValidationError, validator: Draft7Validator) -> list[str]:
    """The names of the alternatives *error*'s instance is valid under."""
    alternatives = error.schema[error.validator]
    return [
        name
        for name, branch in zip(_branches(error), alternatives, strict=True)
        if validator.evolve(schema=branch).is_valid(error.instance)
    ]


def describe(error: ValidationError, validator: Draft7Validator, depth: int = 0) -> Iterator[str]:
    """Readable lines for one error: where, what; the tree of a failed ``oneOf``/``anyOf``."""
    indent = "  " * depth
    where = pointer(error.absolute_path)
    if not error.context:
        yield f"{indent}- {where}: {_message(error, validator)}"
        return
    names = ", ".join(_branches(error))
    yield f"{indent}- {where}: not valid as any of {names} ({error.validator})"
    best = _best(error)
    yield f"{indent}  best match: {pointer(best.absolute_path)}: {_message(best, validator)}"
    if depth >= DEEPEST or _leaves(error) == 1:
        return  # the best match is the whole story
    for index, name in enumerate(_branches(error)):
        mine = [sub for sub in error.context if sub.relative_schema_path[0] == index]
        if mine and _meant(error, mine[0]):
            yield f"{indent}  as {name}:"
            for sub in sorted(mine, key=lambda sub: pointer(sub.absolute_path)):
                yield from describe(sub, validator, depth + 2)
