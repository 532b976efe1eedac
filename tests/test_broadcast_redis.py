"""The hub through a real ``redis-server``: several hubs (processes), one listener each, and
the broker crashing mid-stream (issue 7). The hub's general rules run on Redis too, in
``test_broadcast``. Skipped where redis-server is missing, never in CI.
"""

from __future__ import annotations

import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import anyio
import coredis
import pytest

from shallot import build_server
from shallot.broadcast import (
    BroadcastError,
    BrokerUnavailable,
    Gap,
    Subscription,
    hub_lifespan,
    open_hub,
)
from shallot.broadcast._connection import describe
from shallot.testing import LifespanError, TestClient

from .integration.redis_server import RedisServer, free_port, running_redis
from .integration.tcp_proxy import open_proxy

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup, ExceptionGroup


@pytest.fixture
def prefix() -> str:
    return f"test-{uuid.uuid4().hex[:8]}:"


@pytest.fixture
async def raw(redis: RedisServer) -> AsyncIterator[coredis.Redis[bytes]]:
    """A plain coredis client, to look at the server from outside the hub."""
    async with coredis.Redis.from_url(redis.url) as client:
        yield client


async def numsub(client: coredis.Redis[bytes], channel: str) -> int:
    return dict(await client.pubsub_numsub(channel)).get(channel.encode(), 0)


async def test_hubs_on_one_broker_hear_each_other(redis: RedisServer, prefix: str) -> None:
    with anyio.fail_after(10):
        async with (
            open_hub(redis.url, prefix=prefix) as one,
            open_hub(redis.url, prefix=prefix) as two,
            open_hub(redis.url, prefix="elsewhere:") as other,
        ):
            async with (
                one.subscribe("c") as at_one,
                two.subscribe("c") as at_two,
                other.subscribe("c") as at_other,
            ):
                await one.publish("c", "from one")
                await two.publish("c", b"from two")
                for subscription in (at_one, at_two):
                    assert await subscription.receive() == "from one"
                    assert await subscription.receive() == b"from two"
                await other.publish("c", "own prefix")
                assert await at_other.receive() == "own prefix"  # and nothing of the others


async def test_one_listener_per_process_and_channels_dropped_at_the_broker(
    redis: RedisServer, prefix: str, raw: coredis.Redis[bytes]
) -> None:
    with anyio.fail_after(10):
        async with open_hub(redis.url, prefix=prefix) as hub, AsyncExitStack() as stack:
            subscriptions = [
                await stack.enter_async_context(hub.subscribe("crowd")) for _ in range(50)
            ]
            assert await numsub(raw, f"{prefix}crowd") == 1  # one connection for all 50
            await raw.publish(f"{prefix}crowd", b"\x00tfrom outside")
            await raw.publish(f"{prefix}crowd", b"not shallot's")
            for subscription in subscriptions:
                assert await subscription.receive() == "from outside"
                assert await subscription.receive() == b"not shallot's"  # as it came
            await stack.aclose()
            assert hub.subscribers("crowd") == 0
            # The listener unsubscribes in the background; the server has no event to wait on.
            while await numsub(raw, f"{prefix}crowd"):  # noqa: ASYNC110
                await anyio.sleep(0.005)


async def collect(
    subscription: Subscription, after_gap: int, into: list[object], gap_seen: anyio.Event
) -> None:
    """Reads until ``after_gap`` messages arrived after the (first) gap."""
    count = 0
    async for item in subscription:
        into.append(item)
        if isinstance(item, Gap):
            gap_seen.set()
        elif gap_seen.is_set():
            count += 1
            if count == after_gap:
                return


def check_gap_stream(items: list[object]) -> None:
    """Before the gap and after it: consecutive numbers, increasing across it."""
    gap = next(index for index, item in enumerate(items) if isinstance(item, Gap))
    before = [int(str(item)) for item in items[:gap]]
    after = [int(str(item)) for item in items[gap + 1 :] if not isinstance(item, Gap)]
    assert before == list(range(before[0], before[0] + len(before))), items
    assert after == list(range(after[0], after[0] + len(after))), items
    assert not before or after[0] > before[-1]


async def test_broker_killed_and_restarted_mid_stream(redis: RedisServer, prefix: str) -> None:
    """Subscribers (of two hubs) see a gap at once, publishing fails clearly while the broker
    is away, and everything resumes when it is back on the same port: nothing hangs."""
    streams: list[list[object]] = [[] for _ in range(4)]
    with anyio.fail_after(20):
        async with (
            open_hub(redis.url, prefix=prefix, reconnect_max=0.2) as one,
            open_hub(redis.url, prefix=prefix, reconnect_max=0.2) as two,
            AsyncExitStack() as stack,
            anyio.create_task_group() as tg,
        ):
            hubs = [one, one, two, two]
            subscriptions = [
                await stack.enter_async_context(hub.subscribe("s", max_buffer=10_000))
                for hub in hubs
            ]
            gaps = [anyio.Event() for _ in streams]
            for subscription, stream, gap in zip(subscriptions, streams, gaps, strict=True):
                tg.start_soon(collect, subscription, 20, stream, gap)
            number = 0

            async def publish_some(count: int) -> None:
                nonlocal number
                for _ in range(count):
                    await one.publish("s", str(number))
                    number += 1

            await publish_some(30)  # mid-stream: the subscribers are reading
            redis.kill()
            for gap in gaps:  # the gap reaches everyone, promptly
                with anyio.fail_after(2):
                    await gap.wait()
            with pytest.raises(BrokerUnavailable, match=r"cannot publish to 's'.*unreachable"):
                await one.publish("s", "lost")
            assert not one.connected
            assert not two.connected
            await anyio.to_thread.run_sync(redis.start)
            with anyio.fail_after(5):
                await one.wait_connected()
                await two.wait_connected()
            await publish_some(20)
    for stream in streams:
        assert sum(isinstance(item, Gap) for item in stream) == 1
        check_gap_stream(stream)
    assert one.statistics().gaps == two.statistics().gaps == 1


