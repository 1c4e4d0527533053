"""Typed events: several handlers on one websocket route, dispatched by a field of the message.

Declared with ``@ws_route.on(route)`` on controller methods, each taking one pydantic model::

    class Say(BaseModel):
        event: Literal["say"]
        text: str

    @ws_route("/{room}/ws", use_extra_handler=True)
    async def room_ws(self, room: str) -> None: ...  # runs once, when a connection opens

    @ws_route.on(room_ws)
    async def say(self, message: Say, room: str) -> Said | None: ...

How it works: when the app is built, :func:`read_events` gives each model a *wire* subclass
that adds what it does not declare itself (the discriminator field as a ``Literal``, and the
optional correlation id ``ref``, both left out of ``model_dump()``), and :class:`EventLoop`
compiles the wire models into one discriminated-union ``TypeAdapter`` and a lookup from wire
model to handler. Per message, that is one ``validate_json`` of the frame and one dict lookup.

What the client gets (``docs/events.md``):

* a reply: a handler's return value (a model, or anything pydantic serialises), as its JSON;
  when the message carried ``"ref"``, exactly one frame ``{"ref": REF, "ok": true, "data":
  VALUE}`` (``null`` for ``None``), so that a client can await the answer;
* an unknown event, or a message that fits no event: triows' error frame ``{"code": 1008,
  "errors": [...]}`` (with ``"ref"`` and ``"ok": false`` when the message had a usable ref),
  then close 1008 — or, with ``on_invalid="reply"``, the frame alone;
* malformed JSON: close 1007; a frame that is neither text nor binary JSON: close 1003.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Annotated, Any, Literal, Union

import pydantic
import pydantic_core

from .controllers import describe
from .errors import ConfigurationError
from .listener import InvalidMessage, _invalid_json, error_frame, json_payload, open_connection
from .routes import Event
from .websocket import WebSocket

__all__ = ["REF", "EventLoop", "Ref", "read_events"]

#: The field of a message that carries its correlation id, echoed in the reply.
REF = "ref"
#: What a correlation id may be: a string of up to 128 characters, or an integer.
Ref = Annotated[str, pydantic.StringConstraints(max_length=128)] | pydantic.StrictInt


def read_events(
    handlers: Sequence[tuple[Callable[..., Any], str | None]],
    owner: str,
    discriminator: str,
    handshake: Sequence[str],
) -> tuple[Event, ...]:
    """The events of a route's ``@ws_route.on`` handlers, checked and compiled.

    Args:
        handlers: Each event handler, and the event name its decorator gave (if any).
        owner: The route, for messages.
        discriminator: The field that names a message's event.
        handshake: The names of the route's handshake parameters (what handlers may take).

    Raises:
        ConfigurationError: A handler without a model parameter, a model that does not say
            its event, two handlers for one event, a parameter the route does not have.
    """
    events: list[Event] = []
    seen: dict[str, str] = {}
    for fn, name in handlers:
        event = _read_event(fn, name, owner, discriminator, handshake)
        for value in event.names:
            if value in seen:
                raise ConfigurationError(
                    f"{owner}: event {value!r} has two handlers, {seen[value]} and {event.owner}"
                )
            seen[value] = event.owner
        events.append(event)
    return tuple(events)


def _read_event(
    fn: Callable[..., Any],
    name: str | None,
    owner: str,
    discriminator: str,
    handshake: Sequence[str],
) -> Event:
    where = f"the event handler {describe(fn)} of {owner}"
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception as exc:
        raise ConfigurationError(f"{where}: cannot read its annotations ({exc})") from exc
    parameters = list(inspect.signature(fn).parameters.values())[1:]  # after self
    if not parameters or parameters[0].kind not in (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    ):
        raise ConfigurationError(f"{where} must take (self, message: Model, ...)")
    message = parameters[0].name
    model = hints.get(message)
    if not (inspect.isclass(model) and issubclass(model, pydantic.BaseModel)):
        raise ConfigurationError(
            f"{where}: its first parameter {message!r} must be annotated with a pydantic model "
            f"(the message), got {model!r}"
        )
    takes = []
    for parameter in parameters[1:]:
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise ConfigurationError(f"{where}: *args/**kwargs parameters cannot be filled")
        if parameter.name not in handshake:
            have = ", ".join(handshake) or "none"
            raise ConfigurationError(
                f"{where} takes {parameter.name!r}, which the route does not have "
                f"(its handshake parameters: {have})"
            )
        takes.append(parameter.name)
    names = _event_names(model, name, discriminator, where)
    # Unannotated, it may return anything (and what it returns is sent).
    reply = hints.get("return", Any)
    if reply is type(None):
        reply = None
    doc = inspect.getdoc(fn)
    return Event(
        names=names,
        model=model,
        wire=_wire_model(model, names, discriminator, where),
        handler=fn,
        owner=describe(fn),
        message=message,
        takes=tuple(takes),
        reply=reply,
        summary=doc.splitlines()[0] if doc else None,
    )


def _event_names(
    model: type[pydantic.BaseModel], name: str | None, discriminator: str, where: str
) -> tuple[str, ...]:
    """The discriminator values that select ``model``: its ``Literal`` field's, or ``name``."""
    declared = model.model_fields.get(discriminator)
    if declared is None:
        if name is None:
            raise ConfigurationError(
                f"{where}: {model.__name__} has no {discriminator!r} field to say which event "
                f"it is: declare '{discriminator}: Literal[\"...\"]' in it, or name the event "
                '(@ws_route.on(route, event="..."))'
            )
        return (name,)
    annotation = declared.annotation
    values = typing.get_args(annotation) if typing.get_origin(annotation) is Literal else ()
    if not values or not all(isinstance(v, str) for v in values):
        raise ConfigurationError(
            f"{where}: {model.__name__}.{discriminator} must be a Literal of strings (the "
            f"event's name), got {annotation!r}"
        )
    if name is not None and name not in values:
        raise ConfigurationError(
            f"{where}: event={name!r}, but {model.__name__}.{discriminator} is {annotation!r}"
        )
    return (name,) if name is not None else tuple(values)


