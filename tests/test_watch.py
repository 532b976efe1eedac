"""The watch: one timer of the app looks at every busy connection (``_watch``); without a
lifespan, each connection watches itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio

from shallot import Receiver, build_server, websocket, ws_send
from shallot.testing import TestClient

from ._fakes import FakePeer, websocket_scope


def _tasks_named(fragment: str) -> int:
    return sum(fragment in (task.name or "") for task in anyio.get_running_tasks())


async def test_busy_connections_share_one_watch_task_and_need_no_receive_task() -> None:
    @websocket(watch_interval=0.005)
    async def echo(scope: dict[str, Any], receiver: Receiver) -> AsyncIterator[Any]:
        async for message in receiver:
            yield ws_send(message)

    app = build_server(echo)
    peers = [FakePeer() for _ in range(20)]
    with anyio.fail_after(5):
        # The app's lifespan runs: its task group hosts the one watch of the endpoint.
        async with TestClient(app), anyio.create_task_group() as tg:
            for peer in peers:
                tg.start_soon(peer.serve, app)
                assert (await peer.connect())["type"] == "websocket.accept"
            # Ping-pong on every connection for several watch intervals.
            deadline = anyio.current_time() + 0.05
            rounds = 0
            while anyio.current_time() < deadline or rounds < 3:
                for peer in peers:
                    await peer.send_text(f"m{rounds}")
                for peer in peers:
                    assert (await peer.from_app.receive())["text"] == f"m{rounds}"
                rounds += 1
            assert _tasks_named("Watch._run") == 1
            assert _tasks_named("receive_task") == 0
            for peer in peers:
                await peer.disconnect(1000)
            for peer in peers:
                await peer.finished.wait()
    for peer in peers:
        peer.close()


async def test_the_watch_moves_when_the_connection_hosting_it_ends() -> None:
    events: list[str] = []

    async def on_close(scope: dict[str, Any]) -> None:
        events.append(f"on_close {scope['path']}")

    @websocket(on_close=on_close, watch_interval=0.005, disconnect_timeout=0.05)
    async def handler(scope: dict[str, Any], receiver: Receiver) -> AsyncIterator[Any]:
        if scope["path"] == "/reader":
            async for message in receiver:
                yield ws_send(message)
        else:  # away from its receiver for good: only the watch can see its client leave
            yield ws_send("hello")
            try:
                await anyio.sleep_forever()
            finally:
                events.append("away handler stopped")

    app = build_server(handler)
    first, second = FakePeer(), FakePeer()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            # The first connection joins the watch first, so its group hosts the watch's task.
            tg.start_soon(first.serve, app, websocket_scope("/reader"))
            await first.connect()
            tg.start_soon(second.serve, app, websocket_scope("/away"))
            await second.connect()
            assert (await second.from_app.receive())["text"] == "hello"
            await first.disconnect(1000)
            await first.finished.wait()
            assert events == ["on_close /reader"]
            await second.disconnect(1000)
            await second.finished.wait()
    first.close()
    second.close()
    assert events == ["on_close /reader", "away handler stopped", "on_close /away"]
