"""Channels with history through Redis Streams (Redis 5+): publish, recover, and the live feed.

A channel with history is two keys: a stream holding its last messages (``XADD ... MAXLEN ~``,
entry IDs ``<offset>-0``, so an offset is an ID and ``XRANGE`` recovers by offset) and a hash
holding its epoch and last offset. Publishing runs one Lua script that numbers the message and
appends it atomically (and starts a new epoch, dropping any stream left over, when the hash is
gone: a server restarted without persistence, or the history expired; or when the hash was
written by another run of the server: see ``_EPOCH``). The stream expires
``ttl`` seconds after the last publish; the hash a good while later, so that an idle channel
keeps its epoch.

The live feed is one task per process, ``StreamFeed.run``: ``XREAD BLOCK`` over the streams of
the channels with subscribers here, from the offset each has reached (its cursor). Because it
reads from a cursor, a lost connection loses nothing: after reconnecting it reads on from where
it was. It checks every entry: an entry of another epoch means the history was lost (its
subscribers get ``Unrecovered``, and the cursor starts again at the new epoch's beginning), an
offset that skips means entries were trimmed before this process read them (``Unrecovered``
too). A private wake-up stream interrupts the blocking read when a channel is added here.
The first read after a (re)connection brings what was published meanwhile (up to ``_BATCH``
entries per stream, and the reads after it while they come full): that catch-up goes to the
subscribers as batches (``Hub._deliver_batch``), which do not count against their
``max_buffer``, so it does not overflow a subscriber that keeps up, and no subscriber waits for
another. Later reads are delivered message by message, as live messages.
"""

from __future__ import annotations

import logging
import random
import uuid
from typing import Any

import anyio
import coredis
from coredis.exceptions import RedisError
from coredis.response.types import StreamEntry
from coredis.tokens import PureToken

from ._broker import Sink
from ._history import History, Position, Published, Recovery, new_epoch, recovery_of
from ._subscription import CATCH_UP_ROOM
from ._wire import decode

logger = logging.getLogger("shallot.broadcast")

#: the epoch hash outlives the stream by this much (an idle channel keeps its epoch)
META_TTL = 30 * 24 * 3600.0
_BATCH = CATCH_UP_ROOM  # entries per stream per XREAD: a catch-up batch holds no more

# The channel's epoch (KEYS[2] the hash, KEYS[1] the stream; ARGV[1] a new epoch's name,
# ARGV[2] the hash's ttl). An epoch belongs to one run of the server, its run_id: a server
# restarted from a snapshot older than its last write (RDB after a crash, AOF everysec, a
# promoted replica) has the same epoch with fewer offsets, and would give out offsets again,
# so that a subscriber coming back with since= gets other messages than it missed. Asked in
# the script, so no publish can use a stale answer: INFO takes about 2 us at the server
# (scripts may call it since Redis 5, which replicates their effects, not the script).
_EPOCH = """
local run = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')
local epoch = redis.call('HGET', KEYS[2], 'e')
if epoch and redis.call('HGET', KEYS[2], 'r') ~= run then
  epoch = false
end
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'e', epoch, 'o', 0, 'r', run)
end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
"""

# ARGV[3] the payload, ARGV[4] the history's size, ARGV[5] the stream's ttl
_PUBLISH = (
    _EPOCH
    + """
local offset = redis.call('HINCRBY', KEYS[2], 'o', 1)
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], offset .. '-0', 'd', ARGV[3], 'e', epoch)
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return {epoch, offset}
"""
)

_POSITION = (
    _EPOCH
    + """
return {epoch, tonumber(redis.call('HGET', KEYS[2], 'o'))}
"""
)


class _Cursor:
    __slots__ = ("epoch", "offset")

    def __init__(self, epoch: str, offset: int) -> None:
        self.epoch = epoch
        self.offset = offset


