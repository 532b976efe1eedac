"""HTTP: the request dict, responses, limits and error answers (SPEC §1, §3).

Every test drives the ASGI app directly through a fake server (``FakeServer``): what the
client sends is queued on a memory stream, ``receive`` blocks when nothing is queued (as a
real server's does until the client disconnects), and what the app sends is recorded.
Timeouts are injected: a tiny one on asyncio, the real default on trio's autojump clock.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any

import anyio
import pytest
import trio.testing

from shallot import build_server
from shallot._types import ASGIApp, Message, Receive, Request, Response, Scope, Send
from shallot.response import text

#: Long enough for any of these tests; on the autojump clock it costs nothing.
WATCHDOG = 120.0


def http_scope(
    method: str = "GET",
    path: str = "/",
    headers: Iterable[tuple[bytes, bytes]] = (),
    http_version: str = "1.1",
) -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": http_version,
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": list(headers),
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "state": {},
        "extensions": {},
    }


def chunk(body: bytes, more: bool = False) -> Message:
    return {"type": "http.request", "body": body, "more_body": more}


DISCONNECT: Message = {"type": "http.disconnect"}


class FakeServer:
    """The server's side of one request: queued client messages in, the app's messages out."""

    def __init__(self, *messages: Message) -> None:
        self._to_app_tx, self._to_app_rx = anyio.create_memory_object_stream[Message](math.inf)
        self._sent_tx, self._sent_rx = anyio.create_memory_object_stream[Message](math.inf)
        self.sent: list[Message] = []
        self.receive_calls = 0
        for message in messages:
            self.client_sends(message)

    def __enter__(self) -> FakeServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for stream in (self._to_app_tx, self._to_app_rx, self._sent_tx, self._sent_rx):
            stream.close()

    def client_sends(self, message: Message) -> None:
        self._to_app_tx.send_nowait(message)

    def unread(self) -> Message:
        """Returns the next queued client message the app did not read."""
        return self._to_app_rx.receive_nowait()

    async def receive(self) -> Message:
        self.receive_calls += 1
        return await self._to_app_rx.receive()

    async def send(self, message: Message) -> None:
        self.sent.append(message)
        self._sent_tx.send_nowait(message)

    async def next_sent(self) -> Message:
        """Waits for the app's next message."""
        return await self._sent_rx.receive()

    @property
    def status(self) -> int:
        assert self.sent[0]["type"] == "http.response.start"
        return int(self.sent[0]["status"])

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        return list(self.sent[0]["headers"])

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent[1:])

    @property
    def completed(self) -> bool:
        last = self.sent[-1] if self.sent else {}
        return last.get("type") == "http.response.body" and not last.get("more_body", False)


async def serve(app: ASGIApp, server: FakeServer, scope: Scope | None = None) -> None:
    await app(scope or http_scope(), server.receive, server.send)


def reply(response: Any) -> Callable[[Request], Any]:
    async def handler(request: Request) -> Any:
        return response

    return handler


def autojump() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


def timeouts() -> pytest.MarkDecorator:
    """Runs a test on asyncio with a tiny timeout and on trio's autojump clock with a real one."""
    return pytest.mark.parametrize(
        ("anyio_backend", "limit"),
        [
            pytest.param("asyncio", 0.05, id="asyncio"),
            pytest.param(("trio", {"clock": autojump()}), 30.0, id="trio-autojump"),
        ],
    )


def watchdog(limit: float = 0.0) -> AbstractContextManager[anyio.CancelScope]:
    """Fails a deadlocked test: after 5 s, or well after a long ``limit`` on the autojump
    clock (where waiting for it costs nothing)."""
    return anyio.fail_after(WATCHDOG if limit >= 1 else 5.0)


def assert_took_about(elapsed: float, limit: float) -> None:
    """The timeout fired, and not much later (exact on the autojump clock; real on asyncio)."""
    assert limit * 0.99 <= elapsed < limit * 2 + 0.5


