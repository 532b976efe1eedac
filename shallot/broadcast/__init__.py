"""The broadcast hub: publish a message to a channel, and every subscriber of it gets it.

In memory for one process (the default), or through Redis / Valkey for several processes or
hosts (``pip install -e '.[redis]'``). Each subscriber has a bounded buffer with an overflow
policy; a ``Gap`` marks where messages may be missing after the broker connection dropped. See
docs/broadcast.md::

    async with open_hub() as hub:                    # or build_server(lifespan=hub_lifespan())
        async with hub.subscribe("news") as messages:
            await hub.publish("news", "hello")
            assert await messages.receive() == "hello"
"""

from __future__ import annotations

from ._errors import BroadcastError, BrokerUnavailable, SlowSubscriber
from ._history import History, Position, Unrecovered
from ._hub import Hub
from ._open import hub_lifespan, open_hub
from ._presence import Joined, Left, Member
from ._statistics import HubStatistics
from ._subscription import Gap, Subscription

__all__ = [
    "BroadcastError",
    "BrokerUnavailable",
    "Gap",
    "History",
    "Hub",
    "HubStatistics",
    "Joined",
    "Left",
    "Member",
    "Position",
    "SlowSubscriber",
    "Subscription",
    "Unrecovered",
    "hub_lifespan",
    "open_hub",
]
