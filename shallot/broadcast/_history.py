"""Channel history, without I/O: which channels keep one, positions, and the in-memory ring.

A channel with history numbers its messages: each gets the next **offset** (1, 2, ...) within
the channel's **epoch**, a random name that changes whenever the history is lost (the broker
restarted without persistence, the history expired, the process holding it restarted). A
``Position`` is the pair; a subscriber that kept the position of the last message it read can
come back with ``since=position`` and get what it missed, or an ``Unrecovered`` item that says
it cannot. Pure and synchronous: the brokers (``_memory``, ``_streams``) do the storing.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Callable, Mapping
from typing import NamedTuple

from .._checks import positive

#: the most messages a channel may keep (a bigger ring is a configuration mistake)
MAX_HISTORY = 100_000


class History(NamedTuple):
    """How much history a channel keeps: the last ``size`` messages, for at most ``ttl``
    seconds after the channel's last publish (then the whole history expires)."""

    size: int
    ttl: float


class Position(NamedTuple):
    """Where a channel with history is: its ``epoch`` and the ``offset`` of its last message
    (0 before the first). ``subscription.position`` is the position of the last message read."""

    epoch: str
    offset: int


class Published:
    """A message of a channel with history, as buffered: it carries its position."""

    __slots__ = ("epoch", "message", "offset")

    def __init__(self, message: str | bytes, epoch: str, offset: int) -> None:
        self.message = message
        self.epoch = epoch
        self.offset = offset

    def __repr__(self) -> str:
        return f"Published({self.message!r}, {self.epoch!r}, {self.offset})"


class Unrecovered:
    """Yielded by a subscription of a channel with history where messages are missing and
    cannot be recovered: the ``since`` position was older than the history or of another epoch,
    or the history was lost (a broker restart) or trimmed while this process was behind.
    Messages after it follow from ``position`` on; the app reloads its state. ``reason`` says
    what happened."""

    __slots__ = ("position", "reason")

    def __init__(self, reason: str, position: Position) -> None:
        self.reason = reason
        self.position = position

    def __repr__(self) -> str:
        return f"Unrecovered({self.reason!r}, {self.position!r})"


def new_epoch() -> str:
    """Returns a fresh epoch name."""
    return uuid.uuid4().hex[:12]


def check_history(history: object) -> History:
    """Returns ``history`` as a ``History``, checked.

    Raises:
        ValueError: the size is not an int in 1..MAX_HISTORY, or the ttl not positive.
    """
    if not isinstance(history, tuple) or len(history) != 2:
        raise ValueError(f"a channel's history is History(size, ttl), not {history!r}")
    size, ttl = history
    if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= MAX_HISTORY:
        raise ValueError(f"history size must be an int from 1 to {MAX_HISTORY}, not {size!r}")
    positive("history ttl", ttl, unit="seconds")
    return History(size, float(ttl))


def history_rules(
    history: Mapping[str, History] | None,
) -> Callable[[str], History | None]:
    """Returns the function telling a channel's history from ``open_hub(history=...)``: keys
    are channel names, or prefixes ending in ``*`` (the longest matching prefix wins).

    Raises:
        TypeError: ``history`` is not a mapping of str keys.
        ValueError: a key is empty, or a value not a valid ``History``.
    """
    if history is None:
        return lambda channel: None
    if not isinstance(history, Mapping):
        raise TypeError(f"history is a mapping of channel -> History, not {history!r}")
    exact: dict[str, History] = {}
    prefixes: list[tuple[str, History]] = []
    for key, value in history.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"history keys are non-empty str channel names, not {key!r}")
        if key.endswith("*"):
            prefixes.append((key[:-1], check_history(value)))
        else:
            exact[key] = check_history(value)
    prefixes.sort(key=lambda item: -len(item[0]))

    def lookup(channel: str) -> History | None:
        found = exact.get(channel)
        if found is not None:
            return found
        for prefix, value in prefixes:
            if channel.startswith(prefix):
                return value
        return None

    return lookup


def check_since(since: object) -> Position:
    """Returns ``since`` as a ``Position``: an (epoch, offset) pair, as ``subscription.position``
    gives and a client may send back.

    Raises:
        ValueError: it is no pair of a non-empty str and an int >= 0.
    """
    if isinstance(since, (tuple, list)) and len(since) == 2:
        epoch, offset = since
        if (
            isinstance(epoch, str)
            and 0 < len(epoch) <= 64
            and isinstance(offset, int)
            and not isinstance(offset, bool)
            and offset >= 0
        ):
            return Position(epoch, offset)
    raise ValueError(
        f"since is a position (epoch, offset): a non-empty str and an int >= 0, not {since!r}"
    )


class Recovery(NamedTuple):
    """What a broker found for a subscription with ``since``: the messages after it (oldest
    first), or a reason why they cannot be had; and the channel's position now."""

    messages: list[Published]
    unrecovered: str | None
    position: Position


def recovery_of(
    since: Position | None, now: Position, first: int, found: list[Published]
) -> Recovery:
    """Judges a recovery: ``found`` are the kept messages after ``since`` (``first`` is the
    oldest offset kept, 0 when none), ``now`` the channel's position. When ``since`` is of
    another epoch, ``found`` are the kept messages of the channel's epoch: from its start,
    they follow the ``Unrecovered`` (as for a subscriber that stayed through the change)."""
    if since is None:
        return Recovery([], None, now)
    if since.epoch != now.epoch:
        reason = f"the channel's history is of another epoch ({now.epoch})"
        if found and found[0].offset == 1 and found[-1].offset == now.offset:
            return Recovery(found, reason, Position(now.epoch, 0))
        return Recovery([], reason, now)
    if since.offset > now.offset:
        return Recovery([], f"offset {since.offset} is ahead of the channel ({now.offset})", now)
    if since.offset < now.offset and (not found or found[0].offset != since.offset + 1):
        oldest = f"the oldest kept is {first}" if first else "none is kept"
        return Recovery([], f"offset {since.offset} is older than the history ({oldest})", now)
    return Recovery(found, None, now)


class Ring:
    """The in-memory history of one channel: its last messages, its epoch and offset, and how
    long they are kept (``ttl`` seconds after the last append)."""

    __slots__ = ("entries", "epoch", "last", "offset", "ttl")

    def __init__(self, size: int, ttl: float, now: float) -> None:
        self.entries: deque[Published] = deque(maxlen=size)
        self.epoch = new_epoch()
        self.offset = 0
        self.ttl = ttl
        self.last = now  # when the last message was appended (or the ring made)

    def expired(self, now: float) -> bool:
        """Whether the history expired: ``ttl`` seconds passed since the last append."""
        return now - self.last > self.ttl

    def append(self, message: str | bytes, now: float) -> Published:
        """Numbers ``message`` and keeps it (dropping the oldest when full)."""
        if self.entries and self.expired(now):
            self.entries.clear()
        self.offset += 1
        self.last = now
        entry = Published(message, self.epoch, self.offset)
        self.entries.append(entry)
        return entry

    def recover(self, since: Position | None, now: float) -> Recovery:
        """Returns what was published after ``since`` (see ``recovery_of``)."""
        entries = self.entries
        if entries and self.expired(now):
            entries.clear()
        position = Position(self.epoch, self.offset)
        if since is None or not entries:
            return recovery_of(since, position, 0, [])
        first = entries[0].offset
        skip = since.offset - first + 1 if since.epoch == self.epoch else 0
        return recovery_of(since, position, first, list(entries)[max(0, skip) :])
