"""The extra-handler loop: ``@ws_route(..., use_extra_handler=True, encoding=...)``.

How it works: per connection, after the guards and the handshake parameters (resolved once),
the connect hook runs (default: ``accept()``); then a plain ``while`` loop in the connection's
own task receives a frame, decodes and validates it as the route's ``WsBody`` — compiled once
into one pydantic ``TypeAdapter`` — and awaits the message handler. No task or channel per
message. When the connection has ended, the disconnect hook runs once with the close code that
was actually sent or received.

What a client's mistake gets (nothing of it is logged as a server error):

* a frame of the wrong type → close 1003, the reason saying what was expected and what came;
* malformed JSON → close 1007 with the parser's message;
* a message failing validation → one text frame ``{"code": 1008, "errors": [...]}`` (pydantic's
  errors, ``loc`` starting with ``"body"``), then close 1008 — or, with ``on_invalid="reply"``,
  the frame alone and the connection stays open.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Annotated, Any

import pydantic
import pydantic_core

from ._receive import InvalidJSON, UnexpectedFrame
from ._validation import client_errors
from .errors import CloseCode, ConfigurationError, WebSocketException
from .routes import Parameter
from .websocket import WebSocket, WebSocketState

__all__ = ["MessageSpec", "error_frame", "json_payload", "open_connection", "run_loop"]


class InvalidMessage(WebSocketException):
    """A message failed validation (close 1008, after the error frame)."""

    def __init__(self) -> None:
        super().__init__(CloseCode.POLICY_VIOLATION, "message failed validation")


class MessageSpec:
    """How one route turns a received frame into the handler's ``WsBody`` arguments.

    Args:
        owner: The handler, for error messages.
        encoding: ``"text"``, ``"json"``, ``"bytes"``, or ``None`` (each message as it came:
            ``str`` for a text frame, ``bytes`` for a binary one).
        ws_body: The ``WsBody`` parameters of the route (``WebSocketRoute.body``).

    Raises:
        ConfigurationError: No ``WsBody`` parameter, or several (or ``embed``) without
            ``encoding="json"``.
    """

    def __init__(
        self,
        owner: str,
        encoding: str | None,
        ws_body: Sequence[Parameter],
    ) -> None:
        if not ws_body:
            raise ConfigurationError(
                f"{owner}: a use_extra_handler=True route receives each message in a WsBody() "
                "parameter; add one (for example 'data: str = WsBody()')"
            )
        self.encoding = encoding
        self.embedded = len(ws_body) > 1 or any(p.embed for p in ws_body)
        if self.embedded and encoding != "json":
            raise ConfigurationError(
                f"{owner}: several WsBody() parameters (or embed=True) read a JSON object; "
                f"use encoding='json', not {encoding!r}"
            )
        #: ``(model field, parameter name)`` when the message is an object of several values.
        self.names: list[tuple[str, str]] = []
        self.single = ""
        self.passthrough = False
        target: Any
        if self.embedded:
            fields: dict[str, Any] = {}
            for index, p in enumerate(ws_body):
                field = f"p{index}"  # internal names cannot shadow BaseModel attributes
                self.names.append((field, p.name))
                info = pydantic.Field(p.default, validation_alias=p.key, **p.constraints)
                fields[field] = (p.annotation, info)
            # Named for what clients see in a model_type error's ctx, not after the handler.
            target = pydantic.create_model("Message", **fields)
        else:
            body = ws_body[0]
            annotation, constraints = body.annotation, body.constraints
            self.single = body.name
            target = (
                Annotated[annotation, pydantic.Field(**constraints)] if constraints else annotation
            )
            # A plain str (text), bytes (bytes) or Any (raw) needs no validation per message.
            plain = {"text": str, "bytes": bytes, None: Any}.get(encoding)
            self.passthrough = annotation is plain and not constraints
        try:
            self.adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(target)
        except (pydantic.PydanticUserError, TypeError, ValueError) as exc:
            raise ConfigurationError(f"{owner}: invalid WsBody() ({exc})") from exc
        #: The validated value (or model) of one ASGI ``websocket.receive`` message; raises
        #: ``WebSocketException`` (1003 wrong frame type, 1007 malformed JSON) or
        #: ``pydantic.ValidationError``. Chosen here, once per route, not per message.
        self.decode: Callable[[Mapping[str, Any]], Any] = {
            "json": self._decode_json,
            "text": self._decode_text,
            "bytes": self._decode_bytes,
            None: self._decode_raw,
        }[encoding]

    def _decode_json(self, message: Mapping[str, Any]) -> Any:
        return self.adapter.validate_json(json_payload(message))

    def _decode_text(self, message: Mapping[str, Any]) -> Any:
        text = message.get("text")
        if text is None:
            raise UnexpectedFrame("text", "binary")
        return text if self.passthrough else self.adapter.validate_python(text)

    def _decode_raw(self, message: Mapping[str, Any]) -> Any:
        text = message.get("text")
        data = text if text is not None else message.get("bytes", b"")
        return data if self.passthrough else self.adapter.validate_python(data)

    def _decode_bytes(self, message: Mapping[str, Any]) -> Any:
        data = message.get("bytes")
        if data is None:
            raise UnexpectedFrame("binary", "text")
        return data if self.passthrough else self.adapter.validate_python(data)


def error_frame(exc: pydantic.ValidationError) -> dict[str, Any]:
    """The error frame for ``exc``: pydantic's errors located under ``"body"``, bounded.

    At most 4 KiB of the client's input is echoed (``_validation.py``); errors past the 32
    listed are counted in ``"truncated"``.
    """
    errors, more = client_errors(exc, _in_body)
    frame: dict[str, Any] = {"code": CloseCode.POLICY_VIOLATION, "errors": errors}
    if more:
        frame["truncated"] = more
    return frame


def _in_body(error: dict[str, Any]) -> None:
    error["loc"] = ["body", *error["loc"]]


async def open_connection(
    websocket: WebSocket,
    instance: Any,
    arguments: Mapping[str, Any],
    connect: Callable[[Any, WebSocket, Mapping[str, Any]], Awaitable[Any]] | None,
) -> bool:
    """Accept, or run the connect hook; whether the connection is then open for messages."""
    if connect is None:
        await websocket.accept()
    else:
        await connect(instance, websocket, arguments)
    # The connect hook may have closed or refused the connection.
    return websocket.connection_state is WebSocketState.CONNECTED


def json_payload(message: Mapping[str, Any]) -> str | bytes:
    """The JSON text of a ``websocket.receive`` message: its text, else its bytes.

    Raises:
        UnexpectedFrame: Neither (close 1003).
    """
    # A key present with the value None counts as absent (hypercorn sends both keys).
    payload: str | bytes | None = message.get("text")
    if payload is None:
        payload = message.get("bytes")
        if payload is None:
            raise UnexpectedFrame("text or binary JSON", "an empty message")
    return payload


async def run_loop(
    websocket: WebSocket,
    instance: Any,
    handler: Callable[..., Awaitable[Any]],
    arguments: Mapping[str, Any],
    spec: MessageSpec,
    *,
    connect: Callable[[Any, WebSocket, Mapping[str, Any]], Awaitable[Any]] | None,
    on_invalid: str,
) -> None:
    """Open the connection, then call ``handler`` once per valid message until it ends.

    Returns when the peer disconnects; raises what the handler raises, and
    ``WebSocketException`` for the client's mistakes (see the module table).
    """
    if not await open_connection(websocket, instance, arguments, connect):
        return

    kwargs = dict(arguments)
    single = spec.single
    receive = websocket.receive
    decode = spec.decode
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return  # websocket.disconnect: the peer left
        try:
            value = decode(message)
        except pydantic.ValidationError as exc:
            frame = error_frame(exc)
            errors = frame["errors"]
            if errors and errors[0]["type"] == "json_invalid":
                raise _invalid_json(errors[0]) from None
            await websocket.send_text(pydantic_core.to_json(frame).decode())
            if on_invalid == "close":
                raise InvalidMessage from None
            continue
        if single:
            kwargs[single] = value
        else:
            fields = value.__dict__
            for field, name in spec.names:
                kwargs[name] = fields[field]
        await handler(instance, **kwargs)


def _invalid_json(error: Mapping[str, Any]) -> WebSocketException:
    # pydantic's message reads "Invalid JSON: <what and where>"; say it as receive_json does.
    detail = str(error.get("msg", "")).removeprefix("Invalid JSON: ")
    return InvalidJSON(detail)
