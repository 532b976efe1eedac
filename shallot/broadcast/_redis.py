"""The Redis / Valkey broker: one pub/sub listener per process, through coredis (on anyio).

Publishing is a ``PUBLISH`` on the client's pool. Receiving is one pub/sub connection per
process, subscribed to the channels that have local subscribers; what it receives goes to the
hub, which fans it out. Subscription changes are applied by one task (``_keep_synced``), so the
set subscribed at the server converges on the set wanted here without races, and a new
subscriber waits for the server's acknowledgement, so what is published after it entered
reaches it. When the connection drops, every subscriber of a channel without history gets a
``Gap`` at once; the listener reconnects with exponential backoff (with jitter) and subscribes
everything again. Publishing while the server is unreachable raises ``BrokerUnavailable``:
coredis' own retries are off, so nothing waits longer than ``connect_timeout``.

Channels with history do not use pub/sub: they go through Redis Streams (``_streams``), whose
feed task runs beside the listener and recovers what a lost connection missed. Messages keep
their type across the wire (``_wire``).
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import anyio
import coredis
from anyio.abc import TaskStatus
from anyio.lowlevel import checkpoint
from coredis.exceptions import RedisError
from coredis.patterns.pubsub import PubSub
from coredis.retry import NoRetryPolicy

from ._broker import Sink
from ._connection import describe, for_display, tidy
from ._errors import BrokerUnavailable
from ._history import History, Position, Recovery
from ._presence import Member, event_from_json
from ._roster_redis import EVENTS, RedisRoster
from ._streams import StreamFeed
from ._wire import decode, encode

logger = logging.getLogger("shallot.broadcast")


class RedisBroker:
    """The hub's transport through a Redis or Valkey server (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str,
        connect_timeout: float,
        reconnect_min: float,
        reconnect_max: float,
        presence_ttl: float = 30.0,
    ) -> None:
        scheme, _, rest = url.partition("://")
        scheme = {"valkey": "redis", "valkeys": "rediss"}.get(scheme.lower(), scheme)
        self._url = f"{scheme}://{rest}"
        self.display = for_display(url)
        self._prefix = prefix
        self._prefix_bytes = prefix.encode("utf-8")
        self._timeout = connect_timeout
        self._reconnect_min = reconnect_min
        self._reconnect_max = reconnect_max
        self._client: coredis.Redis[bytes] | None = None
        self.connected = False
        self._wanted: set[str] = set()  # channels with subscribers here
        self._live: set[str] = set()  # channels the server acknowledged on this connection
        self._dirty = anyio.Event()  # set when _wanted changed
        self._live_changed = anyio.Event()
        self._up = anyio.Event()  # set while connected, and once closing
        self._closing = False
        self._listening = anyio.CancelScope()
        self._lifetime: anyio.CancelScope | None = None
        self._roster = RedisRoster(prefix, presence_ttl)
        self._streams = StreamFeed(
            prefix,
            timeout=connect_timeout,
            reconnect_min=reconnect_min,
            reconnect_max=reconnect_max,
        )

    # -- the hub's side ---------------------------------------------------------------------

    async def publish(
        self, channel: str, message: str | bytes, history: History | None
    ) -> Position | None:
        async with self._calling(channel, "publish to") as client:
            if history is not None:
                return await self._streams.publish(client, channel, encode(message), history)
            await client.publish(self._prefix + channel, encode(message))
        return None

    async def publish_many(
        self, channel: str, messages: Sequence[str | bytes], history: History | None
    ) -> list[Position | None]:
        return [await self.publish(channel, message, history) for message in messages]

    async def add_channel(self, channel: str, history: History | None) -> bool:
        """Wants ``channel`` subscribed; returns whether the server acknowledged it in time
        (False at once while disconnected). A channel with history joins the stream feed.

        Raises:
            BrokerUnavailable: the channel has history, and the server cannot be reached.
        """
        if history is not None:
            async with self._calling(channel) as client:
                await self._streams.add(client, channel)
            return True
        self._wanted.add(channel)
        self._dirty.set()
        if channel in self._live or not self.connected:
            await checkpoint()
            return channel in self._live
        with anyio.move_on_after(self._timeout):
            while channel not in self._live and self.connected:
                await self._live_changed.wait()
        return channel in self._live

    async def recover(self, channel: str, history: History, since: Position | None) -> Recovery:
        """Returns the messages after ``since`` from the channel's stream.

        Raises:
            BrokerUnavailable: the server cannot be reached.
        """
        async with self._calling(channel) as client:
            return await self._streams.recover(client, channel, history, since)
        raise AssertionError("unreachable")  # pragma: no cover

    @asynccontextmanager
    async def _calling(
        self, channel: str, what: str = "reach the history of"
    ) -> AsyncIterator[coredis.Redis[bytes]]:
        """Yields the client for commands about ``channel``; fails fast while reconnecting.

        Raises:
            BrokerUnavailable: the server cannot be reached (nothing waits longer than
                ``connect_timeout``). When it did not answer in time, the command may still
                run (it was sent): the message says so for a publish.
        """
        client = self._client
        cause: Exception | None = None
        if client is not None and self.connected:
            try:
                # ASYNC100: the deadline bounds the caller's block, which awaits the server
                with anyio.fail_after(self._timeout):  # noqa: ASYNC100
                    yield client
                return
            except (RedisError, OSError, TimeoutError) as error:
                cause = error
        await checkpoint()
        raise BrokerUnavailable(self._unavailable(what, channel, cause)) from cause

    def _unavailable(self, what: str, channel: str, cause: Exception | None) -> str:
        """Returns what a ``BrokerUnavailable`` says: that nothing was sent (while
        reconnecting), or what failed; a command without an answer in time was sent, and
        the server may still run it (a publish may still be delivered)."""
        where = f"cannot {what} {channel!r}: the broker at {self.display}"
        if cause is None:
            return f"{where} is unreachable (reconnecting)"
        failure = describe(cause, self._timeout)
        if not isinstance(cause, TimeoutError):
            return f"{where} is unreachable ({failure})"
        if what == "publish to":
            return f"{where} did not answer ({failure}); the message may still be delivered"
        return f"{where} did not answer ({failure})"

    async def join(self, channel: str, member: Member) -> None:
        async with self._calling(channel, "reach the presence in") as client:
            await self._roster.join(client, channel, member)

    def leave(self, channel: str, member: Member) -> None:
        self._roster.leave(channel, member)

    async def members(self, channel: str) -> dict[str, Member]:
        async with self._calling(channel, "reach the presence in") as client:
            return await self._roster.members(client, channel)
        raise AssertionError("unreachable")  # pragma: no cover

    async def watch(self, channel: str) -> None:
        self._roster.watched.add(channel)
        await self.add_channel(EVENTS + channel, None)

    def unwatch(self, channel: str) -> None:
        self._roster.watched.discard(channel)
        self.remove_channel(EVENTS + channel)

    def remove_channel(self, channel: str) -> None:
        self._streams.remove(channel)
        self._wanted.discard(channel)
        self._dirty.set()

    async def wait_connected(self) -> None:
        """Returns once connected, or closing."""
        await self._up.wait()

    # -- the listener -----------------------------------------------------------------------

    # ASYNC128: _listen() reports started, once first connected.
    async def run(self, hub: Sink, *, task_status: TaskStatus[None]) -> None:  # noqa: ASYNC128
        """Runs the client and the listener until cancelled; reports started once first
        connected.

        Raises:
            BrokerUnavailable: the first connection failed.
        """
        client: coredis.Redis[bytes] = coredis.Redis.from_url(
            self._url,
            decode_responses=False,
            retry_policy=NoRetryPolicy(),
            connect_timeout=self._timeout,
            stream_timeout=self._timeout,
        )
        pool = client.connection_pool
        pool.connection_class = tidy(pool.connection_class)
        # Shielded: coredis must stop the listener (unsubscribing on a live connection) before
        # its pool goes, so the server's cancellation reaches this task only through close().
        with anyio.CancelScope(shield=True) as self._lifetime:
            if self._closing:
                return
            async with client:
                self._client = client
                try:
                    async with anyio.create_task_group() as group:
                        group.start_soon(self._streams.run, client, hub)
                        group.start_soon(self._roster.run, client)
                        with self._listening:
                            await self._listen(hub, task_status)
                        with anyio.move_on_after(self._timeout):  # a goodbye, if it can
                            await self._roster.farewell(client)
                        group.cancel_scope.cancel()
                finally:
                    self._client = None

    def close(self) -> None:
        """Stops the listener, then the client; bounded by ``connect_timeout``. A connected
        listener unsubscribes from everything first (which coredis would otherwise do on its
        way out, waiting a fixed 0.1 s for the acknowledgements)."""
        self._closing = True
        self._up.set()  # wait_connected returns: its hub is closed
        self._wanted.clear()
        if self.connected:
            self._dirty.set()  # _keep_synced unsubscribes, then cancels the listener
        else:
            self._listening.cancel()
        if self._lifetime is not None:
            self._lifetime.deadline = anyio.current_time() + self._timeout

    async def _listen(self, hub: Sink, task_status: TaskStatus[None]) -> None:
        started = False
        delay = self._reconnect_min
        while True:
            failure: Exception | None = None
            try:
                async with self._open_pubsub() as pubsub:
                    await self._sync(pubsub)  # everything wanted, again after a reconnect
                    self._set_connected(True)
                    if not started:
                        started = True
                        task_status.started()
                    else:
                        logger.info("reconnected to the broker at %s", self.display)
                    delay = self._reconnect_min
                    async with anyio.create_task_group() as group:
                        group.start_soon(self._keep_synced, pubsub)
                        await self._consume(pubsub, hub)
            except Exception as error:  # the connection failed, whichever way
                failure = error
            was_connected = self.connected
            self._set_connected(False)
            if self._closing and started:
                return  # the connection failed while the hub closed: nothing to report
            reason = describe(failure, self._timeout) if failure is not None else "closed"
            if not started:
                raise BrokerUnavailable(
                    f"cannot reach the broker at {self.display} ({reason})"
                ) from failure
            if was_connected:
                logger.warning("lost the broker at %s (%s); reconnecting", self.display, reason)
                hub.gap(f"lost the connection to the broker ({reason})")
            await anyio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, self._reconnect_max)

    def _open_pubsub(self) -> PubSub[bytes]:
        # coredis' retries off: the listener reconnects by itself, so it can report the gap
        assert self._client is not None
        return self._client.pubsub(
            ignore_subscribe_messages=True, retry_policy=None, subscription_timeout=self._timeout
        )

    async def _consume(self, pubsub: PubSub[bytes], hub: Sink) -> None:
        prefix, skip = self._prefix_bytes, len(self._prefix_bytes)
        while True:
            message = await pubsub.get_message()
            if message is None or message["type"] != "message":
                continue  # acknowledgements (filtered to None), pattern messages
            channel, data = message["channel"], message["data"]
            if isinstance(channel, bytes) and channel.startswith(prefix):
                payload = data if isinstance(data, bytes) else str(data).encode()
                name = channel[skip:].decode("utf-8", "replace")
                if name.startswith(EVENTS):
                    self._presence_event(hub, name[len(EVENTS) :], payload)
                else:
                    hub.deliver(name, decode(payload))

    def _presence_event(self, hub: Sink, channel: str, payload: bytes) -> None:
        try:
            event = event_from_json(payload)
        except (ValueError, TypeError, KeyError):
            logger.warning("ignored a malformed presence event on %r", channel)
            return
        hub.presence_event(channel, event)

    async def _keep_synced(self, pubsub: PubSub[bytes]) -> None:
        while True:
            await self._dirty.wait()
            self._dirty = anyio.Event()
            await self._sync(pubsub)
            if self._closing:
                self._listening.cancel()

    async def _sync(self, pubsub: PubSub[bytes]) -> None:
        """Subscribes and unsubscribes at the server until it has what is wanted here."""
        while True:
            add = sorted(self._wanted - self._live)
            drop = sorted(self._live - self._wanted)
            if not add and not drop:
                return
            if add:
                await pubsub.subscribe(*(self._prefix + channel for channel in add))
                self._live.update(add)
                self._notify()
            if drop:
                self._live.difference_update(drop)
                await pubsub.unsubscribe(*(self._prefix + channel for channel in drop))

    def _set_connected(self, connected: bool) -> None:
        self.connected = connected
        if connected:
            self._up.set()
        else:
            self._live.clear()
            if self._up.is_set() and not self._closing:
                self._up = anyio.Event()
        self._notify()

    def _notify(self) -> None:
        self._live_changed.set()
        self._live_changed = anyio.Event()