# --- the request dict -------------------------------------------------------------------


async def test_request_holds_a_copy_of_the_scope_and_shallots_keys() -> None:
    seen: list[Request] = []

    async def handler(request: Request) -> Response:
        seen.append(request)
        return text("ok")

    raw = [
        (b"Host", b"example.com"),
        (b"X-Name", b"caf\xe9"),
        (b"x-raw", b"\xff\xfe\x80\x00"),
        (b"accept", b"text/html"),
        (b"Accept", b"application/json"),
        (b"cookie", b"a=1"),
        (b"cookie", b"b=2"),
        (b"content-length", b"11"),
    ]
    scope = http_scope("POST", "/submit", raw)
    with FakeServer(chunk(b"hello ", more=True), chunk(b"world")) as server, watchdog():
        await serve(build_server(handler), server, scope)
    (request,) = seen
    assert request["headers"] == {
        "host": "example.com",
        "x-name": "café",
        "x-raw": "ÿþ\x80\x00",
        "accept": "text/html,application/json",
        "cookie": "a=1; b=2",
        "content-length": "11",
    }
    assert request["headers_list"] is scope["headers"]
    assert request["headers_list"] == raw
    assert request["body"] == b"hello world"
    assert request["method"] == "POST"
    assert request["config"] == {}
    assert request is not scope
    for key, value in scope.items():
        if key != "headers":
            assert request[key] == value
    request["path"] = "/changed"
    assert scope["path"] == "/submit"
    assert server.status == 200


async def test_request_without_a_body_has_empty_bytes() -> None:
    seen: list[Request] = []

    async def handler(request: Request) -> Response:
        seen.append(request)
        return text("ok")

    with FakeServer(chunk(b"")) as server, watchdog():
        await serve(build_server(handler), server)
    assert seen[0]["body"] == b""
    assert seen[0]["method"] == "GET"


async def test_body_over_http2_is_read_as_it_comes() -> None:
    seen: list[bytes] = []

    async def handler(request: Request) -> Response:
        seen.append(request["body"])
        return text("ok")

    with FakeServer(chunk(b"a", more=True), chunk(b"b", more=True), chunk(b"")) as server:
        with watchdog():
            await serve(build_server(handler), server, http_scope("POST", http_version="2"))
    assert seen == [b"ab"]


async def test_over_http2_a_refusal_goes_out_at_once_and_ends_when_the_body_has() -> None:
    # hypercorn fails on DATA for a stream whose response ended: the end waits for the body
    app = build_server(reply(text("unused")), max_body_size=4)
    big = chunk(b"x" * 8, more=True)
    with FakeServer(big) as server, watchdog():
        async with anyio.create_task_group() as tg:
            tg.start_soon(serve, app, server, http_scope("POST", http_version="2"))
            start, body = await server.next_sent(), await server.next_sent()
            assert (start["status"], body["more_body"]) == (413, True)
            assert body["body"] == b"Payload Too Large"
            server.client_sends(chunk(b"y" * 8, more=True))  # the client goes on sending
            server.client_sends(chunk(b"z" * 8))  # and ends
            end = await server.next_sent()
    assert end == {"type": "http.response.body", "body": b"", "more_body": False}
    assert server.receive_calls == 3  # every chunk was read before the end


async def test_over_http1_a_413_is_sent_before_the_rest_of_the_body_is_read_and_dropped() -> None:
    # hypercorn closes an HTTP/1 connection as its response ends: a client still writing its
    # body (httpx, requests read only after) would meet a reset, never the 413
    app = build_server(reply(text("unused")), max_body_size=4)
    announced = http_scope("POST", headers=[(b"content-length", b"24")])
    with FakeServer() as server, watchdog():
        async with anyio.create_task_group() as tg:
            tg.start_soon(serve, app, server, announced)
            start, body = await server.next_sent(), await server.next_sent()
            assert (start["status"], body["more_body"]) == (413, True)
            assert (b"connection", b"close") in start["headers"]
            for piece in (b"x" * 8, b"y" * 8):
                server.client_sends(chunk(piece, more=True))
            server.client_sends(chunk(b"z" * 8))
            end = await server.next_sent()
    assert end == {"type": "http.response.body", "body": b"", "more_body": False}
    assert server.receive_calls == 3


