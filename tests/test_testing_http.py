"""``TestClient.stream``: a response read chunk by chunk as the app sends it, the way a
browser reads server-sent events (issue 16). The whole-response path is in test_testing.py."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import cast

import anyio
import httpx
import pytest

from shallot import build_server
from shallot.testing import TestClient
from shallot.types import Request, Response


async def test_each_chunk_arrives_before_the_app_sends_the_next() -> None:
    may_go_on = anyio.Event()

    async def events() -> AsyncIterator[bytes]:
        yield b"data: first\n\n"
        await may_go_on.wait()  # only a client that read the first event lets it go on
        for number in range(3):
            yield f"data: {number}\n\n".encode()

    async def handler(request: Request) -> Response:
        headers = {"content-type": "text/event-stream", "set-cookie": "seen=1; Path=/"}
        return {"status": 200, "headers": headers, "stream": events()}

    with anyio.fail_after(5):
        async with TestClient(build_server(handler)) as client:
            async with client.stream("GET", "/events") as response:
                assert response.status_code == 200
                assert response.headers["content-type"] == "text/event-stream"
                received = []
                async for line in response.aiter_lines():
                    if line == "data: first":
                        may_go_on.set()
                    if line:
                        received.append(line)
                assert received == ["data: first", "data: 0", "data: 1", "data: 2"]
            assert client.cookies["seen"] == "1"


async def test_leaving_the_block_ends_an_endless_stream() -> None:
    ended: list[str] = []

    async def endless() -> AsyncIterator[bytes]:
        try:
            while True:
                yield b"data: tick\n\n"
        finally:
            ended.append("stream closed")

    async def handler(request: Request) -> Response:
        return {
            "status": 200,
            "headers": {"content-type": "text/event-stream"},
            "stream": endless(),
        }

    with anyio.fail_after(5):
        async with TestClient(build_server(handler)) as client:
            async with client.stream("GET", "/events") as response:
                chunks = cast("AsyncGenerator[bytes, None]", response.aiter_raw())
                async with aclosing(chunks):
                    assert await chunks.__anext__() == b"data: tick\n\n"
            assert ended == ["stream closed"]


async def test_the_request_reaches_the_app_with_its_params_and_body() -> None:
    async def handler(request: Request) -> Response:
        seen = f"{request['method']} {request['query_string'].decode()} {request['body']!r}"
        return {"status": 201, "body": seen.encode()}

    with anyio.fail_after(5):
        async with TestClient(build_server(handler)) as client:
            async with client.stream("POST", "/", params={"a": "1"}, content=b"hi") as response:
                assert response.status_code == 201
                assert await response.aread() == b"POST a=1 b'hi'"


async def test_a_stream_cut_short_raises_while_reading() -> None:
    async def breaks() -> AsyncIterator[bytes]:
        yield b"partial"
        raise RuntimeError("boom")

    async def handler(request: Request) -> Response:
        return {"status": 200, "stream": breaks()}

    with anyio.fail_after(5):
        async with TestClient(build_server(handler)) as client:
            async with client.stream("GET", "/") as response:
                with pytest.raises(httpx.RemoteProtocolError):
                    await response.aread()
