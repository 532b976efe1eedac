"""Channels with history through a real ``redis-server`` losing its connections (issue 17): a
dropped connection is recovered from the streams (no gap), a killed server ends in
``Unrecovered`` or everything, once and in order, and nothing hangs. The rules shared with the
in-memory broker are in ``test_broadcast_history``.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.lowlevel
import coredis
import pytest

from shallot.broadcast import (
    BrokerUnavailable,
    Gap,
    History,
    Hub,
    Position,
    Subscription,
    Unrecovered,
    open_hub,
)
from shallot.broadcast._subscription import CATCH_UP_ROOM

from .integration.redis_server import RedisServer, running_redis
from .integration.tcp_proxy import Proxy, open_proxy

HISTORY = {"room:*": History(size=1_000, ttl=600)}
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def redis() -> Iterator[RedisServer]:  # one per test: these tests kill it
    with running_redis() as server:
        yield server


@pytest.fixture
def prefix() -> str:
    return f"test-{uuid.uuid4().hex[:8]}:"


@asynccontextmanager
async def cut_off_pair(redis: RedisServer, prefix: str) -> AsyncIterator[tuple[Proxy, Hub, Hub]]:
    """Yields a proxy to ``redis``, a hub ``here`` behind it (which the proxy can cut off) and a
    hub ``there`` on Redis itself, another process as far as Redis knows."""
    async with (
        open_proxy(redis.port) as proxy,
        open_hub(proxy.url, prefix=prefix, history=HISTORY, reconnect_max=0.1) as here,
        open_hub(redis.url, prefix=prefix, history=HISTORY) as there,
    ):
        yield proxy, here, there


async def test_a_dropped_connection_is_recovered_not_a_gap(redis: RedisServer, prefix: str) -> None:
    """Hub ``here`` loses its connections (the server stays up) while ``there``, another
    process as far as Redis knows, keeps publishing: the history subscriber gets every message,
    once, in order; the plain subscriber gets a gap."""
    with anyio.fail_after(20):
        async with (
            cut_off_pair(redis, prefix) as (proxy, here, there),
            here.subscribe("room:g", max_buffer=100) as room,
            here.subscribe("plain") as plain,
        ):
            numbers = iter(range(60))

            async def publish(count: int) -> None:
                for _ in range(count):
                    await there.publish("room:g", str(next(numbers)))

            await publish(10)
            assert [await room.receive() for _ in range(10)] == [str(n) for n in range(10)]
            proxy.cut()
            assert isinstance(await plain.receive(), Gap)
            await publish(30)  # while ``here`` is cut off
            proxy.restore()
            await here.wait_connected()
            await publish(20)
            got = [await room.receive() for _ in range(50)]
            assert got == [str(n) for n in range(10, 60)]
            assert room.buffered == 0
            assert here.statistics().gaps >= 1


async def test_a_catch_up_longer_than_the_buffer_reaches_a_reader_that_keeps_up(
    redis: RedisServer, prefix: str
) -> None:
    """What was published while the connection was cut comes in one read from the stream,
    far more than ``max_buffer``: a subscriber that always waits for the next message still
    gets all of it, in order, with no ``Gap`` (the catch-up does not count against its
    ``max_buffer``); one that never reads holds it too, within its bound."""
    got: list[object] = []
    with anyio.fail_after(20):
        async with (
            cut_off_pair(redis, prefix) as (proxy, here, there),
            here.subscribe("room:c", max_buffer=8) as room,
            here.subscribe("room:c", max_buffer=8) as stuck,  # never read
            here.subscribe("plain") as plain,
            anyio.create_task_group() as tg,
        ):
            everything = [str(number) for number in range(215)]
            all_read = anyio.Event()

            async def read() -> None:
                async for item in room:
                    got.append(item)
                    if len(got) == len(everything) or not isinstance(item, str):
                        all_read.set()

            tg.start_soon(read)
            await there.publish_many("room:c", everything[:5])
            proxy.cut()
            assert isinstance(await plain.receive(), Gap)  # ``here`` knows it is cut off
            await there.publish_many("room:c", everything[5:205])
            proxy.restore()
            await here.wait_connected()
            await there.publish_many("room:c", everything[205:])
            await all_read.wait()
            assert got == everything
            assert room.dropped == 0
            # the 200 of the catch-up past max_buffer (and what came live with them), bounded
            assert 200 <= stuck.buffered <= 8 + CATCH_UP_ROOM + 1
            assert stuck.buffered + stuck.dropped in (len(everything), len(everything) + 1)
            tg.cancel_scope.cancel()


async def read_until(
    subscription: Subscription,
    last: set[str],
    into: list[tuple[object, Position | None]],
    midway: anyio.Event,
) -> None:
    """Records every item with the position after it, until every message of ``last`` came;
    sets ``midway`` at the 40th."""
    missing = set(last)
    async for item in subscription:
        into.append((item, subscription.position))
        if len(into) == 40:
            midway.set()
        missing.discard(str(item))
        if not missing:
            return


def check_exactly_once_in_order(
    items: list[tuple[object, Position | None]], acks: dict[Position, str]
) -> None:
    """Between ``Unrecovered`` markers the offsets run on one by one (nothing lost silently,
    nothing doubled); each message is the one acknowledged at its position; and every message
    acknowledged after the last marker arrived."""
    last: Position | None = None
    for item, position in items:
        assert position is not None
        assert not isinstance(item, Gap), items
        if isinstance(item, Unrecovered):
            last = position
            continue
        if last is not None and last.epoch == position.epoch:
            assert position.offset == last.offset + 1, (last, position)
        last = position
        assert acks.get(position, item) == item, (position, item)
    markers = [position for item, position in items if isinstance(item, Unrecovered)]
    floor = markers[-1] if markers else None
    received = {position for _, position in items}
    for position in acks:
        if floor is not None and position.epoch == floor.epoch and position.offset > floor.offset:
            assert position in received, position


@pytest.mark.slow
async def test_redis_killed_while_two_processes_publish(redis: RedisServer, prefix: str) -> None:
    count = 300
    command = [sys.executable, "-m", "tests.integration.history_publisher", redis.url, prefix]
    records: list[list[tuple[object, Position | None]]] = [[], []]
    acks: dict[Position, str] = {}
    last = {f"p{name}:{count - 1}" for name in (1, 2)}
    with anyio.fail_after(60):
        async with (
            open_hub(redis.url, prefix=prefix, history=HISTORY, reconnect_max=0.2) as one,
            open_hub(redis.url, prefix=prefix, history=HISTORY, reconnect_max=0.2) as two,
            one.subscribe("room:k", max_buffer=10_000) as first,
            two.subscribe("room:k", max_buffer=10_000) as second,
            anyio.create_task_group() as tg,
        ):
            midway = [anyio.Event(), anyio.Event()]
            tg.start_soon(read_until, first, last, records[0], midway[0])
            tg.start_soon(read_until, second, last, records[1], midway[1])
            publishers = [
                await anyio.open_process(
                    [*command, "room:k", f"p{name}", str(count)],
                    cwd=ROOT,
                    stderr=subprocess.STDOUT,
                )
                for name in (1, 2)
            ]
            outputs = [b"", b""]

            async def output_of(index: int) -> None:
                stdout = publishers[index].stdout
                assert stdout is not None
                async for data in stdout:
                    outputs[index] += data

            async with anyio.create_task_group() as readers:
                for index in range(2):
                    readers.start_soon(output_of, index)
                for event in midway:  # mid-stream
                    await event.wait()
                redis.kill()
                await anyio.to_thread.run_sync(redis.start)
                for process in publishers:
                    await process.wait()
                    await process.aclose()
    for index, output in enumerate(outputs):
        lines = output.decode().splitlines()
        assert lines[-1] == "done", output.decode()
        for line in lines:
            if line.startswith("ack "):
                _, number, epoch, offset = line.split()
                acks[Position(epoch, int(offset))] = f"p{index + 1}:{number}"
    for record in records:
        check_exactly_once_in_order(record, acks)
        assert any(isinstance(item, Unrecovered) for item, _ in record)  # the kill lost it all
    check_exactly_once_in_order(records[0], acks)


async def test_a_server_back_from_an_older_snapshot_starts_a_new_epoch(
    tmp_path: Path, prefix: str
) -> None:
    """Redis restarts from a snapshot older than its last writes (RDB after a crash, AOF
    everysec, a promoted replica): its offsets went back. Reusing them in the same epoch would
    hand a client coming back with since= later messages as if they followed what it read,
    and make live subscribers skip new ones as seen; a new epoch makes both ``Unrecovered``."""
    with running_redis(args=["--dir", str(tmp_path)]) as redis, anyio.fail_after(20):
        async with open_hub(redis.url, prefix=prefix, history=HISTORY, reconnect_max=0.2) as hub:
            async with hub.subscribe("room:rdb") as room, hub.subscribe("plain") as plain:
                for number in range(8):
                    await hub.publish("room:rdb", str(number))
                    if number == 4:
                        async with coredis.Redis.from_url(redis.url) as client:
                            await client.save()  # the snapshot: offsets 1-5
                assert [await room.receive() for _ in range(8)] == [str(n) for n in range(8)]
                kept = room.position
                assert kept is not None
                redis.kill()
                assert isinstance(await plain.receive(), Gap)  # the hub knows
                await anyio.to_thread.run_sync(redis.start)
                await hub.wait_connected()
                lost = await room.receive()
                assert isinstance(lost, Unrecovered), lost
                assert lost.position.epoch != kept.epoch
                after = [await hub.publish("room:rdb", f"after {n}") for n in range(5)]
                assert after[0] == Position(lost.position.epoch, 1)
                got = [await room.receive() for _ in range(5)]
                assert got == [f"after {n}" for n in range(5)]
            async with hub.subscribe("room:rdb", since=kept) as back:
                marker = await back.receive()
                assert isinstance(marker, Unrecovered)
                assert "another epoch" in marker.reason


async def test_since_from_before_a_restart_gets_the_new_epoch_from_its_start(
    redis: RedisServer, prefix: str
) -> None:
    """A client whose connection dropped because Redis restarted comes back with a position
    of the old epoch: it gets ``Unrecovered``, then the new epoch's messages from its first
    (the history holds them), as a subscriber that stayed through the restart does."""
    with anyio.fail_after(20):
        async with open_hub(redis.url, prefix=prefix, history=HISTORY, reconnect_max=0.2) as hub:
            async with hub.subscribe("room:r") as room:
                await hub.publish_many("room:r", ["a", "b"])
                assert [await room.receive() for _ in range(2)] == ["a", "b"]
                kept = room.position
            assert kept is not None
            async with hub.subscribe("plain") as plain:
                redis.kill()
                assert isinstance(await plain.receive(), Gap)  # the hub knows
                await anyio.to_thread.run_sync(redis.start)
                await hub.wait_connected()
            positions = await hub.publish_many("room:r", ["c", "d", "e"])
            epoch = positions[0].epoch if positions[0] is not None else ""
            assert epoch != kept.epoch
            assert positions == [Position(epoch, offset) for offset in (1, 2, 3)]
            async with hub.subscribe("room:r", since=kept) as back:
                marker = await back.receive()
                assert isinstance(marker, Unrecovered), marker
                assert "another epoch" in marker.reason
                assert marker.position == Position(epoch, 0)
                assert [await back.receive() for _ in range(3)] == ["c", "d", "e"]
                assert back.position == positions[-1]
                await hub.publish("room:r", "f")
                assert await back.receive() == "f"
                assert back.buffered == 0


async def test_a_subscription_with_history_needs_the_broker(
    redis: RedisServer, prefix: str
) -> None:
    with anyio.fail_after(10):
        async with (
            open_hub(redis.url, prefix=prefix, history=HISTORY, reconnect_max=0.2) as hub,
            hub.subscribe("plain") as plain,
        ):
            redis.kill()
            assert isinstance(await plain.receive(), Gap)  # the hub knows
            with pytest.raises(BrokerUnavailable, match=r"history of 'room:x'.*unreachable"):
                async with hub.subscribe("room:x"):
                    pytest.fail("subscribed without a broker")  # pragma: no cover
            await anyio.to_thread.run_sync(redis.start)
            await hub.wait_connected()
            async with hub.subscribe("room:x") as room:
                await hub.publish("room:x", "back")
                assert await room.receive() == "back"


async def test_a_subscriber_that_leaves_and_comes_back_gets_only_what_follows_its_entry(
    redis: RedisServer, prefix: str
) -> None:
    # A read sent from the channel's previous cursor could come back after the subscriber
    # entered again: its entries were taken for a trimmed gap (a spurious Unrecovered) and
    # delivered, though published before the new subscription began.
    async with open_hub(redis.url, prefix=prefix, history=HISTORY) as hub:
        stop = anyio.Event()

        async def publish_until_stopped() -> None:
            number = 0
            while not stop.is_set():
                await hub.publish("room:race", str(number))
                number += 1
                await anyio.lowlevel.checkpoint()

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(publish_until_stopped)
                for _ in range(400):
                    async with hub.subscribe("room:race") as subscription:
                        entered = subscription.position
                        assert entered is not None
                        for _ in range(2):
                            message = await subscription.receive()
                            assert isinstance(message, str), message
                            position = subscription.position
                            assert position is not None
                            assert position.offset > entered.offset
                stop.set()
