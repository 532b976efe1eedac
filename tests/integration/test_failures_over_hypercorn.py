"""Failures answered by shallot on hypercorn's asyncio and trio workers (issue 13): a handler
that returns a helper uncalled or raises is a 500 logged once by shallot, naming the route's
handler, the method and the path; a refused client that leaves logs nothing of the server's;
a streamed response ends the connection when HTTP says so; a client that stopped reading
holds a response's start and final sends no longer than the response timeout.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator

import anyio
import anyio.abc
import httpx
import pytest

from . import apps, failure_apps
from .server import HypercornServer, run_hypercorn

pytestmark = pytest.mark.slow  # real processes and sockets; still part of the default run

#: hypercorn's --keep-alive for ``failing_server``: idle connections close after it.
KEEP_ALIVE = 1


@pytest.fixture(scope="module")
async def failing_server(worker_class: str) -> AsyncIterator[HypercornServer]:
    async with run_hypercorn(
        "tests.integration.failure_apps:failing_app",
        worker_class=worker_class,
        extra_args=["--keep-alive", str(KEEP_ALIVE)],
    ) as server:
        yield server


async def exchange(port: int, request: bytes, *, until: bytes | None = None) -> bytes:
    """Sends ``request`` on a new connection and returns what comes back until the server
    closes the connection, or until ``until`` has arrived."""
    data = b""
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(request)
        try:
            while until is None or until not in data:
                data += await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            pass
    return data


# --- items 4 and 5: what a handler does wrong is shallot's 500, logged once --------------------


async def test_a_helper_returned_uncalled_is_a_500_logged_once(
    failing_server: HypercornServer,
) -> None:
    handshake = (
        b"GET /uncalled HTTP/1.1\r\nhost: t\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
        b"sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n"
    )
    async with httpx.AsyncClient(base_url=failing_server.url, timeout=10) as client:
        with anyio.fail_after(10):
            response = await client.get("/uncalled")
            denied = await exchange(failing_server.port, handshake, until=b"\r\n\r\n")
            await failing_server.wait_for_log("returned the function respond404", count=2)
            after = await client.get("/count/1")
    assert (response.status_code, response.text) == (500, "Internal Server Error")
    assert denied.startswith(b"HTTP/1.1 500 ")
    assert after.status_code == 200
    logs = failing_server.logs
    for method in ("GET", "WS"):
        assert f"[shallot] ERROR {method} /uncalled: the handler returned the function " in logs
    assert logs.count("returned the function respond404 instead of calling it") == 2
    assert "Error in ASGI" not in logs
    assert "TypeError" not in logs


def raw_handshake(path: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nhost: t\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
        "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n"
    ).encode()


async def test_a_raw_accept_with_str_headers_sends_them(failing_server: HypercornServer) -> None:
    # Passed on as they were, str headers crashed the trio worker's whole process.
    with anyio.fail_after(10):
        opened = await exchange(
            failing_server.port, raw_handshake("/raw-accept/str-headers"), until=b"str-headers"
        )
    assert opened.startswith(b"HTTP/1.1 101 ")
    assert b"\r\nx-a: 1\r\n" in opened
    assert "Error in ASGI" not in failing_server.logs


@pytest.mark.parametrize(
    ("kind", "why"),
    [
        ("crlf", "header b'x-a' has a control character"),
        ("own-header", "header b'sec-websocket-protocol' may not be set here"),
    ],
)
async def test_a_raw_accept_with_a_header_that_cannot_go_out_is_a_500_logged(
    failing_server: HypercornServer, kind: str, why: str
) -> None:
    # Passed on as they were, a CR/LF left the client with no answer and hypercorn with a
    # traceback, and a sec-websocket-protocol ended hypercorn's trio worker.
    async with httpx.AsyncClient(base_url=failing_server.url, timeout=10) as client:
        with anyio.fail_after(10):
            refused = await exchange(
                failing_server.port, raw_handshake(f"/raw-accept/{kind}"), until=b"\r\n\r\n"
            )
            await failing_server.wait_for_log(why)
            after = await client.get("/count/1")
    assert refused.startswith(b"HTTP/1.1 500 "), refused
    assert b"x-injected" not in refused
    assert after.status_code == 200
    logs = failing_server.logs
    assert f"websocket handshake refused: on_connect's accept has bad headers: {why}" in logs
    assert "Error in ASGI" not in logs


async def test_the_500_log_names_the_route_handler_method_and_path(
    failing_server: HypercornServer,
) -> None:
    token = uuid.uuid4().hex
    async with httpx.AsyncClient(base_url=failing_server.url, timeout=10) as client:
        with anyio.fail_after(10):
            failed = await client.get(f"/boom/{token}", headers={"origin": "http://example.org"})
            await failing_server.wait_for_log(f"RuntimeError: boom {token}")
    assert (failed.status_code, failed.text) == (500, "Internal Server Error")
    logs = failing_server.logs
    assert f"[shallot] ERROR handler explode raised on GET /boom/{token}\n" in logs
    assert logs.count(f"boom {token}") == 1  # the traceback, in the log only, once
    assert "Traceback (most recent call last)" in logs
    assert "apply_middleware" not in logs.split(f"boom/{token}")[0].rsplit("\n", 1)[-1]
    assert "Error in ASGI" not in logs


# --- item 7: a refused client that leaves -----------------------------------------------------


async def test_a_refused_client_that_leaves_logs_no_server_error(worker_class: str) -> None:
    # The client announces a body over the limit, sends some of it and leaves: the 413 races
    # the server closing the socket, which on trio made its send raise BusyResourceError.
    request = b"POST / HTTP/1.1\r\nhost: t\r\ncontent-length: 100000\r\n\r\n" + b"x" * 5000
    app = "tests.integration.apps:limits_app"
    async with run_hypercorn(app, worker_class=worker_class) as server:
        with anyio.fail_after(30):
            for _ in range(20):
                async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
                    await stream.send(request)
                    await stream.send_eof()
                    try:
                        while await stream.receive():
                            pass
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        pass
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
                refused = await client.post("/", content=b"x" * (apps.MAX_BODY_SIZE + 1))
        with anyio.fail_after(15):
            assert await server.stop() == 0
    assert refused.status_code == 413
    assert "Error in ASGI" not in server.logs
    assert "Traceback" not in server.logs


# --- item 8: a streamed response ends the connection when HTTP says so ------------------------


@pytest.mark.parametrize(
    "request_line",
    [b"GET /count/3 HTTP/1.1\r\nconnection: close", b"GET /count/3 HTTP/1.0"],
    ids=["connection-close", "http-1.0"],
)
async def test_a_stream_then_the_connection_ends(
    failing_server: HypercornServer, request_line: bytes
) -> None:
    with anyio.fail_after(10):
        reply = await exchange(failing_server.port, request_line + b"\r\nhost: t\r\n\r\n")
    assert reply.startswith((b"HTTP/1.1 200 ", b"HTTP/1.0 200 "))
    assert b"chunk 0\n" in reply
    assert b"chunk 2\n" in reply


async def test_a_stream_that_fails_at_once_is_500_then_the_connection_ends(
    failing_server: HypercornServer,
) -> None:
    request = b"GET /broken-stream HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n"
    with anyio.fail_after(10):
        reply = await exchange(failing_server.port, request)
    assert reply.startswith(b"HTTP/1.1 500 ")
    assert reply.endswith(b"Internal Server Error")


async def test_a_keep_alive_connection_idle_after_a_stream_is_closed(
    failing_server: HypercornServer,
) -> None:
    with anyio.fail_after(10):
        async with await anyio.connect_tcp("127.0.0.1", failing_server.port) as stream:
            await stream.send(b"GET /count/3 HTTP/1.1\r\nhost: t\r\n\r\n")
            reply = b""
            while not reply.endswith(b"0\r\n\r\n"):  # the end of the chunked body
                reply += await stream.receive()
            started = anyio.current_time()
            leftover = b""
            try:
                while True:  # nothing more comes; hypercorn closes the idle connection
                    leftover += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                idle = anyio.current_time() - started
    assert leftover == b""
    assert b"chunk 2\n" in reply
    assert idle < KEEP_ALIVE + 5


# --- item 13: the response timeout bounds every send of a response ---------------------------


# On the trio worker, hypercorn shields its socket sends from cancellation, so no timeout of
# the app's can end a stuck send there: that bound is a socket option's (docs/deployment.md).
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize(
    "path",
    [
        "/padded",  # 60 kB of headers and an empty stream: the start's send blocks
        "/sized",  # a 60 kB body, sent at once: the send of a whole small response blocks
    ],
)
async def test_a_client_that_stops_reading_holds_a_send_no_longer_than_the_timeout(
    path: str,
) -> None:
    request = f"GET {path} HTTP/1.1\r\nhost: t\r\n\r\n".encode()
    app = "tests.integration.failure_apps:slow_reader_app"
    async with run_hypercorn(app, worker_class="asyncio") as server:
        async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
            raw = stream.extra(anyio.abc.SocketAttribute.raw_socket)
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            # Pipelined requests whose answers (60 kB each) the client never reads: the
            # buffers fill, and a send blocks.
            await stream.send(request * 1000)  # 60 MB of answers: more than any buffers
            with anyio.fail_after(failure_apps.RESPONSE_TIMEOUT + 30):
                await server.wait_for_log("client stopped reading; response abandoned")
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
                with anyio.fail_after(10):
                    other = await client.get("/text")
    assert other.text == "small"
    assert "Error in ASGI" not in server.logs
