"""The AsyncAPI 3.0.0 document of an app, generated from its route model alone.

One channel per websocket route (its address, path parameters, and the query and header
parameters of its handshake as the ``ws`` binding); per event, a ``receive`` operation (with a
``reply`` when its handler returns something); the messages the route declares it sends
(``sends=``) and triows' error frame as ``send`` operations. Payloads are the pydantic JSON
schemas of the models, generated in one pass so that shared models appear once, under
``components/schemas``. The document describes the server: ``receive`` is what clients send
it, ``send`` what it sends them.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import pydantic
from pydantic.json_schema import (
    GenerateJsonSchema,
    JsonSchemaMode,
    JsonSchemaValue,
)

from ..channels._frames import TopicMessage
from ..events import REF, Ref
from ..listener import MessageSpec
from ..routes import Event, Parameter, RouteTable, WebSocketRoute

__all__ = ["AsyncAPI", "document"]

VERSION = "3.0.0"
#: The version of the ``ws`` bindings (``asyncapi/bindings``, websockets 0.1.0).
WS_BINDING = "0.1.0"
_SCHEMAS = "#/components/schemas/"
#: The schemas of triows' own frames, under ``components/schemas``.
REF_SCHEMA = "triows_ref"
INVALID_SCHEMA = "triows_invalid"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_PARAM = re.compile(r"{([A-Za-z_][A-Za-z0-9_]*)(?::[A-Za-z_]+)?}")


@dataclass(frozen=True)
class AsyncAPI:
    """What an app says about itself in its AsyncAPI document, and where it serves it.

    Attributes:
        title: The document's ``info.title``.
        version: The ``info.version`` of the API (not of AsyncAPI).
        description: ``info.description`` (Markdown).
        path: Where the JSON document is served (``GET``).
        viewer: Where the viewer page is served; ``None`` for none.
        servers: The document's ``servers``; left out, it names the server the document was
            fetched from (``ws://`` or ``wss://`` and the request's host).
    """

    title: str = "triows app"
    version: str = "0.1.0"
    description: str | None = None
    path: str = "/asyncapi.json"
    viewer: str | None = "/asyncapi"
    servers: Mapping[str, Mapping[str, Any]] | None = field(default=None)


def _id(text: str) -> str:
    """An id the AsyncAPI schema accepts as a key (``[A-Za-z0-9_-]``)."""
    return _UNSAFE.sub("_", text)


def _unique(key: str, taken: set[str]) -> str:
    """``key``, or ``key_2``, ``key_3``... the first not in ``taken`` (which then holds it)."""
    found, n = key, 1
    while found in taken:
        n += 1
        found = f"{key}_{n}"
    taken.add(found)
    return found


def address(route: WebSocketRoute) -> str:
    """The route's path as an AsyncAPI address: ``/chat/{room}/ws`` (converters left out)."""
    return _PARAM.sub(lambda m: "{" + m.group(1) + "}", route.path.template)


_UNDESCRIBED = "A value this document cannot describe ({!r})."


class _Generator(GenerateJsonSchema):
    """pydantic's JSON schemas, with "any value" for a type that has none (an arbitrary class).

    The document then says less than it could about that value instead of failing: a type
    that validates need not have a JSON schema.
    """

    def handle_invalid_for_json_schema(self, schema: Any, error_info: str) -> JsonSchemaValue:
        return {"description": f"A value this document cannot describe ({error_info})."}


class _Schemas:
    """Every schema of the document, asked for first and generated in one pydantic pass."""

    def __init__(self) -> None:
        self._inputs: list[tuple[str, JsonSchemaMode, pydantic.TypeAdapter[Any]]] = []
        self.done: dict[str, Any] = {}
        self.definitions: dict[str, Any] = {}

    def want(self, key: str, type_: Any, mode: JsonSchemaMode = "validation") -> str:
        try:
            adapter = (
                type_ if isinstance(type_, pydantic.TypeAdapter) else pydantic.TypeAdapter(type_)
            )
        except (pydantic.PydanticSchemaGenerationError, pydantic.PydanticUserError):
            # A return annotation pydantic cannot handle (a plain class): "any value".
            adapter = pydantic.TypeAdapter(
                Annotated[Any, pydantic.Field(description=_UNDESCRIBED.format(type_))]
            )
        self._inputs.append((key, mode, adapter))
        return key

    def generate(self) -> None:
        if not self._inputs:
            return
        schemas, definitions = pydantic.TypeAdapter.json_schemas(
            self._inputs,
            ref_template=_SCHEMAS + "{model}",
            by_alias=True,
            schema_generator=_Generator,
        )
        self.done = {key: schema for (key, _), schema in schemas.items()}
        self.definitions = dict(definitions.get("$defs", {}))
        # A generic model's name (Page[int]) is not a key AsyncAPI accepts.
        renames = {name: _id(name) for name in self.definitions if _id(name) != name}
        self.definitions = {renames.get(k, k): v for k, v in self.definitions.items()}
        self.done = _rename_refs(self.done, renames)
        self.definitions = _rename_refs(self.definitions, renames)

    def __getitem__(self, key: str) -> Any:
        return self.done[key]

    def with_message_id(self, payload: dict[str, Any]) -> dict[str, Any]:
        """A published model's payload with the ``id`` triows adds, written out in full.

        Not ``allOf`` with the model's schema: a model with ``extra="forbid"`` has
        ``additionalProperties: false``, which no frame with an ``id`` would then fit.
        """
        ref = payload.get("$ref", "")
        schema = dict(self.definitions.get(ref.removeprefix(_SCHEMAS), payload))
        schema.pop("$ref", None)
        schema["properties"] = {**_MESSAGE_ID["properties"], **schema.get("properties", {})}
        return schema

    def inline(self, model: type[pydantic.BaseModel]) -> dict[str, Any]:
        """``model``'s schema itself (not a reference to it), for a binding's ``query``."""
        schema = pydantic.TypeAdapter(model).json_schema(
            by_alias=True, ref_template=_SCHEMAS + "{model}", schema_generator=_Generator
        )
        renames = {name: _id(name) for name in schema.get("$defs", {}) if _id(name) != name}
        schema = _rename_refs(schema, renames)
        for name, definition in schema.pop("$defs", {}).items():
            self.definitions.setdefault(renames.get(name, name), definition)
        schema.pop("title", None)
        return dict(schema)


def _rename_refs(node: Any, renames: Mapping[str, str]) -> Any:
    """``node`` with its references renamed, and written as AsyncAPI's schema object wants.

    pydantic writes OpenAPI's discriminator object (``{"propertyName": ...}``); AsyncAPI 3.0's
    ``discriminator`` is the property's name alone.
    """
    if isinstance(node, dict):
        out = {k: _rename_refs(v, renames) for k, v in node.items()}
        found = out.get("discriminator")
        if isinstance(found, dict) and isinstance(found.get("propertyName"), str):
            out["discriminator"] = found["propertyName"]
        ref = out.get("$ref")
        if isinstance(ref, str) and ref.startswith(_SCHEMAS):
            name = ref[len(_SCHEMAS) :]
            out["$ref"] = _SCHEMAS + renames.get(name, name)
        return out
    if isinstance(node, list):
        return [_rename_refs(item, renames) for item in node]
    return node


def _object(parameters: list[Parameter], title: str) -> type[pydantic.BaseModel] | None:
    """A model of handshake parameters keyed by their names on the wire, for their schema."""
    if not parameters:
        return None
    fields: dict[str, Any] = {}
    for index, p in enumerate(parameters):
        default = ... if p.required else p.default
        fields[f"p{index}"] = (p.annotation, pydantic.Field(default, alias=p.key, **p.constraints))
    model: type[pydantic.BaseModel] = pydantic.create_model(
        title, __config__=pydantic.ConfigDict(arbitrary_types_allowed=True), **fields
    )
    return model


def _error_schema(ref: Any) -> dict[str, Any]:
    return {
        "title": "Invalid message",
        "description": "triows' error frame for a message that failed validation.",
        "type": "object",
        "properties": {
            REF: ref,
            "ok": {"const": False},
            "code": {"const": 1008},
            "errors": {
                "type": "array",
                "description": "pydantic's errors, each located under 'body' (at most 32).",
                "items": {"type": "object"},
            },
            "truncated": {"type": "integer", "description": "How many errors were left out."},
        },
        "required": ["code", "errors"],
    }


#: What triows adds to the frame of a published :class:`~triows.channels.TopicMessage`.
_MESSAGE_ID: dict[str, Any] = {
    "type": "object",
    "properties": {
        TopicMessage.id_field: {
            "type": "string",
            "description": "The message's id (EPOCH:OFFSET), first in the frame, on a topic that "
            "keeps history: what a reconnecting client passes back as since=.",
        }
    },
}


def _reply_schema(ref: Any, data: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {REF: ref, "ok": {"const": True}, "data": data},
        "required": [REF, "ok", "data"],
    }


def _sent_name(model: type[pydantic.BaseModel], discriminator: str) -> str:
    """A sent model's message id: its discriminator's one value (``presence_diff``), or name."""
    declared = model.model_fields.get(discriminator)
    if declared is not None:
        values: tuple[Any, ...] = typing.get_args(declared.annotation)
        if typing.get_origin(declared.annotation) is Literal and len(values) == 1:
            return str(values[0])
    return model.__name__


class _Channel:
    """The parts of one route's channel, before the schemas are generated."""

    def __init__(self, route: WebSocketRoute, cid: str, schemas: _Schemas) -> None:
        self.route, self.cid = route, cid
        #: (message id, its reply's id, the event)
        self.events: list[tuple[str, str, Event]] = []
        self.body: str | None = None
        self.sends: list[tuple[str, type[pydantic.BaseModel]]] = []
        handshake = list(route.handshake_parameters)
        self.query = _object([p for p in handshake if p.source == "query"], f"{cid}_query")
        self.headers = _object([p for p in handshake if p.source == "header"], f"{cid}_headers")
        # Message ids, unique in the channel: triows' own first, then the events', the sent.
        taken: set[str] = set()
        self.invalid = _unique("invalid", taken) if route.driver != "plain" else ""
        if route.driver == "events":
            for event in route.events:
                mid = _unique(_id(event.names[0]), taken)
                self.events.append((mid, _unique(f"{mid}_reply", taken), event))
                schemas.want(f"{cid}/in/{mid}", event.wire)
                schemas.want(f"{cid}/reply/{mid}", event.reply, "serialization")
        elif route.driver == "messages" and route.encoding == "json":
            spec = MessageSpec(route.owner, route.encoding, route.body)
            self.body = _unique("message", taken)
            schemas.want(f"{cid}/in/{self.body}", spec.adapter)
        for model in route.sends:
            mid = _unique(_id(_sent_name(model, route.discriminator)), taken)
            self.sends.append((mid, model))
            schemas.want(f"{cid}/out/{mid}", model, "serialization")

    def build(
        self, schemas: _Schemas, ref: Any, operation_ids: set[str]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The channel object and its operations (their ids unique in ``operation_ids``)."""
        route, cid = self.route, self.cid
        channel_ref = {"$ref": f"#/channels/{cid}"}
        messages: dict[str, Any] = {}
        operations: dict[str, Any] = {}

        def message_ref(mid: str) -> dict[str, str]:
            return {"$ref": f"#/channels/{cid}/messages/{mid}"}

        correlation = {"location": f"$message.payload#/{REF}"}
        for mid, reply_id, event in self.events:
            messages[mid] = {
                "name": " | ".join(event.names),
                "title": event.model.__name__,
                "contentType": "application/json",
                "payload": schemas[f"{cid}/in/{mid}"],
                "correlationId": correlation,
                **({"summary": event.summary} if event.summary else {}),
            }
            operation: dict[str, Any] = {
                "action": "receive",
                "channel": channel_ref,
                "messages": [message_ref(mid)],
                "title": f"{event.names[0]} ({event.owner})",
                **({"summary": event.summary} if event.summary else {}),
            }
            returns = "its handler's return value" if event.replies else "null"
            messages[reply_id] = {
                "name": f"{event.names[0]} reply",
                "contentType": "application/json",
                "correlationId": correlation,
                "description": (
                    f'The answer to a {event.names[0]!r} message that carried "{REF}": '
                    f'"data" is {returns}.'
                    + (
                        ' Without a "ref", the value of "data" is sent alone (nothing when '
                        "it is null)."
                        if event.replies
                        else ""
                    )
                ),
                "payload": _reply_schema(ref, schemas[f"{cid}/reply/{mid}"]),
            }
            reply = [message_ref(reply_id)]
            operation["reply"] = {"channel": channel_ref, "messages": reply}
            operations[_unique(f"{cid}_{mid}", operation_ids)] = operation
        if self.body is not None:
            messages[self.body] = {
                "name": "message",
                "contentType": "application/json",
                "payload": schemas[f"{cid}/in/{self.body}"],
            }
            operations[_unique(f"{cid}_{self.body}", operation_ids)] = {
                "action": "receive",
                "channel": channel_ref,
                "messages": [message_ref(self.body)],
                **({"summary": route.summary} if route.summary else {}),
            }
        if self.invalid:
            messages[self.invalid] = {
                "name": "invalid",
                "contentType": "application/json",
                "summary": "A message that failed validation (then close 1008, unless the "
                "route's on_invalid is 'reply').",
                "payload": {"$ref": _SCHEMAS + INVALID_SCHEMA},
            }
            operations[_unique(f"{cid}_{self.invalid}", operation_ids)] = {
                "action": "send",
                "channel": channel_ref,
                "messages": [message_ref(self.invalid)],
            }
        for mid, model in self.sends:
            payload = schemas[f"{cid}/out/{mid}"]
            if issubclass(model, TopicMessage):
                payload = schemas.with_message_id(payload)
            messages[mid] = {
                "name": mid,
                "title": model.__name__,
                "contentType": "application/json",
                "payload": payload,
            }
            operations[_unique(f"{cid}_send_{mid}", operation_ids)] = {
                "action": "send",
                "channel": channel_ref,
                "messages": [message_ref(mid)],
            }
        channel: dict[str, Any] = {
            "address": address(route),
            "title": route.owner,
            **({"summary": route.summary} if route.summary else {}),
            "messages": messages,
        }
        taken = {p.key: p for p in route.handshake_parameters if p.source == "path"}
        parameters = {
            name: _path_parameter(taken[name])
            if name in taken
            else {"description": "Path parameter."}
            for name in route.path.converters
        }
        if parameters:
            channel["parameters"] = parameters
        binding: dict[str, Any] = {"method": "GET"}
        if self.query is not None:
            binding["query"] = schemas.inline(self.query)
        if self.headers is not None:
            binding["headers"] = schemas.inline(self.headers)
        channel["bindings"] = {"ws": {**binding, "bindingVersion": WS_BINDING}}
        return channel, operations


def _path_parameter(parameter: Parameter) -> dict[str, Any]:
    """An AsyncAPI 3 parameter (a string: no schema, but a description, enum and default)."""
    annotation = parameter.annotation
    if parameter.constraints:
        annotation = Annotated[annotation, pydantic.Field(**parameter.constraints)]
    adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(annotation)
    schema = adapter.json_schema(schema_generator=_Generator)
    described = (
        ", ".join(
            f"{key} {schema[key]}"
            for key in ("type", "format", "pattern", "minLength", "maxLength", "minimum", "maximum")
            if key in schema
        )
        or "a string"
    )
    out: dict[str, Any] = {"description": f"Path parameter: {described}."}
    if "enum" in schema:
        out["enum"] = [str(v) for v in schema["enum"]]
    if not parameter.required:
        out["default"] = str(parameter.default)
    return out


def document(
    routes: RouteTable,
    spec: AsyncAPI | None = None,
    *,
    servers: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document of ``routes``.

    Args:
        routes: The app's route model (``app.routes``).
        spec: Title, version, description (and the servers, unless ``servers`` is given).
        servers: The document's ``servers``.

    Returns:
        The document, as JSON-ready dicts and lists.
    """
    spec = spec or AsyncAPI()
    schemas = _Schemas()
    ref_key = schemas.want("ref", Ref)
    channels: list[_Channel] = []
    taken: set[str] = set()
    for route in routes.websocket:
        cid = _id(route.name)
        if cid in taken:
            cid = _id(route.owner)
        channels.append(_Channel(route, _unique(cid, taken), schemas))
    schemas.generate()
    ref: Any = {}
    if channels:
        schemas.definitions.setdefault(REF_SCHEMA, schemas[ref_key])
        schemas.definitions.setdefault(
            INVALID_SCHEMA, _error_schema({"$ref": _SCHEMAS + REF_SCHEMA})
        )
        ref = {"$ref": _SCHEMAS + REF_SCHEMA}
    out_channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    operation_ids: set[str] = set()
    for channel in channels:
        out_channels[channel.cid], channel_operations = channel.build(schemas, ref, operation_ids)
        operations.update(channel_operations)
    info: dict[str, Any] = {"title": spec.title, "version": spec.version}
    if spec.description:
        info["description"] = spec.description
    doc: dict[str, Any] = {"asyncapi": VERSION, "info": info}
    chosen = servers if servers is not None else spec.servers
    if chosen:
        doc["servers"] = {name: dict(server) for name, server in chosen.items()}
    doc["defaultContentType"] = "application/json"
    doc["channels"] = out_channels
    doc["operations"] = operations
    if schemas.definitions:
        doc["components"] = {"schemas": schemas.definitions}
    return doc
