"""Fan-out benchmark of shallot's broadcast hub: one message to 1,000 and 10,000 subscribers.

For each broker (in memory; Redis when a server is at hand) and each backend (asyncio, trio):

- **messages/s**: one publisher publishes a message, and waits until every one of the N
  subscribers (each a task iterating its subscription) has received it; then the next. Reported
  as messages per second and as deliveries (message x subscriber) per second. For Redis a
  message goes to the server and back through the process's one listener, which fans it out.
- **pipelined** (``mode`` ``pipelined``): the publisher publishes batches of 32 messages without
  waiting in between (``hub.publish_many``, or ``Broadcast.publish`` in a loop for the peer),
  and each subscriber drains what has queued in one wake-up
  (``receive`` once, then ``receive_nowait`` while ``buffered``); the next batch goes once every
  subscriber has the last. Deliveries per second are what counts here.
- **the floor** (broker ``floor``): no hub at all, each subscriber a task woken through a
  semaphore of its own, one wake-up per delivery: what a waiting fan-out cannot beat on that
  backend.
- **the peer**: encode/broadcaster (``Broadcast("memory://")``, asyncio only: it is built on
  asyncio queues) doing the same, each subscriber a task iterating its subscription, when the
  ``broadcaster`` package is installed.
- **memory per subscriber**: tracemalloc's traced memory growth while N subscriptions are
  entered, divided by N: the subscription alone (entered from one task), and with a task of
  its own iterating it (what a websocket connection or a worker task adds).

Redis: ``--redis-url redis://...``, or a throwaway ``redis-server`` on a free loopback port when
the binary is installed (``--save "" --appendonly no``, stopped at the end); else the Redis rows
are skipped, and the output says so.

Run: ``.venv/bin/python benchmarks/fanout.py [--quick] [--redis-url URL]``
"""

from __future__ import annotations

import argparse
import gc
import shutil
import signal
import socket
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import anyio

from shallot.broadcast import Hub, open_hub

BACKENDS = ("asyncio", "trio")
SIZES = (1_000, 10_000)


BATCH = 32


@dataclass
class Result:
    mode: str
    broker: str
    backend: str
    subscribers: int
    messages: int
    seconds: float
    bytes_subscription: float
    bytes_with_task: float

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds

    @property
    def fanout_ms(self) -> float:
        return self.seconds / self.messages * 1000


