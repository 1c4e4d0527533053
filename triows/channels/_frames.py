"""The frames the channels service sends, as models: to declare them in ``@ws_route(sends=...)``.

triows writes these frames itself (``_hub.py``, ``_service.py``); the models describe them for
the AsyncAPI document and for clients, and :class:`TopicMessage` is the base of the models an
app publishes, whose frames carry the message id on topics that keep history.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import pydantic

__all__ = ["Gap", "PresenceDiff", "PresenceState", "TopicMessage"]


class TopicMessage(pydantic.BaseModel):
    """The base of a model an app publishes on a topic (``channels.publish(topic, model)``).

    On a topic that keeps history, triows puts the message's id first in its frame as ``"id"``
    (``"EPOCH:OFFSET"``, the value a reconnecting client passes back as ``since``); the AsyncAPI
    document shows that field. So a subclass cannot declare a field ``id`` of its own.
    """

    #: The frame's field that carries the message id (added by triows, not a model field).
    id_field: ClassVar[str] = "id"

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if cls.id_field in cls.model_fields:
            raise TypeError(
                f"{cls.__name__} declares {cls.id_field!r}, which triows adds to the frame of a "
                "published message (its id, on a topic that keeps history); rename the field"
            )


class PresenceState(pydantic.BaseModel):
    """Who is in the topic: the first frame a connection gets after ``join(presence=...)``."""

    event: Literal["presence_state"] = "presence_state"
    #: The presence keys, sorted (the joining connection's own included).
    members: list[str]
    meta: dict[str, list[Any]] = pydantic.Field(
        default_factory=dict,
        description="Each key's metadata, one entry per connection of that key; present only "
        "when a join gave metadata.",
    )


class PresenceDiff(pydantic.BaseModel):
    """Who came and went since the last frame; a connection is not sent the diff of its own join."""

    event: Literal["presence_diff"] = "presence_diff"
    joins: list[str]
    leaves: list[str]
    meta: dict[str, list[Any]] = pydantic.Field(
        default_factory=dict,
        description="The metadata of the keys that joined; present only when a join gave any.",
    )


class Gap(pydantic.BaseModel):
    """The messages of ``topic`` after ``since`` could not all be given: some are lost."""

    event: Literal["gap"] = "gap"
    topic: str
    since: str | None
