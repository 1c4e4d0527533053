"""Channels: topics that connections join, publish to, and see each other in.

``App.channels`` (injectable as ``channels: Channels``) joins connections to topics, fans each
published message out to every member through their outboxes, keeps presence and, for the
topics ``CHANNELS_HISTORY`` names, a history a reconnecting client catches up from. The backend
is ``CHANNELS_URL``'s: ``memory://`` in one process, ``redis://`` across workers and hosts.
"""

from __future__ import annotations

from ._backend import ChannelsUnavailable
from ._frames import Gap, PresenceDiff, PresenceState, TopicMessage
from ._service import Channels, Joining, Membership

__all__ = [
    "Channels",
    "ChannelsUnavailable",
    "Gap",
    "Joining",
    "Membership",
    "PresenceDiff",
    "PresenceState",
    "TopicMessage",
]
