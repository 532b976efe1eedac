"""The Redis / Valkey broker: one pub/sub listener per process, through coredis (on anyio).

Publishing is a ``PUBLISH`` on the client's pool. Receiving is one pub/sub connection per
process, subscribed to the channels that have local subscribers; what it receives goes to the
hub, which fans it out. Subscription changes are applied by one task (``_keep_synced``), so the
set subscribed at the server converges on the set wanted here without races, and a new
subscriber waits for the server's acknowledgement, so what is published after it entered
reaches it. When the connection drops, every subscriber gets a ``Gap`` at once; the listener
reconnects with exponential backoff (with jitter) and subscribes everything again. Publishing
while the server is unreachable raises ``BrokerUnavailable``: coredis' own retries are off, so
nothing waits longer than ``connect_timeout``.

Messages keep their type across the wire with a two-byte tag (text or bytes); a message
published by another Redis client arrives as ``bytes``.
"""

from __future__ import annotations

import logging
import random
from urllib.parse import urlsplit, urlunsplit

import anyio
import coredis
from anyio.abc import TaskStatus
from anyio.lowlevel import checkpoint
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from coredis.connection import BaseConnection
from coredis.exceptions import RedisError
from coredis.patterns.pubsub import PubSub
from coredis.retry import NoRetryPolicy

from ._errors import BrokerUnavailable
from ._hub import Hub

logger = logging.getLogger("shallot.broadcast")

_TEXT = b"\x00t"
_BINARY = b"\x00b"


def encode(message: str | bytes) -> bytes:
    """Returns the payload that carries ``message`` and its type."""
    if isinstance(message, str):
        return _TEXT + message.encode("utf-8")
    return _BINARY + message


def decode(payload: bytes) -> str | bytes:
    """Returns the message a payload carries (a foreign payload as it came)."""
    tag = payload[:2]
    if tag == _TEXT:
        return payload[2:].decode("utf-8", "replace")
    if tag == _BINARY:
        return payload[2:]
    return payload


def _describe(error: BaseException) -> str:
    inner = getattr(error, "exceptions", None)  # the lone error a task group wrapped
    if isinstance(inner, tuple) and len(inner) == 1 and isinstance(inner[0], BaseException):
        return _describe(inner[0])
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _for_display(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + netloc))


def _tidy(connection_class: type[BaseConnection]) -> type[BaseConnection]:
    """Returns a subclass of coredis' connection class that closes its memory object streams
    when it is done, also when it never connected (coredis 6 leaves them to the garbage
    collector then, which warns about each: a ResourceWarning per failed reconnection)."""

    class TidyConnection(connection_class):  # type: ignore[valid-type,misc]
        # ASYNC128: coredis' run() calls task_status.started(); this only wraps it.
        async def run(  # noqa: ASYNC128
            self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
        ) -> None:
            try:
                await super().run(task_status=task_status)
            finally:
                for value in list(vars(self).values()):
                    if isinstance(value, (MemoryObjectSendStream, MemoryObjectReceiveStream)):
                        value.close()

    TidyConnection.__name__ = TidyConnection.__qualname__ = f"Tidy{connection_class.__name__}"
    return TidyConnection


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
    ) -> None:
        scheme, _, rest = url.partition("://")
        scheme = {"valkey": "redis", "valkeys": "rediss"}.get(scheme.lower(), scheme)
        self._url = f"{scheme}://{rest}"
        self.display = _for_display(url)
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
        self._up = anyio.Event()
        self._closing = False
        self._listening = anyio.CancelScope()
        self._lifetime: anyio.CancelScope | None = None

    # -- the hub's side ---------------------------------------------------------------------

    async def publish(self, channel: str, message: str | bytes) -> None:
        client = self._client
        if client is None or not self.connected:  # the listener is reconnecting: fail fast
            await checkpoint()
            raise BrokerUnavailable(
                f"cannot publish to {channel!r}: the broker at {self.display} is unreachable"
                " (reconnecting)"
            )
        try:
            await client.publish(self._prefix + channel, encode(message))
        except (RedisError, OSError, TimeoutError) as error:
            raise BrokerUnavailable(
                f"cannot publish to {channel!r}: the broker at {self.display} is unreachable"
                f" ({_describe(error)})"
            ) from error

    async def add_channel(self, channel: str) -> bool:
        """Wants ``channel`` subscribed; returns whether the server acknowledged it in time
        (False at once while disconnected)."""
        self._wanted.add(channel)
        self._dirty.set()
        if channel in self._live or not self.connected:
            await checkpoint()
            return channel in self._live
        with anyio.move_on_after(self._timeout):
            while channel not in self._live and self.connected:
                await self._live_changed.wait()
        return channel in self._live

    def remove_channel(self, channel: str) -> None:
        self._wanted.discard(channel)
        self._dirty.set()

    async def wait_connected(self) -> None:
        await self._up.wait()

    # -- the listener -----------------------------------------------------------------------

    # ASYNC128: _listen() reports started, once first connected.
    async def run(self, hub: Hub, *, task_status: TaskStatus[None]) -> None:  # noqa: ASYNC128
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
        pool.connection_class = _tidy(pool.connection_class)
        # Shielded: coredis must stop the listener (unsubscribing on a live connection) before
        # its pool goes, so the server's cancellation reaches this task only through close().
        with anyio.CancelScope(shield=True) as self._lifetime:
            if self._closing:
                return
            async with client:
                self._client = client
                try:
                    with self._listening:
                        await self._listen(hub, task_status)
                finally:
                    self._client = None

    def close(self) -> None:
        """Stops the listener, then the client; bounded by ``connect_timeout``. A connected
        listener unsubscribes from everything first (which coredis would otherwise do on its
        way out, waiting a fixed 0.1 s for the acknowledgements)."""
        self._closing = True
        self._wanted.clear()
        if self.connected:
            self._dirty.set()  # _keep_synced unsubscribes, then cancels the listener
        else:
            self._listening.cancel()
        if self._lifetime is not None:
            self._lifetime.deadline = anyio.current_time() + self._timeout

    async def _listen(self, hub: Hub, task_status: TaskStatus[None]) -> None:
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
            reason = _describe(failure) if failure is not None else "closed"
            if not started:
                raise BrokerUnavailable(
                    f"cannot reach the broker at {self.display} ({reason})"
                ) from failure
            if was_connected:
                logger.warning("lost the broker at %s (%s); reconnecting", self.display, reason)
                hub._gap(f"lost the connection to the broker ({reason})")
            await anyio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, self._reconnect_max)

    def _open_pubsub(self) -> PubSub[bytes]:
        # coredis' retries off: the listener reconnects by itself, so it can report the gap
        assert self._client is not None
        return self._client.pubsub(
            ignore_subscribe_messages=True, retry_policy=None, subscription_timeout=self._timeout
        )

    async def _consume(self, pubsub: PubSub[bytes], hub: Hub) -> None:
        prefix, skip = self._prefix_bytes, len(self._prefix_bytes)
        while True:
            message = await pubsub.get_message()
            if message is None or message["type"] != "message":
                continue  # acknowledgements (filtered to None), pattern messages
            channel, data = message["channel"], message["data"]
            if isinstance(channel, bytes) and channel.startswith(prefix):
                payload = data if isinstance(data, bytes) else str(data).encode()
                hub._deliver(channel[skip:].decode("utf-8", "replace"), decode(payload))

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
            if self._up.is_set():
                self._up = anyio.Event()
        self._notify()

    def _notify(self) -> None:
        self._live_changed.set()
        self._live_changed = anyio.Event()
