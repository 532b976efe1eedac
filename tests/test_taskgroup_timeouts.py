"""The runner's timeouts in virtual time: trio's autojump clock (pytest-trio's
``autojump_clock``) makes each timeout pass at once, so the bounds can be tight (SPEC §4)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from trio.testing import MockClock

from shallot import Receiver, WSDisconnect, build_server, websocket, ws_close, ws_send
from shallot._types import Message

from ._fakes import FakePeer, websocket_scope


@pytest.fixture
def anyio_backend(autojump_clock: MockClock) -> tuple[str, dict[str, Any]]:
    """Trio only: the clock jumps ahead whenever every task waits."""
    return "trio", {"clock": autojump_clock}


async def test_a_stalled_send_is_cut_short_after_send_timeout() -> None:
    seen: list[Any] = []
    never = anyio.Event()
    began: list[float] = []

    @websocket(send_timeout=10.0, watch_interval=0.1)
    async def pusher(scope: dict[str, Any], receiver: Receiver) -> AsyncIterator[Any]:
        try:
            yield ws_send("stuck")
        except WSDisconnect as disconnect:
            seen.append((disconnect.code, anyio.current_time() - began[0]))
            raise

    to_app_tx, to_app_rx = anyio.create_memory_object_stream[Message](10)

    async def send(message: Message) -> None:
        if message["type"] == "websocket.send":
            began.append(anyio.current_time())
            await never.wait()  # the client reads nothing

    with anyio.fail_after(60), to_app_tx, to_app_rx:
        await to_app_tx.send({"type": "websocket.connect"})
        await build_server(pusher)(websocket_scope(), to_app_rx.receive, send)
    [(code, after)] = seen
    assert code == 1006
    assert 10.0 <= after <= 10.0 + 2 * 0.1  # send_timeout, plus at most a look's lag


@pytest.mark.parametrize("then", ["returns", "raises"])
async def test_a_send_the_server_shields_still_ends_the_handler_after_send_timeout(
    then: str, caplog: pytest.LogCaptureFixture
) -> None:
    # hypercorn's trio worker writes in a shielded scope: cancelling the handler cannot cut
    # the send, so the handler is ended and the hooks run beside it (issue 12, bug 2); the
    # close follows once the send returns.
    events: list[tuple[str, float]] = []
    release, closed = anyio.Event(), anyio.Event()

    async def on_close(scope: dict[str, Any]) -> None:
        events.append(("on_close", anyio.current_time()))
        closed.set()

    @websocket(send_timeout=10.0, watch_interval=0.1, on_close=on_close)
    async def pusher(scope: dict[str, Any], receiver: Receiver) -> AsyncIterator[Any]:
        try:
            yield ws_send("stuck")
        except WSDisconnect as disconnect:
            events.append((f"disconnect {disconnect.code}", anyio.current_time()))
            raise
        finally:
            events.append(("finally", anyio.current_time()))

    to_app_tx, to_app_rx = anyio.create_memory_object_stream[Message](10)
    sent: list[Message] = []

    async def send(message: Message) -> None:
        if message["type"] == "websocket.send":
            with anyio.CancelScope(shield=True):
                await release.wait()  # the client reads nothing, until released
            if then == "raises":
                raise OSError("the client has gone")  # ASGI 2.4
        sent.append(message)

    async def client_reads_again() -> None:
        with anyio.move_on_after(30.0):  # virtual time; then the send returns in any case
            await closed.wait()  # on_close ran while the send was still stuck
        release.set()

    with anyio.fail_after(60), to_app_tx, to_app_rx:
        await to_app_tx.send({"type": "websocket.connect"})
        async with anyio.create_task_group() as tg:
            tg.start_soon(client_reads_again)
            began = anyio.current_time()
            await build_server(pusher)(websocket_scope(), to_app_rx.receive, send)
    names = [name for name, _ in events]
    assert names == ["disconnect 1006", "finally", "on_close"]
    on_close_after = events[-1][1] - began
    assert 10.0 <= on_close_after <= 10.0 + 0.25 + 2 * 0.1  # timeout, grace, a look's lag
    released = ["websocket.send"] if then == "returns" else []  # the stalled send's end
    assert [message["type"] for message in sent] == [
        "websocket.accept",
        *released,
        "websocket.close",
    ]
    assert sent[-1]["code"] == 1008
    assert "failed" not in caplog.text  # ended once, by the task that took it over


async def test_a_handler_away_is_cancelled_disconnect_timeout_after_the_client_left() -> None:
    stopped: list[float] = []

    @websocket(disconnect_timeout=5.0, watch_interval=1.0)
    async def sleeper(scope: dict[str, Any], receiver: Receiver) -> AsyncIterator[Any]:
        yield ws_send("hello")
        try:
            await anyio.sleep_forever()  # neither reads nor yields
        finally:
            stopped.append(anyio.current_time())

    peer = FakePeer()
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            tg.start_soon(peer.serve, build_server(sleeper))
            await peer.connect()
            await peer.from_app.receive()
            left = anyio.current_time()
            await peer.disconnect(1000)
            await peer.finished.wait()
    peer.close()
    # seen within two looks (away a whole interval), then the grace period
    assert 5.0 <= stopped[0] - left <= 5.0 + 2 * 1.0


async def test_the_clients_close_is_awaited_close_timeout_after_a_server_close() -> None:
    @websocket(close_timeout=3.0, watch_interval=1.0)
    async def closer(scope: dict[str, Any], receiver: Receiver) -> AsyncIterator[Any]:
        yield ws_close(4000)

    peer = FakePeer()
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            tg.start_soon(peer.serve, build_server(closer))
            await peer.connect()
            close = await peer.from_app.receive()
            closed_at = anyio.current_time()
            await peer.finished.wait()  # the client never answers the close
            ended_after = anyio.current_time() - closed_at
    peer.close()
    assert close["code"] == 4000
    assert 3.0 <= ended_after <= 3.0 + 0.01


async def test_a_never_reading_handler_holds_the_client_back_until_push_only_after() -> None:
    @websocket(max_queue=2, push_only_after=30.0, watch_interval=1.0)
    async def sink(scope: dict[str, Any], receiver: Receiver) -> AsyncIterator[Any]:
        yield ws_send("ready")
        await anyio.sleep_forever()

    peer = FakePeer(buffer=0)  # the server hands over one message at a time
    with anyio.fail_after(120):
        async with anyio.create_task_group() as tg:
            tg.start_soon(peer.serve, build_server(sink))
            await peer.connect()
            await peer.from_app.receive()
            start = anyio.current_time()
            for number in range(3):  # two fit; the third is read and held back
                await peer.send_text(str(number))
            await peer.send_text("3")  # taken once the third is dropped: pure push
            held_back = anyio.current_time() - start
            await peer.disconnect(1000)
            await peer.finished.wait()
    peer.close()
    assert 30.0 <= held_back <= 30.0 + 2 * 1.0


# -- the inbound bound: the receive task reads for a handler that is away -------------------


async def _fill_until_backpressure(peer: FakePeer, text: str, limit: int) -> int:
    """Sends from a helper task until the app stops taking messages; returns how many went."""
    sent = 0
    stats = peer.to_app.statistics

    async def sender() -> None:
        nonlocal sent
        for _ in range(limit):
            await peer.to_app.send({"type": "websocket.receive", "text": text})
            sent += 1

    async with anyio.create_task_group() as tg:
        tg.start_soon(sender)
        # the receive task starts reading once the handler has been away a watch interval,
        # and stops when the queue is full: then the sender stays blocked (virtual time)
        await anyio.sleep(1)
        assert sent > 1
        assert stats().tasks_waiting_send == 1
        await anyio.wait_all_tasks_blocked()
        assert stats().tasks_waiting_receive == 0
        tg.cancel_scope.cancel()
    return sent


async def test_slow_reader_slows_the_client_and_loses_nothing() -> None:
    read_more = anyio.Event()
    got: list[Any] = []

    @websocket(max_queue=2, watch_interval=0.001)
    async def slow(scope: dict[str, Any], receiver: Receiver) -> AsyncIterator[Any]:
        got.append(await receiver.receive())  # a reader from the start
        await read_more.wait()
        async for message in receiver:
            got.append(message)
            if len(got) == 20:
                yield ws_close()

    peer = FakePeer(buffer=0)  # the server's own queue: sending blocks when nobody receives
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(peer.serve, build_server(slow))
            await peer.connect()
            await peer.send_text("0")
            sent = 1 + await _fill_until_backpressure(peer, "x", 19)
            # 2 queued and 1 in the receive task's hand: nothing more is read
            assert sent == 1 + 3
            read_more.set()
            for number in range(sent, 20):
                await peer.send_text(str(number))
            assert (await peer.from_app.receive())["type"] == "websocket.close"
            await peer.disconnect(1000)
    peer.close()
    assert got == ["0", "x", "x", "x", *[str(n) for n in range(4, 20)]]


async def test_queue_is_bounded_in_bytes_too() -> None:
    read_more = anyio.Event()

    @websocket(max_queue=100, max_queue_bytes=10, watch_interval=0.001)
    async def slow(scope: dict[str, Any], receiver: Receiver) -> AsyncIterator[Any]:
        await receiver.receive()
        await read_more.wait()
        yield ws_close()

    peer = FakePeer(buffer=0)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(peer.serve, build_server(slow))
            await peer.connect()
            await peer.send_text("first")
            # 2 queued (8 bytes: a third would pass 10) and 1 in the receive task's hand
            assert await _fill_until_backpressure(peer, "x" * 4, 100) == 3
            read_more.set()
            assert (await peer.from_app.receive())["type"] == "websocket.close"
            await peer.disconnect(1000)
    peer.close()


async def test_handler_that_reads_late_loses_nothing() -> None:
    ready = anyio.Event()
    got: list[Any] = []

    @websocket(max_queue=4, watch_interval=0.001)
    async def late(scope: dict[str, Any], receiver: Receiver) -> AsyncIterator[Any]:
        await ready.wait()  # setup work before the first read
        async for message in receiver:
            got.append(message)
            if len(got) == 50:
                yield ws_close()

    peer = FakePeer(buffer=0)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(peer.serve, build_server(late))
            await peer.connect()
            # 4 queued and 1 in hand: the client is held back, nothing dropped
            assert await _fill_until_backpressure(peer, "early", 50) == 5
            ready.set()
            for number in range(5, 50):
                await peer.send_text(str(number))
            assert (await peer.from_app.receive())["type"] == "websocket.close"
            await peer.disconnect(1000)
    peer.close()
    assert got == ["early"] * 5 + [str(n) for n in range(5, 50)]
