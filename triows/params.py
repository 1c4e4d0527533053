"""Handler parameters: markers, and the per-route resolver compiled once at app build time.

How it works: when the app is built, :func:`read_parameters` reads the handler's signature and
sorts each parameter into a source — the connection object, the execution context, an injected
service, or a value to validate (query, path, header, cookie, body): the route model's
:class:`~triows.routes.Parameter` entries. :class:`CallPlan` compiles those into a resolver:
the values to validate become the fields of one pydantic model per route. Per call, the plan
gathers the raw values into a dict and validates it in one ``model_validate``; a failure becomes a
:class:`RequestValidationError` (HTTP 422 with pydantic's errors, located like
``["query", "b"]``), which refuses a websocket handshake before the upgrade.

Sources of an unmarked parameter: a path parameter of the same name; else an injectable type
(``@injectable`` or listed in providers) is injected; else a pydantic model is the body (HTTP
only); else it is a query parameter (lists collect repeated keys).
"""

from __future__ import annotations

import datetime
import decimal
import enum
import inspect
import types
import typing
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, Union

import pydantic
import pydantic_core

from ._validation import client_errors
from .context import ExecutionContext
from .controllers import describe
from .errors import ConfigurationError, HTTPException
from .requests import HTTPConnection, Request
from .routes import REQUIRED, VALIDATED
from .routes import Parameter as RouteParameter
from .websocket import WebSocket

if TYPE_CHECKING:
    from .di import Container, Plan

__all__ = [
    "Body",
    "CallPlan",
    "Cookie",
    "Header",
    "Inject",
    "Param",
    "Path",
    "Query",
    "RequestValidationError",
    "WsBody",
    "read_parameters",
]

T = TypeVar("T")
_EMPTY: Mapping[str, Any] = {}


class Param:
    """A parameter marker: where a handler parameter's value comes from, and its constraints.

    Made by :func:`Query`, :func:`Path`, :func:`Header`, :func:`Cookie`, :func:`Body` and
    :func:`WsBody`; used as a default (``name: str = Query("John")``) or inside ``Annotated``.
    """

    __slots__ = ("alias", "constraints", "default", "embed", "source")

    def __init__(
        self,
        source: str,
        default: Any,
        *,
        alias: str | None = None,
        embed: bool = False,
        constraints: Mapping[str, Any] | None = None,
    ) -> None:
        self.source = source
        self.default = default
        self.alias = alias
        self.embed = embed
        self.constraints = dict(constraints or {})

    def __repr__(self) -> str:
        return f"{self.source.title()}({self.default!r})"


def Query(
    default: Any = ..., *, alias: str | None = None, **constraints: Any
) -> Any:  # Ellar's spelling
    """A query-string parameter (``?name=...``); pydantic constraints (``ge=``, ``pattern=``…)."""
    return Param("query", default, alias=alias, constraints=constraints)


def Path(default: Any = ..., *, alias: str | None = None, **constraints: Any) -> Any:
    """A path parameter, with extra pydantic constraints."""
    return Param("path", default, alias=alias, constraints=constraints)


def Header(default: Any = ..., *, alias: str | None = None, **constraints: Any) -> Any:
    """A request header; ``user_agent`` reads ``user-agent`` unless ``alias`` says otherwise."""
    return Param("header", default, alias=alias, constraints=constraints)


def Cookie(default: Any = ..., *, alias: str | None = None, **constraints: Any) -> Any:
    """A cookie."""
    return Param("cookie", default, alias=alias, constraints=constraints)


def Body(
    default: Any = ..., *, alias: str | None = None, embed: bool = False, **constraints: Any
) -> Any:
    """The JSON request body (HTTP routes only).

    With several ``Body`` parameters, or ``embed=True``, the body is an object keyed by
    parameter name (or alias).
    """
    return Param("body", default, alias=alias, embed=embed, constraints=constraints)


