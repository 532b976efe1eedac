"""The websocket side of ``TestClient`` (``shallot/_testing_ws.py``): JSON helpers, query
parameters, and a receive that fails in bounded time with a clear error (issue 16)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest
from trio.testing import MockClock

from shallot import Receiver, build_server, websocket, ws_close, ws_send, ws_send_json
from shallot.testing import TestClient, WebSocketClosed
from shallot.types import Request, WSMessage


@websocket
async def json_echo(scope: Request, receiver: Receiver) -> AsyncIterator[WSMessage]:
    yield ws_send_json({"query": scope["query_string"].decode()})
    async for message in receiver:
        if message == "silence":
            await anyio.sleep_forever()
        yield ws_send_json({"got": message}) if isinstance(message, str) else ws_send(message)


app = build_server(json_echo)


async def test_send_json_and_receive_json() -> None:
    with anyio.fail_after(5):
        async with TestClient(app) as client, client.websocket("/") as ws:
            assert await ws.receive_json() == {"query": ""}
            await ws.send_json({"é": [1, None]})
            assert await ws.receive_json() == {"got": '{"é":[1,null]}'}


async def test_receive_json_refuses_binary_and_malformed_text() -> None:
    with anyio.fail_after(5):
        async with TestClient(app) as client, client.websocket("/") as ws:
            await ws.receive()
            await ws.send_bytes(b"{}")
            with pytest.raises(TypeError, match="expected a text message"):
                await ws.receive_json()
            await ws.send_text("not json")
            assert await ws.receive_text() == '{"got":"not json"}'


async def test_params_go_into_the_query_string() -> None:
    with anyio.fail_after(5):
        async with TestClient(app) as client:
            async with client.websocket("/?a=1", params={"nick": "ada b"}) as ws:
                assert await ws.receive_json() == {"query": "a=1&nick=ada+b"}


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_a_message_that_never_comes_fails_in_bounded_time(anyio_backend: str) -> None:
    with anyio.fail_after(5):
        async with TestClient(app) as client:
            async with client.websocket("/", receive_timeout=0.05) as ws:
                await ws.receive()
                await ws.send("silence")
                with pytest.raises(TimeoutError, match=r"no message from the websocket / within"):
                    await ws.receive()


@pytest.mark.parametrize("anyio_backend", [("trio", {"clock": MockClock(autojump_threshold=0)})])
async def test_the_default_limit_is_ten_seconds_and_can_be_lifted(anyio_backend: object) -> None:
    async with TestClient(app) as client, client.websocket("/") as ws:
        await ws.receive()
        await ws.send("silence")
        started = anyio.current_time()
        with pytest.raises(TimeoutError, match="set its receive_timeout to wait longer"):
            await ws.receive()
        assert anyio.current_time() - started == pytest.approx(10.0)
        ws.receive_timeout = None  # the test bounds the wait itself instead
        with anyio.move_on_after(3600) as waited:
            await ws.receive()
        assert waited.cancelled_caught


@websocket(send_timeout=0.2)
async def welcome(scope: Request, receiver: Receiver) -> AsyncIterator[WSMessage]:
    yield ws_send("welcome")
    yield ws_send("here is your state")
    async for message in receiver:
        yield ws_send(message)


@pytest.mark.parametrize(
    "anyio_backend",
    [("asyncio", {}), ("trio", {"clock": MockClock(autojump_threshold=0)})],
)
async def test_a_test_that_reads_late_gets_what_a_real_client_would_have_buffered(
    anyio_backend: object,
) -> None:
    # a real client's socket buffers and queue hold the app's first messages: they must not
    # stall its sends into a send_timeout close
    with anyio.fail_after(30):
        async with TestClient(build_server(welcome)) as client, client.websocket("/") as ws:
            await anyio.sleep(0.5)  # longer than send_timeout and a look, reading nothing
            assert await ws.receive() == "welcome"
            assert await ws.receive() == "here is your state"
            await ws.send("still here")
            assert await ws.receive() == "still here"


@websocket
async def one_answer(scope: Request, receiver: Receiver) -> AsyncIterator[WSMessage]:
    yield ws_send("only this")
    yield ws_close(4000, "done")


async def test_sending_after_the_app_closed_raises_websocket_closed() -> None:
    with anyio.fail_after(5):
        async with TestClient(build_server(one_answer)) as client, client.websocket("/") as ws:
            assert await ws.receive() == "only this"
            with pytest.raises(WebSocketClosed):
                await ws.receive()
            with pytest.raises(WebSocketClosed) as closed:
                await ws.send("anyone there?")
    assert (closed.value.code, closed.value.reason) == (4000, "done")
