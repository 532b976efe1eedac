"""The broadcast hub's rules (issue 7), on both brokers and both backends.

Every rule test runs against the in-memory broker and against a real ``redis-server`` (see
``integration/redis_server.py``; skipped where it is not installed, never in CI), each on
asyncio and on trio. Redis delivers asynchronously, so a test that needs everything published
so far to have arrived calls ``settle``: the listener's one connection is ordered, so once a
marker published last has arrived, so has everything before it.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from shallot import Receiver, build_server, websocket, ws_send
from shallot.broadcast import (
    BroadcastError,
    Gap,
    Hub,
    SlowSubscriber,
    Subscription,
    hub_lifespan,
    open_hub,
)
from shallot.testing import TestClient, WebSocketClosed


@pytest.fixture
async def hub(hub_url: str | None) -> AsyncIterator[Hub]:
    # A prefix of its own per test: tests on one Redis server never see each other's channels.
    async with open_hub(hub_url, prefix=f"test-{uuid.uuid4().hex[:8]}:") as hub:
        yield hub


async def settle(hub: Hub) -> None:
    """Returns once everything published so far has reached this hub's subscribers."""
    marker = uuid.uuid4().hex
    async with hub.subscribe(f"settle-{marker}") as settled:
        await hub.publish(f"settle-{marker}", marker)
        assert await settled.receive() == marker


def drain(subscription: Subscription) -> list[Any]:
    """Returns what waits in a subscription's buffer, emptying it (no checkpoint needed)."""
    items = list(subscription._buffer)
    subscription._buffer.clear()
    return items


# -- publish and subscribe ------------------------------------------------------------------


async def test_a_message_reaches_every_subscriber_of_its_channel_only(hub: Hub) -> None:
    with anyio.fail_after(5):
        async with (
            hub.subscribe("a") as first,
            hub.subscribe("a") as second,
            hub.subscribe("b") as other,
        ):
            await hub.publish("a", "héllo ✓")
            await hub.publish("a", b"\x00\xffbytes")
            await hub.publish("b", "for b")
            for subscription in (first, second):
                assert await subscription.receive() == "héllo ✓"
                assert await subscription.receive() == b"\x00\xffbytes"
            assert await other.receive() == "for b"
            await settle(hub)
            assert first.buffered == second.buffered == other.buffered == 0


async def test_only_messages_published_after_subscribing_arrive(hub: Hub) -> None:
    with anyio.fail_after(5):
        await hub.publish("news", "before")
        await settle(hub)
        async with hub.subscribe("news") as news:
            await hub.publish("news", "after")
            assert await news.receive() == "after"


async def test_each_publishers_messages_arrive_in_order(hub: Hub) -> None:
    publishers, count = 4, 150
    with anyio.fail_after(10):
        async with hub.subscribe("ordered", max_buffer=publishers * count) as ordered:

            async def publish(name: int) -> None:
                for number in range(count):
                    await hub.publish("ordered", f"{name}:{number}")

            async with anyio.create_task_group() as tg:
                for name in range(publishers):
                    tg.start_soon(publish, name)
            seen: dict[str, list[int]] = {}
            for _ in range(publishers * count):
                publisher, number = str(await ordered.receive()).split(":")
                seen.setdefault(publisher, []).append(int(number))
    assert seen == {str(name): list(range(count)) for name in range(publishers)}
    assert ordered.dropped == 0


async def test_channels_exist_while_they_have_subscribers(hub: Hub) -> None:
    with anyio.fail_after(5):
        assert hub.statistics().channels == 0
        async with hub.subscribe("room") as one:
            async with hub.subscribe("room"):
                assert hub.subscribers("room") == 2
            assert hub.subscribers("room") == 1
            await hub.publish("room", "still here")
            assert await one.receive() == "still here"
        assert hub.subscribers("room") == 0
        stats = hub.statistics()
        assert (stats.channels, stats.subscribers, stats.connected) == (0, 0, True)
        async with hub.subscribe("room") as again:  # made anew
            await hub.publish("room", "back")
            assert await again.receive() == "back"


