"""One subscriber's side of the hub: its bounded buffer, its overflow policy, the gap marker.

The hub hands every message of a channel to each of the channel's subscriptions with the
synchronous ``_put`` (fan-out never waits on a slow subscriber); the subscription keeps at most
``max_buffer`` items and applies its overflow policy when full. Its owner iterates it (one
task, or several sharing the work). Subscribers with nothing to read wait on their channel's
one wake-up event, so fan-out allocates one event per message, not one per subscriber (at
10,000 subscribers the garbage collector's work dominated otherwise). A ``Gap`` marks where
messages may be missing: it is never dropped, and consecutive gaps are folded into one.
A subscription of a channel with history buffers ``Published`` items (a message and its
position), keeps the position of the last one it returned, and skips any at or before it, so
the seam between recovered and live messages never doubles one. What a recovery (``since``)
found waits in a backlog of its own, read before the buffer: it is already in the history, so
it does not count against ``max_buffer``, which bounds what arrives live. A message of such a
channel dropped by the overflow policy leaves a ``Gap`` with the position to recover from.
A batch the Redis stream feed read from the history at once (a catch-up after a reconnection)
does not count against ``max_buffer`` either (``_put_batch``; at most ``CATCH_UP_ROOM`` held
past it, until the reader is back within ``max_buffer``): a subscriber that keeps up reads all
of it, and live messages keep their own room. One that does not read gets its overflow policy
past that, so its buffer stays bounded.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Literal, Protocol, TypeAlias

import anyio
from anyio.lowlevel import checkpoint

from .._merge import NOTHING
from ._errors import BroadcastError, SlowSubscriber
from ._history import Position, Published, Recovery, Unrecovered
from ._presence import Joined, Left, Member

Overflow: TypeAlias = Literal["drop_oldest", "drop_newest", "disconnect"]
OVERFLOW_POLICIES: tuple[Overflow, ...] = ("drop_oldest", "drop_newest", "disconnect")

_NEW, _OPEN, _CLOSED = 0, 1, 2
#: How far past ``max_buffer`` a catch-up batch may take a buffer: as much as the Redis stream
#: feed reads of a channel at once (its ``_BATCH``).
CATCH_UP_ROOM = 1000


class Gap:
    """Yielded by a subscription where messages may be missing: the broker connection was
    lost (or the subscription was not live at the broker yet). Messages before it were
    delivered in order, messages after it arrive once the hub is connected again; what was
    published in between may be lost. ``reason`` says what happened."""

    __slots__ = ("position", "reason")

    def __init__(self, reason: str, position: Position | None = None) -> None:
        self.reason = reason
        #: on a channel with history, where the missing messages start: they are the ones
        #: after this position, so ``subscribe(channel, since=gap.position)`` gets them back
        #: (while the history keeps them); None on a channel without history
        self.position = position

    def __repr__(self) -> str:
        if self.position is None:
            return f"Gap({self.reason!r})"
        return f"Gap({self.reason!r}, {self.position!r})"


class Registry(Protocol):
    """What a subscription needs from its hub: entering, leaving, and counting its losses."""

    async def enter(self, subscription: Subscription) -> None: ...

    def leave(self, subscription: Subscription) -> None: ...

    def lost(self, dropped: int, *, disconnected: bool) -> None: ...


class Channel:
    """A channel's subscriptions in this process, the event those with nothing to read wait
    on, and the wake-ups of those a websocket handler merges (``receiver.merge``: the handler
    waits on its merge, not on the channel); how many want join and leave items."""

    __slots__ = ("merged", "subscribers", "wakeup", "watchers")

    def __init__(self) -> None:
        self.subscribers: dict[Subscription, None] = {}
        self.wakeup: anyio.Event | None = None
        self.merged: dict[Subscription, Callable[[], None]] = {}
        self.watchers = 0

    def wake(self) -> None:
        """Wakes every subscription of the channel that waits, and every merge of one."""
        wakeup = self.wakeup
        if wakeup is not None:
            self.wakeup = None
            wakeup.set()
        if self.merged:
            for wake in self.merged.values():
                wake()


class Subscription:
    """One subscriber of a channel: ``async with hub.subscribe(channel) as messages``, then
    ``async for message in messages`` (or ``await messages.receive()``).

    Yields each message published to the channel after the subscription was entered (``str``
    or ``bytes``, as published), in the order each publisher published them, and ``Gap``
    where some may be missing. Iteration ends when the subscription is left or the hub
    closes. ``dropped`` counts the messages this subscriber lost to its overflow policy.
    """

    __slots__ = ("_backlog", "_buffer", "_channel", "_epoch", "_error", "_extra", "_hub", "_offset",
                 "_state", "_waiting", "channel", "dropped", "join_leave", "max_buffer", "member",
                 "overflow", "since")  # fmt: skip

    def __init__(
        self,
        hub: Registry,
        channel: str,
        max_buffer: int,
        overflow: Overflow,
        since: Position | None = None,
        member: Member | None = None,
        join_leave: bool = False,
    ) -> None:
        self._hub = hub
        self.member = member  # its presence entry, when it is present
        self.join_leave = join_leave
        self.channel = channel
        self.max_buffer = max_buffer
        self.overflow: Overflow = overflow
        self.since = since
        self.dropped = 0
        self._epoch = ""  # the position of the last message returned (history channels)
        self._offset = 0
        self._buffer: deque[str | bytes | Gap | Unrecovered | Published | Joined | Left] = deque()
        self._backlog: deque[Published | Unrecovered] = deque()  # what a recovery found
        self._extra = 0  # room past max_buffer that a catch-up batch needed (_put_batch)
        self._state = _NEW
        self._error: SlowSubscriber | None = None
        self._channel: Channel | None = None  # set while it is open
        self._waiting = 0  # tasks waiting in __anext__

    def __repr__(self) -> str:
        state = ("new", "open", "closed")[self._state]
        return f"<Subscription {self.channel!r} {state}, {self.buffered} buffered>"

    # -- the owner's side -------------------------------------------------------------------

    async def __aenter__(self) -> Subscription:
        if self._state != _NEW:
            raise RuntimeError(f"subscription to {self.channel!r} was entered already")
        await self._hub.enter(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._hub.leave(self)  # synchronous: leaving never waits, even when cancelled

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> str | bytes | Gap | Unrecovered | Joined | Left:
        """Returns the next message (or ``Gap``, or ``Unrecovered``), waiting for one.

        Raises:
            StopAsyncIteration: the subscription was left or the hub closed.
            SlowSubscriber: the policy is ``disconnect`` and the buffer overflowed.
        """
        if self._buffer or self._backlog:  # no wait: still a checkpoint (a busy channel
            await checkpoint()  # would starve the others)
        while True:
            item = self._merge_poll()
            if item is not NOTHING:
                return item  # type: ignore[no-any-return]
            channel = self._channel
            assert channel is not None  # _merge_poll raised otherwise
            wakeup = channel.wakeup
            if wakeup is None:
                wakeup = channel.wakeup = anyio.Event()
            self._waiting += 1
            try:
                await wakeup.wait()
            finally:
                self._waiting -= 1

    async def receive(self) -> str | bytes | Gap | Unrecovered | Joined | Left:
        """Returns the next message (or ``Gap``, or ``Unrecovered``), waiting for one.

        Raises:
            BroadcastError: the subscription was left or the hub closed.
            SlowSubscriber: the policy is ``disconnect`` and the buffer overflowed.
        """
        try:
            return await self.__anext__()
        except StopAsyncIteration:
            raise BroadcastError(f"the subscription to {self.channel!r} is closed") from None

    def receive_nowait(self) -> str | bytes | Gap | Unrecovered | Joined | Left:
        """Returns the next buffered item without waiting: to drain, in one wake-up, what
        queued while the reader was busy (``while messages.buffered: ...``).

        Raises:
            anyio.WouldBlock: nothing is buffered (and the subscription is open).
            SlowSubscriber: the policy is ``disconnect`` and the buffer overflowed.
            BroadcastError: the subscription was left or the hub closed, and all it had
                buffered was read.
            RuntimeError: it was not entered.
        """
        item = self._take()
        if item is not NOTHING:
            return item  # type: ignore[no-any-return]
        self._check_open(BroadcastError(f"the subscription to {self.channel!r} is closed"))
        raise anyio.WouldBlock

    def _take(self) -> Any:
        """Returns the next buffered item, or ``NOTHING``."""
        if self._backlog:  # recovered messages first (they were published before the rest)
            recovered = self._backlog.popleft()
            if isinstance(recovered, Unrecovered):
                self._epoch, self._offset = recovered.position
                return recovered
            self._epoch, self._offset = recovered.epoch, recovered.offset
            return recovered.message
        buffer = self._buffer
        if self._extra and len(buffer) <= self.max_buffer:
            self._extra = 0  # the catch-up is read: back within max_buffer
        while buffer:
            item = buffer.popleft()
            if type(item) is Published:
                if item.offset <= self._offset and item.epoch == self._epoch:
                    continue  # recovered already: the seam between history and live
                self._epoch, self._offset = item.epoch, item.offset
                return item.message
            if type(item) is Unrecovered:
                self._epoch, self._offset = item.position
            return item
        return NOTHING

    def _check_open(self, closed: Exception) -> None:
        """Raises what reading a subscription with nothing buffered raises, unless it is
        open: ``closed`` once it was left or the hub closed."""
        if self._error is not None:
            raise SlowSubscriber(self.channel, self._error.dropped)
        if self._state == _CLOSED:
            raise closed
        if self._channel is None:
            raise RuntimeError("enter the subscription (async with) before reading it")

    def _merge_poll(self) -> Any:
        """Returns the next item without waiting, or ``NOTHING`` when none is buffered and
        the subscription is open (``_merge.Wakeable``).

        Raises:
            StopAsyncIteration: the subscription was left or the hub closed.
            SlowSubscriber: the policy is ``disconnect`` and the buffer overflowed.
            RuntimeError: it was not entered.
        """
        if self._buffer or self._backlog:
            item = self._take()
            if item is not NOTHING:  # else only duplicates at the history/live seam were left
                return item
        self._check_open(StopAsyncIteration())
        return NOTHING

    def _merge_wake(self, wake: Callable[[], None] | None) -> bool:
        """Has the channel call ``wake`` whenever it wakes its subscribers (None: no more),
        for a merge that reads this subscription in the handler's task (``_merge``). Returns
        False when it is not open, or another merge reads it so (the merge then reads it with
        a task, as any iterable)."""
        channel = self._channel
        if channel is None or self._state != _OPEN:
            return False
        if wake is None:
            channel.merged.pop(self, None)
        elif self in channel.merged:  # merged twice at once: the second one reads it as any
            return False
        else:
            channel.merged[self] = wake
        return True

    @property
    def position(self) -> Position | None:
        """The position of the last message read, of a channel with history (before any is
        read, the channel's when the subscription was entered, or ``since``); else None. Give
        it back as ``subscribe(channel, since=...)`` to get what came after it."""
        return Position(self._epoch, self._offset) if self._epoch else None

    @property
    def buffered(self) -> int:
        """How many items wait to be read (recovered ones included)."""
        return len(self._buffer) + len(self._backlog)

    # -- the hub's side ---------------------------------------------------------------------

    def _put(self, message: str | bytes | Published | Joined | Left) -> None:
        """Buffers a message; the hub wakes the channel once all have theirs."""
        buffer = self._buffer
        if self._state == _OPEN and (
            len(buffer) < self.max_buffer + self._extra or self._make_room(message)
        ):
            buffer.append(message)

    def _put_batch(self, messages: Sequence[Published]) -> None:
        """Buffers messages read from the history at once (a catch-up): they do not count
        against ``max_buffer`` (up to ``CATCH_UP_ROOM`` held past it), since they came in one
        piece where they were published one by one, and live messages keep their own room."""
        if self._state != _OPEN:
            return
        self._extra = min(self._extra + len(messages), CATCH_UP_ROOM)
        for message in messages:
            self._put(message)

    def _make_room(self, message: str | bytes | Published | Joined | Left) -> bool:
        """Applies the overflow policy to a full buffer; returns whether the new ``message``
        goes in. A message of a channel with history is never dropped without a trace: a
        ``Gap`` takes its place, with the position to recover it from (one for a run)."""
        buffer = self._buffer
        if self.overflow == "drop_oldest":
            markers = []  # markers stay: the first message after them goes
            while buffer and _is_marker(buffer[0]):
                markers.append(buffer.popleft())
            if buffer:
                self._drop(buffer.popleft(), markers)
            buffer.extendleft(reversed(markers))
            return True
        if self.overflow == "drop_newest":
            markers = [buffer.pop()] if buffer and _is_marker(buffer[-1]) else []
            self._drop(message, markers)
            buffer.extend(markers)
            return False
        # disconnect: what it holds is dropped too, and reading it raises
        lost = sum(1 for item in buffer if not _is_marker(item))
        lost += len(self._backlog) + 1
        self.dropped += lost
        self._hub.lost(lost, disconnected=True)
        self._error = SlowSubscriber(self.channel, self.dropped)
        buffer.clear()
        self._backlog.clear()
        self._close()
        return False

    def _drop(self, item: object, markers: list[Any]) -> None:
        """Counts ``item`` as dropped, unless it is a duplicate the reader would skip; one of
        a channel with history gets a ``Gap`` at the end of ``markers`` (the markers just
        before it), or widens the one there."""
        if type(item) is Published:
            last = self._backlog[-1] if self._backlog else None
            if type(last) is Published:
                epoch, offset = last.epoch, last.offset
            else:
                epoch, offset = self._epoch, self._offset
            if item.epoch == epoch and item.offset <= offset:
                return  # read already, or recovered: no loss
            if not (markers and type(markers[-1]) is Gap and markers[-1].position is not None):
                reason = "the subscriber fell behind: messages were dropped (overflow)"
                markers.append(Gap(reason, Position(item.epoch, item.offset - 1)))
        self.dropped += 1
        self._hub.lost(1, disconnected=False)

    def _put_unrecovered(self, unrecovered: Unrecovered) -> None:
        """Buffers an unrecovered marker; the hub wakes the channel."""
        if self._state == _OPEN:
            self._buffer.append(unrecovered)

    def _recovered(self, recovery: Recovery) -> None:
        """Puts what a recovery found in the backlog, read before what arrived live meanwhile,
        and starts from the position recovered from (the live messages up to it are skipped
        when read)."""
        since = self.since
        if recovery.unrecovered is not None or since is None:
            self._epoch, self._offset = recovery.position
        else:
            self._epoch, self._offset = since
        items: list[Published | Unrecovered] = list(recovery.messages)
        if recovery.unrecovered is not None:
            items.insert(0, Unrecovered(recovery.unrecovered, recovery.position))
        if items and self._state == _OPEN:
            self._backlog.extend(items)

    def _put_gap(self, gap: Gap) -> None:
        """Buffers a gap marker (one for several in a row); the hub wakes the channel."""
        buffer = self._buffer
        if self._state == _OPEN and not (buffer and type(buffer[-1]) is Gap):
            buffer.append(gap)

    def _open(self, channel: Channel) -> None:
        self._state = _OPEN
        self._channel = channel

    def _close(self) -> None:
        self._state = _CLOSED
        channel = self._channel
        if channel is not None:
            wake = channel.merged.pop(self, None)
            if wake is not None:
                wake()
            if self._waiting:
                channel.wake()  # the others wake too, find nothing new, and wait again


def _is_marker(item: object) -> bool:
    return type(item) is Gap or type(item) is Unrecovered
