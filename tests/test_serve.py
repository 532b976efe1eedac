"""``shallot.serve`` on real loopback sockets, and ``begin_shutdown`` in memory (issue 6).

``serve`` runs hypercorn inside the test's own event loop, on the test's backend: asyncio with
the ``websockets`` asyncio client, trio with its trio client. Each test binds port 0 and learns
the port through ``task_status``. What the app did is recorded in a ``Log`` with an event per
entry, so a test waits for the app instead of sleeping. Graceful shutdown, as the issue asks:
open websockets see 1001, ``on_close`` runs before ``on_stop``, an in-flight request finishes,
and ``serve`` returns within the grace period; a handler that ignores everything is cancelled.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest
from anyio.abc import TaskStatus
from websockets.exceptions import ConnectionClosed

from shallot import Receiver, build_server, serve, standard_not_found, websocket, ws_accept, ws_send
from shallot._types import ASGIApp, Request, Response, Scope
from shallot.middlewares import apply_middleware, wrap_routes
from shallot.response import text
from shallot.sse import sse
from shallot.testing import LifespanError, TestClient, WebSocketClosed, WebSocketRejected

pytestmark = pytest.mark.slow  # real sockets; still part of the default run

GRACE = 3.0  # generous: each test checks that shutdown takes far less


class Log:
    """What the app did, in order, with an event to wait for an entry."""

    def __init__(self) -> None:
        self.entries: list[str] = []
        self._changed = anyio.Event()

    def add(self, entry: str) -> None:
        self.entries.append(entry)
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_for(self, entry: str) -> None:
        while entry not in self.entries:
            await self._changed.wait()


def make_app(log: Log, release: anyio.Event) -> ASGIApp:
    """An echo websocket, a deaf one, a hello page, a request that waits for ``release`` and
    one that waits forever; hooks and ``on_stop`` write to ``log``."""

    async def on_close(scope: Scope) -> None:
        log.add(f"on_close {scope['path']}")

    async def on_stop(scope: Scope) -> None:
        log.add("on_stop")

    @websocket(on_close=on_close)
    async def echo(scope: Request, receiver: Receiver) -> AsyncIterator[Any]:
        async for message in receiver:
            yield ws_send(message)

    @websocket(on_close=on_close)
    async def deaf(scope: Request, receiver: Receiver) -> AsyncIterator[Any]:
        yield ws_send("ready")
        try:
            await anyio.sleep_forever()  # never reads, never yields again
        finally:
            log.add("deaf stopped")

    async def hello(request: Request) -> Response:
        return text("hello")

    async def waiting(request: Request) -> Response:
        log.add("waiting started")
        await release.wait()
        log.add("waiting done")
        return text("done")

    async def forever(request: Request) -> Response:
        log.add("forever started")
        try:
            await anyio.sleep_forever()
        finally:
            log.add("forever stopped")
        raise AssertionError("unreachable")

    routes = [
        ("/", ["GET"], hello),
        ("/waiting", ["GET"], waiting),
        ("/forever", ["GET"], forever),
        ("/echo", ["WS"], echo),
        ("/deaf", ["WS"], deaf),
    ]
    return build_server(apply_middleware(wrap_routes(routes))(standard_not_found), on_stop=on_stop)


def ws_connect(backend: str, url: str) -> AbstractAsyncContextManager[Any]:
    """The ``websockets`` client of the test's backend: its asyncio one or its trio one."""
    if backend == "trio":
        from websockets.trio.client import connect as trio_connect

        return trio_connect(url, proxy=None, open_timeout=5, close_timeout=5)
    from websockets.asyncio.client import connect as asyncio_connect

    return asyncio_connect(url, proxy=None, open_timeout=5, close_timeout=5)


async def closed_by_server(ws: Any) -> tuple[int | None, str | None]:
    """Reads until the server closes; returns the close code and reason the client saw."""
    try:
        while True:
            await ws.recv()
    except ConnectionClosed:
        return ws.close_code, ws.close_reason


class Server:
    """``serve(app)`` running in a cancel scope of its own, so a test can stop it alone."""

    def __init__(self, scope: anyio.CancelScope, host: str, port: int) -> None:
        self.scope = scope
        self.host = host
        self.port = port
        self.returned = anyio.Event()
        self.returned_at = 0.0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def stop(self) -> float:
        """Cancels ``serve`` and waits for it to return; returns how long that took."""
        started = anyio.current_time()
        self.scope.cancel()
        await self.returned.wait()
        return self.returned_at - started