async def test_a_left_subscription_ends_its_iteration(hub: Hub) -> None:
    with anyio.fail_after(5):
        async with hub.subscribe("x") as subscription:
            await hub.publish("x", "last")
            await settle(hub)
        # What arrived before it was left is still handed over, then the iteration ends.
        assert [item async for item in subscription] == ["last"]
        with pytest.raises(BroadcastError, match="closed"):
            await subscription.receive()
        with pytest.raises(BroadcastError, match="closed"):
            subscription.receive_nowait()


# -- bounded buffers and the overflow policies ------------------------------------------------


async def test_drop_oldest_keeps_the_newest_and_counts_the_rest(hub: Hub) -> None:
    with anyio.fail_after(5):
        async with hub.subscribe("c", max_buffer=3, overflow="drop_oldest") as slow:
            async with hub.subscribe("c", max_buffer=100) as fast:
                for number in range(5):
                    await hub.publish("c", str(number))
                await settle(hub)
                assert [await slow.receive() for _ in range(3)] == ["2", "3", "4"]
                assert [await fast.receive() for _ in range(5)] == ["0", "1", "2", "3", "4"]
                assert (slow.dropped, fast.dropped) == (2, 0)
                assert hub.statistics().dropped == 2


async def test_drop_newest_keeps_the_oldest_and_counts_the_rest(hub: Hub) -> None:
    with anyio.fail_after(5):
        async with hub.subscribe("c", max_buffer=3, overflow="drop_newest") as slow:
            for number in range(5):
                await hub.publish("c", str(number))
            await settle(hub)
            assert [await slow.receive() for _ in range(3)] == ["0", "1", "2"]
            assert slow.dropped == 2
            await hub.publish("c", "room again")
            assert await slow.receive() == "room again"


async def test_disconnect_drops_the_slow_subscriber_only(hub: Hub) -> None:
    with anyio.fail_after(5):
        async with hub.subscribe("c", max_buffer=3, overflow="disconnect") as slow:
            async with hub.subscribe("c", max_buffer=10) as fine:
                for number in range(5):
                    await hub.publish("c", str(number))
                await settle(hub)
                with pytest.raises(SlowSubscriber) as raised:
                    await slow.receive()
                assert raised.value.dropped == 4 == slow.dropped  # 3 held, 1 that did not fit
                with pytest.raises(SlowSubscriber):  # for good
                    await slow.receive()
                with pytest.raises(SlowSubscriber):  # not WouldBlock: a drain loop learns it
                    slow.receive_nowait()
                assert [await fine.receive() for _ in range(5)] == [str(n) for n in range(5)]
                stats = hub.statistics()
                assert (stats.disconnected, stats.dropped) == (1, 4)


async def test_a_reader_that_keeps_up_loses_nothing_through_a_small_buffer(hub: Hub) -> None:
    count = 300
    with anyio.fail_after(10):
        async with hub.subscribe("flow", max_buffer=2, overflow="disconnect") as flow:
            got: list[str] = []

            async def read() -> None:
                async for item in flow:
                    got.append(str(item))
                    if len(got) == count:
                        return

            async with anyio.create_task_group() as tg:
                tg.start_soon(read)
                for number in range(count):
                    await hub.publish("flow", str(number))
                    if number % 2:  # publishing faster than reading would overflow: pace it
                        await settle(hub)
    assert got == [str(n) for n in range(count)]


# -- subscribers coming and going ------------------------------------------------------------


async def test_subscribe_and_unsubscribe_under_load(hub: Hub) -> None:
    joiners, rounds, per_round = 20, 4, 5
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:

            async def publish_forever() -> None:
                number = 0
                while True:
                    await hub.publish("load", str(number))
                    number += 1

            async def join_and_leave() -> None:
                for _ in range(rounds):
                    async with hub.subscribe("load", max_buffer=100_000) as load:
                        got = [int(str(await load.receive())) for _ in range(per_round)]
                    # contiguous: nothing lost or reordered while others come and go
                    assert got == list(range(got[0], got[0] + per_round))

            tg.start_soon(publish_forever)
            async with anyio.create_task_group() as joining:
                for _ in range(joiners):
                    joining.start_soon(join_and_leave)
            tg.cancel_scope.cancel()
        assert hub.subscribers("load") == 0
        assert hub.statistics().channels == 0


