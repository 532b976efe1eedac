"""The in-memory broker: one process, no network. A published message goes straight to the
hub's subscribers; a channel with history keeps its last messages in a ``Ring`` (``_history``),
numbered within an epoch that lives as long as the ring (this process, or until the history
expires with no subscriber left). The rings of one ttl are kept in the order of their last
publish, so the expired ones are at the front: each publish or recovery looks at two of them
at most, per ttl, and forgets those without a subscriber (a room per document, used once, gives
its memory back). Channels get their ttl from the hub's ``history`` rules: a handful."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import anyio
from anyio.abc import TaskStatus
from anyio.lowlevel import checkpoint

from ._broker import Sink
from ._history import History, Position, Recovery, Ring
from ._presence import Joined, Left, Member, Roster


class MemoryBroker:
    """The hub's transport within one process (see the module docstring)."""

    connected = True

    def __init__(self) -> None:
        self._hub: Sink | None = None
        # per ttl, oldest publish first (OrderedDict: taking from the front of a dict is O(n))
        self._rings: dict[float, OrderedDict[str, Ring]] = {}
        self._subscribed: set[str] = set()  # channels with subscribers: their epochs stay
        self._roster = Roster()

    async def run(self, hub: Sink, *, task_status: TaskStatus[None]) -> None:
        self._hub = hub
        task_status.started()

    async def publish(
        self, channel: str, message: str | bytes, history: History | None
    ) -> Position | None:
        await checkpoint()  # before delivering: a cancelled publish published nothing
        return self._deliver(channel, message, history)

    async def publish_many(
        self, channel: str, messages: Sequence[str | bytes], history: History | None
    ) -> list[Position | None]:
        await checkpoint()  # one for the burst: subscribers run once all are delivered
        return [self._deliver(channel, message, history) for message in messages]

    def _deliver(
        self, channel: str, message: str | bytes, history: History | None
    ) -> Position | None:
        assert self._hub is not None
        if history is None:
            self._hub.deliver(channel, message)
            return None
        now = anyio.current_time()
        entry = self._ring(channel, history, now).append(message, now)
        self._rings[history.ttl].move_to_end(channel)  # the order of last publishes
        self._hub.deliver(channel, entry)
        return Position(entry.epoch, entry.offset)

    async def add_channel(self, channel: str, history: History | None) -> bool:
        await checkpoint()
        if history is not None:
            self._subscribed.add(channel)
        return True

    async def recover(self, channel: str, history: History, since: Position | None) -> Recovery:
        # No checkpoint before the hub has what this returns: a message published in between
        # would reach the subscription live and be missing from its recovery, or the reverse.
        now = anyio.current_time()
        return self._ring(channel, history, now).recover(since, now)

    def _ring(self, channel: str, history: History, now: float) -> Ring:
        """Returns the channel's ring (a new one, of a new epoch, when it has none), after
        forgetting up to two rings per ttl whose history expired and whose channel has no
        subscriber (amortised: a publish makes at most one ring, and looks at two)."""
        for rings in self._rings.values():
            for _ in range(2):
                oldest = next(iter(rings), None)
                if oldest is None or not rings[oldest].expired(now):
                    break  # the rest were published to later
                if oldest in self._subscribed:  # its epoch stays while subscribed, not its
                    rings[oldest].entries.clear()  # messages
                    rings.move_to_end(oldest)
                else:
                    del rings[oldest]
        kept = self._rings.get(history.ttl)
        if kept is None:
            kept = self._rings[history.ttl] = OrderedDict()
        ring = kept.get(channel)
        if ring is None:
            ring = kept[channel] = Ring(history.size, history.ttl, now)
        return ring

    def remove_channel(self, channel: str) -> None:
        self._subscribed.discard(channel)

    async def join(self, channel: str, member: Member) -> None:
        await checkpoint()
        assert self._hub is not None
        self._roster.join(channel, member)
        self._hub.presence_event(channel, Joined(member))

    def leave(self, channel: str, member: Member) -> None:
        if self._roster.leave(channel, member) and self._hub is not None:
            self._hub.presence_event(channel, Left(member))

    async def members(self, channel: str) -> dict[str, Member]:
        await checkpoint()
        return self._roster.members(channel)

    async def watch(self, channel: str) -> None:
        await checkpoint()

    def unwatch(self, channel: str) -> None:
        pass

    async def wait_connected(self) -> None:
        await checkpoint()

    def close(self) -> None:
        pass
