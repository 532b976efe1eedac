"""HTTP against real hypercorn processes, with the asyncio and the trio worker (SPEC §3)."""

from __future__ import annotations

import gc
import uuid
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import cast

import anyio
import httpx
import pytest

from . import apps
from .server import HypercornServer, run_hypercorn

pytestmark = pytest.mark.slow  # real processes and sockets; still part of the default run


async def test_hello_text(client: httpx.AsyncClient) -> None:
    with anyio.fail_after(10):
        response = await client.get("/")
    assert response.status_code == 200
    assert response.text == "Hello from shallot!\n"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["content-length"] == str(len("Hello from shallot!\n"))


async def test_json_endpoint(client: httpx.AsyncClient) -> None:
    with anyio.fail_after(10):
        response = await client.post("/json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"hello": "world", "method": "POST"}


async def test_head_has_no_body_but_its_length(client: httpx.AsyncClient) -> None:
    with anyio.fail_after(10):
        response = await client.head("/")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == str(len("Hello from shallot!\n"))


async def test_request_body_arrives(client: httpx.AsyncClient) -> None:
    with anyio.fail_after(10):
        response = await client.post("/echo", content=b"x" * 100_000)
    assert response.text == "100000 bytes"


# httpx and httpcore leave their inner async generators unfinished when a response is closed
# early, and trio warns when such a generator is collected: their cleanup, not shallot's.
@pytest.mark.filterwarnings("ignore:Async generator 'httpcore.:ResourceWarning")
@pytest.mark.filterwarnings("ignore:Async generator 'httpx.:ResourceWarning")
async def test_abandoned_stream_is_closed_on_the_server(core_server: HypercornServer) -> None:
    stream_id = uuid.uuid4().hex
    async with httpx.AsyncClient(base_url=core_server.url, timeout=10) as client:
        with anyio.fail_after(10):
            async with client.stream("GET", f"/stream/{stream_id}") as response:
                assert response.status_code == 200
                assert "content-length" not in response.headers
                chunks = cast(AsyncGenerator[bytes, None], response.aiter_bytes())
                async with aclosing(chunks):
                    received = 0
                    async for data in chunks:
                        received += len(data)
                        if received > 10_000:
                            break  # halfway through a stream that never ends
                    state = await client.get(f"/stream-state/{stream_id}")
                    assert state.json() == {"state": "running"}
            # Leaving the blocks closed the connection: the server must stop the stream.
            closed = await client.get(f"/stream-closed/{stream_id}")
            assert closed.json() == {"state": "closed"}
    # Collect httpx's leftovers here, and let trio's generator finalizer (a system task) run
    # now, so that its warnings come under this test's filters rather than the next test's.
    gc.collect()
    await anyio.wait_all_tasks_blocked()


async def test_handler_error_is_500_logged_once_and_the_server_keeps_serving(
    worker_class: str,
) -> None:
    token = uuid.uuid4().hex
    async with run_hypercorn("tests.integration.apps:core_app", worker_class=worker_class) as s:
        async with httpx.AsyncClient(base_url=s.url, timeout=10) as client:
            with anyio.fail_after(10):
                failed = await client.get(f"/boom/{token}")
                assert failed.status_code == 500
                assert failed.text == "Internal Server Error"
                assert token not in failed.text
                after = await client.get("/")
                assert after.status_code == 200
                await s.wait_for_log(f"RuntimeError: boom {token}")
        with anyio.fail_after(15):
            assert await s.stop() == 0
    assert s.logs.count(f"boom {token}") == 1  # shallot logged it; hypercorn did not again
    assert s.logs.count("[shallot] ERROR handler core raised") == 1
    assert "Error in ASGI" not in s.logs


@pytest.mark.parametrize("http2", [False, True])
async def test_a_header_value_with_a_line_break_is_a_logged_500_never_a_split_header(
    core_server: HypercornServer, http2: bool
) -> None:
    # h11 would raise past shallot (hypercorn's own 500); h2 would send the header as it is
    token = uuid.uuid4().hex
    async with httpx.AsyncClient(
        base_url=core_server.url, http1=not http2, http2=http2, timeout=10
    ) as client:
        with anyio.fail_after(10):
            injected = await client.get(
                "/download", params={"name": f'x"\r\nset-cookie: admin={token}\r\nx: "'}
            )
            fine = await client.get("/download", params={"name": "report.txt"})
            await core_server.wait_for_log("GET /download: the handler core returned unusable")
    assert injected.status_code == 500
    assert "set-cookie" not in injected.headers
    assert "content-disposition" not in injected.headers
    assert fine.status_code == 200
    assert fine.headers["content-disposition"] == 'attachment; filename="report.txt"'
    assert "Error in ASGI" not in core_server.logs


async def test_body_too_slow_gets_408(limits_server: HypercornServer) -> None:
    # A raw socket, so the client can announce a body and then stall in the middle of it.
    with anyio.fail_after(10):
        async with await anyio.connect_tcp("127.0.0.1", limits_server.port) as stream:
            await stream.send(
                b"POST /echo HTTP/1.1\r\nhost: test\r\ncontent-length: 100\r\n\r\n" + b"x" * 10
            )
            started = anyio.current_time()
            await stream.send(b"x" * 10)  # a trickle, then nothing
            reply = b""
            try:
                while b"Request Timeout" not in reply:
                    reply += await stream.receive()
            except anyio.EndOfStream:
                pass
            elapsed = anyio.current_time() - started
    assert reply.startswith(b"HTTP/1.1 408 ")
    assert reply.endswith(b"Request Timeout")
    assert apps.BODY_TIMEOUT * 0.9 <= elapsed < apps.BODY_TIMEOUT + 5


async def _chunks(size: int) -> AsyncGenerator[bytes, None]:
    for _ in range(size // 16_384):
        yield b"x" * 16_384


@pytest.mark.parametrize(
    ("path", "announced", "status", "answer"),
    [
        ("/echo", True, 413, "Payload Too Large"),  # refused by its content-length
        ("/echo", False, 413, "Payload Too Large"),  # refused once too much has come
        ("/first", True, 200, "first chunk of"),  # answered with the body mostly unread
    ],
)
async def test_a_body_refused_or_left_unread_over_http2_is_answered_and_the_server_lives_on(
    limits_server: HypercornServer, path: str, announced: bool, status: int, answer: str
) -> None:
    # The client goes on sending the body after the answer unless the app reads it all
    # first: hypercorn 0.18 then fails on DATA for a stream it forgot, which ends the whole
    # trio worker (a KeyError in its h2 protocol) and drops the connection on asyncio.
    size = 40 * apps.MAX_BODY_SIZE
    content = b"x" * size if announced else _chunks(size)
    refused = await _post_over_http2_then_again(limits_server, path, content)
    assert (refused.status_code, refused.http_version) == (status, "HTTP/2")
    assert refused.text.startswith(answer)


async def _post_over_http2_then_again(
    server: HypercornServer, path: str, content: bytes | AsyncGenerator[bytes, None]
) -> httpx.Response:
    """Posts ``content`` to ``path`` over h2c and returns the answer, once the same connection
    and a new one have been answered after it, and the server logged no KeyError."""
    with anyio.fail_after(30):
        async with httpx.AsyncClient(
            base_url=server.url, http1=False, http2=True, timeout=10
        ) as client:
            answered = await client.post(path, content=content)
            again = await client.post("/echo", content=b"still here")
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            fresh = await client.post("/echo", content=b"new")
    assert (again.status_code, again.text) == (200, "10 bytes")
    assert (fresh.status_code, fresh.text) == (200, "3 bytes")
    assert "KeyError" not in server.logs
    return answered


async def _paced_chunks(count: int, size: int) -> AsyncGenerator[bytes, None]:
    # a slow upload: a chunk every fifth of the body timeout, so it never falls quiet
    for _ in range(count):
        yield b"x" * size
        await anyio.sleep(apps.BODY_TIMEOUT / 5)


@pytest.mark.parametrize(
    ("chunk", "status", "answer"),
    [
        (2 * apps.MAX_BODY_SIZE, 413, "Payload Too Large"),  # too big at once, still coming
        (apps.MAX_BODY_SIZE // 40, 408, "Request Timeout"),  # too slow, still coming
    ],
)
async def test_a_body_still_coming_long_after_its_refusal_over_http2_leaves_the_server_alive(
    limits_server: HypercornServer, chunk: int, status: int, answer: str
) -> None:
    # The client sends for several body timeouts after the refusal: the response's end waits
    # for the body's, since hypercorn 0.18 fails on DATA for a stream whose response ended.
    refused = await _post_over_http2_then_again(limits_server, "/echo", _paced_chunks(20, chunk))
    assert (refused.status_code, refused.http_version) == (status, "HTTP/2")
    assert refused.text.startswith(answer)


@pytest.mark.parametrize(
    ("path", "announced", "status", "answer"),
    [
        ("/echo", True, 413, "Payload Too Large"),  # refused by its content-length
        ("/echo", False, 413, "Payload Too Large"),  # refused once too much has come
        ("/first", False, 200, "first chunk of"),  # answered with the body mostly unread
    ],
)
async def test_a_client_that_writes_its_whole_body_before_reading_gets_the_answer(
    limits_server: HypercornServer, path: str, announced: bool, status: int, answer: str
) -> None:
    # httpx (like requests) reads the answer only once it has written the body: a server that
    # closed with megabytes of it unread would meet it with a reset, never the answer
    size = 8 * 1024 * 1024
    with anyio.fail_after(20):
        async with httpx.AsyncClient(base_url=limits_server.url, timeout=10) as client:
            content = b"x" * size if announced else _chunks(size)
            answered = await client.post(path, content=content)
    assert answered.status_code == status
    assert answered.text.startswith(answer)


@pytest.mark.parametrize("http2", [False, True])
async def test_a_response_stream_that_reads_the_request_body_gets_all_of_it(
    limits_server: HypercornServer, http2: bool
) -> None:
    # the response's disconnect watch took body messages from the stream that read them (a
    # truncated or failed response on trio), and the response's end waited for the body
    body = b"shallot " * 2500  # 20 KB, a few messages
    with anyio.fail_after(10):
        async with httpx.AsyncClient(
            base_url=limits_server.url, http1=not http2, http2=http2, timeout=10
        ) as client:
            answered = await client.post("/upper", content=body)
            again = await client.post("/echo", content=b"still here")
    assert answered.status_code == 200
    assert answered.content == body.upper()
    assert (again.status_code, again.text) == (200, "10 bytes")


async def test_oversized_body_gets_413(limits_server: HypercornServer) -> None:
    async with httpx.AsyncClient(base_url=limits_server.url, timeout=10) as client:
        with anyio.fail_after(10):
            refused = await client.post("/", content=b"x" * (apps.MAX_BODY_SIZE + 1))
            accepted = await client.post("/", content=b"x" * apps.MAX_BODY_SIZE)
    assert refused.status_code == 413
    assert refused.text == "Payload Too Large"
    assert accepted.status_code == 200
    assert accepted.text == f"{apps.MAX_BODY_SIZE} bytes"
