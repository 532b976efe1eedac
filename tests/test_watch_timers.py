"""The watch's timers in virtual time: trio's autojump clock (pytest-trio's ``autojump_clock``)
runs as many watch intervals as a test needs at once, so a test waits for the watch by letting
time pass instead of polling (``_watch``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from trio.testing import MockClock

from shallot import Receiver, build_server, websocket, ws_send

from ._fakes import FakePeer, websocket_scope


@pytest.fixture
def anyio_backend(autojump_clock: MockClock) -> tuple[str, dict[str, Any]]:
    """Trio only: the clock jumps ahead whenever every task waits."""
    return "trio", {"clock": autojump_clock}


def _tasks_named(fragment: str) -> int:
    return sum(fragment in (task.name or "") for task in anyio.get_running_tasks())


async def test_idle_connections_leave_the_watch_and_its_task_ends() -> None:
    @websocket(watch_interval=0.002)
    async def echo(scope: dict[str, Any], receiver: Receiver) -> AsyncIterator[Any]:
        async for message in receiver:
            yield ws_send(message)

    peers = [FakePeer() for _ in range(3)]
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for peer in peers:
                tg.start_soon(peer.serve, build_server(echo))
                await peer.connect()
            await anyio.sleep(1)  # many watch intervals, in virtual time
            assert _tasks_named("Watch._run") == 0
            # A message wakes the watch again, and the connection still echoes.
            await peers[1].send_text("again")
            assert (await peers[1].from_app.receive())["text"] == "again"
            assert _tasks_named("Watch._run") == 1
            for peer in peers:
                await peer.disconnect(1000)
    for peer in peers:
        peer.close()


@pytest.mark.parametrize("count", [1, 12])
async def test_server_cancelling_every_connection_ends_them_all(count: int) -> None:
    closed: list[str] = []

    async def on_close(scope: dict[str, Any]) -> None:
        closed.append(scope["path"])

    @websocket(on_close=on_close, watch_interval=0.002)
    async def busy(scope: dict[str, Any], receiver: Receiver) -> AsyncIterator[Any]:
        yield ws_send("started")
        await anyio.sleep_forever()  # away from the receiver, and always in the watch

    app = build_server(busy)
    peers = [FakePeer() for _ in range(count)]
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for number, peer in enumerate(peers):
                tg.start_soon(peer.serve, app, websocket_scope(f"/{number}"))
                await peer.connect()
                assert (await peer.from_app.receive())["text"] == "started"
            await anyio.sleep(
                1
            )  # many looks, in virtual time: the watch reads for the busy handlers
            tg.cancel_scope.cancel()
    for peer in peers:
        last = peer.sent_nowait()[-1]
        assert (last["type"], last["code"]) == ("websocket.close", 1001)
        peer.close()
    assert sorted(closed) == sorted(f"/{number}" for number in range(count))


async def test_a_reader_that_stops_reading_is_watched_again() -> None:
    stopped = anyio.Event()
    seen: list[Any] = []

    @websocket(watch_interval=0.002, disconnect_timeout=0.05)
    async def handler(scope: dict[str, Any], receiver: Receiver) -> AsyncIterator[Any]:
        # Sits in a read long enough to leave the watch, then stays away from its receiver.
        first = await receiver.receive()
        yield ws_send(first)
        try:
            await anyio.sleep_forever()
        except BaseException:
            seen.append("cancelled")
            raise
        finally:
            stopped.set()

    peer = FakePeer()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(peer.serve, build_server(handler))
            await peer.connect()
            await anyio.sleep(1)  # many watch intervals, in virtual time
            assert _tasks_named("Watch._run") == 0
            await peer.send_text("one")
            assert (await peer.from_app.receive())["text"] == "one"
            await peer.disconnect(1000)
            await stopped.wait()
    peer.close()
    assert seen == ["cancelled"]
