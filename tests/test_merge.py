"""``receiver.merge`` with hub subscriptions, which wake the handler themselves (``_merge``).

The merge's behaviour with any async iterable (order, ``WSDisconnect``, a source's error, an
early close) is tested in test_websocket.py; these tests cover what a subscription adds: a
burst handed over whole and in order, its ``SlowSubscriber`` raised in the handler, and the
end of a subscription while the client goes on talking.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio

from shallot import Receiver, build_server, websocket, ws_send
from shallot.broadcast import SlowSubscriber, open_hub
from shallot.testing import TestClient


async def test_a_burst_is_handed_over_whole_and_in_order() -> None:
    async with open_hub() as hub:

        @websocket
        async def room(scope: dict[str, Any], receiver: Receiver) -> AsyncIterator[Any]:
            async with hub.subscribe("r", max_buffer=64) as messages:
                yield ws_send("joined")
                async for source, item in receiver.merge(messages):
                    yield ws_send(f"{'client' if source is receiver else 'hub'}: {item}")

        with anyio.fail_after(5):
            async with TestClient(build_server(room)) as client, client.websocket("/") as ws:
                assert await ws.receive() == "joined"
                await hub.publish_many("r", [str(number) for number in range(50)])
                assert [await ws.receive() for _ in range(50)] == [
                    f"hub: {number}" for number in range(50)
                ]
                await ws.send("hi")  # the client is still heard
                assert await ws.receive() == "client: hi"
                await hub.publish("r", "after")
                assert await ws.receive() == "hub: after"


async def test_two_busy_subscriptions_take_turns() -> None:
    async with open_hub() as hub:

        @websocket
        async def both(scope: dict[str, Any], receiver: Receiver) -> AsyncIterator[Any]:
            async with hub.subscribe("a") as a, hub.subscribe("b") as b:
                yield ws_send("joined")
                async for source, item in receiver.merge(a, b):
                    yield ws_send(f"{'a' if source is a else 'b'}{item}")

        with anyio.fail_after(5):
            async with TestClient(build_server(both)) as client, client.websocket("/") as ws:
                assert await ws.receive() == "joined"
                await hub.publish_many("a", ["1", "2", "3"])
                await hub.publish_many("b", ["1", "2", "3"])
                got = [await ws.receive() for _ in range(6)]
    assert sorted(got) == ["a1", "a2", "a3", "b1", "b2", "b3"]
    assert [item for item in got if item[0] == "a"] == ["a1", "a2", "a3"]
    assert got[:2] in (["a1", "b1"], ["b1", "a1"])  # neither starves the other


async def test_an_overflowing_subscription_raises_slow_subscriber_in_the_handler() -> None:
    async with open_hub() as hub:

        @websocket
        async def room(scope: dict[str, Any], receiver: Receiver) -> AsyncIterator[Any]:
            async with hub.subscribe("r", max_buffer=2, overflow="disconnect") as messages:
                yield ws_send("joined")
                try:
                    async for _source, item in receiver.merge(messages):
                        yield ws_send(item)  # pragma: no cover
                except SlowSubscriber as slow:
                    yield ws_send(f"too slow: {slow.dropped} dropped")

        with anyio.fail_after(5):
            async with TestClient(build_server(room)) as client, client.websocket("/") as ws:
                assert await ws.receive() == "joined"
                await hub.publish_many("r", ["1", "2", "3"])  # one more than the buffer
                assert await ws.receive() == "too slow: 3 dropped"
                assert await ws.wait_closed() == 1000


async def test_the_client_is_still_heard_once_the_subscription_has_ended() -> None:
    """The hub closes (the app shuts its broadcast down): the subscription's iteration ends,
    and the merge goes on with the receiver."""
    hubs: list[Any] = []
    opened, close, closed = anyio.Event(), anyio.Event(), anyio.Event()

    async def run_hub() -> None:
        async with open_hub() as hub:
            hubs.append(hub)
            opened.set()
            await close.wait()
        closed.set()

    @websocket
    async def room(scope: dict[str, Any], receiver: Receiver) -> AsyncIterator[Any]:
        async with hubs[0].subscribe("r") as messages:
            async for source, item in receiver.merge(messages):
                yield ws_send(f"{'client' if source is receiver else 'hub'}: {item}")
        yield ws_send("unreachable")  # pragma: no cover

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_hub)
            await opened.wait()
            async with TestClient(build_server(room)) as client, client.websocket("/") as ws:
                await ws.send("one")
                assert await ws.receive() == "client: one"
                await hubs[0].publish("r", "news")
                assert await ws.receive() == "hub: news"
                close.set()
                await closed.wait()
                await ws.send("two")
                assert await ws.receive() == "client: two"