async def memory_per_subscriber(hub: Hub, count: int, with_task: bool) -> float:
    """Bytes of traced memory per entered subscription (and its task)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        async with AsyncExitStack() as stack:
            if with_task:
                entered = 0
                all_in = anyio.Event()
                group = await stack.enter_async_context(anyio.create_task_group())

                async def subscriber() -> None:
                    nonlocal entered
                    async with hub.subscribe("memory") as subscription:
                        entered += 1
                        if entered == count:
                            all_in.set()
                        async for _ in subscription:
                            pass

                for _ in range(count):
                    group.start_soon(subscriber)
                await all_in.wait()
                await anyio.wait_all_tasks_blocked()
                after = tracemalloc.get_traced_memory()[0]
                group.cancel_scope.cancel()
            else:
                for _ in range(count):
                    await stack.enter_async_context(hub.subscribe("memory"))
                after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return (after - before) / count


class Tally:
    """What ``count`` subscribers received of the current batch of ``batch`` messages."""

    def __init__(self, count: int, batch: int) -> None:
        self.count = count
        self.batch = batch
        self.entered = 0
        self.all_in = anyio.Event()
        self.reset()

    def reset(self) -> None:
        self.waiting = self.count * self.batch
        self.received = anyio.Event()

    def enter(self) -> None:
        self.entered += 1
        if self.entered == self.count:
            self.all_in.set()

    def got(self, number: int) -> None:
        self.waiting -= number
        if self.waiting == 0:
            self.received.set()


async def timed(
    tally: Tally,
    subscriber: Callable[[Tally], Coroutine[Any, Any, None]],
    publish: Callable[[str], Awaitable[object]],
    messages: int,
) -> float:
    """Seconds to publish ``messages`` messages in batches of ``tally.batch``, each batch
    received by every subscriber (one task each) before the next is published."""
    async with anyio.create_task_group() as group:
        for _ in range(tally.count):
            group.start_soon(subscriber, tally)
        await tally.all_in.wait()
        start = time.perf_counter()
        for _ in range(messages // tally.batch):
            for number in range(tally.batch):
                await publish(str(number))
            await tally.received.wait()
            tally.reset()
        elapsed = time.perf_counter() - start
        group.cancel_scope.cancel()
    return elapsed


async def fanout_seconds(hub: Hub, count: int, messages: int) -> float:
    """One message at a time, every subscriber iterating its subscription."""

    async def subscriber(tally: Tally) -> None:
        async with hub.subscribe("fanout", max_buffer=4) as subscription:
            tally.enter()
            async for _ in subscription:
                tally.got(1)

    elapsed = await timed(Tally(count, 1), subscriber, partial(hub.publish, "fanout"), messages)
    assert hub.statistics().dropped == 0
    return elapsed


async def floor_seconds(count: int, messages: int) -> float:
    """The least a waiting fan-out can cost on this backend: no hub, each subscriber a task
    woken through a semaphore of its own, one wake-up per delivery."""
    bells: list[anyio.Semaphore] = []

    async def subscriber(tally: Tally) -> None:
        bell = anyio.Semaphore(0, fast_acquire=True)
        bells.append(bell)
        tally.enter()
        while True:
            await bell.acquire()
            tally.got(1)

    async def publish(message: str) -> None:
        for bell in bells:
            bell.release()

    return await timed(Tally(count, 1), subscriber, publish, messages)


async def pipelined_seconds(hub: Hub, count: int, messages: int) -> float:
    """Batches of ``BATCH``; each subscriber drains what queued in one wake-up."""

    async def subscriber(tally: Tally) -> None:
        async with hub.subscribe("pipelined", max_buffer=BATCH) as subscription:
            tally.enter()
            while True:
                await subscription.receive()
                got = 1
                while subscription.buffered:
                    subscription.receive_nowait()
                    got += 1
                tally.got(got)

    batch = [str(number) for number in range(BATCH)]

    async def publish(first: str) -> None:  # the batch at once, on its first message
        if first == "0":
            await hub.publish_many("pipelined", batch)

    elapsed = await timed(Tally(count, BATCH), subscriber, publish, messages)
    assert hub.statistics().dropped == 0
    return elapsed


async def broadcaster_seconds(count: int, messages: int, pipelined: bool) -> float:
    """The same with encode/broadcaster's in-memory backend (asyncio only)."""
    from broadcaster import Broadcast

    async with Broadcast("memory://") as broadcast:

        async def subscriber(tally: Tally) -> None:
            async with broadcast.subscribe("fanout") as subscription:
                tally.enter()
                async for _ in subscription:  # type: ignore[union-attr]
                    tally.got(1)

        tally = Tally(count, BATCH if pipelined else 1)
        return await timed(tally, subscriber, partial(broadcast.publish, "fanout"), messages)


def have_broadcaster() -> bool:
    try:
        import broadcaster  # noqa: F401
    except ModuleNotFoundError:
        return False
    return True


