"""@websocket through the in-memory TestClient: handshake, messages, close codes, hooks."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from shallot import (
    Receiver,
    WSDisconnect,
    build_server,
    standard_not_found,
    websocket,
    ws_accept,
    ws_close,
    ws_send,
)
from shallot.broadcast import open_hub
from shallot.testing import TestClient, WebSocketClosed, WebSocketRejected

from ._fakes import websocket_scope


@websocket
async def echo(scope: dict[str, Any], receiver: Receiver) -> AsyncIterator[Any]:
    async for message in receiver:
        yield ws_send(message)


async def test_echo_text_and_bytes() -> None:
    with anyio.fail_after(2):
        async with TestClient(build_server(echo)) as client, client.websocket("/") as ws:
            await ws.send("héllo")
            assert await ws.receive_text() == "héllo"
            await ws.send(b"\x00\xff")
            assert await ws.receive_bytes() == b"\x00\xff"


async def test_send_order_is_preserved() -> None:
    @websocket
    async def burst(scope: dict[str, Any], receiver: Receiver) -> AsyncIterator[Any]:
        for number in range(200):
            yield ws_send(str(number))

    with anyio.fail_after(2):
        async with TestClient(build_server(burst)) as client, client.websocket("/") as ws:
            assert [await ws.receive() for _ in range(200)] == [str(n) for n in range(200)]
            assert await ws.wait_closed() == 1000


async def test_generator_that_ends_closes_with_1000() -> None:
    @websocket
    async def one(scope: dict[str, Any], receiver: Receiver) -> AsyncIterator[Any]:
        yield ws_send("only")

    with anyio.fail_after(2):
        async with TestClient(build_server(one)) as client, client.websocket("/") as ws:
            assert await ws.receive() == "only"
            with pytest.raises(WebSocketClosed) as closed:
                await ws.receive()
    assert closed.value.code == 1000


def test_wsdisconnect_takes_a_reason_alone_as_2_0_apps_give_it() -> None:
    # shallot 2.0's WSDisconnect had no code: WSDisconnect("Good Bye") is a reason (issue 13).
    bye = WSDisconnect("Good Bye")
    assert (bye.code, bye.reason) == (1005, "Good Bye")
    assert (WSDisconnect().code, WSDisconnect().reason) == (1005, "")
    assert (WSDisconnect(4001, "late").code, WSDisconnect(4001, "late").reason) == (4001, "late")
    assert repr(bye) == "WSDisconnect(code=1005, reason='Good Bye')"


async def test_a_2_0_handler_raising_wsdisconnect_with_a_reason_ends_normally(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @websocket
    async def leave(scope: dict[str, Any], receiver: Receiver) -> AsyncIterator[Any]:
        yield ws_send("bye now")
        raise WSDisconnect("Good Bye")

    with anyio.fail_after(2):
        async with TestClient(build_server(leave)) as client, client.websocket("/") as ws:
            assert await ws.receive() == "bye now"
            assert await ws.wait_closed() == 1000
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


async def test_coroutine_handler_return_value_is_sent_then_closed() -> None:
    @websocket
    async def greet(scope: dict[str, Any], receiver: Receiver, name: str = "you") -> Any:
        first = await receiver.receive()
        assert isinstance(first, str)
        return ws_send(f"hello {first}")

    with anyio.fail_after(2):
        async with TestClient(build_server(greet)) as client, client.websocket("/") as ws:
            await ws.send("ann")
            assert await ws.receive() == "hello ann"
            assert await ws.wait_closed() == 1000


async def test_close_code_and_reason_reach_the_client_and_nothing_follows() -> None:
    finished = []

    @websocket
    async def closer(scope: dict[str, Any], receiver: Receiver) -> AsyncIterator[Any]:
        try:
            yield ws_send("before")
            yield ws_close(4000, "done here")
            yield ws_send("after")  # never sent: the close ends the generator
        finally:
            finished.append(True)

    with anyio.fail_after(2):
        async with TestClient(build_server(closer)) as client, client.websocket("/") as ws:
            assert await ws.receive() == "before"
            with pytest.raises(WebSocketClosed) as closed:
                await ws.receive()
    assert (closed.value.code, closed.value.reason) == (4000, "done here")
    assert finished == [True]


@pytest.mark.parametrize("bad", [RuntimeError("boom"), "not a message"])
async def test_failing_handler_closes_with_1011_and_logs_once(
    bad: Any, caplog: pytest.LogCaptureFixture
) -> None:
    @websocket
    async def broken(scope: dict[str, Any], receiver: Receiver) -> AsyncIterator[Any]:
        yield ws_send("ok")
        if isinstance(bad, Exception):
            raise bad
        yield bad

    with anyio.fail_after(2):
        async with TestClient(build_server(broken)) as client, client.websocket("/") as ws:
            assert await ws.receive() == "ok"
            assert await ws.wait_closed() == 1011
            # the server keeps serving
            async with client.websocket("/") as again:
                assert await again.receive() == "ok"
    errors = [r for r in caplog.records if r.name == "shallot" and r.levelno >= logging.ERROR]
    assert len(errors) == 2  # once per connection
    assert "broken" in errors[0].getMessage()


async def test_handler_that_cannot_start_closes_with_1011_and_runs_on_close(
    caplog: pytest.LogCaptureFixture,
) -> None:
    closed: list[str] = []

    async def on_close(scope: dict[str, Any]) -> None:
        closed.append(scope["path"])

    @websocket(on_close=on_close)
    async def no_parameters(scope: dict[str, Any], receiver: Receiver) -> AsyncIterator[Any]:
        yield ws_send("unreachable")  # pragma: no cover

    async def routed(request: dict[str, Any]) -> Any:
        return await no_parameters(request, "surplus")  # a route parameter it does not take

    with anyio.fail_after(2):
        async with TestClient(build_server(routed)) as client, client.websocket("/p") as ws:
            assert await ws.wait_closed() == 1011
    assert closed == ["/p"]
    errors = [r for r in caplog.records if r.name == "shallot" and r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == [
        "websocket handler test_handler_that_cannot_start_closes_with_1011_and_runs_on_close"
        ".<locals>.no_parameters failed (WS /p)"
    ]
    assert errors[0].exc_info is not None
    assert errors[0].exc_info[0] is TypeError


async def test_subprotocol_and_accept_headers() -> None:
    async def choose(scope: dict[str, Any]) -> Any:
        assert "chat" in scope["subprotocols"]
        return ws_accept("chat", headers={"x-room": "lobby"})

    handler = websocket(on_connect=choose)(echo.__wrapped__)  # type: ignore[attr-defined]
    with anyio.fail_after(2):
        async with (
            TestClient(build_server(handler)) as client,
            client.websocket("/", subprotocols=["other", "chat"]) as ws,
        ):
            assert ws.subprotocol == "chat"
            assert (b"x-room", b"lobby") in ws.accept_headers


@pytest.mark.parametrize("offered", [["other"], []])
async def test_a_subprotocol_the_client_did_not_offer_is_not_agreed_to(
    offered: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    async def choose(scope: dict[str, Any]) -> Any:
        return ws_accept("chat")

    handler = websocket(on_connect=choose)(echo.__wrapped__)  # type: ignore[attr-defined]
    with anyio.fail_after(2):
        async with (
            TestClient(build_server(handler)) as client,
            client.websocket("/", subprotocols=offered) as ws,
        ):
            assert ws.subprotocol is None  # RFC 6455 §4.2.2: answered without one
            await ws.send("hi")
            assert await ws.receive() == "hi"
    assert "ERROR" not in caplog.text


async def test_close_before_accept_is_a_403() -> None:
    async def refuse(scope: dict[str, Any]) -> Any:
        return ws_close()

    handler = websocket(on_connect=refuse)(echo.__wrapped__)  # type: ignore[attr-defined]
    with anyio.fail_after(2):
        async with TestClient(build_server(handler)) as client:
            with pytest.raises(WebSocketRejected) as rejected:
                async with client.websocket("/"):
                    pass
    assert rejected.value.status == 403


@pytest.mark.parametrize(("denial", "status"), [(True, 401), (False, 403)])
async def test_on_connect_may_answer_with_an_http_response(denial: bool, status: int) -> None:
    async def login_first(scope: dict[str, Any]) -> Any:
        return {"status": 401, "headers": {"www-authenticate": "Bearer"}, "body": b"log in"}

    handler = websocket(on_connect=login_first)(echo.__wrapped__)  # type: ignore[attr-defined]
    with anyio.fail_after(2):
        async with TestClient(build_server(handler)) as client:
            with pytest.raises(WebSocketRejected) as rejected:
                async with client.websocket("/", denial_response=denial):
                    pass
    assert rejected.value.status == status
    if denial:
        assert rejected.value.body == b"log in"
        assert (b"www-authenticate", b"Bearer") in rejected.value.headers


async def test_on_connect_sees_the_scope_the_handler_gets() -> None:
    async def authenticate(scope: dict[str, Any]) -> Any:
        scope["user"] = scope["headers"].get("x-user", "anonymous")
        return ws_accept()

    @websocket(on_connect=authenticate)
    async def whoami(scope: dict[str, Any], receiver: Receiver) -> AsyncIterator[Any]:
        yield ws_send(scope["user"])

    with anyio.fail_after(2):
        async with (
            TestClient(build_server(whoami)) as client,
            client.websocket("/", headers={"x-user": "ada"}) as ws,
        ):
            assert await ws.receive() == "ada"


async def test_on_connect_that_raises_refuses_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    async def explode(scope: dict[str, Any]) -> Any:
        raise LookupError("no such user")

    handler = websocket(on_connect=explode)(echo.__wrapped__)  # type: ignore[attr-defined]
    with anyio.fail_after(2):
        async with TestClient(build_server(handler)) as client:
            with pytest.raises(WebSocketRejected) as rejected:
                async with client.websocket("/", denial_response=False):
                    pass
    assert rejected.value.status == 403
    assert "no such user" in caplog.text


@pytest.mark.parametrize(("denial", "status"), [(True, 404), (False, 403)])
async def test_standard_not_found_refuses_websockets(denial: bool, status: int) -> None:
    with anyio.fail_after(2):
        async with TestClient(build_server(standard_not_found)) as client:
            with pytest.raises(WebSocketRejected) as rejected:
                async with client.websocket("/nowhere", denial_response=denial):
                    pass
    assert rejected.value.status == status


async def test_http_request_to_a_websocket_handler_gets_426() -> None:
    async with TestClient(build_server(echo)) as client:
        response = await client.get("/")
    assert response.status_code == 426
    assert response.headers["upgrade"] == "websocket"


async def test_hooks_after_a_client_disconnect_run_in_order_once() -> None:
    events: list[str] = []
    gone = anyio.Event()

    async def on_disconnect(scope: dict[str, Any]) -> None:
        events.append("on_disconnect")

    async def on_close(scope: dict[str, Any]) -> None:
        events.append("on_close")
        gone.set()

    @websocket(on_disconnect=on_disconnect, on_close=on_close)
    async def reader(scope: dict[str, Any], receiver: Receiver) -> AsyncIterator[Any]:
        try:
            async for message in receiver:
                yield ws_send(message)
        except WSDisconnect as disconnect:
            events.append(f"WSDisconnect {disconnect.code}")
            raise
        finally:
            events.append("finally")

    with anyio.fail_after(2):
        async with TestClient(build_server(reader)) as client:
            async with client.websocket("/") as ws:
                await ws.send("a")
                assert await ws.receive() == "a"
                await ws.close(4002)
            await gone.wait()
    assert events == ["WSDisconnect 4002", "finally", "on_disconnect", "on_close"]


async def test_server_close_runs_on_close_but_not_on_disconnect() -> None:
    events: list[str] = []
    closed = anyio.Event()

    async def on_disconnect(scope: dict[str, Any]) -> None:
        events.append("on_disconnect")

    async def on_close(scope: dict[str, Any]) -> None:
        events.append("on_close")
        closed.set()

    @websocket(on_disconnect=on_disconnect, on_close=on_close)
    async def bye(scope: dict[str, Any], receiver: Receiver) -> AsyncIterator[Any]:
        yield ws_close(1000)

    with anyio.fail_after(2):
        async with TestClient(build_server(bye)) as client, client.websocket("/") as ws:
            assert await ws.wait_closed() == 1000
            await closed.wait()
    assert events == ["on_close"]


async def test_failing_hook_is_logged_and_on_close_still_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    closed = anyio.Event()

    async def on_disconnect(scope: dict[str, Any]) -> None:
        raise ValueError("hook broke")

    async def on_close(scope: dict[str, Any]) -> None:
        closed.set()

    handler = websocket(on_disconnect=on_disconnect, on_close=on_close)(
        echo.__wrapped__  # type: ignore[attr-defined]
    )
    with anyio.fail_after(2):
        async with TestClient(build_server(handler)) as client:
            async with client.websocket("/") as ws:
                await ws.send("x")
                assert await ws.receive() == "x"
            await closed.wait()
    assert "hook broke" in caplog.text


def test_decorator_validates_its_arguments() -> None:
    with pytest.raises(TypeError, match="async generator or coroutine"):
        websocket(lambda scope, receiver: None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="on_close"):
        websocket(on_close="nope")  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="max_queue"):
        websocket(max_queue=0)


# -- receiver.merge: the client and other sources as one iteration (issue 7) -----------------


async def test_merge_gives_each_item_with_its_source_in_arrival_order() -> None:
    ticks_tx, ticks_rx = anyio.create_memory_object_stream[str](0)

    @websocket
    async def both(scope: dict[str, Any], receiver: Receiver) -> AsyncIterator[Any]:
        async for source, item in receiver.merge(ticks_rx):
            yield ws_send(f"{'client' if source is receiver else 'ticks'}: {item}")

    with anyio.fail_after(2), ticks_tx, ticks_rx:
        async with TestClient(build_server(both)) as client, client.websocket("/") as ws:
            await ws.send("hi")
            assert await ws.receive() == "client: hi"
            await ticks_tx.send("one")
            assert await ws.receive() == "ticks: one"
            await ws.send(b"raw")
            assert await ws.receive() == "client: b'raw'"
            await ticks_tx.send("two")
            assert await ws.receive() == "ticks: two"


async def test_merge_hands_over_what_arrived_then_raises_wsdisconnect() -> None:
    seen: list[Any] = []
    done = anyio.Event()
    idle_tx, idle_rx = anyio.create_memory_object_stream[str](0)

    @websocket
    async def merged(scope: dict[str, Any], receiver: Receiver) -> AsyncIterator[Any]:
        try:
            async for _source, item in receiver.merge(idle_rx):
                seen.append(item)
        except WSDisconnect as disconnect:
            seen.append(("disconnect", disconnect.code))
        finally:
            done.set()
        yield ws_send("unreachable")  # pragma: no cover

    with anyio.fail_after(2), idle_tx, idle_rx:
        async with TestClient(build_server(merged)) as client:
            async with client.websocket("/") as ws:
                for text in ("a", "b", "c"):
                    await ws.send(text)
                await ws.close(4002)
            await done.wait()
    assert seen == ["a", "b", "c", ("disconnect", 4002)]


async def test_merge_raises_a_sources_error_in_the_handler(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken() -> AsyncIterator[str]:
        yield "fine"
        raise ValueError("source broke")

    @websocket
    async def merged(scope: dict[str, Any], receiver: Receiver) -> AsyncIterator[Any]:
        async for _source, item in receiver.merge(broken()):
            yield ws_send(item)

    with anyio.fail_after(2):
        async with TestClient(build_server(merged)) as client, client.websocket("/") as ws:
            assert await ws.receive() == "fine"
            assert await ws.wait_closed() == 1011
    assert "source broke" in caplog.text


async def test_a_closed_merge_gives_the_receiver_back() -> None:
    @websocket
    async def phases(scope: dict[str, Any], receiver: Receiver) -> AsyncIterator[Any]:
        async with receiver.merge() as merged:
            async for _source, item in merged:
                yield ws_send(f"merged: {item}")
                break
        direct = await receiver.receive()
        assert isinstance(direct, str)
        yield ws_send("direct: " + direct)

    with anyio.fail_after(2):
        async with TestClient(build_server(phases)) as client, client.websocket("/") as ws:
            await ws.send("one")
            assert await ws.receive() == "merged: one"
            await anyio.wait_all_tasks_blocked()  # the pump has stopped
            await ws.send("two")
            assert await ws.receive() == "direct: two"
            assert await ws.wait_closed() == 1000


async def test_hub_messages_keep_the_connections_flow_control() -> None:
    """A client that does not read holds the handler at its yield; the subscription's bounded
    buffer then applies its policy, rather than anything growing without bound."""
    state: dict[str, Any] = {}
    sent: list[Any] = []
    may_send, changed = anyio.Event(), [anyio.Event()]

    async def sent_count(count: int) -> None:
        while len(sent) < count:
            await changed[0].wait()

    async with open_hub() as hub:

        @websocket
        async def room(scope: dict[str, Any], receiver: Receiver) -> AsyncIterator[Any]:
            async with hub.subscribe("r", max_buffer=3, overflow="drop_oldest") as messages:
                state["messages"] = messages
                yield ws_send("joined")
                async for _source, item in receiver.merge(messages):
                    yield ws_send(item)

        async def send(message: Any) -> None:
            if message["type"] == "websocket.send" and message["text"] != "joined":
                await may_send.wait()  # a client that stopped reading
            sent.append(message)
            changed[0].set()
            changed[0] = anyio.Event()

        to_app, receive = anyio.create_memory_object_stream[Any](1)

        async def serve() -> None:
            await build_server(room)(websocket_scope(), receive.receive, send)

        with anyio.fail_after(5), to_app, receive:
            async with anyio.create_task_group() as tg:
                tg.start_soon(serve)
                await to_app.send({"type": "websocket.connect"})
                await sent_count(2)  # accepted, joined
                for number in range(20):
                    await hub.publish("r", str(number))
                    await anyio.wait_all_tasks_blocked()
                messages = state["messages"]
                assert messages.buffered == 3  # bounded: the rest was dropped
                assert messages.dropped == 20 - 3 - 1  # one in send (the merge holds none)
                may_send.set()
                await sent_count(2 + 4)
                await to_app.send({"type": "websocket.disconnect", "code": 1001})
    texts = [message["text"] for message in sent[2:]]
    assert texts == ["0", "17", "18", "19"]


async def test_hooks_without_a_scope_parameter_still_run() -> None:
    events: list[str] = []

    async def on_disconnect() -> None:  # shallot 2.0 called it without arguments
        events.append("on_disconnect")

    async def on_close(scope: dict[str, Any]) -> None:
        events.append("on_close")

    handler = websocket(on_disconnect=on_disconnect, on_close=on_close)(
        echo.__wrapped__  # type: ignore[attr-defined]
    )
    with anyio.fail_after(2):
        async with TestClient(build_server(handler)) as client:
            async with client.websocket("/") as ws:
                await ws.send("x")
                assert await ws.receive() == "x"
    assert events == ["on_disconnect", "on_close"]