async def test_over_http2_a_body_that_falls_quiet_is_given_up_and_the_response_ended() -> None:
    app = build_server(reply(text("unused")), max_body_size=4, body_timeout=0.2)
    with FakeServer(chunk(b"x" * 8, more=True)) as server, watchdog():
        await serve(app, server, http_scope("POST", http_version="2"))
    assert server.status == 413
    assert server.completed


# --- responses --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "headers", "body"),
    [
        pytest.param(
            {"status": 200, "body": b"abc"}, [(b"content-length", b"3")], b"abc", id="bytes"
        ),
        pytest.param(
            {"status": 201, "body": "héllo"},
            [(b"content-length", b"6")],
            "héllo".encode(),
            id="str-is-utf8",
        ),
        pytest.param({"status": 200}, [(b"content-length", b"0")], b"", id="no-body"),
        pytest.param(
            {"status": 200, "body": None}, [(b"content-length", b"0")], b"", id="none-body"
        ),
        pytest.param(
            {"status": 200, "headers": {"X-A": "1", "content-type": "text/x"}, "body": b"!"},
            [(b"X-A", b"1"), (b"content-type", b"text/x"), (b"content-length", b"1")],
            b"!",
            id="dict-headers",
        ),
        pytest.param(
            {"status": 200, "headers": [("set-cookie", "a=1"), ("set-cookie", "b=2")]},
            [(b"set-cookie", b"a=1"), (b"set-cookie", b"b=2"), (b"content-length", b"0")],
            b"",
            id="repeated-headers-as-pairs",
        ),
        pytest.param(
            {"status": 200, "headers": {"Content-Length": "2"}, "body": b"hi"},
            [(b"Content-Length", b"2")],
            b"hi",
            id="content-length-kept",
        ),
        pytest.param(
            {"status": 200, "headers": {"content-length": 2}, "body": b"hi"},
            [(b"content-length", b"2")],
            b"hi",
            id="content-length-as-int",
        ),
        pytest.param(
            {"status": 200, "headers": {"x-name": "café €"}},
            [(b"x-name", "café €".encode()), (b"content-length", b"0")],
            b"",
            id="non-latin1-header-as-utf8",
        ),
        pytest.param({"status": 204}, [], b"", id="204-without-length"),
        pytest.param({"status": 204, "body": b""}, [], b"", id="204-empty-body-without-length"),
        pytest.param({"status": 304, "body": b""}, [], b"", id="304-empty-body-without-length"),
        pytest.param({"status": 204, "body": b"oops"}, [], b"", id="204-body-dropped"),
        pytest.param(
            {"status": 304, "headers": {"etag": '"x"'}, "body": b"oops"},
            [(b"etag", b'"x"')],
            b"",
            id="304-body-dropped",
        ),
        pytest.param(
            {"status": 304, "headers": {"content-length": "4"}, "body": b"oops"},
            [(b"content-length", b"4")],  # the length of the 200 it stands for: allowed
            b"",
            id="304-own-content-length-kept-body-dropped",
        ),
        pytest.param({"status": 204, "body": "oops"}, [], b"", id="204-str-body-dropped"),
        pytest.param({"status": 103, "body": b"oops"}, [], b"", id="1xx-body-dropped"),
        pytest.param(
            {"status": 304, "headers": {"etag": '"x"'}}, [(b"etag", b'"x"')], b"", id="304"
        ),
    ],
)
async def test_whole_body_responses(
    response: Response, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    with FakeServer(chunk(b"")) as server, watchdog():
        await serve(build_server(reply(response)), server)
    assert server.sent == [
        {"type": "http.response.start", "status": response["status"], "headers": headers},
        {"type": "http.response.body", "body": body, "more_body": False},
    ]


async def test_head_response_has_no_body_but_keeps_its_content_length() -> None:
    with FakeServer(chunk(b"")) as server, watchdog():
        await serve(build_server(reply(text("hello"))), server, http_scope("HEAD"))
    assert server.status == 200
    assert (b"content-length", b"5") in server.headers
    assert server.body == b""
    assert server.completed


async def test_stream_response_is_sent_chunk_by_chunk() -> None:
    async def chunks() -> AsyncIterator[Any]:
        yield b"one,"
        yield b""  # nothing to send
        yield "two,"  # str is encoded UTF-8
        yield bytearray(b"three")

    response = {"status": 200, "headers": {"content-type": "text/csv"}, "stream": chunks()}
    with FakeServer(chunk(b"")) as server, watchdog():
        await serve(build_server(reply(response)), server)
    assert server.sent == [
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/csv")]},
        {"type": "http.response.body", "body": b"one,", "more_body": True},
        {"type": "http.response.body", "body": b"two,", "more_body": True},
        {"type": "http.response.body", "body": b"three", "more_body": True},
        {"type": "http.response.body", "body": b"", "more_body": False},
    ]


async def test_stream_wins_over_body() -> None:  # shallot 2.0's filestream set both
    async def chunks() -> AsyncIterator[bytes]:
        yield b"streamed"

    with FakeServer(chunk(b"")) as server, watchdog():
        await serve(build_server(reply({"status": 200, "body": b"", "stream": chunks()})), server)
    assert server.body == b"streamed"


@pytest.mark.parametrize(
    ("method", "status"),
    [("HEAD", 200), ("GET", 204), ("GET", 304)],  # 204 and 304: no content, as HEAD
)
async def test_head_stream_sends_headers_only_and_closes_the_stream(
    method: str, status: int
) -> None:
    events: list[str] = []

    async def chunks() -> AsyncIterator[bytes]:
        events.append("started")
        yield b"never sent"

    stream = chunks()
    with FakeServer(chunk(b"")) as server, watchdog():
        await serve(
            build_server(reply({"status": status, "stream": stream})), server, http_scope(method)
        )
    assert server.status == status
    assert server.body == b""
    assert server.completed
    assert events == []
    with pytest.raises(StopAsyncIteration):  # closed: it can never run
        await stream.__anext__()


async def test_returned_callable_takes_the_raw_connection_over() -> None:
    calls: list[tuple[Receive, Send]] = []

    async def takeover(receive: Receive, send: Send) -> None:
        calls.append((receive, send))
        message = await receive()
        await send({"type": "http.response.start", "status": 202, "headers": []})
        await send({"type": "http.response.body", "body": message["type"].encode()})

    with FakeServer(chunk(b""), DISCONNECT) as server, watchdog():
        await serve(build_server(reply(takeover)), server)
    # the raw send, and a receive past the (already read) request body
    assert [call[1] for call in calls] == [server.send]
    assert server.sent == [
        {"type": "http.response.start", "status": 202, "headers": []},
        {"type": "http.response.body", "body": b"http.disconnect"},
    ]


# --- errors become 500 ------------------------------------------------------------------


def shallot_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "shallot"]