def WsBody(
    default: Any = ..., *, alias: str | None = None, embed: bool = False, **constraints: Any
) -> Any:
    """A websocket message, validated (routes with ``use_extra_handler=True`` only)."""
    return Param("ws_body", default, alias=alias, embed=embed, constraints=constraints)


class _InjectMarker:
    def __repr__(self) -> str:
        return "Inject"


_INJECT = _InjectMarker()

#: ``service: Inject[Service]`` asks dependency injection for a ``Service``.
Inject = Annotated[T, _INJECT]


class RequestValidationError(HTTPException):
    """Handler parameters failed validation: HTTP 422 with pydantic's errors as ``detail``.

    For a websocket handshake this refuses the connection before the upgrade, with the same
    status and body.
    """

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(422, errors)
        self.errors = errors


_SCALARS: tuple[type, ...] = (
    str,
    int,
    float,
    bool,
    bytes,
    decimal.Decimal,
    uuid.UUID,
    datetime.date,
    datetime.time,
    datetime.timedelta,
    enum.Enum,
)
_SEQUENCES = (list, set, frozenset, tuple, Sequence, Collection)


def _is_scalar(annotation: Any) -> bool:
    if annotation is Any or annotation is inspect.Parameter.empty:
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return True
    if origin in (Union, types.UnionType):
        return all(_is_scalar(a) or a is type(None) for a in typing.get_args(annotation))
    return inspect.isclass(annotation) and issubclass(annotation, _SCALARS)