async def test_a_cancelled_subscriber_leaves_and_the_others_go_on(hub: Hub) -> None:
    with anyio.fail_after(5):
        async with hub.subscribe("c") as steady:
            async with anyio.create_task_group() as tg:
                entered = anyio.Event()

                async def doomed() -> None:
                    async with hub.subscribe("c") as subscription:
                        entered.set()
                        await subscription.receive()  # cancelled while waiting

                tg.start_soon(doomed)
                await entered.wait()
                assert hub.subscribers("c") == 2
                tg.cancel_scope.cancel()
            assert hub.subscribers("c") == 1
            await hub.publish("c", "on")
            assert await steady.receive() == "on"


async def test_a_subscribe_cancelled_while_entering_leaves_nothing_behind(hub: Hub) -> None:
    with anyio.fail_after(5):
        with anyio.CancelScope() as scope:
            scope.cancel()
            async with hub.subscribe("c"):
                pytest.fail("entered a cancelled subscription")  # pragma: no cover
        assert hub.subscribers("c") == 0
        async with hub.subscribe("c") as fresh:
            await hub.publish("c", "fine")
            assert await fresh.receive() == "fine"


async def test_a_cancelled_publish_publishes_nothing(hub: Hub) -> None:
    with anyio.fail_after(5):
        async with hub.subscribe("c") as subscription:
            with anyio.CancelScope() as scope:
                scope.cancel()
                await hub.publish("c", "never")
            await hub.publish("c", "next")
            assert await subscription.receive() == "next"


async def test_closing_the_hub_ends_waiting_subscribers(hub_url: str | None) -> None:
    ended: list[str] = []
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            async with open_hub(hub_url) as hub:
                ready = anyio.Event()

                async def listen() -> None:
                    async with hub.subscribe("c") as subscription:
                        ready.set()
                        async for item in subscription:
                            ended.append(str(item))  # pragma: no cover
                    ended.append("ended")

                tg.start_soon(listen)
                await ready.wait()
        with pytest.raises(BroadcastError, match="closed"):
            await hub.publish("c", "late")
        with pytest.raises(BroadcastError, match="closed"):
            async with hub.subscribe("c"):
                pass  # pragma: no cover
    assert ended == ["ended"]
    assert not hub.connected


# -- gaps (the broker outage itself is in test_broadcast_redis) -------------------------------


async def test_a_gap_is_never_dropped_and_consecutive_gaps_fold(hub: Hub) -> None:
    with anyio.fail_after(5):
        async with hub.subscribe("g", max_buffer=2, overflow="drop_oldest") as subscription:
            await hub.publish("g", "1")
            await settle(hub)
            hub._gap("first outage")
            hub._gap("second outage")
            for number in (2, 3, 4):
                await hub.publish("g", str(number))
            await settle(hub)
            items = drain(subscription)
    assert [type(item) for item in items] == [Gap, str]
    assert items[1] == "4"
    assert "first outage" in repr(items[0])
    assert hub.statistics().gaps == 2


# -- arguments and the app lifetime ---------------------------------------------------------


async def test_arguments_are_checked(hub: Hub) -> None:
    with pytest.raises(TypeError, match="non-empty str"):
        await hub.publish("", "x")
    with pytest.raises(TypeError, match="str or bytes"):
        await hub.publish("c", {"a": 1})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_buffer"):
        hub.subscribe("c", max_buffer=0)
    with pytest.raises(ValueError, match="overflow"):
        hub.subscribe("c", overflow="drop_everything")  # type: ignore[arg-type]
    subscription = hub.subscribe("c")
    with pytest.raises(RuntimeError, match="enter"):
        await subscription.receive()
    async with subscription:
        with pytest.raises(RuntimeError, match="entered already"):
            await subscription.__aenter__()


async def test_open_hub_checks_its_options() -> None:
    with pytest.raises(ValueError, match="no broker"):
        async with open_hub("amqp://localhost"):
            pass  # pragma: no cover
    with pytest.raises(ValueError, match="reconnect_max"):
        async with open_hub(reconnect_max=0):
            pass  # pragma: no cover


@websocket
async def chat(scope: dict[str, Any], receiver: Receiver, room: str) -> AsyncIterator[Any]:
    """docs/broadcast.md's chat room, as written there."""
    hub = scope["config"]["hub"]
    async with hub.subscribe(f"room:{room}") as messages:
        async for source, message in receiver.merge(messages):
            if source is receiver:  # the client typed something: tell the room
                await hub.publish(f"room:{room}", json.dumps([room, message]))
            elif isinstance(message, Gap):
                yield ws_send(json.dumps(["gap", message.reason]))
            else:  # the room said something: tell the client
                yield ws_send(message)


