"""Receiving JSON on a websocket, both backends (issue 16, item 3): ``receiver.json()`` and
``@websocket(json=True)``; what is not JSON text closes with 1007 and a reason."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from shallot import JSONReceiver, Receiver, WSDisconnect, build_server, websocket, ws_send_json
from shallot.testing import TestClient, WebSocketClosed

from ._fakes import Seen


def json_echo(seen: Seen, **options: Any) -> Any:
    @websocket(on_close=seen.on_close, **options)
    async def echo(scope: dict[str, Any], receiver: Receiver) -> AsyncIterator[Any]:
        try:
            while True:
                value = await receiver.json() if not options else await receiver.receive()
                seen.events.append(value)
                yield ws_send_json({"got": value})
        except WSDisconnect as disconnect:
            seen.events.append(("disconnect", disconnect.code, disconnect.reason))
            raise

    return echo


@pytest.mark.parametrize("options", [{}, {"json": True}], ids=["receiver.json", "json=True"])
async def test_json_values_are_handed_over_parsed(options: dict[str, Any]) -> None:
    seen = Seen()
    with anyio.fail_after(2):
        async with (
            TestClient(build_server(json_echo(seen, **options))) as client,
            client.websocket("/") as ws,
        ):
            values: list[Any] = [{"a": [1, 2.5, None]}, "text", 3, [], True]
            for value in values:
                await ws.send_json(value)
                assert await ws.receive_json() == {"got": value}
            await ws.close(4000, "done")
        await seen.closed.wait()
    assert seen.events[-2:] == [("disconnect", 4000, "done"), "on_close"]


@pytest.mark.parametrize("options", [{}, {"json": True}], ids=["receiver.json", "json=True"])
@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ("{'single': 'quotes'}", "invalid JSON: Expecting property name enclosed in double quotes"),
        ("", "invalid JSON: Expecting value"),
        ('{"a": 1} trailing', "invalid JSON: Extra data"),
        (b'{"a": 1}', "expected JSON text, got a binary frame"),
        ("Infinity", "invalid JSON: Infinity is not JSON"),  # RFC 8259 §6; Python takes it
        ('{"a": NaN}', "invalid JSON: NaN is not JSON"),
        # an echo of inf or of half a surrogate pair would fail in the handler, not here
        ("[1e999]", "invalid JSON: number out of range"),
        ('"\\ud800"', "invalid JSON: a string holds half a surrogate pair"),
    ],
    ids=["single-quotes", "empty", "extra-data", "binary", "infinity", "nan", "1e999", "surrogate"],
)
async def test_what_is_not_json_text_closes_with_1007(
    options: dict[str, Any], frame: str | bytes, reason: str
) -> None:
    seen = Seen()
    with anyio.fail_after(2):
        async with (
            TestClient(build_server(json_echo(seen, **options))) as client,
            client.websocket("/") as ws,
        ):
            await ws.send_json({"first": "fine"})
            assert await ws.receive_json() == {"got": {"first": "fine"}}
            await ws.send(frame)
            with pytest.raises(WebSocketClosed) as closed:
                await ws.receive()
        await seen.closed.wait()
    assert (closed.value.code, closed.value.reason) == (1007, reason)
    assert seen.events[1:] == [("disconnect", 1007, reason), "on_close"]


async def test_a_json_receiver_merges_parsed_values() -> None:
    async def feed() -> AsyncIterator[str]:
        yield "from the feed"

    @websocket(json=True)
    async def merged(scope: dict[str, Any], receiver: JSONReceiver) -> AsyncIterator[Any]:
        assert isinstance(receiver, JSONReceiver)
        async for source, item in receiver.merge(feed()):
            yield ws_send_json({"client": source is receiver, "item": item})

    with anyio.fail_after(2):
        async with TestClient(build_server(merged)) as client, client.websocket("/") as ws:
            assert await ws.receive_json() == {"client": False, "item": "from the feed"}
            await ws.send_json({"n": 1})
            assert await ws.receive_json() == {"client": True, "item": {"n": 1}}


async def test_a_json_handler_sees_the_client_leave_as_usual() -> None:
    seen = Seen()
    with anyio.fail_after(2):
        async with (
            TestClient(build_server(json_echo(seen, json=True))) as client,
            client.websocket("/") as ws,
        ):
            await ws.close(1001)
        await seen.closed.wait()
    assert seen.events == [("disconnect", 1001, ""), "on_close"]


async def test_sending_nan_closes_with_1011_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    # JSON.parse refuses NaN: ws_send_json fails as for any value JSON cannot hold.
    @websocket(json=True)
    async def average(scope: dict[str, Any], receiver: JSONReceiver) -> AsyncIterator[Any]:
        async for numbers in receiver:
            yield ws_send_json({"mean": sum(numbers) / len(numbers) if numbers else float("nan")})

    with anyio.fail_after(2):
        async with TestClient(build_server(average)) as client, client.websocket("/") as ws:
            await ws.send_json([1, 2])
            assert await ws.receive_json() == {"mean": 1.5}
            await ws.send_json([])
            assert await ws.wait_closed() == 1011
    errors = [r for r in caplog.records if r.name == "shallot" and r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    assert isinstance(errors[0].exc_info[1], ValueError)