@asynccontextmanager
async def running(app: ASGIApp, **options: Any) -> AsyncIterator[Server]:
    """Runs ``serve(app, port=0, **options)`` for the block; yields its address."""
    scope = anyio.CancelScope()
    server: Server | None = None

    async def run(task_status: TaskStatus[tuple[str, int]]) -> None:
        nonlocal server
        try:
            with scope:
                await serve(app, port=0, task_status=task_status, **options)
        finally:
            if server is not None:
                server.returned_at = anyio.current_time()
                server.returned.set()

    async with anyio.create_task_group() as tg:
        host, port = await tg.start(run)
        server = Server(scope, host, port)
        try:
            yield server
        finally:
            scope.cancel()


def http_client(server: Server) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.url, timeout=10, trust_env=False)


async def test_serves_http_and_websockets_on_port_0_then_closes_them_with_1001(
    anyio_backend: str,
) -> None:
    log, release = Log(), anyio.Event()
    with anyio.fail_after(10):
        # Without pings: hypercorn keeps a closed websocket's ping task until its next ping is
        # due, which holds shutdown up to the grace period (tests/test_serve_sockets.py).
        async with running(
            make_app(log, release), grace_period=GRACE, websocket_ping_interval=None
        ) as server:
            assert server.host == "127.0.0.1"
            assert server.port > 0
            async with http_client(server) as client:
                assert (await client.get("/")).text == "hello"
            async with ws_connect(anyio_backend, f"ws://127.0.0.1:{server.port}/echo") as ws:
                await ws.send("hi")
                assert await ws.recv() == "hi"
                took = await server.stop()
                assert await closed_by_server(ws) == (1001, "server shutting down")
    assert log.entries == ["on_close /echo", "on_stop"]
    assert took < GRACE  # nothing to wait for: no need to use the grace period


async def test_shutdown_trigger_ends_serve_the_same_way(anyio_backend: str) -> None:
    log, release = Log(), anyio.Event()
    trigger = anyio.Event()
    app = make_app(log, release)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            serving = functools.partial(
                serve, app, port=0, grace_period=GRACE, shutdown_trigger=trigger.wait
            )
            _, port = await tg.start(serving)
            async with ws_connect(anyio_backend, f"ws://127.0.0.1:{port}/echo") as ws:
                await ws.send("hi")
                assert await ws.recv() == "hi"
                trigger.set()
                assert await closed_by_server(ws) == (1001, "server shutting down")
            # serve returns by itself: the task group ends without being cancelled
    assert log.entries == ["on_close /echo", "on_stop"]


async def test_an_app_served_again_accepts_websockets_as_it_did_the_first_time(
    anyio_backend: str,
) -> None:
    log, release = Log(), anyio.Event()
    app = make_app(log, release)
    with anyio.fail_after(10):
        for _ in range(2):  # the first shutdown's refusal of new websockets must not outlive it
            async with running(app, grace_period=GRACE, websocket_ping_interval=None) as server:
                async with ws_connect(anyio_backend, f"ws://127.0.0.1:{server.port}/echo") as ws:
                    await ws.send("hi")
                    assert await ws.recv() == "hi"
                await server.stop()
        async with TestClient(app) as client, client.websocket("/echo") as ws:
            await ws.send("hi")
            assert await ws.receive() == "hi"


