"""The AsyncAPI 3.0.0 validator of the tests (tests/asyncapi_schema.py) against known documents.

:func:`chat_document` is the reference for triows' generator: a websocket chat with every feature
it describes (servers, an address with a parameter, the query binding, a request with its reply,
events the server sends, messages and schemas in components, nested models hoisted the way
pydantic's ``$defs`` must be). docs/asyncapi.md ("How the document is checked") says what
those shapes taught the generator.
"""

from __future__ import annotations

import copy
import socket
import tarfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urljoin

import asyncapi_schema
import pytest
from asyncapi_rules import DATA, NAMES
from asyncapi_schema import (
    INTEGRITY,
    ROOT_ID,
    SPECS,
    RemoteReference,
    SchemaUnavailable,
    asyncapi_validator,
    build_validator,
    check_integrity,
    fetch_tarball,
    load_schema,
    schema_registry,
    validate_asyncapi,
)
from pydantic import BaseModel, Field, TypeAdapter
from pydantic.json_schema import models_json_schema
from referencing.exceptions import Unresolvable


def _event(name: str) -> dict[str, Any]:
    """The schema pydantic gives ``event: Literal[name]``."""
    return {"const": name, "title": "Event", "type": "string"}


def chat_document() -> dict[str, Any]:
    """A valid AsyncAPI 3.0.0 document of a websocket chat (a fresh copy each call)."""
    user = {
        "properties": {"name": {"title": "Name", "type": "string", "maxLength": 32}},
        "required": ["name"],
        "title": "User",
        "type": "object",
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Chat",
            "version": "1.0.0",
            "description": "Rooms people talk in: say something, everyone in the room hears it.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {"host": "localhost:8000", "protocol": "ws", "title": "Development"},
            "production": {"host": "chat.example.com", "pathname": "/", "protocol": "wss"},
        },
        "channels": {
            "chat": {
                "address": "/chat/{room}/ws",
                "title": "A chat room",
                "servers": [{"$ref": "#/servers/local"}, {"$ref": "#/servers/production"}],
                "parameters": {"room": {"$ref": "#/components/parameters/room"}},
                "messages": {
                    "say": {"$ref": "#/components/messages/say"},
                    "ack": {"$ref": "#/components/messages/ack"},
                    "message": {"$ref": "#/components/messages/message"},
                    "presence": {"$ref": "#/components/messages/presence"},
                },
                "bindings": {
                    "ws": {
                        "method": "GET",
                        "query": {
                            "type": "object",
                            "properties": {
                                "name": {
                                    "type": "string",
                                    "minLength": 1,
                                    "maxLength": 32,
                                    "description": "The name the others see.",
                                }
                            },
                            "required": ["name"],
                        },
                        "bindingVersion": "0.1.0",
                    }
                },
            }
        },
        "operations": {
            "receiveSay": {
                "action": "receive",
                "channel": {"$ref": "#/channels/chat"},
                "summary": "A client says something in the room.",
                "messages": [{"$ref": "#/channels/chat/messages/say"}],
                "reply": {
                    "channel": {"$ref": "#/channels/chat"},
                    "messages": [{"$ref": "#/channels/chat/messages/ack"}],
                },
            },
            "sendMessage": {
                "action": "send",
                "channel": {"$ref": "#/channels/chat"},
                "summary": "What someone said, to everyone in the room.",
                "messages": [{"$ref": "#/channels/chat/messages/message"}],
            },
            "sendPresence": {
                "action": "send",
                "channel": {"$ref": "#/channels/chat"},
                "summary": "Someone joined or left the room.",
                "messages": [{"$ref": "#/channels/chat/messages/presence"}],
            },
        },
        "components": {
            "parameters": {
                "room": {"description": "The room's name.", "examples": ["lobby"]},
            },
            "messages": {
                "say": {
                    "name": "say",
                    "title": "Say",
                    "contentType": "application/json",
                    "payload": {"$ref": "#/components/schemas/Say"},
                    "examples": [{"payload": {"event": "say", "text": "hello"}}],
                },
                "ack": {"name": "ack", "payload": {"$ref": "#/components/schemas/Ack"}},
                "message": {"name": "message", "payload": {"$ref": "#/components/schemas/Message"}},
                "presence": {
                    "name": "presence",
                    "payload": {"$ref": "#/components/schemas/Presence"},
                },
            },
            "schemas": {
                "Say": {
                    "properties": {
                        "event": _event("say"),
                        "text": {
                            "maxLength": 2000,
                            "minLength": 1,
                            "title": "Text",
                            "type": "string",
                        },
                    },
                    "required": ["event", "text"],
                    "title": "Say",
                    "type": "object",
                },
                "Ack": {
                    "properties": {
                        "event": _event("ack"),
                        "id": {"title": "Id", "type": "integer"},
                    },
                    "required": ["event", "id"],
                    "title": "Ack",
                    "type": "object",
                },
                "Message": {
                    "properties": {
                        "event": _event("message"),
                        "author": {"$ref": "#/components/schemas/User"},
                        "text": {"title": "Text", "type": "string"},
                        "reply_to": {
                            "anyOf": [{"type": "integer"}, {"type": "null"}],
                            "default": None,
                            "title": "Reply To",
                        },
                    },
                    "required": ["event", "author", "text"],
                    "title": "Message",
                    "type": "object",
                },
                "Presence": {
                    "properties": {
                        "event": _event("presence"),
                        "user": {"$ref": "#/components/schemas/User"},
                        "status": {"enum": ["joined", "left"], "title": "Status", "type": "string"},
                    },
                    "required": ["event", "user", "status"],
                    "title": "Presence",
                    "type": "object",
                },
                "User": user,
            },
        },
    }


