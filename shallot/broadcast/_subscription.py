"""One subscriber's side of the hub: its bounded buffer, its overflow policy, the gap marker.

The hub hands every message of a channel to each of the channel's subscriptions with the
synchronous ``_put`` (fan-out never waits on a slow subscriber); the subscription keeps at most
``max_buffer`` items and applies its overflow policy when full. Its owner iterates it (one
task, or several sharing the work). Subscribers with nothing to read wait on their channel's
one wake-up event, so fan-out allocates one event per message, not one per subscriber (at
10,000 subscribers the garbage collector's work dominated otherwise). A ``Gap`` marks where
messages may be missing: it is never dropped, and consecutive gaps are folded into one.
"""

from __future__ import annotations

from collections import deque
from types import TracebackType
from typing import Literal, Protocol, TypeAlias

import anyio
from anyio.lowlevel import checkpoint

from ._errors import BroadcastError, SlowSubscriber

Overflow: TypeAlias = Literal["drop_oldest", "drop_newest", "disconnect"]
OVERFLOW_POLICIES: tuple[Overflow, ...] = ("drop_oldest", "drop_newest", "disconnect")

_NEW, _OPEN, _CLOSED = 0, 1, 2


class Gap:
    """Yielded by a subscription where messages may be missing: the broker connection was
    lost (or the subscription was not live at the broker yet). Messages before it were
    delivered in order, messages after it arrive once the hub is connected again; what was
    published in between may be lost. ``reason`` says what happened."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"Gap({self.reason!r})"


class Channel:
    """A channel's subscriptions in this process, and the event those with nothing to read
    wait on."""

    __slots__ = ("subscribers", "wakeup")

    def __init__(self) -> None:
        self.subscribers: dict[Subscription, None] = {}
        self.wakeup: anyio.Event | None = None

    def wake(self) -> None:
        """Wakes every subscription of the channel that waits."""
        wakeup = self.wakeup
        if wakeup is not None:
            self.wakeup = None
            wakeup.set()


class Hub(Protocol):
    """What a subscription needs of its hub (``_hub.Hub``), so the import goes one way."""

    _dropped: int
    _disconnected: int

    async def _add(self, subscription: Subscription) -> None: ...

    def _remove(self, subscription: Subscription) -> None: ...


class Subscription:
    """One subscriber of a channel: ``async with hub.subscribe(channel) as messages``, then
    ``async for message in messages`` (or ``await messages.receive()``).

    Yields each message published to the channel after the subscription was entered (``str``
    or ``bytes``, as published), in the order each publisher published them, and ``Gap``
    where some may be missing. Iteration ends when the subscription is left or the hub
    closes. ``dropped`` counts the messages this subscriber lost to its overflow policy.
    """

    __slots__ = ("_buffer", "_channel", "_error", "_hub", "_state", "_waiting", "channel",
                 "dropped", "max_buffer", "overflow")  # fmt: skip

    def __init__(self, hub: Hub, channel: str, max_buffer: int, overflow: Overflow) -> None:
        self._hub = hub
        self.channel = channel
        self.max_buffer = max_buffer
        self.overflow: Overflow = overflow
        self.dropped = 0
        self._buffer: deque[str | bytes | Gap] = deque()
        self._state = _NEW
        self._error: SlowSubscriber | None = None
        self._channel: Channel | None = None  # set while it is open
        self._waiting = 0  # tasks waiting in __anext__

    def __repr__(self) -> str:
        state = ("new", "open", "closed")[self._state]
        return f"<Subscription {self.channel!r} {state}, {len(self._buffer)} buffered>"

    # -- the owner's side -------------------------------------------------------------------

    async def __aenter__(self) -> Subscription:
        if self._state != _NEW:
            raise RuntimeError(f"subscription to {self.channel!r} was entered already")
        await self._hub._add(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._hub._remove(self)  # synchronous: leaving never waits, even when cancelled

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> str | bytes | Gap:
        """Returns the next message (or ``Gap``), waiting for one.

        Raises:
            StopAsyncIteration: the subscription was left or the hub closed.
            SlowSubscriber: the policy is ``disconnect`` and the buffer overflowed.
        """
        if self._buffer:  # no wait: still a checkpoint, or a busy channel starves the others
            await checkpoint()
        while True:
            if self._buffer:
                return self._buffer.popleft()
            if self._error is not None:
                raise SlowSubscriber(self.channel, self._error.dropped)
            if self._state == _CLOSED:
                raise StopAsyncIteration
            channel = self._channel
            if channel is None:
                raise RuntimeError("enter the subscription (async with) before reading it")
            wakeup = channel.wakeup
            if wakeup is None:
                wakeup = channel.wakeup = anyio.Event()
            self._waiting += 1
            try:
                await wakeup.wait()
            finally:
                self._waiting -= 1

    async def receive(self) -> str | bytes | Gap:
        """Returns the next message (or ``Gap``), waiting for one.

        Raises:
            BroadcastError: the subscription was left or the hub closed.
            SlowSubscriber: the policy is ``disconnect`` and the buffer overflowed.
        """
        try:
            return await self.__anext__()
        except StopAsyncIteration:
            raise BroadcastError(f"the subscription to {self.channel!r} is closed") from None

    @property
    def buffered(self) -> int:
        """How many items wait in the buffer."""
        return len(self._buffer)

    # -- the hub's side ---------------------------------------------------------------------

    def _put(self, message: str | bytes) -> None:
        """Buffers a message; the hub wakes the channel once all have theirs."""
        buffer = self._buffer
        if self._state == _OPEN and (len(buffer) < self.max_buffer or self._make_room()):
            buffer.append(message)

    def _make_room(self) -> bool:
        """Applies the overflow policy to a full buffer; returns whether the new message
        goes in."""
        hub = self._hub
        if self.overflow == "drop_oldest":
            buffer = self._buffer
            oldest = buffer.popleft()
            if type(oldest) is Gap:  # a gap stays: drop the message after it
                if buffer:
                    buffer.popleft()
                buffer.appendleft(oldest)
        elif self.overflow == "drop_newest":
            self.dropped += 1
            hub._dropped += 1
            return False
        else:  # disconnect: what it holds is dropped too, and reading it raises
            lost = 1 + sum(1 for item in self._buffer if type(item) is not Gap)
            self.dropped += lost
            hub._dropped += lost
            hub._disconnected += 1
            self._error = SlowSubscriber(self.channel, self.dropped)
            self._buffer.clear()
            self._close()
            return False
        self.dropped += 1
        hub._dropped += 1
        return True

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
        if self._waiting and self._channel is not None:
            self._channel.wake()  # the others wake too, find nothing new, and wait again
