"""Websockets against real hypercorn processes, asyncio and trio workers (SPEC §4, issue 3).

The client is the ``websockets`` library's asyncio client, so every test here runs on asyncio
and the server's worker class is the parameter: the same client against both workers. What the
app did is read from its HTTP side channel (``/events/{id}/{event}`` answers once the event is
recorded: see ``ws_apps``), never guessed after a sleep.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from . import ws_apps
from .server import HypercornServer, run_hypercorn

pytestmark = pytest.mark.slow  # real processes and sockets; still part of the default run

APP = "tests.integration.ws_apps:ws_app"
_MIB = 1024 * 1024


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """The ``websockets`` client used here is its asyncio one."""
    return "asyncio"


@pytest.fixture(scope="module", params=["asyncio", "trio"])
def worker_class(request: pytest.FixtureRequest) -> str:
    """hypercorn's ``--worker-class``: the one thing that varies."""
    return str(request.param)


@pytest.fixture(scope="module")
async def ws_server(worker_class: str) -> AsyncIterator[HypercornServer]:
    async with run_hypercorn(APP, worker_class=worker_class) as server:
        yield server


@pytest.fixture
async def http(ws_server: HypercornServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=ws_server.url, timeout=10) as client:
        yield client


def ws_connect(server: HypercornServer, path: str, **options: Any) -> connect:
    """Opens a websocket to ``path`` on ``server`` (``async with``), bounded in time."""
    return connect(
        f"ws://127.0.0.1:{server.port}{path}",
        proxy=None,
        open_timeout=5,
        close_timeout=5,
        **options,
    )


async def events_once(http: httpx.AsyncClient, connection_id: str, event: str) -> list[str]:
    """Returns what the app recorded for ``connection_id``, once ``event`` is among it."""
    response = await http.get(f"/events/{connection_id}/{event}")
    events: list[str] = response.json()
    assert event in events, events
    return events


async def closed_by_server(ws: ClientConnection) -> tuple[int | None, str | None]:
    """Waits for the server to end the connection; returns the close code and reason the
    client saw (1006 and "" when no close frame came)."""
    try:
        while True:
            await ws.recv()
    except ConnectionClosed:
        return ws.close_code, ws.close_reason


# -- 1. echo through routing ----------------------------------------------------------------


async def test_echo_of_text_and_bytes(ws_server: HypercornServer) -> None:
    with anyio.fail_after(10):
        async with ws_connect(ws_server, "/echo") as ws:
            for message in ("hello", "héllo ✓", b"\x00\xffbytes", b"", "x" * 100_000):
                await ws.send(message)
                assert await ws.recv() == message


async def test_route_argument_reaches_the_handler(ws_server: HypercornServer) -> None:
    with anyio.fail_after(10):
        async with ws_connect(ws_server, "/rooms/kitchen") as ws:
            await ws.send("hi")
            assert await ws.recv() == "kitchen: hi"
            await ws.send(b"raw")
            assert await ws.recv() == b"raw"
        async with ws_connect(ws_server, "/rooms/the%20attic/") as ws:  # decoded, slash ignored
            await ws.send("hi")
            assert await ws.recv() == "the attic: hi"


# -- 2. close codes and reasons ---------------------------------------------------------------


@pytest.mark.parametrize(("how", "code", "reason"), [("code", 4001, "bye now"), ("end", 1000, "")])
async def test_close_code_and_reason_reach_the_client(
    ws_server: HypercornServer, how: str, code: int, reason: str
) -> None:
    with anyio.fail_after(10):
        async with ws_connect(ws_server, f"/close/{how}") as ws:
            await ws.send("go")
            assert await closed_by_server(ws) == (code, reason)


async def test_raising_handler_closes_with_1011_is_logged_once_and_the_server_serves_on(
    ws_server: HypercornServer,
) -> None:
    token = uuid.uuid4().hex
    with anyio.fail_after(10):
        async with ws_connect(ws_server, "/close/raise") as ws:
            await ws.send(token)
            code, _ = await closed_by_server(ws)
        await ws_server.wait_for_log(f"RuntimeError: ws boom {token}")
        async with ws_connect(ws_server, "/echo") as ws:  # a new connection works
            await ws.send("still here")
            assert await ws.recv() == "still here"
    assert code == 1011
    assert ws_server.logs.count(token) == 1  # shallot logged it, hypercorn did not again
    assert "[shallot] ERROR websocket handler closer failed" in ws_server.logs
    assert "Error in ASGI" not in ws_server.logs


# -- 3. subprotocol and accept headers --------------------------------------------------------


