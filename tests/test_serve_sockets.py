"""``shallot.serve``'s liveness options on real loopback sockets (issues 13 and 14).

``serve`` pings websockets (hypercorn's ``websocket_ping_interval``) and sets the kernel bound
``TCP_USER_TIMEOUT`` on the socket it listens on, which every accepted socket inherits. These
tests read the option back from the server's own accepted sockets (found among this process's
file descriptors: ``serve`` runs in the test's event loop), and show what the bound is for: a
client that stops reading is dropped by the kernel, on hypercorn's trio worker too, where a
send cannot be cancelled from the app (hypercorn's trio ``TCPServer`` sends in a shielded
scope); such a client does not break ``serve``'s shutdown either. Loopback cannot lose
packets, so a silent dead peer is not simulated here; a peer that stops reading leaves the
server's data unsent behind a zero window, which the same bound ends.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import os
import socket
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import anyio.abc
import pytest
from trio.testing import MockClock

from shallot import Receiver, build_server, standard_not_found, websocket, ws_send
from shallot._types import ASGIApp, Request, Response, Scope
from shallot.middlewares import apply_middleware, wrap_routes

from .test_serve import Log, closed_by_server, make_app, running, ws_connect

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="TCP_USER_TIMEOUT: Linux"),
]

CHUNK = b"x" * 65536
STREAM_REQUEST = b"GET /stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
#: Room for the buffers to fill and for the kernel's zero-window probes to come round.
MARGIN = 2.0


class Ends:
    """When the server side of each connection ended, by name, with an event to wait on."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self._changed = anyio.Event()

    def add(self, name: str) -> None:
        self.at[name] = anyio.current_time()
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_for(self, name: str) -> float:
        while name not in self.at:
            await self._changed.wait()
        return self.at[name]


def pushing_app(ends: Ends, *, send_timeout: float, response_timeout: float) -> ASGIApp:
    """A websocket and an HTTP stream that push 64 KiB chunks for as long as they can."""

    async def on_close(scope: Scope) -> None:
        ends.add("on_close")

    @websocket(on_close=on_close, send_timeout=send_timeout)
    async def push(scope: Request, receiver: Receiver) -> AsyncIterator[Any]:
        for _ in range(100_000):  # bounded: 6 GB, far more than any buffer
            yield ws_send(CHUNK)

    async def chunks() -> AsyncIterator[bytes]:
        try:
            for _ in range(100_000):
                yield CHUNK
        finally:
            ends.add("stream closed")

    async def stream(request: Request) -> Response:
        return {"status": 200, "headers": {"content-type": "text/plain"}, "stream": chunks()}

    routes = [("/push", ["WS"], push), ("/stream", ["GET"], stream)]
    return build_server(
        apply_middleware(wrap_routes(routes))(standard_not_found),
        response_timeout=response_timeout,
    )


async def deaf_client(port: int, request: bytes) -> anyio.abc.SocketStream:
    """Connects with a small receive buffer, sends ``request`` and never reads."""
    client = await anyio.connect_tcp("127.0.0.1", port)
    raw = client.extra(anyio.abc.SocketAttribute.raw_socket)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    await client.send(request)
    return client


def websocket_request(path: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def server_side(port: int, client: anyio.abc.SocketStream) -> socket.socket:
    """The server's accepted socket for ``client``, found among this process's descriptors
    (a duplicate: close it)."""
    peer = client.extra(anyio.abc.SocketAttribute.local_address)
    for name in os.listdir("/proc/self/fd"):
        try:
            candidate = socket.socket(fileno=os.dup(int(name)))
        except OSError:
            continue
        try:
            if candidate.family == socket.AF_INET and candidate.type == socket.SOCK_STREAM:
                if candidate.getsockname()[1] == port and candidate.getpeername() == peer:
                    return candidate
        except OSError:
            pass
        candidate.close()
    raise AssertionError(f"no accepted socket for {peer} on port {port}")


@contextmanager
def asyncio_logs_of_kernel_drops(backend: str) -> Iterator[list[str]]:
    """Collects what asyncio logs when the kernel drops a connection under hypercorn's
    asyncio worker: its ``TCPServer._close`` does not expect ``ETIMEDOUT``, so asyncio logs
    "Unhandled exception in client_connected_cb" (docs/deployment.md says so). Anything
    else still reaches the test runner's handler."""
    seen: list[str] = []
    if backend != "asyncio":
        yield seen
        return
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        if isinstance(error, TimeoutError) and error.errno == errno.ETIMEDOUT:
            seen.append(context["message"])
        elif previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
    try:
        yield seen
    finally:
        loop.set_exception_handler(previous)


def user_timeout(sock: socket.socket) -> int:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT)


