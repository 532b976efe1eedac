"""The examples of the seed websocket guide, as written there but for their placeholders."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pytest

from shallot import build_server, standard_disconnect, ws_accept, ws_close, ws_send
from shallot.testing import TestClient, WebSocketClosed, WebSocketRejected
from shallot.websocket import websocket

# --- example 1, verbatim -------------------------------------------------------------------


@websocket
async def handle_ws_echo(scope, receiver):  # type: ignore[no-untyped-def]
    async for message in receiver:
        yield {"text": f"@ECHO: {message}", "type": "websocket.send"}
        if message == "exit":
            yield ws_send("bybye")
            yield ws_close(1001)


async def test_echo_with_exit() -> None:
    with anyio.fail_after(2):
        async with TestClient(build_server(handle_ws_echo)) as client, client.websocket("/") as ws:
            await ws.send("hello")
            assert await ws.receive() == "@ECHO: hello"
            await ws.send(b"raw")
            assert await ws.receive() == "@ECHO: b'raw'"
            await ws.send("exit")
            assert await ws.receive() == "@ECHO: exit"
            assert await ws.receive() == "bybye"
            with pytest.raises(WebSocketClosed) as closed:
                await ws.receive()
    assert closed.value.code == 1001


# --- example 2, verbatim (its two hooks are defined but standard_disconnect is used) ---------


async def my_disconnect(scope):  # type: ignore[no-untyped-def]
    print("-> Client Disconnected!")


async def my_close(scope):  # type: ignore[no-untyped-def]
    print("--> The connection has been closed! Either by the server or by the client")


@websocket(on_disconnect=standard_disconnect)
async def handle_ws_echo_2(scope, receiver):  # type: ignore[no-untyped-def]
    async for message in receiver:
        yield ws_send(f"@ECHO: {message}")


async def test_standard_disconnect_hook(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="shallot")
    with anyio.fail_after(2):
        async with TestClient(build_server(handle_ws_echo_2)) as client:
            async with client.websocket("/chat") as ws:
                await ws.send("hi")
                assert await ws.receive() == "@ECHO: hi"
            # leaving the block waits for the app, hooks included
    assert "websocket client disconnected from /chat" in caplog.text


async def test_the_guides_own_hooks_print_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    done = anyio.Event()

    async def close_and_signal(scope: dict[str, Any]) -> None:
        await my_close(scope)  # type: ignore[no-untyped-call]
        done.set()

    handler = websocket(on_disconnect=my_disconnect, on_close=close_and_signal)(
        handle_ws_echo_2.__wrapped__  # type: ignore[attr-defined]
    )
    with anyio.fail_after(2):
        async with TestClient(build_server(handler)) as client:
            async with client.websocket("/") as ws:
                await ws.send("x")
                await ws.receive()
            await done.wait()
    assert capsys.readouterr().out == (
        "-> Client Disconnected!\n"
        "--> The connection has been closed! Either by the server or by the client\n"
    )


# --- example 3, verbatim but for something() ---------------------------------------------------

allow = {"value": True}


def something() -> bool:
    return allow["value"]


async def connection_accept(scope):  # type: ignore[no-untyped-def]
    if something():
        return ws_accept(
            subprotocol="sub-123"
        )  # == {"type": "websocket.accept", "subprotocol": "sub-123"}
    else:
        return ws_close()


@websocket(on_connect=connection_accept)
async def handle_ws_echo_3(scope, receiver):  # type: ignore[no-untyped-def]
    async for message in receiver:
        yield ws_send(f"@ECHO: {message}")


@pytest.mark.parametrize("accepted", [True, False])
@pytest.mark.parametrize("offered", [["sub-123"], [], ["other"]])
async def test_connection_accept(accepted: bool, offered: list[str]) -> None:
    allow["value"] = accepted
    with anyio.fail_after(2):
        async with TestClient(build_server(handle_ws_echo_3)) as client:
            if accepted:  # sub-123 when offered; else none (RFC 6455 §4.2.2), never a 500
                async with client.websocket("/", subprotocols=offered) as ws:
                    assert ws.subprotocol == ("sub-123" if offered == ["sub-123"] else None)
                    await ws.send("ok")
                    assert await ws.receive() == "@ECHO: ok"
            else:
                with pytest.raises(WebSocketRejected) as rejected:
                    async with client.websocket("/", subprotocols=["sub-123"]):
                        pass
                assert rejected.value.status == 403
