"""The counters a hub reports (``hub.statistics()``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HubStatistics:
    """Counters of one hub (this process only), from ``hub.statistics()``."""

    #: channels with at least one subscriber here, and their subscriptions
    channels: int
    subscribers: int
    #: messages this process published
    published: int
    #: messages handed to subscriptions here (one per subscriber)
    delivered: int
    #: messages subscribers lost to their overflow policy
    dropped: int
    #: subscriptions dropped by the ``disconnect`` policy
    disconnected: int
    #: broker outages seen (each sent a ``Gap`` to every subscriber)
    gaps: int
    #: whether the broker is connected now
    connected: bool