async def measure_peer(backend: str, count: int, messages: int, mode: str) -> Result:
    pipelined = mode == "pipelined"
    if pipelined:
        messages *= BATCH
    await broadcaster_seconds(count, max(BATCH, messages // 10), pipelined)  # warm up
    seconds = await broadcaster_seconds(count, messages, pipelined)
    done = messages // BATCH * BATCH if pipelined else messages
    return Result(mode, "broadcaster", backend, count, done, seconds, 0.0, 0.0)


async def measure_floor(backend: str, count: int, messages: int) -> Result:
    await floor_seconds(count, max(1, messages // 10))  # warm up
    seconds = await floor_seconds(count, messages)
    return Result("waiting", "floor", backend, count, messages, seconds, 0.0, 0.0)


async def measure_pipelined(url: str | None, broker: str, backend: str, count: int,
                            messages: int) -> Result:  # fmt: skip
    messages *= BATCH
    async with open_hub(url, prefix="bench:") as hub:
        await pipelined_seconds(hub, count, max(BATCH, messages // 10))  # warm up
        seconds = await pipelined_seconds(hub, count, messages)
    done = messages // BATCH * BATCH
    return Result("pipelined", broker, backend, count, done, seconds, 0.0, 0.0)


async def measure(url: str | None, broker: str, backend: str, count: int, messages: int) -> Result:
    async with open_hub(url, prefix="bench:") as hub:
        await memory_per_subscriber(hub, count, with_task=True)  # warm up the task machinery
        bytes_subscription = await memory_per_subscriber(hub, count, with_task=False)
        bytes_with_task = await memory_per_subscriber(hub, count, with_task=True)
        await fanout_seconds(hub, count, max(1, messages // 10))  # warm up
        seconds = fanout_seconds(hub, count, messages)
        return Result(
            "waiting",
            broker,
            backend,
            count,
            messages,
            await seconds,
            bytes_subscription,
            bytes_with_task,
        )


@contextmanager
def redis_server(url: str | None) -> Iterator[str | None]:
    """Yields a Redis URL: the one given, or a throwaway local server's, or None."""
    if url is not None:
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    process = subprocess.Popen(
        [*command, "--appendonly", "no"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    assert process.stdout is not None
    try:
        output = b""
        while b"Ready to accept connections" not in output:
            line = process.stdout.readline()
            if not line:
                raise RuntimeError(f"redis-server did not start:\n{output.decode()}")
            output += line
        yield f"redis://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(10)
        process.stdout.close()


def _bytes(value: float) -> str:
    return f"{value:,.0f}" if value else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer messages, smaller only")
    parser.add_argument("--redis-url", help="a Redis / Valkey server to use (else a local one)")
    options = parser.parse_args()
    sizes = SIZES[:1] if options.quick else SIZES
    results: list[Result] = []
    notes: list[str] = []
    with redis_server(options.redis_url) as url:
        brokers: list[tuple[str, str | None]] = [("memory", None)]
        if url is None:
            notes.append("redis: skipped (no redis-server installed and no --redis-url)")
        else:
            brokers.append(("redis", url))
        for broker, broker_url in brokers:
            for backend in BACKENDS:
                for count in sizes:
                    messages = max(20, (200_000 if broker == "memory" else 100_000) // count)
                    if options.quick:
                        messages = max(10, messages // 4)
                    for function in (measure, measure_pipelined):
                        result = anyio.run(function, broker_url, broker, backend, count,
                                           messages, backend=backend)  # fmt: skip
                        results.append(result)
                        print(
                            f"  {result.mode:9} {broker:6} {backend:7} {count:>6} subscribers:"
                            f" {result.per_second * count:11,.0f} deliveries/s",
                            file=sys.stderr,
                        )
                    if broker == "memory":  # the floor: one task wake-up per delivery
                        floor = anyio.run(measure_floor, backend, count, messages, backend=backend)
                        results.append(floor)
        if have_broadcaster():
            for count in sizes:
                messages = max(10 if options.quick else 20, 200_000 // count // 4)
                for mode in ("waiting", "pipelined"):
                    result = anyio.run(measure_peer, "asyncio", count, messages, mode)
                    results.append(result)
        else:
            notes.append("broadcaster: skipped (pip install broadcaster to compare)")
    print()
    print(f"Fan-out of one message to N subscribers (Python {sys.version.split()[0]})")
    header = (
        f"{'mode':9}  {'broker':11}  {'backend':7}  {'N':>6}  {'messages/s':>10}"
        f"  {'deliveries/s':>12}  {'ms/fan-out':>10}  {'B/subscription':>14}"
        f"  {'B/subscriber+task':>17}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.mode:9}  {r.broker:11}  {r.backend:7}  {r.subscribers:>6}"
            f"  {r.per_second:>10,.0f}  {r.per_second * r.subscribers:>12,.0f}"
            f"  {r.fanout_ms:>10.2f}  {_bytes(r.bytes_subscription):>14}"
            f"  {_bytes(r.bytes_with_task):>17}"
        )
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()
