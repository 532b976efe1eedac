"""The in-memory broker: one process, no network. A published message goes straight to the
hub's subscribers; a channel with history keeps its last messages in a ``Ring`` (``_history``),
numbered within an epoch that lives as long as the ring (this process, or until the history
expires with no subscriber left)."""

from __future__ import annotations

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
        self._rings: dict[str, Ring] = {}
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
        ring = self._rings.get(channel)
        if ring is None:
            ring = self._rings[channel] = Ring(history.size)
        entry = ring.append(message, anyio.current_time(), history.ttl)
        self._hub.deliver(channel, entry)
        return Position(entry.epoch, entry.offset)

    async def add_channel(self, channel: str, history: History | None) -> bool:
        await checkpoint()
        return True

    async def recover(self, channel: str, history: History, since: Position | None) -> Recovery:
        # No checkpoint before the hub has what this returns: a message published in between
        # would reach the subscription live and be missing from its recovery, or the reverse.
        ring = self._rings.get(channel)
        if ring is None:
            ring = self._rings[channel] = Ring(history.size)
        return ring.recover(since, anyio.current_time(), history.ttl)

    def remove_channel(self, channel: str) -> None:
        pass

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
