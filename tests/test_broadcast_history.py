"""Channels with history (issue 17): positions, recovery with ``since``, ``Unrecovered``, and
bad input; on the in-memory broker and on a real ``redis-server`` (Streams), both backends.
The pure parts (``History`` rules, the ring) are checked without an event loop at the end.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import anyio
import pytest
from trio.testing import MockClock

from shallot.broadcast import (
    Gap,
    History,
    Hub,
    Position,
    SlowSubscriber,
    Subscription,
    Unrecovered,
    open_hub,
)
from shallot.broadcast._history import MAX_HISTORY, Published, Ring, check_since, history_rules
from shallot.broadcast._memory import MemoryBroker
from shallot.broadcast._subscription import CATCH_UP_ROOM

HISTORY = {"room:*": History(size=20, ttl=600), "small": History(size=3, ttl=600)}


@pytest.fixture
async def hub(hub_url: str | None) -> AsyncIterator[Hub]:
    async with open_hub(hub_url, prefix=f"test-{uuid.uuid4().hex[:8]}:", history=HISTORY) as hub:
        yield hub


async def read(subscription: Subscription, count: int) -> list[object]:
    return [await subscription.receive() for _ in range(count)]


async def test_messages_get_positions_and_plain_channels_none(hub: Hub) -> None:
    with anyio.fail_after(5):
        async with hub.subscribe("room:a") as room, hub.subscribe("plain") as plain:
            start = room.position
            assert start is not None
            assert start.offset == 0
            first = await hub.publish("room:a", "one")
            second = await hub.publish("room:a", b"two")
            assert first == Position(start.epoch, 1)
            assert second == Position(start.epoch, 2)
            assert await read(room, 2) == ["one", b"two"]
            assert room.position == second
            assert await hub.publish("plain", "x") is None
            assert await plain.receive() == "x"
            assert plain.position is None
        assert hub.history("room:b") == History(20, 600.0)
        assert hub.history("plain") is None


async def test_since_recovers_what_was_missed_then_goes_live(hub: Hub) -> None:
    with anyio.fail_after(5):
        async with hub.subscribe("room:r") as room:
            await hub.publish("room:r", "seen")
            assert await room.receive() == "seen"
            kept = room.position
        for number in range(5):
            await hub.publish("room:r", f"missed {number}")
        async with hub.subscribe("room:r", since=kept) as back:
            await hub.publish("room:r", "live")
            expected = [f"missed {number}" for number in range(5)] + ["live"]
            assert await read(back, 6) == expected
            assert back.buffered == 0
            assert back.position is not None
            assert back.position.offset == 7


async def test_no_message_is_missed_or_doubled_at_the_seam(hub: Hub) -> None:
    """A publisher runs through the subscribe call: history and live feed meet exactly."""
    count = 200
    with anyio.fail_after(10):
        start = await hub.publish("room:seam", "start")
        assert start is not None
        published = anyio.Event()
        halfway = anyio.Event()

        async def publish() -> None:
            for number in range(count):
                await hub.publish("room:seam", str(number))
                if number == 10:
                    halfway.set()
            published.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(publish)
            await halfway.wait()
            big = {"max_buffer": count + 10}
            async with hub.subscribe("room:seam", since=start, **big) as late:  # type: ignore[arg-type]
                got = [await late.receive() for _ in range(count)]
                await published.wait()
        # the ring keeps 20: the subscriber came back within them, or was told it could not
        if isinstance(got[0], Unrecovered):
            numbers = [int(str(item)) for item in got[1:]]
            assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
        else:
            assert got == [str(number) for number in range(count)]


async def test_the_seam_within_the_history(hub: Hub) -> None:
    count = 15  # within the history of 20: everything comes back, in order, once
    with anyio.fail_after(10):
        start = await hub.publish("room:seam2", "start")
        entered = anyio.Event()

        async def publish() -> None:
            for number in range(count):
                await hub.publish("room:seam2", str(number))
                if number == 5:
                    await entered.wait()

        async with anyio.create_task_group() as tg:
            tg.start_soon(publish)
            async with hub.subscribe("room:seam2", since=start) as late:
                entered.set()
                got = await read(late, count)
            assert got == [str(number) for number in range(count)]
            await hub.publish("room:seam2", "end")


async def test_too_old_or_foreign_positions_say_unrecovered_first(hub: Hub) -> None:
    with anyio.fail_after(5):
        first = await hub.publish("small", "1")
        assert first is not None
        for number in range(2, 8):
            await hub.publish("small", str(number))
        cases = [
            (first, "older than the history"),
            (Position("another-epoch", 1), "another epoch"),
            (Position(first.epoch, 99), "ahead of the channel"),
        ]
        for since, reason in cases:
            async with hub.subscribe("small", since=since) as back:
                await hub.publish("small", "next")
                marker = await back.receive()
                assert isinstance(marker, Unrecovered), marker
                assert reason in marker.reason
                assert marker.position.epoch == first.epoch
                assert await back.receive() == "next"
                assert back.position == Position(first.epoch, marker.position.offset + 1)


async def test_a_dropped_slow_subscriber_comes_back_with_its_position(hub: Hub) -> None:
    with anyio.fail_after(5):
        async with hub.subscribe("room:slow", max_buffer=2, overflow="disconnect") as slow:
            await hub.publish("room:slow", "a")
            assert await slow.receive() == "a"
            for number in range(5):
                await hub.publish("room:slow", str(number))
            # dropped at the third: the buffer too
            with pytest.raises(SlowSubscriber):
                await slow.receive()
            kept = slow.position
        async with hub.subscribe("room:slow", since=kept, max_buffer=2) as back:
            assert await read(back, 5) == [str(number) for number in range(5)]


async def test_a_recovery_longer_than_the_buffer_loses_nothing(hub: Hub) -> None:
    """Recovered messages are in the history already: they do not count against max_buffer,
    so live ones arriving before they are read push none of them out (none missed)."""
    with anyio.fail_after(5):
        async with hub.subscribe("room:long") as room:
            await hub.publish("room:long", "seen")
            assert await room.receive() == "seen"
            kept = room.position
        missed = [f"missed {number}" for number in range(12)]
        await hub.publish_many("room:long", missed)
        async with (
            hub.subscribe("room:long", since=kept, max_buffer=4) as back,
            hub.subscribe("room:long") as witness,
        ):
            live = [f"live {number}" for number in range(3)]
            positions = await hub.publish_many("room:long", live)
            assert await read(witness, 3) == live  # so back has them too: same delivery
            assert back.buffered == 15
            assert [back.receive_nowait() for _ in range(15)] == missed + live
            assert back.dropped == 0
            assert back.position == positions[-1]


@pytest.mark.parametrize("overflow", ["drop_oldest", "drop_newest"])
async def test_a_drop_in_a_history_channel_leaves_a_gap_to_recover_from(
    hub: Hub, overflow: str
) -> None:
    with anyio.fail_after(5):
        async with (
            hub.subscribe("room:drop", max_buffer=2, overflow=overflow) as slow,  # type: ignore[arg-type]
            hub.subscribe("room:drop") as witness,
        ):
            start = slow.position
            assert start is not None
            sent = [str(number) for number in range(6)]
            await hub.publish_many("room:drop", sent)
            assert await read(witness, 6) == sent
            got = [slow.receive_nowait() for _ in range(slow.buffered)]
            gap = next(item for item in got if isinstance(item, Gap))
            assert [item for item in got if isinstance(item, Gap)] == [gap]  # one for the run
            assert slow.dropped == 4
            assert gap.position is not None
            if overflow == "drop_oldest":
                assert got == [gap, "4", "5"]
                assert gap.position == start
            else:
                assert got == ["0", "1", gap]
                assert gap.position == Position(start.epoch, start.offset + 2)
        async with hub.subscribe("room:drop", since=gap.position) as back:  # what was dropped
            await hub.publish("room:drop", "next")
            expected = [*sent[gap.position.offset - start.offset :], "next"]
            assert await read(back, len(expected)) == expected


@pytest.mark.parametrize(
    "anyio_backend", ["asyncio", ("trio", {"clock": MockClock(autojump_threshold=0)})]
)
async def test_expired_histories_without_subscribers_are_forgotten_in_memory() -> None:
    """A room per document, used once: its history goes ttl seconds after its last publish
    (issue: the rings of 20,000 such channels stayed for good)."""
    history = {"doc:*": History(size=5, ttl=0.05), "kept:*": History(size=5, ttl=3600)}
    with anyio.fail_after(5):
        async with open_hub(history=history) as hub:
            broker = hub._broker
            assert isinstance(broker, MemoryBroker)
            for number in range(100):
                await hub.publish(f"doc:{number}", "x" * 1000)
            async with hub.subscribe("doc:watched") as watched:
                first = await hub.publish("doc:watched", "w")
                assert await watched.receive() == "w"
                await hub.publish("kept:a", "k")
                await anyio.sleep(0.06)  # the doc: histories expire
                for number in range(60):  # each publish forgets up to two
                    await hub.publish("kept:a", str(number))
                assert list(broker._rings[0.05]) == ["doc:watched"]
                assert not broker._rings[0.05]["doc:watched"].entries  # expired: messages go
                second = await hub.publish("doc:watched", "w2")  # its epoch stays
                assert first is not None
                assert second == Position(first.epoch, 2)
            await anyio.sleep(0.06)
            await hub.publish("kept:a", "last")
            assert not broker._rings[0.05]
            assert list(broker._rings[3600]) == ["kept:a"]
            since = Position(first.epoch, 2)
            async with hub.subscribe("doc:watched", since=since) as back:
                lost = await back.receive()  # the history is gone, with its epoch
                assert isinstance(lost, Unrecovered)
                assert "another epoch" in lost.reason


async def test_bad_input_gets_clear_errors(hub: Hub) -> None:
    with anyio.fail_after(5):
        position = await hub.publish("room:x", "x")
        assert position is not None
        for since in ["e:1", ("e",), ("", 1), ("e", -1), ("e", "1"), ("e", True), (1, 1)]:
            with pytest.raises(ValueError, match=r"since is a position \(epoch, offset\)"):
                hub.subscribe("room:x", since=since)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="'plain' keeps no history"):
            hub.subscribe("plain", since=position)
        huge = Position(position.epoch, 10**18)  # a huge request: no fetch, no hang
        async with hub.subscribe("room:x", since=huge) as back:
            assert isinstance(await back.receive(), Unrecovered)


async def test_open_hub_checks_the_history_option() -> None:
    for history, message in [
        ({"c": History(0, 1)}, "history size"),
        ({"c": History(MAX_HISTORY + 1, 1)}, "history size"),
        ({"c": History(1, 0)}, "history ttl"),
        ({"c": 5}, r"History\(size, ttl\)"),
        ({"": History(1, 1)}, "non-empty str"),
        (["c"], "mapping"),
    ]:
        with pytest.raises((ValueError, TypeError), match=message):
            async with open_hub(history=history):  # type: ignore[arg-type]
                pass  # pragma: no cover


# -- the pure parts -------------------------------------------------------------------------


def test_history_rules_take_the_exact_name_then_the_longest_prefix() -> None:
    rules = history_rules({"a:*": History(1, 1), "a:b:*": History(2, 1), "a:c": History(3, 1)})
    assert rules("a:x") == History(1, 1.0)
    assert rules("a:b:x") == History(2, 1.0)
    assert rules("a:c") == History(3, 1.0)
    assert rules("b") is None
    assert history_rules(None)("a") is None


def test_the_ring_keeps_its_size_and_expires_after_its_ttl() -> None:
    ring = Ring(3, ttl=10, now=100.0)
    for number in range(5):
        ring.append(str(number), now=100.0 + number)
    recovery = ring.recover(Position(ring.epoch, 2), now=105.0)
    assert [entry.message for entry in recovery.messages] == ["2", "3", "4"]
    assert recovery.unrecovered is None
    assert ring.recover(Position(ring.epoch, 1), now=105.0).unrecovered is not None
    assert not ring.expired(now=114.0)
    assert ring.expired(now=114.5)
    expired = ring.recover(Position(ring.epoch, 5), now=120.0)
    assert expired.unrecovered is None
    assert expired.messages == []
    lost = ring.recover(Position(ring.epoch, 4), now=120.0)
    assert lost.unrecovered is not None
    assert "none is kept" in lost.unrecovered
    assert lost.position == Position(ring.epoch, 5)


def test_a_position_of_another_epoch_gets_the_new_epoch_from_its_start() -> None:
    ring = Ring(size=3, ttl=600, now=0.0)
    for message in "ab":
        ring.append(message, now=1.0)
    recovery = ring.recover(Position("gone", 7), now=2.0)
    assert [entry.message for entry in recovery.messages] == ["a", "b"]
    assert recovery.position == Position(ring.epoch, 0)  # the Unrecovered's: from the start
    assert recovery.unrecovered is not None
    assert "another epoch" in recovery.unrecovered
    for message in "cd":  # the epoch's start is no longer kept: from now on
        ring.append(message, now=3.0)
    recovery = ring.recover(Position("gone", 7), now=4.0)
    assert (recovery.messages, recovery.position) == ([], Position(ring.epoch, 4))


def test_since_accepts_what_position_gives_and_json_gives_back() -> None:
    assert check_since(Position("e", 3)) == ("e", 3)
    assert check_since(["e", 3]) == Position("e", 3)  # a JSON array from a client
    with pytest.raises(ValueError, match="since is a position"):
        check_since(("x" * 65, 1))


async def test_publish_many_is_one_burst_drained_in_one_wake(hub: Hub) -> None:
    with anyio.fail_after(5):
        async with hub.subscribe("room:burst") as room, hub.subscribe("plain") as plain:
            positions = await hub.publish_many("room:burst", ["a", b"b", "c"])
            start = room.position
            assert start is not None
            assert positions == [Position(start.epoch, offset) for offset in (1, 2, 3)]
            assert await hub.publish_many("plain", ["x", "y"]) == [None, None]
            assert await room.receive() == "a"
            await settle_room(hub, room, 2)
            assert [room.receive_nowait(), room.receive_nowait()] == [b"b", "c"]
            with pytest.raises(anyio.WouldBlock):
                room.receive_nowait()
            assert room.position == positions[-1]
            await settle_room(hub, plain, 2)
            assert [plain.receive_nowait(), plain.receive_nowait()] == ["x", "y"]
        with pytest.raises(TypeError, match="str or bytes"):
            await hub.publish_many("plain", ["ok", 3])  # type: ignore[list-item]
        assert hub.statistics().published == 5


async def settle_room(hub: Hub, subscription: Subscription, count: int) -> None:
    """Waits until ``count`` items are buffered: Redis delivers asynchronously, and the
    listener has no event to offer (bounded by the caller's ``fail_after``)."""
    while subscription.buffered < count:  # noqa: ASYNC110
        await anyio.sleep(0.005)


async def test_a_burst_larger_than_the_buffer_overflows_in_memory_and_says_so() -> None:
    """In memory, ``publish_many`` hands a burst over at once: beyond a subscriber's free room
    its policy applies (documented), counted, and on a channel with history with a ``Gap``."""
    burst = [str(number) for number in range(10)]
    with anyio.fail_after(5):
        async with (
            open_hub(history=HISTORY) as hub,
            hub.subscribe("room:burst", max_buffer=4) as room,
            hub.subscribe("plain", max_buffer=4) as plain,
        ):
            await hub.publish_many("room:burst", burst)
            await hub.publish_many("plain", burst)
            got = [room.receive_nowait() for _ in range(room.buffered)]
            gap = got[0]
            assert isinstance(gap, Gap)
            assert gap.position is not None
            assert gap.position.offset == 0  # since=gap.position gets the dropped ones back
            assert got[1:] == burst[6:]
            assert [plain.receive_nowait() for _ in range(plain.buffered)] == burst[6:]
            assert room.dropped == plain.dropped == 6
            assert hub.statistics().dropped == 12


async def test_a_catch_up_batch_reaches_a_reader_whole_and_bounds_one_that_stopped() -> None:
    """What the Redis feed read in one go (``Hub._deliver_batch``): a reader that keeps up gets
    all of it through a small buffer, live messages that follow included, and waits for no
    other subscriber; one that stopped reading holds at most ``max_buffer`` + the batch, past
    which its overflow policy applies."""
    caught_up = [Published(str(offset), "e", offset) for offset in range(1, 101)]
    live = [Published(str(offset), "e", offset) for offset in range(101, 111)]
    got: list[object] = []
    with anyio.fail_after(5):
        async with (
            open_hub(history=HISTORY) as hub,
            hub.subscribe("room:batch", max_buffer=8) as reader,
            hub.subscribe("room:batch", max_buffer=8) as stopped,
        ):
            hub._deliver_batch("room:batch", caught_up)
            for entry in live[:5]:  # live ones come while the reader is still behind
                hub._deliver("room:batch", entry)
            while reader.buffered:
                got.append(reader.receive_nowait())
            for entry in live[5:]:  # back within max_buffer: the usual bound again
                hub._deliver("room:batch", entry)
            while reader.buffered:
                got.append(reader.receive_nowait())
            assert got == [entry.message for entry in caught_up + live]
            assert reader.dropped == 0
            # the batch, then max_buffer of live ones, then its policy: a Gap, 2 dropped
            assert (stopped.buffered, stopped.dropped) == (100 + 8 + 1, 2)
            for _ in range(12):  # more catch-ups at the one that stopped: bounded
                hub._deliver_batch("room:batch", caught_up)
            assert stopped.buffered == 8 + CATCH_UP_ROOM  # the Gap among them
            assert stopped.dropped == 100 + 10 + 12 * 100 - (8 + CATCH_UP_ROOM - 1)
