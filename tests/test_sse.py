"""Server-sent events: the wire format, keep-alives, and a stream that ends with its client
(issue 15)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from shallot import build_server, standard_not_found
from shallot._types import ASGIApp, Message, Request, Response
from shallot.middlewares import apply_middleware, wrap_gzip, wrap_routes
from shallot.response import sse
from shallot.sse import format_event, last_event_id
from shallot.testing import TestClient

from ._fakes import http_scope


@pytest.mark.parametrize(
    ("event", "wire"),
    [
        ("hello", b"data: hello\n\n"),
        ("two\nlines\r\nand\rthree", b"data: two\ndata: lines\ndata: and\ndata: three\n\n"),
        ("", b"data: \n\n"),
        ({"data": {"a": [1, 2]}}, b'data: {"a":[1,2]}\n\n'),
        (
            {"event": "tick", "data": "1", "id": "7", "retry": 3000},
            b"event: tick\ndata: 1\nid: 7\nretry: 3000\n\n",
        ),
        ({"id": ""}, b"id: \n\n"),  # resets the client's last event id
        ({"comment": "just\nnoise"}, b": just\n: noise\n\n"),
        ({"data": "caf\u00e9"}, "data: caf\u00e9\n\n".encode()),
    ],
)
def test_format_event(event: Any, wire: bytes) -> None:
    assert format_event(event) == wire


@pytest.mark.parametrize(
    ("event", "error"),
    [
        ({}, ValueError),
        ({"date": "typo"}, ValueError),
        ({"event": "a\nb"}, ValueError),
        ({"id": "a\rb"}, ValueError),
        ({"id": "a\x00b"}, ValueError),
        ({"retry": -1}, ValueError),
        ({"retry": "soon"}, ValueError),
        ({"event": 3}, TypeError),
        ({"comment": 3}, TypeError),
        ({"data": {"x": float("nan")}}, ValueError),  # JSON.parse takes no NaN
        ({"data": [float("inf")]}, ValueError),
        (b"bytes", TypeError),
    ],
)
def test_format_event_refuses_what_cannot_be_sent(event: Any, error: type) -> None:
    with pytest.raises(error):
        format_event(event)


def test_sse_checks_keepalive() -> None:
    for keepalive in (0, -1, True, "15"):
        with pytest.raises(ValueError, match="keepalive"):
            sse(_none(), keepalive=keepalive)  # type: ignore[arg-type]


async def _none() -> AsyncIterator[str]:
    return
    yield


def test_last_event_id() -> None:
    assert last_event_id({"headers": {"last-event-id": " 41 "}}) == "41"
    assert last_event_id({"headers": {}}) is None
    assert last_event_id({"headers": {"last-event-id": "a\x00"}}) is None


def test_last_event_id_is_the_id_a_browser_sent_in_utf_8() -> None:
    # header values are decoded as latin-1; a browser sends the id it got, in UTF-8
    on_the_wire = "\u00e9t\u00e9-3".encode().decode("latin-1")
    assert last_event_id({"headers": {"last-event-id": on_the_wire}}) == "\u00e9t\u00e9-3"
    assert last_event_id({"headers": {"last-event-id": "caf\u00e9"}}) == "caf\u00e9"  # not UTF-8


async def test_a_finite_stream_is_sent_whole_with_its_headers() -> None:
    async def handler(request: Request) -> Response:
        start = int(last_event_id(request) or 0)

        async def events() -> AsyncIterator[Any]:
            for number in range(start + 1, start + 3):
                yield {"event": "count", "data": str(number), "id": str(number)}

        return sse(events())

    async with TestClient(build_server(apply_middleware(wrap_gzip(minimum_size=0))(handler))) as c:
        response = await c.get("/", headers={"last-event-id": "5", "accept-encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    assert "content-encoding" not in response.headers  # gzip would hold events back
    assert "content-length" not in response.headers
    assert response.text == (
        ":\n\nevent: count\ndata: 6\nid: 6\n\nevent: count\ndata: 7\nid: 7\n\n"
    )


class Peer:
    """One HTTP request to an app, its response read message by message."""

    def __init__(self) -> None:
        self.to_app_tx, self.to_app_rx = anyio.create_memory_object_stream[Message](10)
        self.from_app_tx, self.from_app_rx = anyio.create_memory_object_stream[Message](100)

    async def run(self, app: ASGIApp) -> None:
        with self.from_app_tx:
            await app(http_scope(), self.to_app_rx.receive, self.from_app_tx.send)

    def __enter__(self) -> Peer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for stream in (self.to_app_tx, self.to_app_rx, self.from_app_tx, self.from_app_rx):
            stream.close()

    async def next_body(self) -> bytes:
        message = await self.from_app_rx.receive()
        assert message["type"] == "http.response.body"
        assert message["more_body"] is True
        return bytes(message["body"])


async def test_keepalive_comments_while_quiet_and_the_events_end_when_the_client_leaves() -> None:
    released = anyio.Event()
    closed = anyio.Event()

    async def handler(request: Request) -> Response:
        async def events() -> AsyncIterator[str]:
            try:
                yield "first"
                await released.wait()
                yield "second"
                await anyio.sleep_forever()  # quiet until the client leaves
            finally:
                closed.set()

        return sse(events(), keepalive=0.01)

    with Peer() as peer, anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(peer.run, build_server(handler))
            start = await peer.from_app_rx.receive()
            assert (start["type"], start["status"]) == ("http.response.start", 200)
            assert await peer.next_body() == b":\n\n"
            assert await peer.next_body() == b"data: first\n\n"
            assert await peer.next_body() == b": keep-alive\n\n"
            assert await peer.next_body() == b": keep-alive\n\n"
            released.set()
            while (body := await peer.next_body()) == b": keep-alive\n\n":
                pass
            assert body == b"data: second\n\n"
            assert await peer.next_body() == b": keep-alive\n\n"
            await peer.to_app_tx.send({"type": "http.request", "body": b"", "more_body": False})
            await peer.to_app_tx.send({"type": "http.disconnect"})
            await closed.wait()  # the events' finally ran
        # the app returned: nothing is left running


async def test_events_that_fail_cut_the_response_short(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="shallot")

    async def handler(request: Request) -> Response:
        async def events() -> AsyncIterator[str]:
            yield "one"
            raise RuntimeError("the feed broke")

        return sse(events())

    with Peer() as peer, anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(peer.run, build_server(handler))
            assert (await peer.from_app_rx.receive())["status"] == 200
            assert await peer.next_body() == b":\n\n"
            assert await peer.next_body() == b"data: one\n\n"
            rest = [message async for message in peer.from_app_rx]
    assert rest == []  # no final empty body: the client sees a truncated response
    assert any("failed mid-response" in record.getMessage() for record in caplog.records)
    assert any("the feed broke" in (record.exc_text or "") for record in caplog.records)


async def test_iterated_without_entering_it_gives_the_same_bytes_without_keepalives() -> None:
    async def events() -> AsyncIterator[Any]:
        yield "a"
        yield {"event": "b", "data": "c"}

    response = sse(events(), keepalive=0.001)
    chunks = [chunk async for chunk in response["stream"]]
    assert chunks == [b":\n\n", b"data: a\n\n", b"event: b\ndata: c\n\n"]


async def test_a_head_request_gets_the_headers_and_no_events() -> None:
    started = False

    async def handler(request: Request) -> Response:
        async def events() -> AsyncIterator[str]:
            nonlocal started
            started = True
            yield "never sent"

        return sse(events())

    async with TestClient(build_server(handler)) as client:
        response = await client.head("/")
    assert response.headers["content-type"] == "text/event-stream"
    assert response.content == b""
    assert started is False


async def test_one_response_sent_twice_is_a_500_the_second_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="shallot")

    async def events() -> AsyncIterator[str]:
        yield "once"

    cached = sse(events())

    async def handler(request: Request) -> Response:
        return cached

    async with TestClient(build_server(handler)) as client:
        first = await client.get("/")
        second = await client.get("/")
    assert first.text == ":\n\ndata: once\n\n"
    assert second.status_code == 500
    assert any("sent twice" in (record.exc_text or "") for record in caplog.records)


async def cleanup_fails(request: Request) -> Response:
    async def events() -> AsyncIterator[str]:
        try:
            yield "one"
            await anyio.sleep_forever()
        finally:
            raise OSError("cleanup broke")  # when the client has left: no response to cut

    return sse(events())


async def test_events_whose_cleanup_fails_are_logged_and_the_server_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="shallot")
    routes = [("/", ["GET"], cleanup_fails)]
    app = build_server(apply_middleware(wrap_routes(routes))(standard_not_found))
    with Peer() as peer, anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(peer.run, app)  # a GET of /
            assert (await peer.from_app_rx.receive())["status"] == 200
            assert await peer.next_body() == b":\n\n"
            assert await peer.next_body() == b"data: one\n\n"
            await peer.to_app_tx.send({"type": "http.disconnect"})
    (record,) = [r for r in caplog.records if r.name == "shallot"]
    assert record.getMessage() == (
        "stream of handler cleanup_fails failed as the response ended on GET /"
    )
    assert isinstance(record.exc_info[1] if record.exc_info else None, OSError)


async def test_entered_it_raises_as_it_exits_what_the_events_raised_unread() -> None:
    events_stream: Any = (await cleanup_fails({}))["stream"]

    async def read_one_event_and_leave() -> None:
        async with events_stream as chunks:
            assert await chunks.__anext__() == b":\n\n"
            assert await chunks.__anext__() == b"data: one\n\n"
            await chunks.aclose()  # the reader stops: the events are stopped as it exits

    with anyio.fail_after(5), pytest.raises(OSError, match="cleanup broke"):
        await read_one_event_and_leave()


async def test_a_reader_that_stops_while_an_event_waits_is_no_failure() -> None:
    async def endless() -> AsyncIterator[str]:
        number = 0
        while True:
            yield f"event {number}"
            number += 1

    events_stream: Any = sse(endless())["stream"]
    with anyio.fail_after(5):
        async with events_stream as chunks:
            assert await chunks.__anext__() == b":\n\n"
            await anyio.wait_all_tasks_blocked()  # the next event waits to be taken
            await chunks.aclose()  # the client left: the response is over, nothing failed


async def test_a_stream_started_once_shutdown_began_ends_after_its_opening() -> None:
    # Its browser reconnects, to the next server; it would otherwise hold the shutdown.
    async def handler(request: Request) -> Response:
        async def events() -> AsyncIterator[str]:
            await anyio.sleep_forever()
            yield "unreachable"  # pragma: no cover

        return sse(events())

    app = build_server(handler)
    with anyio.fail_after(5):
        async with TestClient(app) as client:
            getattr(app, "begin_shutdown")()  # noqa: B009 - what serve does as it stops
            response = await client.get("/")
    assert (response.status_code, response.text) == (200, ":\n\n")