def _wire_model(
    model: type[pydantic.BaseModel], names: tuple[str, ...], discriminator: str, where: str
) -> type[pydantic.BaseModel]:
    """``model`` with the discriminator and ``ref`` fields it does not declare itself."""
    if REF in model.model_fields:
        raise ConfigurationError(
            f"{where}: {model.__name__} declares {REF!r}, the field triows reads as the "
            "correlation id of a request; rename it"
        )
    fields: dict[str, Any] = {REF: (Ref | None, pydantic.Field(None, alias=REF, exclude=True))}
    declared = model.model_fields.get(discriminator)
    if declared is None or (len(names) == 1 and len(typing.get_args(declared.annotation)) > 1):
        # Undeclared, or one event of several the model's Literal allows: this handler's only.
        fields[discriminator] = (
            Literal[names],
            pydantic.Field(alias=discriminator, exclude=declared is None),
        )
    try:
        return pydantic.create_model(
            model.__name__, __base__=model, __module__=model.__module__, **fields
        )
    except (pydantic.PydanticUserError, TypeError, ValueError) as exc:
        raise ConfigurationError(f"{where}: invalid model {model.__name__} ({exc})") from exc


class EventLoop:
    """The driver of an event route: accept, run the route's function once, dispatch messages.

    Args:
        fn: The route's function.
        events: Its events.
        discriminator: The field that names a message's event.
        connect: The connect hook (default: accept).
        on_invalid: ``"close"`` or ``"reply"`` after a message fails validation.
        owner: The route, for messages.

    Raises:
        ConfigurationError: pydantic cannot build the union of the events' models.
    """

    __slots__ = ("adapter", "connect", "events", "fn", "on_invalid", "validate")

    def __init__(
        self,
        fn: Callable[..., Awaitable[Any]],
        events: Sequence[Event],
        discriminator: str,
        connect: Callable[[Any, WebSocket, Mapping[str, Any]], Awaitable[Any]] | None,
        on_invalid: str,
        owner: str,
    ) -> None:
        self.fn = fn
        self.events = tuple(events)
        self.connect = connect
        self.on_invalid = on_invalid
        wires = [event.wire for event in events]
        target: Any = wires[0]
        if len(wires) > 1:
            target = Annotated[Union[tuple(wires)], pydantic.Field(discriminator=discriminator)]  # noqa: UP007
        try:
            self.adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(target)
        except (pydantic.PydanticUserError, TypeError, ValueError) as exc:
            raise ConfigurationError(f"{owner}: its events cannot be told apart ({exc})") from exc
        self.validate = self.adapter.validate_json

    def __call__(
        self, websocket: WebSocket, instance: Any, arguments: Mapping[str, Any]
    ) -> Awaitable[None]:
        """Open the connection, run the route's function, then dispatch until it ends."""
        return self._run(websocket, instance, arguments)

    async def _run(self, websocket: WebSocket, instance: Any, arguments: Mapping[str, Any]) -> None:
        if not await open_connection(websocket, instance, arguments, self.connect):
            return
        await self.fn(instance, **arguments)
        # Per connection, once: each event's handler with the handshake values it takes.
        calls = {
            event.wire: (event.handler, {name: arguments[name] for name in event.takes})
            for event in self.events
        }
        receive = websocket.receive
        validate = self.validate
        send_text = websocket.send_text
        while True:
            message = await receive()
            if message["type"] != "websocket.receive":
                return  # websocket.disconnect: the peer left
            payload = json_payload(message)
            try:
                value = validate(payload)
            except pydantic.ValidationError as exc:
                await self._invalid(websocket, exc, payload)
                continue
            handler, kwargs = calls[type(value)]
            result = await handler(instance, value, **kwargs)
            ref = value.ref
            if ref is not None:
                await send_text(_reply(ref, result))
            elif result is not None:
                await send_text(pydantic_core.to_json(result).decode())

    async def _invalid(
        self, websocket: WebSocket, exc: pydantic.ValidationError, payload: str | bytes
    ) -> None:
        frame = error_frame(exc)
        errors = frame["errors"]
        if errors and errors[0]["type"] == "json_invalid":
            raise _invalid_json(errors[0]) from None
        ref = _ref_of(payload)
        if ref is not None:
            frame = {REF: ref, "ok": False, **frame}
        await websocket.send_text(pydantic_core.to_json(frame).decode())
        if self.on_invalid == "close":
            raise InvalidMessage from None


_REF_ADAPTER: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(Ref)


def _ref_of(payload: str | bytes) -> str | int | None:
    """The usable correlation id of a message that failed validation, if it has one."""
    try:
        data = pydantic_core.from_json(payload)
    except ValueError:
        return None
    if not isinstance(data, dict) or REF not in data:
        return None
    try:
        ref: str | int = _REF_ADAPTER.validate_python(data[REF])
    except pydantic.ValidationError:
        return None
    return ref


def _reply(ref: str | int, result: Any) -> str:
    """The reply frame to a request with a correlation id: ``{"ref", "ok", "data"}``."""
    data = pydantic_core.to_json(result).decode()
    return f'{{"{REF}":{pydantic_core.to_json(ref).decode()},"ok":true,"data":{data}}}'