def invalid_because(document: dict[str, Any]) -> str:
    """The message :func:`validate_asyncapi` rejects *document* with."""
    with pytest.raises(AssertionError) as failure:
        validate_asyncapi(document)
    return str(failure.value)


# -- the schema: pinned, checked, offline ---------------------------------------------------------


def test_the_pinned_package_has_the_3_0_0_schema() -> None:
    asyncapi_validator()  # skips loudly when offline with nothing cached
    schema = load_schema()
    assert schema["$id"] == ROOT_ID
    assert schema["title"] == "AsyncAPI 3.0.0 schema."
    assert schema["properties"]["asyncapi"]["const"] == "3.0.0"
    with tarfile.open(asyncapi_schema.cache_dir() / f"asyncapi-specs-{SPECS}.tgz") as archive:
        member = archive.extractfile("package/package.json")
        assert member is not None
        assert f'"version": "{SPECS}"' in member.read().decode()


def _references(node: Any, base: str, names: bool = False) -> list[tuple[str, str]]:
    """Every ``$ref`` of the schema with the base URI it resolves against (draft-07 ``$id``)."""
    found = []
    if isinstance(node, dict):
        if isinstance(node.get("$id"), str):
            base = urljoin(base, node["$id"])
        if isinstance(node.get("$ref"), str) and not names:
            found.append((base, node["$ref"]))
        for key, value in node.items():
            if names or key not in DATA:
                found += _references(value, base, key in NAMES)
    elif isinstance(node, list):
        for item in node:
            found += _references(item, base)
    return found


