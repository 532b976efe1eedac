"""The exceptions of the broadcast hub, under shallot's own tree::

    ShallotError
     └── BroadcastError          the hub cannot do what was asked (it is closed, say)
          ├── BrokerUnavailable  the broker cannot be reached: publishing during an outage
          └── SlowSubscriber     a ``disconnect``-policy subscriber overflowed its buffer

Broker outages reach subscribers as a ``Gap`` item, not as an exception (see ``Gap``).
"""

from __future__ import annotations

from .._errors import ShallotError


class BroadcastError(ShallotError):
    """The hub cannot do what was asked: it is closed, or the subscription was left."""


class BrokerUnavailable(BroadcastError):
    """The broker (Redis / Valkey) cannot be reached.

    Raised by ``publish`` while the connection is down (the message was not published; the hub
    keeps reconnecting in the background, so a later ``publish`` may succeed), and when the
    broker did not answer within ``connect_timeout``: the message was sent then, and the
    broker may still deliver it (the error's message says so), so publishing it again may
    deliver it twice.
    """


class SlowSubscriber(BroadcastError):
    """A subscription with the ``disconnect`` policy fell ``max_buffer`` messages behind: the
    hub dropped it, and reading it raises this. ``dropped`` counts what it lost."""

    def __init__(self, channel: str, dropped: int) -> None:
        super().__init__(f"subscriber of {channel!r} fell too far behind ({dropped} dropped)")
        self.channel = channel
        self.dropped = dropped