async def test_handler_that_raises_gets_500_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def explode(request: Request) -> Response:
        raise ValueError("secret detail")

    app = build_server(explode)
    with FakeServer(chunk(b"")) as server, watchdog():
        await serve(app, server)
    assert server.status == 500
    assert (b"content-type", b"text/plain; charset=utf-8") in server.headers
    assert server.body == b"Internal Server Error"
    (record,) = shallot_records(caplog)
    assert record.levelno == logging.ERROR
    assert "explode" in record.getMessage()
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], ValueError)

    with FakeServer(chunk(b"")) as server, watchdog():  # and the app keeps serving
        await serve(build_server(reply(text("fine"))), server)
    assert server.status == 200


@pytest.mark.parametrize(
    "returned",
    [
        None,
        "just a string",
        {"body": b"no status"},
        {"status": "200"},
        {"status": True},
        {"status": 200, "body": 5},
        {"status": 200, "headers": {"x-number": 1.5}},
        {"status": 200, "headers": [("only-a-name",)]},
        {"status": 200, "headers": 5},
        {"status": 200, "stream": [b"not", b"async"]},
    ],
)
async def test_handler_returning_a_non_response_gets_500_and_is_logged_once(
    returned: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async def confused(request: Request) -> Any:
        return returned

    with FakeServer(chunk(b"")) as server, watchdog():
        await serve(build_server(confused), server)
    assert server.status == 500
    assert server.body == b"Internal Server Error"
    (record,) = shallot_records(caplog)
    assert record.levelno == logging.ERROR
    assert "confused" in record.getMessage()


@pytest.mark.parametrize(
    "headers",
    [
        {"content-disposition": 'attachment; filename="x"\r\nset-cookie: admin=1'},
        {"x-note": "line\nbreak"},
        {"x-note": "nul\x00"},
        {"x-note": "vertical\x0btab"},
        {"x-note": "delete\x7f"},
        {"bad name": "value"},
        {"x-split:": "value"},
        {"": "value"},
        [(b"x-bytes", b"a\r\nb")],
        {"location": "/x\r\n"},
    ],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_a_header_that_would_not_go_out_as_one_header_gets_500(
    headers: Any, stream: bool, caplog: pytest.LogCaptureFixture
) -> None:
    # a value from user input with CR/LF must never split into headers of its own
    async def download(request: Request) -> Any:
        if stream:
            return {"status": 200, "headers": headers, "stream": _chunks(b"secret")}
        return {"status": 200, "headers": headers, "body": b"secret"}

    with FakeServer(chunk(b"")) as server, watchdog():
        await serve(build_server(download), server)
    assert server.status == 500
    assert server.body == b"Internal Server Error"
    (record,) = shallot_records(caplog)
    assert "download" in record.getMessage()
    assert "header" in record.getMessage()

    with FakeServer(chunk(b"")) as server, watchdog():  # the same shape, usable, goes out
        fine = text("fine", headers={"x-note": "one\tline, caf\u00e9 \u2603"})  # tab, obs-text
        await serve(build_server(reply(fine)), server)
    assert server.status == 200


async def _chunks(*chunks: bytes) -> AsyncIterator[bytes]:
    for piece in chunks:
        yield piece


async def test_stream_failing_before_its_first_chunk_gets_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events: list[str] = []

    async def chunks() -> AsyncIterator[bytes]:
        try:
            raise OSError("disk gone")
            yield b""
        finally:
            events.append("finally")

    with FakeServer(chunk(b"")) as server, watchdog():
        await serve(build_server(reply({"status": 200, "stream": chunks()})), server)
    assert server.status == 500
    assert server.body == b"Internal Server Error"
    assert server.completed
    assert events == ["finally"]
    (record,) = shallot_records(caplog)
    assert "before its first chunk" in record.getMessage()


@pytest.mark.parametrize("failure", ["raise", "not-bytes"])
async def test_stream_failing_midway_leaves_the_response_incomplete(
    failure: str, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[str] = []

    async def chunks() -> AsyncIterator[Any]:
        try:
            yield b"first"
            if failure == "raise":
                raise RuntimeError("broken")
            yield 42
        finally:
            events.append("finally")

    with FakeServer(chunk(b"")) as server, watchdog():
        await serve(build_server(reply({"status": 200, "stream": chunks()})), server)
    assert server.status == 200
    assert server.sent[1:] == [{"type": "http.response.body", "body": b"first", "more_body": True}]
    assert not server.completed  # the server aborts it: the client sees it cut short
    assert events == ["finally"]
    (record,) = shallot_records(caplog)
    assert "mid-response" in record.getMessage()


# --- client disconnects -----------------------------------------------------------------


async def test_disconnect_during_a_stream_closes_it_and_leaves_no_task() -> None:
    events: list[str] = []

    async def endless() -> AsyncIterator[bytes]:
        try:
            yield b"first"
            await anyio.sleep_forever()
            yield b"never"
        finally:
            events.append("finally")

    app = build_server(reply({"status": 200, "stream": endless()}))
    tasks_before = len(anyio.get_running_tasks())
    with FakeServer(chunk(b"")) as server, watchdog():
        async with anyio.create_task_group() as tg:
            tg.start_soon(serve, app, server)
            assert (await server.next_sent())["type"] == "http.response.start"
            assert (await server.next_sent())["body"] == b"first"
            await anyio.wait_all_tasks_blocked()
            assert events == []
            server.client_sends(DISCONNECT)
    assert events == ["finally"]
    assert not server.completed
    assert len(anyio.get_running_tasks()) == tasks_before


async def test_disconnect_before_the_first_chunk_stops_the_stream() -> None:
    events: list[str] = []

    async def slow_to_start() -> AsyncIterator[bytes]:
        try:
            await anyio.sleep_forever()
            yield b"never"
        finally:
            events.append("finally")

    app = build_server(reply({"status": 200, "stream": slow_to_start()}))
    with FakeServer(chunk(b"")) as server, watchdog():
        async with anyio.create_task_group() as tg:
            tg.start_soon(serve, app, server)
            await anyio.wait_all_tasks_blocked()
            server.client_sends(DISCONNECT)
    assert events == ["finally"]
    assert server.sent == []


async def test_disconnect_while_the_body_is_read_ends_the_request_quietly() -> None:
    called: list[Request] = []

    async def handler(request: Request) -> Response:
        called.append(request)
        return text("x")

    scope = http_scope("POST", headers=[(b"content-length", b"10")])
    with FakeServer(chunk(b"abc", more=True), DISCONNECT) as server, watchdog():
        await serve(build_server(handler), server, scope)
    assert called == []
    assert server.sent == []


class GoneError(OSError):
    """What an ASGI 2.4 server raises from send() once the client has gone."""


async def test_send_raising_oserror_during_a_stream_ends_it_quietly() -> None:
    events: list[str] = []

    async def chunks() -> AsyncIterator[bytes]:
        try:
            while True:
                yield b"tick"
        finally:
            events.append("finally")

    sent: list[Message] = []

    async def send(message: Message) -> None:
        if len(sent) == 2:
            raise GoneError("client disconnected")
        sent.append(message)

    app = build_server(reply({"status": 200, "stream": chunks()}))
    with FakeServer(chunk(b"")) as server, watchdog():
        await app(http_scope(), server.receive, send)
    assert len(sent) == 2
    assert events == ["finally"]


async def test_send_raising_oserror_on_a_body_response_ends_it_quietly() -> None:
    async def send(message: Message) -> None:
        raise GoneError("client disconnected")

    with FakeServer(chunk(b"")) as server, watchdog():
        await build_server(reply(text("x")))(http_scope(), server.receive, send)


# --- limits: body size, body timeout, response timeout ----------------------------------


async def test_body_over_the_limit_by_content_length_gets_413_before_it_is_read() -> None:
    scope = http_scope("POST", headers=[(b"content-length", b"11")])
    called: list[Request] = []

    async def handler(request: Request) -> Response:
        called.append(request)
        return text("x")

    with FakeServer() as server, watchdog():
        async with anyio.create_task_group() as tg:
            tg.start_soon(serve, build_server(handler, max_body_size=10), server, scope)
            await server.next_sent()
            await server.next_sent()
            server.client_sends(chunk(b"x" * 11))  # answered while the client still wrote it
    assert server.status == 413
    assert (b"connection", b"close") in server.headers
    assert server.body == b"Payload Too Large"
    assert server.completed
    assert server.receive_calls == 1  # then read and dropped, for a client still writing
    assert server.body == b"Payload Too Large"  # never in a handler's hands
    assert called == []


async def test_body_over_the_limit_as_it_streams_gets_413_before_the_rest_is_read() -> None:
    scope = http_scope("POST", headers=[(b"transfer-encoding", b"chunked")])
    with FakeServer(chunk(b"x" * 6, more=True), chunk(b"x" * 6, more=True)) as server:
        async with anyio.create_task_group() as tg:
            app = build_server(reply(text("x")), max_body_size=10)
            tg.start_soon(serve, app, server, scope)
            with watchdog():
                await server.next_sent()
                await server.next_sent()
            server.client_sends(chunk(b"x" * 6))  # answered while the client still wrote it
    assert server.status == 413
    assert (b"connection", b"close") in server.headers
    assert server.completed
    assert server.receive_calls == 3  # then the rest was read and dropped


async def test_body_of_exactly_the_limit_is_accepted() -> None:
    seen: list[bytes] = []

    async def handler(request: Request) -> Response:
        seen.append(request["body"])
        return text("ok")

    scope = http_scope("POST", headers=[(b"content-length", b"10")])
    with FakeServer(chunk(b"x" * 4, more=True), chunk(b"x" * 6)) as server, watchdog():
        await serve(build_server(handler, max_body_size=10), server, scope)
    assert server.status == 200
    assert seen == [b"x" * 10]


@pytest.mark.parametrize("length", [b"abc", b"-1", b" 5", b"+5", b"1_0", b"5,5", "٣".encode()])
async def test_invalid_content_length_gets_400(length: bytes) -> None:
    scope = http_scope("POST", headers=[(b"content-length", length)])
    with FakeServer(chunk(b"")) as server, watchdog():
        await serve(build_server(reply(text("x"))), server, scope)
    assert server.status == 400
    assert server.receive_calls == 0


@timeouts()
async def test_body_arriving_too_slowly_gets_408(limit: float) -> None:
    called: list[Request] = []

    async def handler(request: Request) -> Response:
        called.append(request)
        return text("x")

    scope = http_scope("POST", headers=[(b"content-length", b"10")])
    app = build_server(handler, body_timeout=limit)
    with FakeServer(chunk(b"abc", more=True)) as server, watchdog(limit):
        start = anyio.current_time()
        await serve(app, server, scope)
        elapsed = anyio.current_time() - start
    assert server.status == 408
    assert server.body == b"Request Timeout"
    assert (b"connection", b"close") in server.headers
    assert called == []
    assert_took_about(elapsed, limit)


@timeouts()
async def test_shallot2_name_max_receive_timeout_s_sets_the_body_timeout(limit: float) -> None:
    scope = http_scope("POST", headers=[(b"transfer-encoding", b"chunked")])
    app = build_server(reply(text("x")), max_receive_timeout_s=limit)
    with FakeServer() as server, watchdog(limit):
        start = anyio.current_time()
        await serve(app, server, scope)
        elapsed = anyio.current_time() - start
    assert server.status == 408
    assert_took_about(elapsed, limit)


async def test_body_sent_promptly_is_read_without_a_timeout_on_the_default_clock() -> None:
    app = build_server(reply(text("ok")), body_timeout=math.inf)
    scope = http_scope("POST", headers=[(b"content-length", b"2")])
    with FakeServer(chunk(b"o", more=True), chunk(b"k")) as server, watchdog():
        await serve(app, server, scope)
    assert server.status == 200


class StalledClient(FakeServer):
    """A client that stops reading after ``readable`` body messages: send() then blocks."""

    def __init__(self, readable: int, *messages: Message) -> None:
        super().__init__(*messages)
        self.readable = readable

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.body":
            if self.readable == 0:
                await anyio.sleep_forever()
            self.readable -= 1
        await super().send(message)


@timeouts()
async def test_response_timeout_bounds_a_send_to_a_client_that_stopped_reading(
    limit: float,
) -> None:
    events: list[str] = []

    async def endless() -> AsyncIterator[bytes]:
        try:
            while True:
                yield b"data"
        finally:
            events.append("finally")

    app = build_server(reply({"status": 200, "stream": endless()}), response_timeout=limit)
    with StalledClient(3, chunk(b"")) as server, watchdog(limit):
        start = anyio.current_time()
        await serve(app, server)
        elapsed = anyio.current_time() - start
    assert server.body == b"data" * 3
    assert not server.completed
    assert events == ["finally"]
    assert_took_about(elapsed, limit)


class StalledAt(FakeServer):
    """A client that stops reading before the app's message number ``index`` (0: the start):
    that send, and any after it, blocks."""

    def __init__(self, index: int, *messages: Message) -> None:
        super().__init__(*messages)
        self.index = index

    async def send(self, message: Message) -> None:
        if len(self.sent) >= self.index:
            await anyio.sleep_forever()
        await super().send(message)


async def _one_chunk() -> AsyncIterator[bytes]:
    yield b"only"


@timeouts()
@pytest.mark.parametrize(
    ("response", "method", "index"),
    [
        ({"status": 200, "stream": "one chunk"}, "GET", 0),  # a stream's start
        ({"status": 200, "stream": "one chunk"}, "GET", 2),  # a stream's final empty body
        ({"status": 200, "body": b"small"}, "HEAD", 0),  # a HEAD answer's start
        ({"status": 200, "body": b"x" * 100_000}, "GET", 0),  # a large body's start
        ({"status": 200, "body": b"small"}, "GET", 0),  # a small body's start
        ({"status": 200, "body": b"small"}, "GET", 1),  # a small body
    ],
    ids=["stream-start", "stream-end", "head-start", "large-start", "small-start", "small-body"],
)
async def test_response_timeout_bounds_every_send(
    limit: float, response: Response, method: str, index: int
) -> None:
    # issue 13: the start, a stream's final message and a small body were sent without a bound
    if response.get("stream") == "one chunk":
        response = {**response, "stream": _one_chunk()}
    app = build_server(reply(response), response_timeout=limit)
    with StalledAt(index, chunk(b"")) as server, watchdog(limit):
        start = anyio.current_time()
        await serve(app, server, http_scope(method))
        elapsed = anyio.current_time() - start
    assert len(server.sent) == index
    assert_took_about(elapsed, limit)


@timeouts()
async def test_shallot2_name_max_responde_timeout_s_sets_the_response_timeout(
    limit: float,
) -> None:
    big = b"x" * (1024 * 1024)  # too large for a socket buffer: its send is bounded
    app = build_server(reply({"status": 200, "body": big}), max_responde_timeout_s=limit)
    with StalledClient(0, chunk(b"")) as server, watchdog(limit):
        start = anyio.current_time()
        await serve(app, server)
        elapsed = anyio.current_time() - start
    assert server.status == 200
    assert server.body == b""
    assert_took_about(elapsed, limit)


@timeouts()
async def test_stream_outliving_the_response_timeout_completes_when_sends_are_prompt(
    limit: float,
) -> None:
    async def slow_but_steady() -> AsyncIterator[bytes]:
        for number in range(5):
            await anyio.sleep(limit * 0.4)  # five pauses: twice the limit in all
            yield str(number).encode()

    app = build_server(reply({"status": 200, "stream": slow_but_steady()}), response_timeout=limit)
    with FakeServer(chunk(b"")) as server, watchdog(limit):
        start = anyio.current_time()
        await serve(app, server)
        elapsed = anyio.current_time() - start
    assert server.body == b"01234"
    assert server.completed
    assert elapsed >= limit * 1.9
