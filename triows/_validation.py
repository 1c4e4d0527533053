"""pydantic's validation errors as the JSON a client is sent, bounded in size.

One shape for both answers triows gives a client whose data failed validation: the HTTP 422
``{"detail": [...]}`` and the websocket error frame ``{"code": 1008, "errors": [...]}``. Each
error is pydantic's (``type``, ``loc``, ``msg``, ``input``, ``ctx``; no ``url``), located by the
caller, and bounded so that a big bad message cannot make a big answer:

- at most :data:`MAX_ERRORS` errors are listed (the rest are counted, not shown);
- the ``input`` values echoed back add up to at most :data:`INPUT_BUDGET` bytes of JSON; an
  error whose input would go past that is listed without its ``input``;
- a ``loc`` part (a key the client chose) longer than :data:`MAX_LOC_PART` characters is cut.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pydantic
import pydantic_core

__all__ = ["INPUT_BUDGET", "MAX_ERRORS", "MAX_LOC_PART", "client_errors"]

#: Errors listed at most.
MAX_ERRORS = 32
#: Bytes of the client's input echoed back at most, over all errors.
INPUT_BUDGET = 4096
#: Characters of one ``loc`` part kept at most.
MAX_LOC_PART = 64

Error = dict[str, Any]


def client_errors(
    exc: pydantic.ValidationError, locate: Callable[[Error], None]
) -> tuple[list[Error], int]:
    """The errors of ``exc`` for a client, and how many more were left out.

    Args:
        exc: What pydantic raised.
        locate: Rewrites one error's ``loc`` (and anything else) in place, for the caller's
            sources; called before the bounds are applied.
    """
    raw = exc.errors(include_url=False)
    shown: list[Error] = []
    budget = INPUT_BUDGET
    for details in raw[:MAX_ERRORS]:
        error: Error = dict(details)
        ctx = error.get("ctx")
        if ctx is not None:  # may hold exceptions (a validator's ValueError): their text
            error["ctx"] = {k: v if _is_json(v) else str(v) for k, v in ctx.items()}
        locate(error)
        error["loc"] = [_cut(part) for part in error["loc"]]
        if "input" in error:
            size = _json_size(error["input"])
            if size is None or size > budget:
                del error["input"]
            else:
                budget -= size
        shown.append(error)
    return shown, max(0, len(raw) - MAX_ERRORS)


def _cut(part: Any) -> Any:
    if isinstance(part, str) and len(part) > MAX_LOC_PART:
        return part[:MAX_LOC_PART] + "…"
    return part


def _is_json(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool, list, dict))


def _json_size(value: Any) -> int | None:
    """The size of ``value`` as JSON, or ``None`` if it has none (bytes that are not UTF-8)."""
    try:
        return len(pydantic_core.to_json(value))
    except (pydantic_core.PydanticSerializationError, ValueError):
        return None