async def test_subprotocol_and_accept_headers(ws_server: HypercornServer) -> None:
    offered = [Subprotocol("a"), Subprotocol("chat")]
    with anyio.fail_after(10):
        async with ws_connect(ws_server, "/subprotocol", subprotocols=offered) as ws:
            assert ws.subprotocol == "chat"
            assert ws.response is not None
            assert ws.response.headers["x-shallot"] == "accepted"
            await ws.send("hi")
            assert await ws.recv() == "hi"
        async with ws_connect(ws_server, "/subprotocol") as ws:  # nothing offered
            assert ws.subprotocol is None


# -- 4. rejection and denial ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status", "body"),
    [
        ("/reject", 403, b""),  # ws_close() before accept: hypercorn answers 403
        ("/deny", 401, b"who are you?"),  # an HTTP response, through websocket.http.response
        ("/nowhere", 404, b"Not Found"),  # standard_not_found, the default handler
    ],
)
async def test_refused_handshakes(
    ws_server: HypercornServer, path: str, status: int, body: bytes
) -> None:
    with anyio.fail_after(10), pytest.raises(InvalidStatus) as refused:
        async with ws_connect(ws_server, path):
            pass  # pragma: no cover
    response = refused.value.response
    assert response.status_code == status
    assert response.body == body
    if status == 401:
        assert response.headers["www-authenticate"] == 'Bearer realm="shallot"'


# -- 5. hook order -----------------------------------------------------------------------------


async def test_hooks_after_a_client_close(
    ws_server: HypercornServer, http: httpx.AsyncClient
) -> None:
    connection_id = uuid.uuid4().hex
    with anyio.fail_after(10):
        async with ws_connect(ws_server, f"/hooks/{connection_id}") as ws:
            await ws.send("ping")
            assert await ws.recv() == "ping"
            await ws.close(4002, "client done")
        events = await events_once(http, connection_id, "on_close")
    # hypercorn 0.18 does not pass the client's close code on: it reports 1006 for every
    # close it did not start (wsproto's CloseConnection code is dropped in ws_stream.py).
    assert events == ["disconnect 1006", "finally", "on_disconnect", "on_close"]


async def test_hooks_after_a_tcp_abort(ws_server: HypercornServer, http: httpx.AsyncClient) -> None:
    connection_id = uuid.uuid4().hex
    with anyio.fail_after(10):
        async with ws_connect(ws_server, f"/hooks/{connection_id}") as ws:
            await ws.send("ping")
            assert await ws.recv() == "ping"
            ws.transport.abort()  # no close frame: the TCP connection just drops (RST)
        events = await events_once(http, connection_id, "on_close")
    assert events == ["disconnect 1006", "finally", "on_disconnect", "on_close"]


# -- 6. a send-only handler stops when the client leaves -------------------------------------


async def test_send_only_handler_stops_within_a_second_of_the_client_leaving(
    ws_server: HypercornServer, http: httpx.AsyncClient
) -> None:
    connection_id = uuid.uuid4().hex
    with anyio.fail_after(10):
        async with ws_connect(ws_server, f"/ticker/{connection_id}") as ws:
            assert await ws.recv() == "tick 0"
            assert await ws.recv() == "tick 1"
            left = anyio.current_time()
            await ws.close()
        await events_once(http, connection_id, "finally")
        stopped_after = anyio.current_time() - left
        events = await events_once(http, connection_id, "on_close")
    print(
        f"[{ws_server.worker_class}] send-only handler stopped {stopped_after:.3f}s after "
        "the client's close"
    )
    assert stopped_after < 1.0
    assert events == ["finally", "on_disconnect", "on_close"]


# -- 7. a flood at a handler that never reads --------------------------------------------------


