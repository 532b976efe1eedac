"""Presence through Redis: who is in a channel, across processes, and entries that expire.

Per channel, a hash (client name -> the member as JSON) and a sorted set (client name -> when
its entry expires, in the server's clock). Joining, leaving and sweeping are Lua scripts that
change both and publish the ``Joined`` / ``Left`` event on the channel's presence events
channel, which the pub/sub listener hands to the hub. Each process renews its own entries every
third of ``presence_ttl`` (writing them again after a server restart) and sweeps the expired
entries of its channels, announcing each as left: a process that died without leaving drops
out within ``presence_ttl`` seconds and a bit. Leaving never waits: the subscription queues it,
and this module's task sends it.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import anyio
import coredis
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from coredis.exceptions import RedisError

from ._presence import Member

logger = logging.getLogger("shallot.broadcast")

#: the name (after the hub's prefix) of a channel's presence events at the server
EVENTS = "\x00p:"

_NOW = "local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"

_JOIN = (
    _NOW
    + """
for i = 2, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[1]), ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], 2 * ARGV[1])
redis.call('PEXPIRE', KEYS[2], 2 * ARGV[1])
if KEYS[3] then redis.call('PUBLISH', KEYS[3], 'j' .. ARGV[3]) end
"""
)

_LEAVE = """
local data = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if data then redis.call('PUBLISH', KEYS[3], 'l' .. data) end
"""

_SWEEP = (
    _NOW
    + """
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, client in ipairs(gone) do
  local data = redis.call('HGET', KEYS[1], client)
  redis.call('HDEL', KEYS[1], client)
  redis.call('ZREM', KEYS[2], client)
  if data then redis.call('PUBLISH', KEYS[3], 'l' .. data) end
end
return redis.call('HGETALL', KEYS[1])
"""
)


class RedisRoster:
    """The presence side of one Redis broker (see the module docstring)."""

    def __init__(self, prefix: str, ttl: float) -> None:
        self._prefix = prefix
        self._ttl = ttl
        self._local: dict[tuple[str, str], Member] = {}  # (channel, client) -> member
        self._leaving: MemoryObjectSendStream[tuple[str, Member]] | None = None  # while running
        self._scripts: dict[str, Any] = {}
        self._pending: set[str] = set()  # clients whose leave is queued: gone already here
        self.watched: set[str] = set()  # channels with join_leave subscribers here: swept

    def _keys(self, channel: str) -> list[str]:
        prefix = self._prefix
        return [f"{prefix}presence:{channel}", f"{prefix}presence-at:{channel}",
                f"{prefix}{EVENTS}{channel}"]  # fmt: skip

    def _script(self, client: coredis.Redis[bytes], source: str) -> Any:
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = client.register_script(source)
        return script

    async def join(self, client: coredis.Redis[bytes], channel: str, member: Member) -> None:
        args = [int(self._ttl * 1000), member.client, member.to_json()]
        await self._script(client, _JOIN)(keys=self._keys(channel), args=args)
        self._local[(channel, member.client)] = member

    def leave(self, channel: str, member: Member) -> None:
        if self._local.pop((channel, member.client), None) is not None:
            self._pending.add(member.client)
            if self._leaving is not None:
                self._leaving.send_nowait((channel, member))

    async def members(self, client: coredis.Redis[bytes], channel: str) -> dict[str, Member]:
        """Sweeps the expired entries out, then returns the others."""
        reply = await self._script(client, _SWEEP)(keys=self._keys(channel), args=[])
        found: dict[str, Member] = {}
        for index in range(1, len(reply), 2):
            try:
                member = Member.from_json(reply[index])
            except (ValueError, TypeError):  # not ours: skip it
                continue
            if member.client not in self._pending:
                found[member.client] = member
        return found

    async def run(self, client: coredis.Redis[bytes]) -> None:
        """Sends the leaves, renews this process's entries and sweeps, until cancelled."""
        send, receive = anyio.create_memory_object_stream[tuple[str, Member]](math.inf)
        with send, receive:
            self._leaving = send
            try:
                await self._keep(client, receive)
            finally:
                self._leaving = None

    async def _keep(
        self,
        client: coredis.Redis[bytes],
        leaving: MemoryObjectReceiveStream[tuple[str, Member]],
    ) -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(self._send_leaves, client, leaving)
            while True:
                await anyio.sleep(self._ttl / 3)
                try:
                    await self._renew(client)
                except (RedisError, OSError, TimeoutError) as error:
                    logger.debug("cannot renew presence (%s); next time", error)

    async def _send_leaves(
        self,
        client: coredis.Redis[bytes],
        leaving: MemoryObjectReceiveStream[tuple[str, Member]],
    ) -> None:
        async for channel, member in leaving:
            try:
                await self._script(client, _LEAVE)(keys=self._keys(channel), args=[member.client])
            except (RedisError, OSError, TimeoutError) as error:  # it will expire instead
                logger.debug("cannot say %s left %r (%s)", member.member, channel, error)
            self._pending.discard(member.client)

    async def _renew(self, client: coredis.Redis[bytes]) -> None:
        by_channel: dict[str, list[Member]] = {}
        for (channel, _), member in list(self._local.items()):
            by_channel.setdefault(channel, []).append(member)
        for channel, members in by_channel.items():
            args: list[Any] = [int(self._ttl * 1000)]
            for member in members:
                args += [member.client, member.to_json()]
            await self._script(client, _JOIN)(keys=self._keys(channel)[:2], args=args)
        for channel in by_channel.keys() | self.watched:
            await self.members(client, channel)  # sweeps the dead out, announcing them

    async def farewell(self, client: coredis.Redis[bytes]) -> None:
        """Says every member of this process left (the hub is closing)."""
        while self._local:
            (channel, _), member = self._local.popitem()
            await self._script(client, _LEAVE)(keys=self._keys(channel), args=[member.client])
