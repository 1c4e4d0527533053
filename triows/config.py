"""App configuration: a mapping with typed, documented well-known keys."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from .errors import ConfigurationError

__all__ = ["Config"]

#: Well-known keys, their defaults and types.
DEFAULTS: dict[str, Any] = {
    #: 500 pages carry the traceback; 1011 close reasons name the exception.
    "DEBUG": False,
    #: An HTTP path that matches nothing is redirected (307) to its slash twin if that exists.
    "REDIRECT_SLASHES": False,
}


class Config(Mapping[str, Any]):
    """Settings, read as ``config["DEBUG"]`` or ``config.DEBUG``.

    Args:
        source: A mapping, or any object whose UPPER_CASE attributes are settings (a class or
            module, as Ellar's ``config_module``). Unknown keys are kept for the app's own use.

    Raises:
        ConfigurationError: A well-known key has a value of the wrong type.
    """

    def __init__(self, source: Mapping[str, Any] | object | None = None) -> None:
        values = dict(DEFAULTS)
        if isinstance(source, Mapping):
            values.update(source)
        elif source is not None:
            values.update({k: getattr(source, k) for k in dir(source) if k.isupper()})
        for key, default in DEFAULTS.items():
            if not isinstance(values[key], type(default)):
                raise ConfigurationError(
                    f"config {key} must be {type(default).__name__}, got {values[key]!r}"
                )
        self._values = values

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __getattr__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(key) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Config({self._values!r})"
