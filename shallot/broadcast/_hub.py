"""The hub: channels and their subscribers in this process, publishing through a broker.

A ``Hub`` keeps, per channel, the subscriptions of this process; a channel exists while it has
subscribers. Publishing goes through the hub's broker: the in-memory broker hands the message
straight back to the hub, the Redis broker (``_redis``) sends it to the server, whose one
listener per process hands it back to every hub subscribed to the channel. Either way the hub
fans the message out to its local subscriptions synchronously, each with its own bounded
buffer, so a slow subscriber never holds up the others or the publisher. Running a hub (its
broker's task, the app lifetime) is ``_open``'s.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ._broker import Broker
from ._checks import check_buffer, check_channel, check_overflow
from ._errors import BroadcastError
from ._history import History, Position, Published, Unrecovered, check_since
from ._presence import Joined, Left, Member, new_member
from ._statistics import HubStatistics
from ._subscription import Channel, Gap, Overflow, Subscription


class Fanout:
    """The hub as its broker sees it (``Sink``): a view, so that the hub's own methods for
    the broker stay out of its public API."""

    __slots__ = ("deliver", "deliver_batch", "gap", "presence_event", "unrecovered")

    def __init__(self, hub: Hub) -> None:
        self.deliver = hub._deliver  # bound once: delivery is the hot path
        self.deliver_batch = hub._deliver_batch
        self.gap = hub._gap
        self.unrecovered = hub._unrecovered
        self.presence_event = hub._presence_event


class Membership:
    """The hub as its subscriptions see it (``Registry``): a view, so that the hub's own
    methods for them stay out of its public API."""

    __slots__ = ("_hub",)

    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    async def enter(self, subscription: Subscription) -> None:
        await self._hub._add(subscription)

    def leave(self, subscription: Subscription) -> None:
        self._hub._remove(subscription)

    def lost(self, dropped: int, *, disconnected: bool) -> None:
        self._hub._dropped += dropped
        self._hub._disconnected += disconnected


class Hub:
    """Publish/subscribe between the tasks of this process, and with a broker, of other
    processes and hosts. Made by ``open_hub`` (or ``hub_lifespan``), not directly."""

    def __init__(
        self,
        broker: Broker,
        *,
        max_buffer: int,
        overflow: Overflow,
        history: Callable[[str], History | None] = lambda channel: None,
    ) -> None:
        self._broker = broker
        self._history_of = history
        self._max_buffer = max_buffer
        self._overflow: Overflow = overflow
        self._channels: dict[str, Channel] = {}
        self._closed = False
        self._published = self._delivered = self._dropped = 0
        self._disconnected = self._gaps = 0
        self._membership = Membership(self)

    def __repr__(self) -> str:
        return f"<Hub {type(self._broker).__name__}, {len(self._channels)} channels>"

    async def publish(self, channel: str, message: str | bytes) -> Position | None:
        """Sends ``message`` to every subscriber of ``channel``, in every process connected to
        the same broker (subscribers who joined after it returned are not guaranteed it).
        One task's messages arrive in the order it published them.

        Returns:
            The message's position when the channel keeps history, else None.

        Raises:
            TypeError: ``channel`` is not a non-empty str, or ``message`` not str or bytes.
            BrokerUnavailable: the broker cannot be reached: nothing was published; or it
                did not answer within ``connect_timeout`` (the message says "may still be
                delivered"): then it may still be, so publishing it again may send it twice.
            BroadcastError: the hub is closed.
        """
        check_channel(channel)
        if not isinstance(message, (str, bytes)):
            raise TypeError(f"a message is str or bytes, not {type(message).__name__}")
        if self._closed:
            raise BroadcastError("the hub is closed")
        position = await self._broker.publish(channel, message, self._history_of(channel))
        self._published += 1
        return position

    async def publish_many(
        self, channel: str, messages: Sequence[str | bytes]
    ) -> list[Position | None]:
        """Publishes ``messages`` to ``channel`` in order, as one burst: in memory, subscribers
        wake once for all of them and can drain them in one go (``receive_nowait``).

        Returns:
            Each message's position (None on a channel without history).

        Raises:
            TypeError: as ``publish``, checked for every message before any is sent.
            BrokerUnavailable: as ``publish``, for the message that failed; the messages
                before it were published.
            BroadcastError: the hub is closed.
        """
        check_channel(channel)
        for message in messages:
            if not isinstance(message, (str, bytes)):
                raise TypeError(f"a message is str or bytes, not {type(message).__name__}")
        if self._closed:
            raise BroadcastError("the hub is closed")
        history = self._history_of(channel)
        positions = await self._broker.publish_many(channel, messages, history)
        self._published += len(positions)
        return positions

    def subscribe(
        self,
        channel: str,
        *,
        max_buffer: int | None = None,
        overflow: Overflow | None = None,
        since: Position | tuple[str, int] | None = None,
        member: str | None = None,
        info: Mapping[str, Any] | None = None,
        join_leave: bool = False,
    ) -> Subscription:
        """Returns a subscription to ``channel``, to enter with ``async with``: messages
        published from then on (once it is entered) go to its buffer, which holds at most
        ``max_buffer`` items; when it is full, ``overflow`` decides: ``"drop_oldest"``,
        ``"drop_newest"`` or ``"disconnect"`` (reading then raises ``SlowSubscriber``). Both
        default to the hub's settings. Leaving the ``async with`` unsubscribes.

        With ``since`` (a ``Position``, as ``subscription.position`` gives), on a channel with
        history: first every message published after that position, then the live ones, none
        missed or doubled; or, when the history no longer has them, an ``Unrecovered`` item
        first, then the live ones.

        With ``member`` (an id the app chooses, a user's say), the subscription is present in
        the channel while it is entered, with ``info`` (a JSON-able dict): see ``presence``.
        With ``join_leave=True`` it also gets a ``Joined`` or ``Left`` item whenever a member
        enters or leaves the channel (itself included), among the messages.

        Raises:
            TypeError: ``channel`` is not a non-empty str, ``member`` not a str, or ``info``
                not a JSON-able mapping.
            ValueError: ``max_buffer`` is not a positive int, ``overflow`` no policy,
                ``since`` no position, or given for a channel that keeps no history.
        """
        check_channel(channel)
        position = None
        if since is not None:
            position = check_since(since)
            if self._history_of(channel) is None:
                raise ValueError(
                    f"channel {channel!r} keeps no history to recover from: give it some with"
                    " open_hub(history={...})"
                )
        return Subscription(
            self._membership,
            channel,
            self._max_buffer if max_buffer is None else check_buffer(max_buffer),
            self._overflow if overflow is None else check_overflow(overflow),
            position,
            None if member is None else new_member(member, info),
            bool(join_leave),
        )

    async def presence(self, channel: str) -> dict[str, Member]:
        """Returns who is in ``channel``, in every process of the broker: each present
        subscription by its ``client`` name. With Redis, an entry of a process that died
        without leaving lasts at most ``presence_ttl`` seconds.

        Raises:
            BrokerUnavailable: the broker cannot be reached.
        """
        return await self._broker.members(check_channel(channel))

    def history(self, channel: str) -> History | None:
        """Returns how much history ``channel`` keeps (None: none, plain pub/sub)."""
        return self._history_of(check_channel(channel))

    @property
    def connected(self) -> bool:
        """Whether the broker is connected (always, in memory)."""
        return self._broker.connected and not self._closed

    async def wait_connected(self) -> None:
        """Waits until the broker is connected and every channel is subscribed there.

        Raises:
            BroadcastError: the hub is closed, or closed while this waited.
        """
        if not self._closed:
            await self._broker.wait_connected()  # returns when the broker closes, too
        if self._closed:
            raise BroadcastError("the hub is closed")

    def subscribers(self, channel: str) -> int:
        """Returns how many subscriptions of this process listen to ``channel``."""
        found = self._channels.get(channel)
        return 0 if found is None else len(found.subscribers)

    def statistics(self) -> HubStatistics:
        """Returns the hub's counters (this process only)."""
        return HubStatistics(
            channels=len(self._channels),
            subscribers=sum(len(found.subscribers) for found in self._channels.values()),
            published=self._published,
            delivered=self._delivered,
            dropped=self._dropped,
            disconnected=self._disconnected,
            gaps=self._gaps,
            connected=self.connected,
        )

    # -- the broker's and the subscriptions' side --------------------------------------------

    def _deliver(self, channel: str, message: str | bytes | Published) -> None:
        found = self._channels.get(channel)
        if found is not None:
            subscribers = found.subscribers
            self._delivered += len(subscribers)
            for subscription in subscribers:
                subscription._put(message)
            found.wake()

    def _deliver_batch(self, channel: str, messages: Sequence[Published]) -> None:
        """Hands over ``messages`` read from the channel's history at once (a catch-up after
        a reconnection, a burst): each subscription may hold the batch past its
        ``max_buffer`` (``Subscription._put_batch``), so one that keeps up loses none of it."""
        found = self._channels.get(channel)
        if found is not None:
            subscribers = found.subscribers
            self._delivered += len(subscribers) * len(messages)
            for subscription in subscribers:
                subscription._put_batch(messages)
            found.wake()

    def _unrecovered(self, channel: str, reason: str, position: Position) -> None:
        found = self._channels.get(channel)
        if found is not None:
            unrecovered = Unrecovered(reason, position)
            for subscription in found.subscribers:
                subscription._put_unrecovered(unrecovered)
            found.wake()

    def _presence_event(self, channel: str, event: Joined | Left) -> None:
        found = self._channels.get(channel)
        if found is not None and found.watchers:
            for subscription in found.subscribers:
                if subscription.join_leave:
                    subscription._put(event)
            found.wake()

    def _gap(self, reason: str) -> None:
        """Tells the subscribers of channels without history (those with history recover)."""
        self._gaps += 1
        gap = Gap(reason)
        for channel, found in self._channels.items():
            if self._history_of(channel) is not None:
                continue
            for subscription in found.subscribers:
                subscription._put_gap(gap)
            found.wake()

    async def _add(self, subscription: Subscription) -> None:
        if self._closed:
            raise BroadcastError("the hub is closed")
        channel = subscription.channel
        found = self._channels.get(channel)
        if found is None:
            found = self._channels[channel] = Channel()
        found.subscribers[subscription] = None
        subscription._open(found)
        history = self._history_of(channel)
        try:
            live = await self._broker.add_channel(channel, history)
            if history is not None:
                recovery = await self._broker.recover(channel, history, subscription.since)
                subscription._recovered(recovery)
        except BaseException:
            self._remove(subscription)
            raise
        if history is None and not live:
            subscription._put_gap(Gap("not subscribed at the broker yet (it is unreachable)"))
        try:
            if subscription.join_leave:
                found.watchers += 1
                if found.watchers == 1:
                    await self._broker.watch(channel)
            if subscription.member is not None:
                await self._broker.join(channel, subscription.member)
        except BaseException:
            self._remove(subscription)
            raise

    def _remove(self, subscription: Subscription) -> None:
        if subscription.member is not None:  # the broker knows whether it joined
            self._broker.leave(subscription.channel, subscription.member)
        subscription._close()
        found = self._channels.get(subscription.channel)
        if found is not None and subscription in found.subscribers:
            if subscription.join_leave:
                found.watchers -= 1
                if not found.watchers:
                    self._broker.unwatch(subscription.channel)
            del found.subscribers[subscription]
            if not found.subscribers:
                del self._channels[subscription.channel]
                self._broker.remove_channel(subscription.channel)

    def _close(self) -> None:
        self._closed = True
        self._broker.close()
        for found in self._channels.values():
            for subscription in found.subscribers:
                subscription._close()
            found.wake()
        self._channels.clear()