def rss(pid: int) -> int:
    """Returns the resident set size of process ``pid`` in bytes (Linux ``/proc``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise LookupError(f"no VmRSS for process {pid}")  # pragma: no cover


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/<pid>/status")
async def test_flood_at_a_never_reading_handler_keeps_memory_bounded(
    ws_server: HypercornServer, http: httpx.AsyncClient
) -> None:
    connection_id = uuid.uuid4().hex
    block = os.urandom(64 * 1024)
    count = 320  # 20 MiB
    with anyio.fail_after(30):
        pid = (await http.get("/pid")).json()["pid"]  # hypercorn's worker, not its supervisor
        assert pid != ws_server.pid
        async with ws_connect(
            ws_server, f"/sink/{connection_id}", max_size=None, compression=None
        ) as ws:
            assert await ws.recv() == "ready"
            before = peak = rss(pid)
            sent = 0
            flooding, answered = anyio.Event(), anyio.Event()
            answered_at: list[int] = []

            async def watch_rss() -> None:
                nonlocal peak
                while True:  # another process's state: a bounded poll is all there is
                    peak = max(peak, rss(pid))
                    await anyio.sleep(0.005)

            async def other_request() -> None:
                await flooding.wait()
                response = await http.get("/pid")
                assert response.json() == {"pid": pid}
                answered_at.append(sent)
                answered.set()

            async with anyio.create_task_group() as tg:
                tg.start_soon(watch_rss)
                tg.start_soon(other_request)
                started = anyio.current_time()
                for sent in range(1, count + 1):  # the tasks read it
                    await ws.send(block)
                    if sent == count // 10:
                        flooding.set()
                # The pong comes once the server has read every frame before the ping.
                await (await ws.ping())
                flood_time = anyio.current_time() - started
                await answered.wait()  # the other request, if it is still on its way
                tg.cancel_scope.cancel()
            peak = max(peak, rss(pid))
        events = await events_once(http, connection_id, "on_close")
    growth = peak - before
    print(
        f"[{ws_server.worker_class}] flood of {count * len(block) // _MIB} MiB in "
        f"{flood_time:.2f}s: RSS {before / _MIB:.1f} MiB, peak +{growth / _MIB:.2f} MiB; "
        f"other request answered after {answered_at[0]} of {count} messages; {events[0]}"
    )
    assert growth < 10 * _MIB
    assert answered_at
    dropped, *after = events
    assert dropped.startswith("dropped ")
    assert int(dropped.split()[1]) > 0
    assert after == ["finally", "on_disconnect", "on_close"]


# -- 8. a slow reader loses nothing ---------------------------------------------------------------


async def test_slow_reader_gets_every_message_in_order(ws_server: HypercornServer) -> None:
    count = 200
    with anyio.fail_after(5 + count * ws_apps.SLOW_READ * 2):
        async with ws_connect(ws_server, f"/slow/{count}") as ws:
            for number in range(count):
                await ws.send(str(number))
            assert await ws.recv() == f"{count} in order"


# -- 9. issue 12: a pushing handler, a merged push, a handler that cannot start --------------


async def test_pushing_handler_stops_within_a_second_and_the_worker_serves_on(
    ws_server: HypercornServer, http: httpx.AsyncClient
) -> None:
    connection_id = uuid.uuid4().hex
    with anyio.fail_after(10):
        async with ws_connect(ws_server, f"/flood/{connection_id}") as ws:
            for _ in range(10):
                assert str(await ws.recv()).startswith("flood ")
            left = anyio.current_time()
            ws.transport.abort()  # the client is gone; the server's sends now go nowhere
        # Other requests are answered while the handler is stopped (bug 1: the worker spun).
        assert (await http.get("/pid")).status_code == 200
        await events_once(http, connection_id, "finally")
        stopped_after = anyio.current_time() - left
        events = await events_once(http, connection_id, "on_close")
    print(f"[{ws_server.worker_class}] pushing handler stopped {stopped_after:.3f}s after")
    assert stopped_after < 1.0
    assert events == ["finally", "on_disconnect", "on_close"]


async def test_merged_push_to_a_client_that_reads_nothing_is_dropped_with_1008(
    ws_server: HypercornServer, http: httpx.AsyncClient
) -> None:
    # Issue 12 bug 2 (the drop) and issue 13 item 10 (what the client is told). hypercorn's
    # trio worker writes in a shielded scope, so there the send stays stuck: the handler is
    # ended and the hooks run beside it, and the 1008 follows once the client reads.
    connection_id = uuid.uuid4().hex
    with anyio.fail_after(15):
        async with ws_connect(
            ws_server, f"/merged/{connection_id}", max_size=None, max_queue=1, compression=None
        ) as ws:
            await ws.recv()  # then read nothing: the server's sends stall
            started = anyio.current_time()
            events = await events_once(http, connection_id, "on_close")
            dropped_after = anyio.current_time() - started
            code, reason = await closed_by_server(ws)  # now read what was queued, and the end
    print(f"[{ws_server.worker_class}] merged push dropped after {dropped_after:.3f}s")
    assert events[-1] == "on_close", ws_server.logs[-3000:]
    assert "finally" in events
    # send_timeout + one watch interval, plus the time the buffers took to fill
    assert dropped_after < ws_apps.STALL_TIMEOUT + 3.0
    assert (code, reason) == (1008, f"too slow: a send took over {ws_apps.STALL_TIMEOUT:g}s")


async def test_handler_that_cannot_start_closes_with_1011_logged_once(
    ws_server: HypercornServer, http: httpx.AsyncClient
) -> None:
    connection_id = uuid.uuid4().hex
    with anyio.fail_after(10):
        async with ws_connect(ws_server, f"/arity/{connection_id}") as ws:
            code, _ = await closed_by_server(ws)
        events = await events_once(http, connection_id, "on_close")
    assert code == 1011
    assert events == ["on_close"]
    line = f"websocket handler wrong_arity failed (WS /arity/{connection_id})"
    assert ws_server.logs.count(line) == 1, ws_server.logs
    assert "TypeError" in ws_server.logs
    assert "Error in ASGI" not in ws_server.logs


# -- 9. the limits of issue 14, JSON (issue 16), the slow client's close code (issue 13) -------


async def test_a_silent_client_is_closed_after_idle_timeout(
    ws_server: HypercornServer, http: httpx.AsyncClient
) -> None:
    connection_id = uuid.uuid4().hex
    with anyio.fail_after(10):
        async with ws_connect(ws_server, f"/idle/{connection_id}") as ws:
            quiet_from = anyio.current_time()  # the client never sends a thing
            code, reason = await closed_by_server(ws)
            after = anyio.current_time() - quiet_from
        events = await events_once(http, connection_id, "on_close")
    print(f"[{ws_server.worker_class}] idle client closed after {after:.3f}s: {events}")
    assert (code, reason) == (1001, "idle: nothing received for 1s")
    assert ws_apps.IDLE_TIMEOUT <= after < ws_apps.IDLE_TIMEOUT + 1.0
    # the handler is told the server's close, not hypercorn's 1000 for the client's answer
    assert events == ["disconnect 1001 idle: nothing received for 1s", "finally", "on_close"]


async def test_a_client_that_sends_heartbeats_is_not_idle(
    ws_server: HypercornServer, http: httpx.AsyncClient
) -> None:
    connection_id = uuid.uuid4().hex
    with anyio.fail_after(10):
        async with ws_connect(ws_server, f"/idle/{connection_id}") as ws:
            for beat in range(6):  # 2.4 s in all, over twice the idle timeout
                await anyio.sleep(ws_apps.IDLE_TIMEOUT * 0.4)  # the client's cadence
                await ws.send(f"beat {beat}")
                assert await ws.recv() == f"beat {beat}"
        events = await events_once(http, connection_id, "on_close")
    assert events[-2:] == ["finally", "on_close"]
    assert not any(event.startswith("disconnect 1001") for event in events)


async def test_handshakes_over_max_connections_get_503(
    ws_server: HypercornServer, http: httpx.AsyncClient
) -> None:
    ids = [uuid.uuid4().hex for _ in range(ws_apps.SEATS + 1)]
    with anyio.fail_after(10):
        async with (
            ws_connect(ws_server, f"/seats/{ids[0]}"),
            ws_connect(ws_server, f"/seats/{ids[1]}") as second,
        ):
            with pytest.raises(InvalidStatus) as refused:
                async with ws_connect(ws_server, f"/seats/{ids[2]}"):
                    pass  # pragma: no cover
            await second.send("still served")
            assert await second.recv() == "still served"
        for connection_id in ids[:2]:
            await events_once(http, connection_id, "on_close")
        async with ws_connect(ws_server, f"/seats/{ids[2]}") as ws:  # seats given back
            await ws.send("in")
            assert await ws.recv() == "in"
    assert refused.value.response.status_code == 503
    assert b"too many connections" in refused.value.response.body
    assert "max_connections=2 open" in ws_server.logs


async def test_a_client_over_the_rate_is_closed_with_1008(
    ws_server: HypercornServer, http: httpx.AsyncClient
) -> None:
    connection_id = uuid.uuid4().hex
    with anyio.fail_after(10):
        async with ws_connect(ws_server, f"/rated/{connection_id}") as ws:
            for number in range(ws_apps.BURST + 5):  # far faster than 5 a second
                await ws.send(str(number))
            code, reason = await closed_by_server(ws)
        events = await events_once(http, connection_id, "on_close")
    print(f"[{ws_server.worker_class}] rate: {events}")
    assert (code, reason) == (1008, "rate limit exceeded")
    assert events[-3:] == ["disconnect 1008 rate limit exceeded", "finally", "on_close"]


async def test_what_is_not_json_closes_with_1007(
    ws_server: HypercornServer, http: httpx.AsyncClient
) -> None:
    connection_id = uuid.uuid4().hex
    with anyio.fail_after(10):
        async with ws_connect(ws_server, f"/json/{connection_id}") as ws:
            await ws.send('{"ok": [1, 2]}')
            assert await ws.recv() == '{"ok":[1,2]}'
            await ws.send("{not json")
            code, reason = await closed_by_server(ws)
        events = await events_once(http, connection_id, "on_close")
    assert code == 1007
    assert reason == "invalid JSON: Expecting property name enclosed in double quotes"
    assert events == [f"disconnect 1007 {reason}", "finally", "on_close"]