async def test_subscribing_while_the_broker_is_away_starts_with_a_gap(
    redis: RedisServer, prefix: str
) -> None:
    with anyio.fail_after(10):
        async with open_hub(redis.url, prefix=prefix, reconnect_max=0.2) as hub:
            async with hub.subscribe("watch") as watch:
                redis.kill()
                assert isinstance(await watch.receive(), Gap)
                async with hub.subscribe("late") as late:  # not subscribed at the broker yet
                    gap = await late.receive()
                    assert isinstance(gap, Gap)
                    assert "not subscribed at the broker" in gap.reason
                    await anyio.to_thread.run_sync(redis.start)
                    await hub.wait_connected()
                    await hub.publish("late", "live now")
                    assert await late.receive() == "live now"
                    assert late.buffered == 0


async def test_closing_the_hub_ends_wait_connected_while_the_broker_is_away(
    redis: RedisServer, prefix: str
) -> None:
    """A task waiting for the broker to come back must not outlive the hub (nor keep the app's
    shutdown waiting): it raises once the hub closes, and so does a wait on a closed hub."""
    outcome: list[BaseException] = []
    with anyio.fail_after(10):
        async with open_proxy(redis.port) as proxy, anyio.create_task_group() as tg:
            async with open_hub(proxy.url, prefix=prefix, reconnect_max=0.2) as hub:
                async with hub.subscribe("watch") as watch:
                    proxy.cut()
                    assert isinstance(await watch.receive(), Gap)

                    async def wait() -> None:
                        try:
                            await hub.wait_connected()
                        except BroadcastError as error:
                            outcome.append(error)

                    tg.start_soon(wait)
                    await anyio.wait_all_tasks_blocked()
                    assert not outcome  # waiting
        assert [str(error) for error in outcome] == ["the hub is closed"]
        with pytest.raises(BroadcastError, match="the hub is closed"):
            await hub.wait_connected()


async def test_a_publish_without_an_answer_says_it_may_still_be_delivered(prefix: str) -> None:
    """A paused server: the publish was sent, and times out. Publishing it again would send
    it twice, so the error must not say that nothing was published; and it was delivered."""
    with running_redis() as redis, anyio.fail_after(10):  # its own server: this one pauses
        async with (
            open_hub(redis.url, prefix=prefix, connect_timeout=0.5) as hub,
            hub.subscribe("s") as subscription,
        ):
            await hub.publish("s", "early")  # the connection it publishes on is up
            assert await subscription.receive() == "early"
            os.kill(redis.pid, signal.SIGSTOP)
            try:
                with pytest.raises(
                    BrokerUnavailable,
                    match=r"cannot publish to 's': the broker at redis://\S+ did not answer "
                    r"\(timed out after 0\.5s\); the message may still be delivered$",
                ):
                    await hub.publish("s", "late")
            finally:
                os.kill(redis.pid, signal.SIGCONT)
            assert await subscription.receive() == "late"


def test_a_failure_is_described_by_its_first_error_and_a_timeout_by_its_length() -> None:
    refused = ConnectionRefusedError("refused")
    assert describe(refused) == "ConnectionRefusedError: refused"
    assert describe(ExceptionGroup("one", [refused])) == "ConnectionRefusedError: refused"
    group = BaseExceptionGroup(
        "unhandled errors in a TaskGroup",
        [KeyboardInterrupt(), ExceptionGroup("inner", [refused, OSError("closed")])],
    )  # cancellations are BaseExceptions too: the first error that is an Exception tells
    assert describe(group) == "ConnectionRefusedError: refused; 1 more error"
    three = ExceptionGroup("x", [refused, refused, refused])
    assert describe(three) == "ConnectionRefusedError: refused; 2 more errors"
    assert describe(TimeoutError(), timeout=5.0) == "timed out after 5s"
    assert describe(TimeoutError(), timeout=0.25) == "timed out after 0.25s"
    assert describe(TimeoutError("PING timed out"), timeout=5.0) == "TimeoutError: PING timed out"
    assert describe(TimeoutError()) == "TimeoutError"


async def test_an_unreachable_broker_fails_the_start_clearly() -> None:
    url = f"redis://:secret@127.0.0.1:{free_port()}"  # nobody listens there
    with anyio.fail_after(10):
        with pytest.raises(
            BrokerUnavailable, match=r"cannot reach the broker at redis://"
        ) as error:
            async with open_hub(url):
                pytest.fail("started without a broker")  # pragma: no cover
        assert "secret" not in str(error.value)  # the password is not logged

        async def handler(request: dict[str, object]) -> dict[str, object]:
            return {"status": 204}  # pragma: no cover

        app = build_server(handler, lifespan=hub_lifespan(url))
        with pytest.raises(LifespanError, match="BrokerUnavailable: cannot reach the broker"):
            async with TestClient(app):
                pass  # pragma: no cover