def _position(reply: Any) -> Position:
    epoch, offset = reply
    return Position(epoch.decode() if isinstance(epoch, bytes) else str(epoch), int(offset))


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _offset_of(identifier: str | bytes) -> int:
    return int(_text(identifier).partition("-")[0])


def _message(entry: StreamEntry) -> Published:
    """Returns a stream entry as the message it carries, with its position."""
    fields = entry.field_values
    payload = fields.get(b"d", b"")
    epoch = _text(fields.get(b"e", b""))
    data = payload if isinstance(payload, bytes) else payload.encode()
    return Published(decode(data), epoch, _offset_of(entry.identifier))


class StreamFeed:
    """The history channels of one Redis broker (see the module docstring)."""

    def __init__(
        self, prefix: str, *, timeout: float, reconnect_min: float, reconnect_max: float
    ) -> None:
        self._prefix = prefix
        self._timeout = timeout
        self._reconnect_min = reconnect_min
        self._reconnect_max = reconnect_max
        self._cursors: dict[str, _Cursor] = {}
        self._wake_key = f"{prefix}wake:{uuid.uuid4().hex}"
        self._added = anyio.Event()
        self._publish: Any = None
        self._position: Any = None

    def stream_key(self, channel: str) -> str:
        return f"{self._prefix}stream:{channel}"

    def meta_key(self, channel: str) -> str:
        return f"{self._prefix}meta:{channel}"

    def _scripts(self, client: coredis.Redis[bytes]) -> tuple[Any, Any]:
        if self._publish is None:
            self._publish = client.register_script(_PUBLISH)
            self._position = client.register_script(_POSITION)
        return self._publish, self._position

    # -- the broker's side ------------------------------------------------------------------

    async def publish(
        self, client: coredis.Redis[bytes], channel: str, payload: bytes, history: History
    ) -> Position:
        """Numbers and appends a message; returns its position."""
        script = self._scripts(client)[0]
        keys = [self.stream_key(channel), self.meta_key(channel)]
        meta_ttl = int(max(history.ttl, META_TTL) * 1000)
        args = [new_epoch(), meta_ttl, payload, history.size, int(history.ttl * 1000)]
        return _position(await script(keys=keys, args=args))

    async def now(self, client: coredis.Redis[bytes], channel: str) -> Position:
        """Returns the channel's position (starting an epoch where there is none)."""
        script = self._scripts(client)[1]
        keys = [self.stream_key(channel), self.meta_key(channel)]
        return _position(await script(keys=keys, args=[new_epoch(), int(META_TTL * 1000)]))

    async def add(self, client: coredis.Redis[bytes], channel: str) -> None:
        """Makes the live feed read ``channel`` from its position now on."""
        if channel in self._cursors:
            return
        position = await self.now(client, channel)
        if channel not in self._cursors:
            self._cursors[channel] = _Cursor(*position)
            self._added.set()
            await client.xadd(
                self._wake_key, {b"w": b"1"}, trim_strategy=PureToken.MAXLEN, threshold=1
            )
            await client.pexpire(self._wake_key, 60_000)

    def remove(self, channel: str) -> None:
        self._cursors.pop(channel, None)

    async def recover(
        self,
        client: coredis.Redis[bytes],
        channel: str,
        history: History,
        since: Position | None,
    ) -> Recovery:
        """Returns what was published after ``since`` (see ``recovery_of``)."""
        now = await self.now(client, channel)
        after = since.offset if since is not None and since.epoch == now.epoch else 0
        if since is None or after >= now.offset:
            return recovery_of(since, now, 0, [])
        if now.offset - after > history.size:  # more than is kept: do not fetch it
            return recovery_of(since, now, now.offset - history.size + 1, [])
        # since's epoch, or another: then the channel's epoch from its start, if still kept
        entries = await client.xrange(self.stream_key(channel), f"{after + 1}-0", f"{now.offset}-0")
        found = [message for message in map(_message, entries) if message.epoch == now.epoch]
        first = found[0].offset if found else 0
        return recovery_of(since, now, first, found)

    # -- the live feed ----------------------------------------------------------------------

    async def run(self, client: coredis.Redis[bytes], hub: Sink) -> None:
        """Reads the streams of the channels with subscribers here, until cancelled,
        reconnecting with backoff when the server goes away."""
        delay = self._reconnect_min
        wake_id = "0-0"
        while True:
            try:
                wake_id = await self._follow(client, hub, wake_id)
            except (RedisError, OSError, TimeoutError) as error:
                logger.debug("the history feed lost the broker (%s); reconnecting", error)
            await anyio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, self._reconnect_max)

    async def _follow(self, client: coredis.Redis[bytes], hub: Sink, wake_id: str) -> str:
        await self._check_epochs(client, hub)  # after a reconnection: was the history lost?
        block = max(1, int(self._timeout * 500))  # below the client's read timeout
        # The first read after a (re)connection brings what was published meanwhile, and so
        # do the reads after it while they come full: that catch-up is handed over as batches.
        catching_up = True
        while True:
            if not self._cursors:
                self._added = anyio.Event()
                await self._added.wait()
                continue
            streams: dict[str | bytes, str] = {self._wake_key: wake_id}
            for channel, cursor in self._cursors.items():
                streams[self.stream_key(channel)] = f"{cursor.offset}-0"
            reply = await client.xread(streams, count=_BATCH, block=block)
            full = False
            for key, entries in (reply or {}).items():
                name = key.decode() if isinstance(key, bytes) else key
                if name == self._wake_key:
                    if entries:
                        wake_id = _text(entries[-1].identifier)
                    continue
                channel = name[len(self._prefix) + len("stream:") :]
                self._take(hub, channel, entries, catching_up)
                full = full or len(entries) >= _BATCH
            catching_up = catching_up and full

    def _take(self, hub: Sink, channel: str, entries: Any, catching_up: bool) -> None:
        cursor = self._cursors.get(channel)
        if cursor is None:
            return  # left meanwhile
        run: list[Published] = []  # what follows the cursor
        for entry in entries:
            message = _message(entry)
            epoch, offset = message.epoch, message.offset
            if run and (epoch != cursor.epoch or offset > cursor.offset + 1):
                _hand_over(hub, channel, run, catching_up)  # what came before the marker
                run = []
            if epoch != cursor.epoch:
                cursor.epoch, cursor.offset = epoch, 0
                reason = "the channel's history was lost (a new epoch began)"
                hub.unrecovered(channel, reason, Position(epoch, 0))
                return  # read the new epoch from its start
            if offset <= cursor.offset:
                # an XREAD sent from an older cursor of the channel (left and entered again
                # meanwhile) brings what the new one starts after: its subscribers have it
                continue
            if offset != cursor.offset + 1:
                reason = f"offsets {cursor.offset + 1}-{offset - 1} were trimmed before read"
                hub.unrecovered(channel, reason, Position(epoch, offset - 1))
            cursor.offset = offset
            run.append(message)
        if run:
            _hand_over(hub, channel, run, catching_up)

    async def _check_epochs(self, client: coredis.Redis[bytes], hub: Sink) -> None:
        for channel, cursor in list(self._cursors.items()):
            now = await self.now(client, channel)
            if self._cursors.get(channel) is cursor and now.epoch != cursor.epoch:
                cursor.epoch, cursor.offset = now.epoch, 0
                reason = "the channel's history was lost (a new epoch began)"
                hub.unrecovered(channel, reason, Position(now.epoch, 0))


def _hand_over(hub: Sink, channel: str, run: list[Published], catching_up: bool) -> None:
    """Delivers what a read brought: a catch-up as one batch, which does not count against
    the subscribers' ``max_buffer``; live messages one by one, as they would have come."""
    if catching_up:
        hub.deliver_batch(channel, run)
    else:
        for message in run:
            hub.deliver(channel, message)