def _is_sequence(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        return any(_is_sequence(a) for a in typing.get_args(annotation))
    return origin in _SEQUENCES or annotation in (list, set, tuple)


def _is_model(annotation: Any) -> bool:
    """A pydantic model, or an optional one (``Item | None``)."""
    if typing.get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return len(args) == 1 and _is_model(args[0])
    return inspect.isclass(annotation) and issubclass(annotation, pydantic.BaseModel)


def _split(annotation: Any) -> tuple[Any, list[Any]]:
    """``Annotated[T, a, b]`` → ``(T, [a, b])``; anything else → ``(annotation, [])``."""
    if typing.get_origin(annotation) is Annotated:
        base, *extras = typing.get_args(annotation)
        return base, extras
    return annotation, []


def read_parameters(
    fn: Callable[..., Any],
    kind: str,
    path_params: Collection[str],
    container: Container,
    *,
    extra_handler: bool = False,
) -> tuple[RouteParameter, ...]:
    """Sort each parameter of a handler into its source: the route model's parameters.

    Args:
        fn: The handler (its first parameter is the controller instance).
        kind: ``"http"`` or ``"websocket"``.
        path_params: Names of the route's path parameters.
        container: The app's dependency-injection container (what it can inject).
        extra_handler: The route has ``use_extra_handler=True`` (``WsBody`` allowed).

    Raises:
        ConfigurationError: A parameter cannot be served, naming the handler and parameter.
    """
    owner = describe(fn)
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception as exc:
        raise ConfigurationError(f"{owner}: cannot read its annotations ({exc})") from exc
    parameters = list(inspect.signature(fn).parameters.values())[1:]
    return tuple(
        _read_parameter(p, hints, owner, kind, path_params, container, extra_handler)
        for p in parameters
    )


def _read_parameter(
    parameter: inspect.Parameter,
    hints: Mapping[str, Any],
    owner: str,
    kind: str,
    path_params: Collection[str],
    container: Container,
    extra_handler: bool,
) -> RouteParameter:
    name = parameter.name
    where = f"{owner}: parameter {name!r}"
    if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
        raise ConfigurationError(f"{where}: *args/**kwargs parameters cannot be filled")
    annotation, extras = _split(hints.get(name, Any))
    # Other Annotated metadata (pydantic Field, validators) stays on the validated type.
    metadata = [e for e in extras if not isinstance(e, (Param, _InjectMarker))]
    arguments = (annotation, *metadata)
    field_type: Any = Annotated[arguments] if metadata else annotation
    marker: Param | _InjectMarker | None = next(
        (e for e in extras if isinstance(e, (Param, _InjectMarker))), None
    )
    default = parameter.default
    if isinstance(default, Param):
        marker, default = default, default.default
    elif isinstance(marker, Param) and default is parameter.empty:
        default = marker.default
    if default is parameter.empty:
        default = REQUIRED

    if inspect.isclass(annotation) and issubclass(annotation, HTTPConnection):
        connection_type = WebSocket if kind == "websocket" else Request
        if not issubclass(connection_type, annotation):
            raise ConfigurationError(
                f"{where} is a {annotation.__name__}, but this is a {kind} route"
            )
        return RouteParameter(name, "connection", name, annotation)
    if annotation is ExecutionContext:
        return RouteParameter(name, "context", name, annotation)
    if marker is _INJECT or (marker is None and container.knows(annotation)):
        if not inspect.isclass(annotation):
            raise ConfigurationError(f"{where}: Inject[...] needs a class")
        return RouteParameter(name, "inject", annotation.__name__, annotation)

    source = _source_of(marker, name, annotation, kind, path_params, where)
    marker = marker if isinstance(marker, Param) else Param(source, default)
    if source == "body" and kind == "websocket":
        raise ConfigurationError(
            f"{where}: Body() is for HTTP routes; websocket messages use WsBody() with "
            "use_extra_handler=True"
        )
    if source == "ws_body" and not (kind == "websocket" and extra_handler):
        raise ConfigurationError(f"{where}: WsBody() needs @ws_route(..., use_extra_handler=True)")
    if source == "path" and name not in path_params and marker.alias not in path_params:
        raise ConfigurationError(f"{where}: the route's path has no {{{name}}}")
    key = marker.alias or (name.replace("_", "-") if source == "header" else name)
    if source == "header":
        key = key.lower()
    return RouteParameter(
        name,
        source,  # type: ignore[arg-type]
        key,
        field_type,
        default,
        MappingProxyType(dict(marker.constraints)),
        many=source in ("query", "header") and _is_sequence(annotation),
        embed=marker.embed,
    )


def _source_of(
    marker: Param | _InjectMarker | None,
    name: str,
    annotation: Any,
    kind: str,
    path_params: Collection[str],
    where: str,
) -> str:
    """The source of a parameter to validate: its marker's, or the one its type implies."""
    if isinstance(marker, Param):
        return marker.source
    if name in path_params:
        return "path"
    if _is_model(annotation):
        if kind == "websocket":
            raise ConfigurationError(
                f"{where}: a model on a websocket route is a message: use WsBody() "
                "with use_extra_handler=True"
            )
        return "body"
    if _is_scalar(annotation) or _is_sequence(annotation):
        return "query"
    raise ConfigurationError(
        f"{where} has no source: mark it Query/Path/Header/Cookie/Body, or make "
        f"{getattr(annotation, '__name__', annotation)} @injectable"
    )


class CallPlan:
    """How a handler's handshake (or request) parameters are resolved, compiled once.

    The values to validate become the fields of one pydantic model; per call, the plan gathers
    the raw values into a dict and validates it in one pass.

    Args:
        parameters: The handler's parameters, from the route model (``ws_body`` ones are the
            message loop's, and skipped here).
        container: The app's dependency-injection container.
        owner: The handler, for error messages.

    Raises:
        ConfigurationError: A service cannot be injected, or the parameters make no model.
    """

    def __init__(
        self, parameters: Sequence[RouteParameter], container: Container, owner: str
    ) -> None:
        self.owner = owner
        self._connection = [p.name for p in parameters if p.source == "connection"]
        self._context = [p.name for p in parameters if p.source == "context"]
        self._injected: list[tuple[str, Plan]] = [
            (p.name, container.plan(p.annotation, needed_by=owner))
            for p in parameters
            if p.source == "inject"
        ]
        validated = [p for p in parameters if p.source in VALIDATED]
        # (parameter name, source, key to look up, collects a list)
        self._fields = [(p.name, p.source, p.key, p.many) for p in validated if p.source != "body"]
        self._body_fields = [(p.name, p.key) for p in validated if p.source == "body"]
        self._embed_body = len(self._body_fields) > 1 or any(
            p.embed for p in validated if p.source == "body"
        )
        self._sources = {p.name: (p.source, p.key) for p in validated}
        # Internal field names cannot shadow BaseModel attributes (a query "json"...).
        self._field_names = [(f"p{index}", p.name) for index, p in enumerate(validated)]
        self._model: type[pydantic.BaseModel] | None = None
        if validated:
            fields: dict[str, Any] = {
                f"p{index}": (
                    p.annotation,
                    pydantic.Field(p.default, validation_alias=p.name, **p.constraints),
                )
                for index, p in enumerate(validated)
            }
            try:
                self._model = pydantic.create_model(
                    f"{owner}.params",
                    __config__=pydantic.ConfigDict(arbitrary_types_allowed=True),
                    **fields,
                )
            except (pydantic.PydanticUserError, TypeError, ValueError) as exc:
                raise ConfigurationError(f"{owner}: invalid parameters ({exc})") from exc
            # The model's validator itself, without model_validate's keyword handling.
            self._validate = self._model.__pydantic_validator__.validate_python
        self.empty = not (self._connection or self._context or self._injected or validated)

    async def resolve(
        self,
        connection: HTTPConnection,
        context: ExecutionContext,
        request_cache: dict[type, Any],
    ) -> Mapping[str, Any]:
        """The keyword arguments for one call.

        Raises:
            RequestValidationError: A value is missing or invalid.
        """
        if self.empty:
            return _EMPTY
        values: dict[str, Any] = {}
        if self._model is not None:
            data = self._gather(connection)
            if self._body_fields:
                assert isinstance(connection, Request)
                await self._gather_body(connection, data)
            try:
                validated = self._validate(data)
            except pydantic.ValidationError as exc:
                raise RequestValidationError(self._errors(exc)) from None
            fields = validated.__dict__
            for field, name in self._field_names:
                values[name] = fields[field]
        for name, plan in self._injected:
            values[name] = plan.build(request_cache)
        for name in self._connection:
            values[name] = connection
        for name in self._context:
            values[name] = context
        return values

    def _gather(self, connection: HTTPConnection) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for name, source, key, many in self._fields:
            value: Any
            if source == "query":
                query = connection.query_params
                value = query.getlist(key) if many else query.get(key)
                if many and not value:
                    value = None
            elif source == "path":
                value = connection.path_params.get(key)
            elif source == "header":
                headers = connection.headers
                value = headers.getlist(key) if many else headers.get(key)
                if many and not value:
                    value = None
            else:
                value = connection.cookies.get(key)
            if value is not None:
                data[name] = value
        return data

    async def _gather_body(self, request: Request, data: dict[str, Any]) -> None:
        raw = await request.body()
        if not raw:
            return
        try:
            body = pydantic_core.from_json(raw)
        except ValueError as exc:
            error = {
                "type": "json_invalid",
                "loc": ["body"],
                "msg": f"Invalid JSON: {exc}",
                "input": raw.decode("utf-8", "replace"),
            }
            raise RequestValidationError([error]) from None
        if not self._embed_body:
            data[self._body_fields[0][0]] = body
            return
        if not isinstance(body, dict):
            error = {
                "type": "dict_type",
                "loc": ["body"],
                "msg": "Input should be an object",
                "input": body,
            }
            raise RequestValidationError([error])
        for name, key in self._body_fields:
            if key in body:
                data[name] = body[key]

    def _errors(self, exc: pydantic.ValidationError) -> list[dict[str, Any]]:
        errors, _ = client_errors(exc, self._locate)
        return errors

    def _locate(self, error: dict[str, Any]) -> None:
        if error["type"] == "missing":
            error["input"] = None  # not the dict of everything else that was gathered
        name, *rest = error["loc"]
        source, key = self._sources.get(name, ("query", name))
        if source == "body" and not self._embed_body:
            error["loc"] = ["body", *rest]
        else:
            error["loc"] = [source, key, *rest]