def chat_app(hub_url: str | None) -> Any:
    from shallot.middlewares import apply_middleware, wrap_routes

    routes = [("/rooms/{room}", ["WS"], chat)]
    return build_server(
        apply_middleware(wrap_routes(routes))(chat),
        lifespan=hub_lifespan(hub_url, prefix=f"test-{uuid.uuid4().hex[:8]}:"),
    )


async def test_the_chat_room_of_the_docs(hub_url: str | None) -> None:
    def said(room: str, text: str) -> str:
        return json.dumps([room, text])

    with anyio.fail_after(5):
        async with TestClient(chat_app(hub_url)) as client:
            async with (
                client.websocket("/rooms/kitchen") as ada,
                client.websocket("/rooms/kitchen") as bob,
                client.websocket("/rooms/attic") as eve,
            ):
                # A member is subscribed once its own first message has come back to it.
                await ada.send("ada here")
                assert await ada.receive() == said("kitchen", "ada here")
                await bob.send("bob here")
                while (message := await bob.receive()) != said("kitchen", "bob here"):
                    assert message == said("kitchen", "ada here")  # if bob was in by then
                assert await ada.receive() == said("kitchen", "bob here")
                await eve.send("eve here")
                assert await eve.receive() == said("attic", "eve here")

                await ada.send("hello")
                assert await bob.receive() == said("kitchen", "hello")
                assert await ada.receive() == said("kitchen", "hello")
                await bob.send("hi ada")
                assert await ada.receive() == said("kitchen", "hi ada")
                assert await bob.receive() == said("kitchen", "hi ada")
                await eve.send("alone")
                assert await eve.receive() == said("attic", "alone")


async def test_hub_lifespan_puts_the_hub_in_the_config() -> None:
    seen: list[Any] = []

    async def handler(request: dict[str, Any]) -> dict[str, Any]:
        seen.append(request["config"]["broadcast"])
        return {"status": 204}

    app = build_server(handler, lifespan=hub_lifespan(key="broadcast"))
    with anyio.fail_after(5):
        async with TestClient(app) as client:
            assert (await client.get("/")).status_code == 204
    assert isinstance(seen[0], Hub)
    assert not seen[0].connected  # closed with the app


async def test_the_chat_demo_closes_on_a_binary_message_and_relays_none() -> None:
    from examples.chat.app import app

    with anyio.fail_after(5):
        async with TestClient(app) as client:
            async with client.websocket("/rooms/lobby?nick=ada") as ada:
                assert json.loads(await ada.receive())["type"] == "welcome"
                async with client.websocket("/rooms/lobby?nick=bob") as bob:
                    assert json.loads(await bob.receive())["type"] == "welcome"
                    assert json.loads(await ada.receive())["type"] == "joined"
                    await bob.send(b"\xff\xfe")
                    with pytest.raises(WebSocketClosed) as closed:
                        await bob.receive()
                    assert (closed.value.code, closed.value.reason) == (
                        1003,
                        "the chat takes text messages, not binary ones",
                    )
                after = json.loads(await ada.receive())  # nothing of the binary frame
                assert (after["type"], after["nick"]) == ("left", "bob")


async def test_the_chat_demo_announces_a_page_that_came_back_neither_left_nor_joined() -> None:
    """A page reconnects before the server noticed its old connection was gone: the old
    connection closing later must not tell the room that the member left (nor the new one that
    it joined); its last connection closing does."""
    from examples.chat.app import app

    with anyio.fail_after(5):
        async with TestClient(app) as client:
            async with client.websocket("/rooms/back?nick=bob") as bob:
                assert json.loads(await bob.receive())["type"] == "welcome"
                async with client.websocket("/rooms/back?nick=ada") as old:
                    assert json.loads(await old.receive())["type"] == "welcome"
                    joined = json.loads(await bob.receive())
                    assert (joined["type"], joined["nick"]) == ("joined", "ada")
                    epoch, offset = joined["pos"]
                    async with client.websocket(
                        f"/rooms/back?nick=ada&since={epoch}:{offset}"
                    ) as new:
                        assert json.loads(await new.receive())["type"] == "welcome"
                        await old.close()
                        await bob.send("still here?")
                        said = json.loads(await bob.receive())  # nothing about ada before it
                        assert (said["type"], said["text"]) == ("message", "still here?")
                        assert json.loads(await new.receive())["text"] == "still here?"
                left = json.loads(await bob.receive())
                assert (left["type"], left["nick"]) == ("left", "ada")