def test_every_reference_of_the_schema_resolves_inside_the_file() -> None:
    asyncapi_validator()
    schema = load_schema()
    registry = schema_registry(schema)
    references = _references(schema, ROOT_ID)
    assert len(references) > 150
    for base, ref in references:  # the registry's retrieval refuses: this fails if one isn't here
        registry.resolver(base_uri=base).lookup(ref)
    with pytest.raises(Unresolvable) as refused:
        registry.resolver(base_uri=ROOT_ID).lookup("http://asyncapi.com/definitions/3.0.0/x.json")
    assert any(isinstance(cause, RemoteReference) for cause in _causes(refused.value))
    # The validator resolves with that registry: a reference to elsewhere is refused, not fetched.
    elsewhere = copy.deepcopy(schema)
    elsewhere["properties"]["id"] = {"$ref": "https://example.com/id.json"}
    with pytest.raises(Unresolvable) as refused:
        build_validator(elsewhere).validate({**chat_document(), "id": "urn:chat"})
    assert any(isinstance(cause, RemoteReference) for cause in _causes(refused.value))


def _causes(error: BaseException | None) -> Iterator[BaseException]:
    while error is not None:
        yield error
        error = error.__cause__


def test_validating_opens_no_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    asyncapi_validator()
    schema = load_schema()  # from the cache: read before the network is cut

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"the validator went to the network: {args}")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    validator = build_validator(schema)
    assert validator.is_valid(chat_document())
    broken = chat_document()
    broken["channels"]["chat"]["bindings"]["ws"]["bindingVersion"] = "0.2.0"
    assert not validator.is_valid(broken)


def test_a_tarball_that_is_not_the_pinned_one_fails_loudly(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match=r"not @asyncapi/specs 6\.11\.1's tarball"):
        check_integrity(b"something else")
    (tmp_path / f"asyncapi-specs-{SPECS}.tgz").write_bytes(b"a tampered cache")
    with pytest.raises(AssertionError, match=INTEGRITY.replace("+", r"\+")):
        fetch_tarball(tmp_path)


def test_offline_and_not_cached_skips_loudly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(SchemaUnavailable, match=r"could not download https://registry\.npmjs\.org"):
        fetch_tarball(tmp_path)
    monkeypatch.setattr(asyncapi_schema, "_validator_or_reason", lambda: "could not download")
    with pytest.raises(pytest.skip.Exception, match="SKIPPED LOUDLY"):
        validate_asyncapi(chat_document())


# -- the reference document and broken ones -------------------------------------------------------


def test_the_chat_document_is_valid() -> None:
    validate_asyncapi(chat_document())


Edit = Callable[[dict[str, Any]], None]


_DELETE = object()


