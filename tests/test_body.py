"""Streamed request bodies (issue 15): ``stream_body`` routes read ``request["body_stream"]``
chunk by chunk, within the same 408/413 limits as buffered bodies, which stay the default.

Driven through the fake server of ``test_http``: what the app reads is counted, so a test can
tell that a chunk reached the handler before the next one was even received.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from shallot import BodyStream, apply_middleware, build_server, standard_not_found, stream_body
from shallot._types import Request, Response
from shallot.middlewares import wrap_json, wrap_multipart, wrap_routes
from shallot.response import text
from tests.test_http import (
    DISCONNECT,
    FakeServer,
    assert_took_about,
    chunk,
    http_scope,
    serve,
    timeouts,
    watchdog,
)


def post(path: str = "/upload", length: int | None = None) -> dict[str, Any]:
    header = (b"content-length", b"%d" % length) if length is not None else None
    chunked = (b"transfer-encoding", b"chunked")
    return dict(http_scope("POST", path, [header or chunked]))


class Recorder:
    """A streaming handler that records each chunk and what the server had been asked for
    by the time the chunk arrived."""

    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.chunks: list[bytes] = []
        self.receive_calls: list[int] = []
        self.body: bytes | None = None

    async def __call__(self, request: Request) -> Response:
        self.body = request["body"]
        async for piece in request["body_stream"]:
            self.chunks.append(piece)
            self.receive_calls.append(self.server.receive_calls)
        return text(f"{sum(map(len, self.chunks))} bytes")


def routed(handler: Any, *middlewares: Any) -> Any:
    pile = apply_middleware(*middlewares, wrap_routes([("/upload", ["POST"], handler)]))
    return build_server(pile(standard_not_found))


async def test_a_streaming_route_reads_chunks_as_they_arrive() -> None:
    messages = [chunk(b"abc", more=True), chunk(b"def", more=True), chunk(b"g")]
    with FakeServer(*messages) as server, watchdog():
        recorder = Recorder(server)
        await serve(routed(stream_body(recorder)), server, post())
    assert server.status == 200
    assert server.body == b"7 bytes"
    assert recorder.body == b""
    assert recorder.chunks == [b"abc", b"def", b"g"]
    assert recorder.receive_calls == [1, 2, 3]  # one chunk at a time: nothing read ahead


async def test_other_routes_keep_the_buffered_body() -> None:
    seen: list[Request] = []

    async def buffered(request: Request) -> Response:
        seen.append(request)
        return text("ok")

    pile = apply_middleware(
        wrap_routes([("/upload", ["POST"], stream_body(buffered)), ("/form", ["POST"], buffered)])
    )
    app = build_server(pile(standard_not_found))
    with FakeServer(chunk(b"ab", more=True), chunk(b"c")) as server, watchdog():
        await serve(app, server, post("/form"))
    assert server.status == 200
    assert seen[0]["body"] == b"abc"
    assert "body_stream" not in seen[0]


async def test_middlewares_outside_the_route_see_an_empty_body() -> None:
    scope = post(length=7)
    scope["headers"].append((b"content-type", b"application/json"))
    with FakeServer(chunk(b'{"a": 1}')) as server, watchdog():
        recorder = Recorder(server)
        await serve(routed(stream_body(recorder), wrap_json()), server, scope)
    assert server.status == 200
    assert recorder.chunks == [b'{"a": 1}']


async def test_a_streaming_handler_served_alone_streams_every_request() -> None:
    with FakeServer(chunk(b"x" * 5)) as server, watchdog():
        recorder = Recorder(server)
        await serve(build_server(stream_body(recorder)), server, post(length=5))
    assert recorder.chunks == [b"x" * 5]


async def test_a_request_without_a_body_gets_an_empty_stream() -> None:
    scope = dict(http_scope("POST", "/upload"))
    with FakeServer(chunk(b"")) as server, watchdog():
        recorder = Recorder(server)
        await serve(routed(stream_body(recorder)), server, scope)
    assert server.body == b"0 bytes"
    assert recorder.chunks == []


async def test_a_body_read_before_is_handed_over_as_a_stream() -> None:
    recorder = Recorder(FakeServer())
    with recorder.server:
        # called directly: no server rule, the body was read already
        response = await stream_body(recorder)({"body": b"whole", "method": "POST"})
    assert isinstance(response, dict)
    assert response["body"] == b"5 bytes"
    assert recorder.chunks == [b"whole"]


async def test_an_announced_body_over_the_limit_gets_413_before_any_read() -> None:
    with FakeServer() as server, watchdog():
        recorder = Recorder(server)
        app = build_server(stream_body(recorder), max_body_size=10)
        async with anyio.create_task_group() as tg:
            tg.start_soon(serve, app, server, post(length=11))
            await server.next_sent()
            await server.next_sent()
            server.client_sends(chunk(b"x" * 11))  # answered while the client still wrote it
    assert server.status == 413
    assert server.body == b"Payload Too Large: the body exceeds 10 bytes"
    assert (b"connection", b"close") in server.headers
    assert recorder.chunks == []  # read and dropped by shallot, never the handler's


async def test_a_streamed_body_over_the_limit_gets_413_and_the_rest_is_dropped() -> None:
    messages = [chunk(b"x" * 6, more=True), chunk(b"x" * 6, more=True)]
    with FakeServer(*messages) as server, watchdog():
        recorder = Recorder(server)
        async with anyio.create_task_group() as tg:
            tg.start_soon(serve, routed(stream_body(max_size=10)(recorder)), server, post())
            await server.next_sent()
            await server.next_sent()
            server.client_sends(chunk(b"x"))  # answered while the client still wrote it
    assert server.status == 413
    assert server.body == b"Payload Too Large: the body exceeds 10 bytes"
    assert server.completed
    assert recorder.chunks == [b"x" * 6]


async def test_a_response_stream_that_reads_the_body_ends_when_it_does() -> None:
    # the response's end is held only while the body may still be coming: a stream that
    # reads it to its end (an echo, a proxy) must not wait body_timeout after it
    @stream_body
    async def echo(request: Request) -> Response:
        async def upper() -> AsyncIterator[bytes]:
            async for piece in request["body_stream"]:
                yield piece.upper()

        return {"status": 200, "stream": upper()}

    messages = [chunk(b"ab", more=True), chunk(b"c")]
    with FakeServer(*messages) as server, watchdog():  # 5 s, well under body_timeout
        await serve(routed(echo), server, post())
    assert server.status == 200
    assert server.body == b"ABC"
    assert server.completed


async def test_a_route_may_take_bodies_larger_than_the_app_limit() -> None:
    with FakeServer(chunk(b"x" * 50, more=True), chunk(b"x" * 50)) as server, watchdog():
        recorder = Recorder(server)
        app = build_server(stream_body(max_size=100)(recorder), max_body_size=10)
        await serve(app, server, post(length=100))
    assert server.status == 200
    assert server.body == b"100 bytes"


async def test_invalid_content_length_gets_400() -> None:
    scope = dict(http_scope("POST", "/upload", [(b"content-length", b"-1")]))
    with FakeServer(chunk(b"")) as server, watchdog():
        await serve(build_server(stream_body(Recorder(server))), server, scope)
    assert server.status == 400


@timeouts()
async def test_a_body_arriving_too_slowly_gets_408(limit: float) -> None:
    with FakeServer(chunk(b"abc", more=True)) as server, watchdog(limit):
        recorder = Recorder(server)
        app = build_server(stream_body(recorder), body_timeout=limit)
        start = anyio.current_time()
        await serve(app, server, post(length=10))
        elapsed = anyio.current_time() - start
    assert server.status == 408
    assert server.body == b"Request Timeout"
    assert recorder.chunks == [b"abc"]
    assert_took_about(elapsed, limit)


@timeouts()
async def test_the_time_the_handler_spends_on_a_chunk_does_not_count(limit: float) -> None:
    async def slow(request: Request) -> Response:
        async for _ in request["body_stream"]:
            await anyio.sleep(limit * 0.6)  # twice over, longer than the limit in all
        return text("ok")

    with FakeServer(chunk(b"a", more=True), chunk(b"b")) as server, watchdog(limit):
        await serve(build_server(stream_body(slow), body_timeout=limit), server, post(length=2))
    assert server.status == 200


async def test_a_client_leaving_mid_body_ends_the_request_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with FakeServer(chunk(b"abc", more=True), DISCONNECT) as server, watchdog():
        recorder = Recorder(server)
        await serve(build_server(stream_body(recorder)), server, post(length=10))
    assert server.sent == []
    assert recorder.chunks == [b"abc"]
    assert "raised" not in caplog.text


def test_stream_body_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="max_size"):
        stream_body(max_size=-1)
    with pytest.raises(TypeError, match="not callable"):
        stream_body(max_size=1)(42)  # type: ignore[arg-type]


def test_the_stream_says_how_much_it_read() -> None:
    assert repr(BodyStream.of_bytes(b"")) == "<BodyStream 0 bytes read, max_size=1>"


async def plain_handler(request: Request) -> Response:
    return text("ok")


def test_piles_without_streaming_routes_carry_no_rule() -> None:
    middleware = wrap_routes([("/a", ["POST"], plain_handler)])
    assert not hasattr(middleware, "streams_body")
    assert not hasattr(
        apply_middleware(wrap_json(), middleware)(standard_not_found), "streams_body"
    )


def test_the_rule_follows_routes_into_nested_piles() -> None:
    nested = apply_middleware(wrap_multipart())(plain_handler)
    pile = apply_middleware(
        wrap_routes(
            [("/form", ["POST"], nested), ("/raw/{name}", ["PUT"], stream_body(plain_handler))]
        )
    )(standard_not_found)
    rule = pile.streams_body  # type: ignore[attr-defined]
    multipart = {"content-type": "multipart/form-data; boundary=x"}
    assert rule({"method": "POST", "path": "/form"}, multipart)
    assert not rule({"method": "POST", "path": "/form"}, {"content-type": "application/json"})
    assert not rule({"method": "POST", "path": "/other"}, multipart)
    assert rule({"method": "PUT", "path": "/raw/x"}, {})
    assert not rule({"method": "POST", "path": "/raw/x"}, {})
