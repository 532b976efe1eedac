"""``@websocket``'s limits through the in-memory TestClient, on both backends (issue 14):
``idle_timeout``, ``max_connections``, ``max_rate``/``max_burst``, and how they are checked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from shallot import Receiver, WSDisconnect, build_server, websocket, ws_close, ws_send
from shallot._types import Message
from shallot.testing import TestClient, WebSocketClosed, WebSocketRejected

from ._fakes import Seen, websocket_scope

IDLE = 0.3
INTERVAL = 0.02
IDLE_REASON = "idle: nothing received for 0.1s"


def echo_endpoint(seen: Seen, **options: Any) -> Any:
    @websocket(on_close=seen.on_close, watch_interval=INTERVAL, **options)
    async def echo(scope: dict[str, Any], receiver: Receiver) -> AsyncIterator[Any]:
        try:
            async for message in receiver:
                yield ws_send(message)
        except WSDisconnect as disconnect:
            seen.events.append(("disconnect", disconnect.code))
            raise

    return echo


# -- idle_timeout ----------------------------------------------------------------------------


async def test_a_silent_client_is_closed_with_1001_after_idle_timeout() -> None:
    seen = Seen()
    app = build_server(echo_endpoint(seen, idle_timeout=IDLE))
    with anyio.fail_after(5):
        async with TestClient(app) as client, client.websocket("/") as ws:
            await ws.send("hi")
            assert await ws.receive() == "hi"
            quiet_from = anyio.current_time()
            with pytest.raises(WebSocketClosed) as closed:
                await ws.receive()
            after = anyio.current_time() - quiet_from
        await seen.closed.wait()
    assert (closed.value.code, closed.value.reason) == (1001, "idle: nothing received for 0.3s")
    assert IDLE <= after < IDLE + 3 * INTERVAL + 0.2
    assert seen.events == [("disconnect", 1001), "on_close"]


async def test_a_slow_handshake_does_not_count_as_silence() -> None:
    async def slow_login(scope: dict[str, Any]) -> Any:
        await anyio.sleep(2 * IDLE)  # on_connect takes longer than the idle timeout
        return {"type": "websocket.accept", "subprotocol": None}

    @websocket(on_connect=slow_login, watch_interval=INTERVAL, idle_timeout=IDLE)
    async def echo(scope: dict[str, Any], receiver: Receiver) -> AsyncIterator[Any]:
        async for message in receiver:
            yield ws_send(message)

    with anyio.fail_after(5):
        async with TestClient(build_server(echo)) as client, client.websocket("/") as ws:
            await anyio.sleep(IDLE / 2)  # within the idle timeout, counted from the accept
            await ws.send("made it")
            assert await ws.receive() == "made it"


async def test_a_client_that_sends_heartbeats_stays() -> None:
    seen = Seen()
    app = build_server(echo_endpoint(seen, idle_timeout=IDLE))
    with anyio.fail_after(5):
        async with TestClient(app) as client, client.websocket("/") as ws:
            for beat in range(4):  # each well inside the idle timeout, twice that in all
                await anyio.sleep(IDLE / 2)  # the client's cadence, the thing under test
                await ws.send(f"beat {beat}")
                assert await ws.receive() == f"beat {beat}"
            await ws.close(1000)
        await seen.closed.wait()
    assert seen.events == [("disconnect", 1000), "on_close"]


async def test_a_silent_client_of_a_pushing_handler_is_closed_too(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen = Seen()

    @websocket(on_close=seen.on_close, watch_interval=INTERVAL, idle_timeout=IDLE)
    async def ticker(scope: dict[str, Any], receiver: Receiver) -> AsyncIterator[Any]:
        try:
            while True:  # never reads: shallot's receive task does
                yield ws_send("tick")
                await anyio.sleep(INTERVAL / 4)
        except WSDisconnect:
            seen.events.append("disconnect")
            raise

    caplog.set_level("INFO", logger="shallot")
    with anyio.fail_after(5):
        async with TestClient(build_server(ticker)) as client, client.websocket("/") as ws:
            assert await ws.wait_closed() == 1001
            assert ws.close_reason == "idle: nothing received for 0.3s"
            with pytest.raises(WebSocketClosed):  # one close, nothing after it
                await ws.receive()
        await seen.closed.wait()
    assert seen.events == ["disconnect", "on_close"]


async def test_a_yield_after_shallots_close_is_not_taken_for_a_slow_client(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @websocket(watch_interval=INTERVAL, idle_timeout=0.1, close_timeout=0.2)
    async def ticker(scope: dict[str, Any], receiver: Receiver) -> AsyncIterator[Any]:
        while True:
            yield ws_send("tick")
            await anyio.sleep(INTERVAL / 4)

    sent: list[Message] = []
    to_app_tx, to_app_rx = anyio.create_memory_object_stream[Message](1)

    async def send(message: Message) -> None:
        sent.append(message)  # a client that never answers the close

    caplog.set_level("INFO", logger="shallot")
    with anyio.fail_after(5), to_app_tx, to_app_rx:
        await to_app_tx.send({"type": "websocket.connect"})
        await build_server(ticker)(websocket_scope(), to_app_rx.receive, send)
    closes = [message for message in sent if message["type"] == "websocket.close"]
    assert closes == [{"type": "websocket.close", "code": 1001, "reason": IDLE_REASON}]
    assert not [record for record in caplog.records if "read nothing" in record.message]


# -- max_rate / max_burst ------------------------------------------------------------------------


async def test_a_client_over_the_rate_is_closed_with_1008() -> None:
    seen = Seen()
    app = build_server(echo_endpoint(seen, max_rate=1, max_burst=2))
    with anyio.fail_after(5):
        async with TestClient(app) as client, client.websocket("/") as ws:
            for number in range(3):  # a burst of two passes; the third is one too many
                await ws.send(str(number))
            assert await ws.receive() == "0"
            assert await ws.receive() == "1"
            with pytest.raises(WebSocketClosed) as closed:
                await ws.receive()
        await seen.closed.wait()
    assert (closed.value.code, closed.value.reason) == (1008, "rate limit exceeded")
    assert seen.events == [("disconnect", 1008), "on_close"]


async def test_a_client_within_the_rate_is_served() -> None:
    seen = Seen()
    app = build_server(echo_endpoint(seen, max_rate=1000))
    with anyio.fail_after(5):
        async with TestClient(app) as client, client.websocket("/") as ws:
            for number in range(200):  # within the default burst (one second's worth)
                await ws.send(str(number))
                assert await ws.receive() == str(number)


# -- max_connections ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("denial", "refusal"), [(True, "503"), (False, "1013")], ids=["http-denial", "no-denial"]
)
async def test_a_handshake_over_max_connections_is_refused(denial: bool, refusal: str) -> None:
    seen = Seen()
    app = build_server(echo_endpoint(seen, max_connections=2))
    with anyio.fail_after(5):
        async with TestClient(app) as client:
            async with (
                client.websocket("/", denial_response=denial) as first,
                client.websocket("/", denial_response=denial),
            ):
                if denial:  # the server answers handshakes with HTTP: 503 before accept
                    with pytest.raises(WebSocketRejected) as rejected:
                        async with client.websocket("/", denial_response=denial):
                            pass
                    assert rejected.value.status == 503
                    assert b"too many connections" in rejected.value.body
                    assert (b"retry-after", b"1") in rejected.value.headers
                else:  # it cannot: accepted, then closed with 1013 "try again later"
                    async with client.websocket("/", denial_response=denial) as third:
                        assert await third.wait_closed() == 1013
                        assert third.close_reason == "try again later"
                await first.send("still served")
                assert await first.receive() == "still served"
            async with client.websocket("/") as again:  # the seats were given back
                await again.send("in")
                assert await again.receive() == "in"
    assert refusal in {"503", "1013"}


async def test_every_way_a_connection_ends_gives_its_seat_back() -> None:
    ways = iter(["raise", "refuse", "hang"])
    entered = anyio.Event()

    async def on_connect(scope: dict[str, Any]) -> Any:
        way = next(ways, "accept")
        if way == "raise":
            raise RuntimeError("on_connect failed")
        if way == "refuse":
            return ws_close()
        if way == "hang":
            entered.set()
            await anyio.sleep_forever()
        return {"type": "websocket.accept", "subprotocol": None}

    @websocket(on_connect=on_connect, max_connections=1)
    async def handler(scope: dict[str, Any], receiver: Receiver) -> AsyncIterator[Any]:
        message = await receiver.receive()
        if message == "boom":
            raise ValueError("the handler failed")
        yield ws_send(f"got {message!s}")

    with anyio.fail_after(5):
        async with TestClient(build_server(handler)) as client:
            for status in (500, 403):  # on_connect raised; on_connect refused
                with pytest.raises(WebSocketRejected) as rejected:
                    async with client.websocket("/"):
                        pass
                assert rejected.value.status == status
            with anyio.CancelScope() as hanging:  # a handshake cancelled while it waits

                async def cancel_once_entered() -> None:
                    await entered.wait()
                    hanging.cancel()

                async with anyio.create_task_group() as tg:
                    tg.start_soon(cancel_once_entered)
                    async with client.websocket("/"):
                        pass  # pragma: no cover
            async with client.websocket("/") as ws:  # the handler raises: 1011
                await ws.send("boom")
                assert await ws.wait_closed() == 1011
            async with client.websocket("/") as ws:  # the one seat is free again
                await ws.send("hello")
                assert await ws.receive() == "got hello"


async def test_two_apps_serving_one_endpoint_count_apart() -> None:
    handler = echo_endpoint(Seen(), max_connections=1)
    first_app, second_app = build_server(handler), build_server(handler)
    with anyio.fail_after(5):
        async with (
            TestClient(first_app) as first,
            TestClient(second_app) as second,
            first.websocket("/"),
            second.websocket("/") as ws,
        ):
            await ws.send("own seat")
            assert await ws.receive() == "own seat"
            with pytest.raises(WebSocketRejected):
                async with first.websocket("/"):
                    pass


# -- checked when decorating ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"idle_timeout": 0}, ValueError, "idle_timeout must be a positive number"),
        ({"idle_timeout": "30"}, ValueError, "idle_timeout"),
        ({"max_connections": 0}, ValueError, "max_connections must be a positive whole"),
        ({"max_connections": 1.5}, ValueError, "max_connections"),
        ({"max_rate": -1}, ValueError, "max_rate must be a positive number"),
        ({"max_rate": 5, "max_burst": 0.5}, ValueError, "max_burst must be a positive whole"),
        ({"max_burst": 10}, ValueError, "max_burst needs max_rate"),
        ({"json": "yes"}, TypeError, "json must be True or False"),
    ],
)
def test_limits_are_checked_when_decorating(
    options: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        websocket(**options)