def _set(path: str, value: Any = _DELETE) -> Edit:
    """An edit setting (or deleting) the value at *path* (``a/b/c``) of a document."""

    def edit(document: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node: Any = document
        for key in parents:
            node = node[key]
        if value is _DELETE:
            del node[last]
        else:
            node[last] = value

    return edit


def _delete(path: str) -> Edit:
    return _set(path)


OPERATION = "operations/receiveSay"
WS = "channels/chat/bindings/ws"

SCHEMA_ERRORS = [
    pytest.param(
        _delete("asyncapi"),
        "- (the document root): 'asyncapi' is a required property",
        id="no-asyncapi",
    ),
    pytest.param(_set("asyncapi", "2.6.0"), "- /asyncapi: '3.0.0' was expected", id="asyncapi-2"),
    pytest.param(
        _set(f"{OPERATION}/action", "publish"),
        "best match: /operations/receiveSay/action: 'publish' is not one of ['send', 'receive']",
        id="action-publish",
    ),
    pytest.param(
        _set(f"{OPERATION}/channel", {"address": "/chat/{room}/ws"}),
        "best match: /operations/receiveSay/channel: '$ref' is a required property",
        id="channel-not-a-ref",
    ),
    pytest.param(
        _set("channels/chat/subscribe", {"message": {"$ref": "#/components/messages/say"}}),
        "best match: /channels/chat: unexpected 'subscribe': the fields here are address,",
        id="channel-subscribe-2.x",
    ),
    pytest.param(
        _set("components/parameters/room/schema", {"type": "string"}),
        "best match: /components/parameters/room: unexpected 'schema': the fields here are "
        "description, enum, default, examples, location",
        id="parameter-schema-2.x",
    ),
    pytest.param(
        _set(f"{WS}/queryParams", {"type": "object"}),
        "best match: /channels/chat/bindings/ws: unexpected 'queryParams': the fields here are "
        "method, query, headers, bindingVersion",
        id="ws-binding-unknown-field",
    ),
    pytest.param(
        _set("channels/chat/bindings", {"websockets": {"query": {"type": "object"}}}),
        "best match: /channels/chat/bindings: unexpected 'websockets': the fields here are http, "
        "ws, amqp,",
        id="ws-binding-wrong-key",
    ),
    pytest.param(
        _set(f"{WS}/bindingVersion", "0.2.0"),
        "/channels/chat/bindings/ws/bindingVersion: '0.2.0' is not one of ['0.1.0']",
        id="ws-binding-version",
    ),
    pytest.param(
        _set(f"{WS}/query", {"$ref": "#/components/schemas/Query"}),
        "/channels/chat/bindings/ws/query: valid under more than one alternative "
        "(schema and Reference)",
        id="ws-binding-query-ref",
    ),
    pytest.param(
        _set("components/schemas/Say/type", "objekt"),
        "best match: /components/schemas/Say/type: 'objekt' is not one of ['array', 'boolean',",
        id="payload-not-a-schema",
    ),
    pytest.param(
        _set(f"{OPERATION}/reply/address", {"location": "header.replyTo"}),
        "/operations/receiveSay/reply/address/location: 'header.replyTo' does not match",
        id="reply-address-location",
    ),
]


@pytest.mark.parametrize(("edit", "expected"), SCHEMA_ERRORS)
def test_the_json_schema_rejects(edit: Edit, expected: str) -> None:
    document = chat_document()
    edit(document)
    message = invalid_because(document)
    assert "JSON Schema error" in message
    assert expected in message, message


BEYOND_THE_SCHEMA = [
    pytest.param(
        _set(f"{OPERATION}/messages", [{"$ref": "#/components/messages/say"}]),
        "/operations/receiveSay/messages/0/$ref: '#/components/messages/say' is not a message "
        "of channel '#/channels/chat'",
        id="operation-message-from-components",
    ),
    pytest.param(
        _set(f"{OPERATION}/reply/messages", [{"$ref": "#/components/messages/ack"}]),
        "/operations/receiveSay/reply/messages/0/$ref: '#/components/messages/ack' is not a "
        "message of channel '#/channels/chat'",
        id="reply-message-from-components",
    ),
    pytest.param(
        _set(f"{OPERATION}/channel", {"$ref": "#/components/channels/chat"}),
        "an operation of the root operations must be on a channel of the root channels",
        id="operation-on-a-components-channel",
    ),
    pytest.param(
        _delete("channels/chat/parameters"),
        "/channels/chat/parameters: the address '/chat/{room}/ws' has parameters room that "
        "'parameters' does not describe",
        id="parameter-missing",
    ),
    pytest.param(
        _set("channels/chat/parameters/user", {"description": "?"}),
        "/channels/chat/parameters/user: 'user' is not an expression of the address",
        id="parameter-redundant",
    ),
    pytest.param(
        _set("components/schemas/Message/properties/author", {"$ref": "#/components/schemas/U"}),
        "/components/schemas/Message/properties/author/$ref: '#/components/schemas/U' does not "
        "resolve in the document",
        id="dangling-reference",
    ),
    pytest.param(
        _set("components/messages/say/payload", {"$ref": "https://example.com/say.json"}),
        "'https://example.com/say.json' points outside the document",
        id="external-reference",
    ),
    pytest.param(
        _set("components/messages/chat:say", {"payload": {"type": "objekt"}}),
        "/components/messages/chat:say: a component's name must match ^[a-zA-Z0-9.\\-_]+$",
        id="component-name",
    ),
    pytest.param(
        _set(f"{WS}/query", {"type": "string"}),
        "/channels/chat/bindings/ws/query: the websocket binding's query must be a schema of "
        "type object with properties",
        id="ws-binding-query-not-an-object",
    ),
]


@pytest.mark.parametrize(("edit", "expected"), BEYOND_THE_SCHEMA)
def test_the_rules_beyond_the_schema_reject(edit: Edit, expected: str) -> None:
    document = chat_document()
    edit(document)
    assert asyncapi_validator().is_valid(document)  # the JSON Schema alone lets these through
    message = invalid_because(document)
    assert "beyond the JSON Schema" in message
    assert expected in message, message


def test_examples_and_defaults_are_data_not_references() -> None:
    document = chat_document()
    say = document["components"]["messages"]["say"]
    say["examples"] = [{"payload": {"event": "say", "text": "x", "$ref": "not/a/reference"}}]
    schema = document["components"]["schemas"]["Say"]
    schema["properties"]["default"] = {"$ref": "#/components/schemas/User"}  # a field named so
    validate_asyncapi(document)
    schema["properties"]["default"] = {"$ref": "#/components/schemas/Nobody"}
    assert "'#/components/schemas/Nobody' does not resolve" in invalid_because(document)


# -- pydantic's schemas as message payloads -------------------------------------------------------


class User(BaseModel):
    name: str = Field(max_length=32)


class Message(BaseModel):
    event: Literal["message"]
    author: User
    text: str
    reply_to: int | None = None


def test_pydantic_defs_inline_pass_the_schema_but_do_not_resolve() -> None:
    document = chat_document()
    payload = Message.model_json_schema()  # {"$defs": {"User": ...}, ... "#/$defs/User"}
    assert payload["properties"]["author"] == {"$ref": "#/$defs/User"}
    document["components"]["schemas"]["Message"] = payload
    assert asyncapi_validator().is_valid(document)  # "$defs" is an unknown keyword to draft-07
    message = invalid_because(document)
    assert (
        "/components/schemas/Message/properties/author/$ref: '#/$defs/User' does not resolve "
        "in the document (pydantic's $defs go to #/components/schemas: "
        "ref_template='#/components/schemas/{model}')"
    ) in message


class Leave(BaseModel):
    event: Literal["leave"]


def test_pydantic_discriminator_objects_are_not_asyncapi_discriminators() -> None:
    inbound = Annotated[Message | Leave, Field(discriminator="event")]
    ref_template = "#/components/schemas/{model}"
    union = TypeAdapter(inbound).json_schema(ref_template=ref_template)
    document = chat_document()
    document["components"]["schemas"].update(union.pop("$defs"), Inbound=union)
    assert union["discriminator"] == {  # OpenAPI's discriminator object
        "mapping": {
            "leave": "#/components/schemas/Leave",
            "message": "#/components/schemas/Message",
        },
        "propertyName": "event",
    }
    message = invalid_because(document)
    assert "- /components/schemas/Inbound/discriminator: {'mapping': " in message
    assert "is not of type 'string'" in message
    union["discriminator"] = union["discriminator"]["propertyName"]  # AsyncAPI's: a property name
    validate_asyncapi(document)


def test_pydantic_defs_hoisted_into_components_are_valid() -> None:
    document = chat_document()
    ref_template = "#/components/schemas/{model}"
    _, top = models_json_schema([(Message, "validation")], ref_template=ref_template)
    schemas = document["components"]["schemas"]
    del schemas["Message"], schemas["User"]
    schemas.update(top["$defs"])  # Message and User, hoisted: "$ref": "#/components/schemas/User"
    assert schemas["Message"]["properties"]["author"] == {"$ref": "#/components/schemas/User"}
    validate_asyncapi(document)
    # The same for one model: its own $defs, hoisted next to it.
    single = copy.deepcopy(Message.model_json_schema(ref_template=ref_template))
    schemas.update(single.pop("$defs"), Message=single)
    validate_asyncapi(document)
