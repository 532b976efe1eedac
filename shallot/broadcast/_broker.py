"""The contract between a hub and its transport: ``Broker``, what the in-memory broker
(``_memory``) and the Redis broker (``_redis``) both offer the hub, and ``Sink``, what a broker
may do to the hub it runs for (hand over what arrives, report a loss)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from anyio.abc import TaskStatus

from ._history import History, Position, Published, Recovery
from ._presence import Joined, Left, Member


class Sink(Protocol):
    """The hub as its broker sees it."""

    def deliver(self, channel: str, message: str | bytes | Published) -> None:
        """Hands a message to the channel's subscribers here."""

    def deliver_batch(self, channel: str, messages: Sequence[Published]) -> None:
        """Hands messages read from the channel's history at once (a catch-up) to its
        subscribers here, which may hold the batch past their ``max_buffer``."""

    def gap(self, reason: str) -> None:
        """Tells the subscribers of channels without history that messages may be lost."""

    def unrecovered(self, channel: str, reason: str, position: Position) -> None:
        """Tells the channel's subscribers that messages were lost for good."""

    def presence_event(self, channel: str, event: Joined | Left) -> None:
        """Hands a join or leave to the channel's ``join_leave`` subscribers here."""


class Broker(Protocol):
    """What a hub needs from its transport (in memory, or Redis)."""

    @property
    def connected(self) -> bool: ...

    async def run(self, sink: Sink, *, task_status: TaskStatus[None]) -> None: ...

    async def publish(
        self, channel: str, message: str | bytes, history: History | None
    ) -> Position | None: ...

    async def publish_many(
        self, channel: str, messages: Sequence[str | bytes], history: History | None
    ) -> list[Position | None]: ...

    async def add_channel(self, channel: str, history: History | None) -> bool: ...

    async def recover(self, channel: str, history: History, since: Position | None) -> Recovery: ...

    async def join(self, channel: str, member: Member) -> None: ...

    def leave(self, channel: str, member: Member) -> None: ...

    async def members(self, channel: str) -> dict[str, Member]: ...

    async def watch(self, channel: str) -> None: ...

    def unwatch(self, channel: str) -> None: ...

    def remove_channel(self, channel: str) -> None: ...

    async def wait_connected(self) -> None: ...

    def close(self) -> None: ...