async def test_the_chat_demo_in_memory() -> None:
    """examples/chat (in memory): nicknames are checked (a refusal is a close with a reason, which
    a browser can show), members are welcomed with the id of their process, hear each other,
    and hear who joins and leaves, their own join only through the welcome (issue 16)."""
    from examples.chat.app import app

    positions: list[list[Any]] = []

    def event(ws_text: str | bytes) -> dict[str, Any]:
        """The event without its position (kept in ``positions``) nor a join's member id."""
        parsed: dict[str, Any] = json.loads(ws_text)
        if "pos" in parsed and parsed["type"] != "welcome":
            positions.append(parsed.pop("pos"))
        if parsed["type"] == "joined":
            assert len(parsed.pop("id")) == 16
        return parsed

    with anyio.fail_after(30):  # each member that leaves is announced after LEAVE_GRACE
        async with TestClient(app) as client:
            page = await client.get("/")
            assert page.status_code == 200
            assert "chat.js" in page.text
            async with client.websocket("/rooms/lobby?nick=") as refused:
                with pytest.raises(WebSocketClosed) as closed:
                    await refused.receive()
            assert (closed.value.code, closed.value.reason) == (
                1008,
                "nick and room: 1 to 32 letters, digits, spaces, - or _",
            )
            async with client.websocket("/rooms/lobby?nick=ada") as ada:
                welcome = event(await ada.receive())
                assert welcome["type"] == "welcome"
                assert (welcome["nick"], welcome["room"]) == ("ada", "lobby")
                assert welcome["pid"] == os.getpid()
                async with client.websocket("/rooms/lobby?nick=bob") as bob:
                    assert event(await bob.receive())["type"] == "welcome"
                    joined = event(await ada.receive())
                    assert (joined["type"], joined["nick"]) == ("joined", "bob")
                    await bob.send("hi <ada>")
                    said = {"type": "message", "nick": "bob", "text": "hi <ada>"}
                    assert event(await ada.receive()) == said
                    assert event(await bob.receive()) == said  # no "joined" of its own first
                assert event(await ada.receive()) == {"type": "left", "nick": "bob"}
            # ada's connection drops; meanwhile eve comes and talks; ada comes back with the
            # position of the last event she saw and gets what she missed, once, in order
            epoch, offset = positions[-1]
            # every event after ada's own join (which only her welcome told her) was seen
            assert sorted({position[1] for position in positions}) == list(range(2, offset + 1))
            async with client.websocket("/rooms/lobby?nick=eve") as eve:
                assert event(await eve.receive())["type"] == "welcome"
                await eve.send("while ada was away")
                assert event(await eve.receive())["type"] == "message"  # no "joined" of her own
            async with client.websocket(f"/rooms/lobby?nick=ada&since={epoch}:{offset}") as ada:
                assert event(await ada.receive())["type"] == "welcome"
                missed = [event(await ada.receive()) for _ in range(4)]
                assert missed == [
                    {"type": "left", "nick": "ada"},  # her own dropped connection
                    {"type": "joined", "nick": "eve"},
                    {"type": "message", "nick": "eve", "text": "while ada was away"},
                    {"type": "left", "nick": "eve"},
                ]
            for since in ("nope", f"{epoch}:-1", f"{epoch}"):
                async with client.websocket(f"/rooms/lobby?nick=ada&since={since}") as refused:
                    with pytest.raises(WebSocketClosed) as closed:
                        await refused.receive()
                assert (closed.value.code, closed.value.reason) == (
                    1008,
                    "since: <epoch>:<offset>, as the events' pos gives",
                )
            async with client.websocket("/rooms/lobby?nick=ada&since=abc:1") as ada:
                assert event(await ada.receive())["type"] == "welcome"
                assert event(await ada.receive())["type"] == "unrecovered"  # another epoch