async def test_an_app_already_served_is_refused_by_a_second_server_or_a_test_client(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    log, release = Log(), anyio.Event()
    app = make_app(log, release)
    with anyio.fail_after(10):
        async with running(app, grace_period=GRACE, websocket_ping_interval=None) as server:
            with pytest.raises(LifespanError, match="already running under another server"):
                await serve(app, port=0)
            with pytest.raises(LifespanError, match="already running under another server"):
                async with TestClient(app):
                    pass
            async with ws_connect(anyio_backend, f"ws://127.0.0.1:{server.port}/echo") as ws:
                await ws.send("hi")  # the first server's app lives on, untouched
                assert await ws.recv() == "hi"
                await server.stop()
    assert log.entries == ["on_close /echo", "on_stop"]  # its on_stop ran once, at its end
    refusals = [r for r in caplog.records if "already running" in r.getMessage()]
    assert len(refusals) == 2  # logged once each


async def refused(port: int) -> None:
    """Waits until the port refuses connections: the server stopped accepting."""
    while True:
        try:
            stream = await anyio.connect_tcp("127.0.0.1", port)
        except OSError:
            return
        await stream.aclose()
        await anyio.sleep(0.01)


async def test_in_flight_request_finishes_during_shutdown_and_serve_returns_once_it_has(
    anyio_backend: str,
) -> None:
    log, release = Log(), anyio.Event()
    response: httpx.Response | None = None
    with anyio.fail_after(10):
        async with running(make_app(log, release), grace_period=GRACE) as server:
            async with http_client(server) as client, anyio.create_task_group() as tg:

                async def request() -> None:
                    nonlocal response
                    response = await client.get("/waiting")

                tg.start_soon(request)
                await log.wait_for("waiting started")
                server.scope.cancel()
                # Until the app's last call ends, what arrives is still answered.
                async with http_client(server) as late:
                    assert (await late.get("/")).text == "hello"
                assert not server.returned.is_set()  # still waiting for the request
                released_at = anyio.current_time()
                release.set()
            await server.returned.wait()
            await refused(server.port)  # stopped: no new connections
    assert response is not None
    assert (response.status_code, response.text) == (200, "done")
    assert log.entries == ["waiting started", "waiting done", "on_stop"]
    assert server.returned_at - released_at < 1.0  # not the grace period: nothing was left


async def test_handler_that_ignores_everything_is_stopped_within_the_grace_period() -> None:
    grace = 0.5
    log, release = Log(), anyio.Event()
    outcome: int | str = ""
    with anyio.fail_after(10):
        async with running(make_app(log, release), grace_period=grace) as server:
            async with http_client(server) as client, anyio.create_task_group() as tg:

                async def request() -> None:
                    nonlocal outcome
                    try:
                        outcome = (await client.get("/forever")).status_code
                    except httpx.RemoteProtocolError:  # trio: cut without a response
                        outcome = "disconnected"

                tg.start_soon(request)
                await log.wait_for("forever started")
                took = await server.stop()
    assert log.entries == ["forever started", "forever stopped", "on_stop"]
    assert grace <= took < grace + 1.0  # hypercorn waited, then cancelled it
    # asyncio's worker answers 500 for a cancelled request; trio's drops the connection
    assert outcome in (500, "disconnected")


async def test_websocket_handler_that_neither_reads_nor_yields_is_stopped(
    anyio_backend: str,
) -> None:
    log, release = Log(), anyio.Event()
    with anyio.fail_after(10):
        async with running(
            make_app(log, release), grace_period=GRACE, websocket_ping_interval=None
        ) as server:
            async with ws_connect(anyio_backend, f"ws://127.0.0.1:{server.port}/deaf") as ws:
                assert await ws.recv() == "ready"
                took = await server.stop()
                assert await closed_by_server(ws) == (1001, "server shutting down")
    assert log.entries == ["deaf stopped", "on_close /deaf", "on_stop"]
    assert took < GRACE  # cancelled after the websocket's own disconnect_timeout


async def test_a_failed_startup_is_raised_by_serve_as_lifespan_error(anyio_backend: str) -> None:
    async def on_start(scope: Scope) -> None:
        raise RuntimeError("no database")

    app = build_server(standard_not_found, on_start=on_start)
    with anyio.fail_after(10), pytest.raises(LifespanError, match="RuntimeError: no database"):
        await serve(app, port=0)


async def test_a_failed_shutdown_is_raised_once_serve_has_stopped(anyio_backend: str) -> None:
    async def on_stop(scope: Scope) -> None:
        raise RuntimeError("flush failed")

    app = build_server(standard_not_found, on_stop=on_stop)
    with anyio.fail_after(10), pytest.raises(LifespanError, match="RuntimeError: flush failed"):
        await serve(app, port=0, shutdown_trigger=anyio.lowlevel.checkpoint)


async def test_what_a_raw_asgi_lifespan_stores_in_its_state_reaches_each_request(
    anyio_backend: str,
) -> None:
    # serve runs the app's lifespan itself and hands its state to hypercorn, which copies it
    # into each request's scope (the ASGI lifespan state extension).
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    scope["state"]["greeting"] = "hello from startup"
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        body = scope["state"]["greeting"].encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    with anyio.fail_after(10):
        async with running(app) as server, http_client(server) as client:
            assert (await client.get("/")).text == "hello from startup"


async def test_serve_refuses_unknown_options() -> None:
    app = build_server(standard_not_found)
    with pytest.raises(TypeError, match="not a hypercorn Config option"):
        await serve(app, port=0, no_such_option=1)


@pytest.mark.parametrize("option", ["bind", "insecure_bind", "graceful_timeout", "workers"])
async def test_serve_refuses_the_options_it_sets_itself_naming_its_own(option: str) -> None:
    # they were silently overridden: bind= by port=, graceful_timeout= by grace_period=
    app = build_server(standard_not_found)
    options: dict[str, Any] = {option: ["127.0.0.1:1"] if "bind" in option else 2}
    with pytest.raises(TypeError, match="host=, port= and grace_period="):
        await serve(app, port=0, **options)


@pytest.mark.parametrize("grace_period", ["5", -1, float("nan"), True, None])
async def test_serve_refuses_a_grace_period_that_is_no_number_of_seconds(
    grace_period: Any,
) -> None:
    # a str one made serve's shutdown raise before hypercorn was told to stop: it never returned
    app = build_server(standard_not_found)
    with pytest.raises(ValueError, match="grace_period"):
        await serve(app, port=0, grace_period=grace_period)


# -- begin_shutdown, in memory -----------------------------------------------------------------


def shutdown_app(log: Log) -> ASGIApp:
    async def on_close(scope: Scope) -> None:
        log.add("on_close")

    @websocket(on_close=on_close)
    async def echo(scope: Request, receiver: Receiver) -> AsyncGenerator[Any, None]:
        async for message in receiver:
            yield ws_send(message)

    async def hello(request: Request) -> Response:
        return text("hello")

    routes = [("/", ["GET"], hello), ("/echo", ["WS"], echo)]
    return build_server(apply_middleware(wrap_routes(routes))(standard_not_found))


def begin_shutdown(app: ASGIApp) -> Callable[[], None]:
    method: Callable[[], None] = getattr(app, "begin_shutdown")  # noqa: B009
    return method


async def test_begin_shutdown_refuses_new_websockets_with_503_and_still_answers_http() -> None:
    app = shutdown_app(Log())
    with anyio.fail_after(2):
        async with TestClient(app) as client:
            begin_shutdown(app)()
            with pytest.raises(WebSocketRejected) as rejected:
                async with client.websocket("/echo"):
                    pass
            assert rejected.value.status == 503
            assert (await client.get("/")).text == "hello"


async def test_after_begin_shutdown_a_new_lifespan_accepts_websockets_again() -> None:
    app = shutdown_app(Log())
    with anyio.fail_after(2):
        async with TestClient(app) as client, client.websocket("/echo") as ws:
            await ws.send("hi")
            assert await ws.receive() == "hi"
            begin_shutdown(app)()  # as serve does when it stops
            with pytest.raises(WebSocketClosed):
                await ws.receive()
        async with TestClient(app) as client, client.websocket("/echo") as ws:
            await ws.send("again")
            assert await ws.receive() == "again"
            begin_shutdown(app)()  # and the new life's connections are the ones closed
            with pytest.raises(WebSocketClosed) as closed:
                await ws.receive()
            assert closed.value.code == 1001


async def test_begin_shutdown_closes_open_websockets_with_1001_and_runs_on_close() -> None:
    log = Log()
    app = shutdown_app(log)
    with anyio.fail_after(2):
        async with TestClient(app) as client, client.websocket("/echo") as ws:
            await ws.send("hi")
            assert await ws.receive() == "hi"
            begin_shutdown(app)()
            with pytest.raises(WebSocketClosed) as closed:
                await ws.receive()
            assert (closed.value.code, closed.value.reason) == (1001, "server shutting down")
            await log.wait_for("on_close")


async def test_handshake_in_progress_at_begin_shutdown_is_closed_with_1001_once_accepted() -> None:
    log = Log()
    entered, release = anyio.Event(), anyio.Event()

    async def slow_accept(scope: Scope) -> Any:
        entered.set()
        await release.wait()  # an authentication lookup, say, still running at shutdown
        return ws_accept()

    async def on_close(scope: Scope) -> None:
        log.add("on_close")

    @websocket(on_connect=slow_accept, on_close=on_close)
    async def echo(scope: Request, receiver: Receiver) -> AsyncGenerator[Any, None]:
        async for message in receiver:
            yield ws_send(message)

    app = build_server(echo)
    with anyio.fail_after(2):
        async with TestClient(app) as client, anyio.create_task_group() as tg:

            async def connect() -> None:
                async with client.websocket("/") as ws:
                    with pytest.raises(WebSocketClosed) as closed:
                        await ws.receive()
                    assert (closed.value.code, closed.value.reason) == (
                        1001,
                        "server shutting down",
                    )

            tg.start_soon(connect)
            await entered.wait()
            begin_shutdown(app)()
            release.set()
        assert log.entries == ["on_close"]


async def test_an_event_stream_ends_as_a_complete_response_at_shutdown() -> None:
    # It held serve's shutdown for the whole grace period, and its client then read a
    # truncated response ("incomplete chunked read") rather than an ended one.
    log = Log()

    async def on_stop(scope: Scope) -> None:
        log.add("on_stop")

    async def feed(request: Request) -> Response:
        async def events() -> AsyncIterator[dict[str, Any]]:
            yield {"data": "first", "id": "1"}
            try:
                await anyio.sleep_forever()  # quiet, as a feed mostly is
            finally:
                log.add("events closed")
            yield {"data": "unreachable"}  # pragma: no cover

        return sse(events())

    app = build_server(feed, on_stop=on_stop)
    with anyio.fail_after(10):
        async with running(app, grace_period=GRACE) as server, http_client(server) as client:
            async with client.stream("GET", "/") as response:
                lines = response.aiter_lines()
                assert [await anext(lines) for _ in range(4)] == [":", "", "data: first", "id: 1"]
                took = await server.stop()
                rest = [line async for line in lines]  # raises on a truncated response
    assert rest == [""]
    assert log.entries == ["events closed", "on_stop"]
    assert took < GRACE
