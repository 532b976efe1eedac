"""Presence, without I/O: who is in a channel, and the join and leave items.

A subscription entered with ``member="ada"`` (and ``info``, a JSON-able dict the app sets) is
*present* in its channel while it is entered: ``await hub.presence(channel)`` lists it, under a
``client`` name unique to that subscription (one member may be present twice: two browser
tabs). Subscriptions entered with ``join_leave=True`` also get a ``Joined`` item when a member
enters and a ``Left`` item when one leaves, in their iteration among the messages. The brokers
keep the roster: in memory a dict per channel (``Roster``), with Redis a hash and a sorted set of
expiry times per channel (``_roster_redis``), so that a process that dies without saying
goodbye drops out within ``presence_ttl`` seconds.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any, NamedTuple


class Member(NamedTuple):
    """One present subscription: its ``client`` name (unique), the ``member`` id the app gave,
    and the ``info`` it set."""

    client: str
    member: str
    info: dict[str, Any]

    def to_json(self) -> str:
        return json.dumps([self.client, self.member, self.info], separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> Member:
        client, member, info = json.loads(text)
        return cls(str(client), str(member), dict(info))


class Joined:
    """Yielded by a ``join_leave`` subscription when ``member`` entered the channel."""

    __slots__ = ("member",)

    def __init__(self, member: Member) -> None:
        self.member = member

    def __repr__(self) -> str:
        return f"Joined({self.member!r})"


class Left:
    """Yielded by a ``join_leave`` subscription when ``member`` left the channel (or its
    process stopped answering and its entry expired)."""

    __slots__ = ("member",)

    def __init__(self, member: Member) -> None:
        self.member = member

    def __repr__(self) -> str:
        return f"Left({self.member!r})"


def new_member(member: object, info: object) -> Member:
    """Returns the presence entry of a new subscription.

    Raises:
        TypeError: ``member`` is not a non-empty str, or ``info`` not a JSON-able mapping.
    """
    if not isinstance(member, str) or not member or len(member) > 256:
        raise TypeError(f"member is a non-empty str of at most 256 characters, not {member!r}")
    if info is None:
        info = {}
    if not isinstance(info, Mapping):
        raise TypeError(f"info is a mapping (JSON-able), not {type(info).__name__}")
    try:
        copied = json.loads(json.dumps(dict(info)))
    except (TypeError, ValueError) as error:
        raise TypeError(f"info must be JSON-able: {error}") from None
    return Member(uuid.uuid4().hex, member, copied)


def event_to_json(event: Joined | Left) -> str:
    kind = "j" if isinstance(event, Joined) else "l"
    return kind + event.member.to_json()


def event_from_json(text: str | bytes) -> Joined | Left:
    """Raises ValueError on anything else."""
    raw = text.decode() if isinstance(text, bytes) else text
    member = Member.from_json(raw[1:])
    if raw[:1] == "j":
        return Joined(member)
    if raw[:1] == "l":
        return Left(member)
    raise ValueError(f"not a presence event: {raw[:20]!r}")


class Roster:
    """The in-memory presence of every channel of one process."""

    def __init__(self) -> None:
        self._channels: dict[str, dict[str, Member]] = {}

    def join(self, channel: str, member: Member) -> None:
        self._channels.setdefault(channel, {})[member.client] = member

    def leave(self, channel: str, member: Member) -> bool:
        """Returns whether it was present."""
        found = self._channels.get(channel)
        if found is None or found.pop(member.client, None) is None:
            return False
        if not found:
            del self._channels[channel]
        return True

    def members(self, channel: str) -> dict[str, Member]:
        return dict(self._channels.get(channel, {}))
