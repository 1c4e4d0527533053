"""Small read-only views over ASGI scope data: headers, query parameters, URL, client address."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlsplit

__all__ = ["URL", "Address", "Headers", "QueryParams", "State", "parse_cookies"]


class Address(NamedTuple):
    """A peer's host and port, as the server reported them."""

    host: str
    port: int


class _MultiMapping(Mapping[str, str]):
    """A read-only mapping that keeps every value of repeated keys (``getlist``)."""

    __slots__ = ("_dict", "_items")

    def __init__(self, items: Sequence[tuple[str, str]]) -> None:
        self._items = list(items)
        # Last value wins for plain lookups, as browsers and most frameworks do.
        self._dict = dict(self._items)

    def getlist(self, key: str) -> list[str]:
        """Every value for ``key``, in order."""
        return [v for k, v in self._items if k == key]

    def multi_items(self) -> list[tuple[str, str]]:
        """All ``(key, value)`` pairs, repeated keys included."""
        return list(self._items)

    def __getitem__(self, key: str) -> str:
        return self._dict[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict)

    def __len__(self) -> int:
        return len(self._dict)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._items!r})"


class QueryParams(_MultiMapping):
    """Query-string parameters; ``params["a"]`` is the last ``a``, ``getlist("a")`` all of them."""

    __slots__ = ()

    @classmethod
    def from_bytes(cls, query_string: bytes) -> QueryParams:
        """Parse a raw ASGI ``query_string`` (blank values kept, ``+`` and ``%xx`` decoded)."""
        text = query_string.decode("latin-1")
        if "%" in text or "+" in text or ";" in text:
            return cls(parse_qsl(text, keep_blank_values=True))
        # The common case needs no unquoting: a plain split gives what parse_qsl would.
        pairs = []
        for part in text.split("&"):
            if part:
                name, _, value = part.partition("=")
                pairs.append((name, value))
        return cls(pairs)


class Headers(Mapping[str, str]):
    """Request headers with case-insensitive keys (``get``, ``getlist``; iterated lower-case).

    A view over ASGI's raw ``(name, value)`` byte pairs, whose names servers send lower-case
    (the ASGI spec asks them to). A lookup scans the pairs, which for the dozen headers of a
    handshake is cheaper than building a dict that most connections never use; iterating
    builds the decoded pairs once. Repeated headers: the last one wins, ``getlist`` has all.
    """

    __slots__ = ("_decoded", "_raw")

    def __init__(self, raw: Sequence[tuple[bytes, bytes]]) -> None:
        self._raw = raw
        self._decoded: dict[str, str] | None = None

    @classmethod
    def from_raw(cls, raw: Sequence[tuple[bytes, bytes]]) -> Headers:
        """Build from ASGI's list of ``(name, value)`` byte pairs."""
        return cls(raw)

    def _find(self, key: str) -> bytes | None:
        needle = key.lower().encode("latin-1")
        found = None
        for name, value in self._raw:
            if name == needle:
                found = value
        return found

    def get(self, key: str, default: Any = None) -> Any:
        """The last value of header ``key``, or ``default``."""
        found = self._find(key)
        return default if found is None else found.decode("latin-1")

    def __getitem__(self, key: str) -> str:
        found = self._find(key)
        if found is None:
            raise KeyError(key)
        return found.decode("latin-1")

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._find(key) is not None

    def getlist(self, key: str) -> list[str]:
        """Every value of header ``key`` (case-insensitive), in order."""
        needle = key.lower().encode("latin-1")
        return [v.decode("latin-1") for k, v in self._raw if k == needle]

    def multi_items(self) -> list[tuple[str, str]]:
        """All ``(name, value)`` pairs, repeated names included, names lower-case."""
        return [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in self._raw]

    def _mapping(self) -> dict[str, str]:
        if self._decoded is None:
            self._decoded = dict(self.multi_items())
        return self._decoded

    def __iter__(self) -> Iterator[str]:
        return iter(self._mapping())

    def __len__(self) -> int:
        return len(self._mapping())

    def __repr__(self) -> str:
        return f"Headers({self.multi_items()!r})"


class URL(str):
    """The full request URL as a string, with its parts as attributes."""

    __slots__ = ()

    @classmethod
    def from_scope(cls, scope: Mapping[str, Any]) -> URL:
        """Rebuild the URL the client asked for from an ASGI scope."""
        scheme = scope.get("scheme", "http")
        server = scope.get("server")
        path = scope.get("root_path", "") + scope["path"]
        host = None
        for key, value in scope["headers"]:
            if key == b"host":
                host = value.decode("latin-1")
                break
        if host is None:
            if server is None:
                host = "localhost"
            else:
                name, port = server
                default = {"http": 80, "ws": 80, "https": 443, "wss": 443}.get(scheme)
                host = name if port == default else f"{name}:{port}"
        query = scope.get("query_string", b"")
        url = f"{scheme}://{host}{path}"
        if query:
            url += "?" + query.decode("latin-1")
        return cls(url)

    @property
    def scheme(self) -> str:
        """``http``, ``https``, ``ws`` or ``wss``."""
        return urlsplit(self).scheme

    @property
    def netloc(self) -> str:
        """Host and port as the client sent them."""
        return urlsplit(self).netloc

    @property
    def path(self) -> str:
        """The path, without the query string."""
        return urlsplit(self).path

    @property
    def query(self) -> str:
        """The raw query string (no ``?``)."""
        return urlsplit(self).query

    @property
    def fragment(self) -> str:
        """The fragment (no ``#``); servers never see one, but a URL built by hand may."""
        return urlsplit(self).fragment

    @property
    def hostname(self) -> str | None:
        """The host, lower-cased, without the port."""
        return urlsplit(self).hostname

    @property
    def port(self) -> int | None:
        """The port, if the URL names one (``None`` for the scheme's default)."""
        return urlsplit(self).port

    @property
    def is_secure(self) -> bool:
        """Whether the scheme is ``https`` or ``wss``."""
        return self.scheme in ("https", "wss")


class State:
    """An attribute bag (``websocket.state.user = ...``) for per-connection or per-app data."""

    def __init__(self, initial: Mapping[str, Any] | None = None) -> None:
        if initial:
            self.__dict__.update(initial)

    def __repr__(self) -> str:
        return f"State({self.__dict__!r})"


def parse_cookies(header: str) -> dict[str, str]:
    """Parse a ``Cookie`` header into a dict, as browsers send it.

    Tolerant on purpose: a malformed pair is skipped, never fatal, and a value wrapped in double
    quotes is unwrapped.
    """
    result: dict[str, str] = {}
    for chunk in header.split(";"):
        key, sep, value = chunk.partition("=")
        key = key.strip()
        if not sep or not key:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        result[key] = value
    return result