@pytest.mark.parametrize(
    ("option", "expected"),
    [({}, 40_000), ({"tcp_user_timeout": 2.5}, 2500), ({"tcp_user_timeout": None}, 0)],
)
async def test_served_sockets_carry_the_kernel_bound(
    anyio_backend: str, option: dict[str, Any], expected: int
) -> None:
    ends = Ends()
    with anyio.fail_after(10):
        async with running(pushing_app(ends, send_timeout=60, response_timeout=60), **option) as s:
            async with await anyio.connect_tcp("127.0.0.1", s.port) as client:
                await client.send(b"GET /nowhere HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                assert (await client.receive()).startswith(b"HTTP/1.1 404")
                with server_side(s.port, client) as accepted:
                    assert user_timeout(accepted) == expected


async def read_frames(client: anyio.abc.SocketStream, count: int) -> list[float]:
    """Reads the handshake's answer, then ``count`` frames of two bytes (pings, empty);
    returns when each came, from the answer on. Asserts each is a ping."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += await client.receive()
    opened = anyio.current_time()
    frames = received.split(b"\r\n\r\n", 1)[1]
    times = []
    for _ in range(count):
        while len(frames) < 2:
            frames += await client.receive()
        assert frames[:2] == b"\x89\x00"  # FIN + ping, empty, unprompted
        frames = frames[2:]
        times.append(anyio.current_time() - opened)
    return times


@websocket
async def quiet(scope: Request, receiver: Receiver) -> AsyncIterator[Any]:
    async for message in receiver:
        yield ws_send(message)


@pytest.mark.parametrize("anyio_backend", [("trio", {"clock": MockClock(autojump_threshold=0.01)})])
async def test_by_default_the_server_pings_every_20_seconds(anyio_backend: Any) -> None:
    # In virtual time (trio's autojump clock): 40 s pass in an instant.
    with anyio.fail_after(100):
        async with running(build_server(quiet), grace_period=1) as server:
            async with await anyio.connect_tcp("127.0.0.1", server.port) as client:
                await client.send(websocket_request("/"))
                assert await read_frames(client, 3) == [0.0, 20.0, 40.0]


async def test_the_server_pings_websockets(anyio_backend: str) -> None:
    with anyio.fail_after(10):
        async with running(build_server(quiet), websocket_ping_interval=0.2) as server:
            async with await anyio.connect_tcp("127.0.0.1", server.port) as client:
                await client.send(websocket_request("/"))
                await read_frames(client, 2)


@pytest.mark.parametrize("path", ["/push", "/stream"])
@pytest.mark.parametrize(
    ("own_timeouts", "bound"),
    [
        # shallot's own send bounds far away: only the kernel can end these connections
        pytest.param(60.0, 1.0, id="kernel-bound-alone"),
        # issue 13: on hypercorn's trio worker send_timeout and response_timeout alone never
        # fired; with the kernel bound at the same value they hold on both workers
        pytest.param(2.0, 2.0, id="timeouts-and-bound"),
    ],
)
async def test_a_client_that_stops_reading_is_dropped_in_time(
    anyio_backend: str, path: str, own_timeouts: float, bound: float
) -> None:
    ends = Ends()
    app = pushing_app(ends, send_timeout=own_timeouts, response_timeout=own_timeouts)
    request = websocket_request(path) if path == "/push" else STREAM_REQUEST
    end = "on_close" if path == "/push" else "stream closed"
    limit = min(own_timeouts, bound)
    with asyncio_logs_of_kernel_drops(anyio_backend) as logged, anyio.fail_after(limit + 7):
        async with running(app, tcp_user_timeout=bound, grace_period=1) as server:
            started = anyio.current_time()
            async with await deaf_client(server.port, request):
                took = await ends.wait_for(end) - started
    assert took < limit + MARGIN
    assert set(logged) <= {"Unhandled exception in client_connected_cb"}


@pytest.mark.parametrize("path", ["/push", "/stream"])
async def test_a_client_that_stops_reading_is_let_go_after_the_apps_own_timeout(
    anyio_backend: str, path: str
) -> None:
    # issue 12 bug 2, issue 13 item 6: on hypercorn's trio worker the stalled send is shielded
    # and stays until the kernel's bound (far away here) drops the socket; the websocket's
    # handler is ended (on_close runs) and the stream is closed after the timeout all the same.
    ends = Ends()
    app = pushing_app(ends, send_timeout=2.0, response_timeout=2.0)
    request = websocket_request(path) if path == "/push" else STREAM_REQUEST
    end = "on_close" if path == "/push" else "stream closed"
    with asyncio_logs_of_kernel_drops(anyio_backend), anyio.fail_after(2.0 + 7):
        async with running(app, tcp_user_timeout=60, grace_period=1) as server:
            started = anyio.current_time()
            async with await deaf_client(server.port, request):
                took = await ends.wait_for(end) - started
    assert took < 2.0 * 1.25 + MARGIN  # a stream's watch looks four times per timeout


async def test_with_pings_on_shutdown_does_not_wait_for_hypercorns_ping_timers(
    anyio_backend: str,
) -> None:
    # hypercorn's ping task outlives its websocket until the next ping is due, and hypercorn
    # waits for such tasks at shutdown. Once the app has nothing running, serve stops hypercorn
    # instead: the grace period is for the app's calls, not for hypercorn's timers.
    log, release = Log(), anyio.Event()
    grace = 5.0
    with anyio.fail_after(10):
        async with running(make_app(log, release), grace_period=grace) as server:
            async with ws_connect(anyio_backend, f"ws://127.0.0.1:{server.port}/echo") as ws:
                await ws.send("hi")
                assert await ws.recv() == "hi"
                took = await server.stop()
                assert await closed_by_server(ws) == (1001, "server shutting down")
    assert log.entries == ["on_close /echo", "on_stop"]
    assert took < 1.5


def more_than_the_kernel_holds() -> int:
    """Bytes a send cannot hand to the kernel at once: twice the most a socket's send buffer
    may grow to (``tcp_wmem``), the client's receive buffer being small."""
    with open("/proc/sys/net/ipv4/tcp_wmem") as limits:
        return 2 * int(limits.read().split()[2])


async def test_a_client_that_stopped_reading_does_not_break_serves_shutdown(
    anyio_backend: str,
) -> None:
    # At shutdown, hypercorn cannot close a connection whose data the client never reads, so
    # serve cancels it once its wind-down is over. On hypercorn's asyncio worker that cancel
    # made serve raise InvalidStateError; on its trio worker, whose send is shielded, only the
    # kernel bound ends the connection, so serve returns once the bound has passed.
    ends = Ends()
    message = b"x" * more_than_the_kernel_holds()

    async def on_close(scope: Scope) -> None:
        ends.add("on_close")

    @websocket(on_close=on_close, send_timeout=60)
    async def flood(scope: Request, receiver: Receiver) -> AsyncIterator[Any]:
        while True:
            yield ws_send(message)

    grace = 0.5
    bound = {"asyncio": 60.0, "trio": 1.0}[anyio_backend]  # asyncio: serve's own fallback
    with anyio.fail_after(15):
        async with running(build_server(flood), grace_period=grace, tcp_user_timeout=bound) as s:
            async with await deaf_client(s.port, websocket_request("/")) as client:
                received = b""
                while b"\r\n\r\n" not in received or received.endswith(b"\r\n\r\n"):
                    received += await client.receive()  # the answer, and the message begins
                took = await s.stop()
    assert "on_close" in ends.at
    assert took < grace + 0.25 + 2 * 2.0 + MARGIN  # the linger, then the fallback's 2 s twice


def reports_through_serves_filter(contexts: Callable[[], list[dict[str, Any]]]) -> list[str]:
    """Returns the messages of ``contexts()`` (made on the running loop) that reach the loop's
    exception handler once serve's filter is installed."""
    from shallot._serve import _pick_hypercorn

    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    reported: list[str] = []
    loop.set_exception_handler(lambda loop, context: reported.append(context["message"]))
    try:
        _pick_hypercorn()  # installs serve's filter on this loop
        for context in contexts():
            loop.call_exception_handler(context)
    finally:
        loop.set_exception_handler(previous)
    return reported


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_cancelled_gather_of_hypercorns_connections_is_not_reported(
    anyio_backend: str,
) -> None:
    # Once serve has cancelled hypercorn (above), the gather of its connection tasks ends
    # later with a CancelledError nobody retrieves, and asyncio reports it as an error.
    child = asyncio.get_running_loop().create_future()
    gathered = asyncio.gather(child)
    child.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gathered
    report = "_GatheringFuture exception was never retrieved"
    reported = reports_through_serves_filter(
        lambda: [
            {"message": report, "exception": gathered.exception(), "future": gathered},
            {"message": "another report", "exception": ValueError()},
        ]
    )
    assert reported == ["another report"]  # the rest still gets through


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_connection_the_kernel_timed_out_is_not_reported_as_an_error(
    anyio_backend: str,
) -> None:
    # tcp_user_timeout drops a client that stopped reading, as serve means it to; hypercorn's
    # asyncio close then raises TimeoutError out of its connection task, a traceback each.
    failed = "Unhandled exception in client_connected_cb"
    reported = reports_through_serves_filter(
        lambda: [
            {"message": failed, "exception": TimeoutError(110, "")},
            {"message": failed, "exception": ValueError("a bug")},
        ]
    )
    assert reported == [failed]  # a bug in a connection task is still reported
