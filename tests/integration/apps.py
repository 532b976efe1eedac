"""Apps the integration tests serve with hypercorn ("tests.integration.apps:<name>").

``core_app`` is what a new user writes from the README: text, JSON, a stream, server-sent
events, an error. Its endless streams report on ``/stream-state/<id>``, and
``/stream-closed/<id>`` answers once the stream's ``finally`` has run (events kept in the
lifespan config, not module state), which lets a test see, without polling, that an abandoned
stream was closed.
``limits_app`` has small limits, so that slow and oversized bodies can be tried quickly; its
``/first`` reads a streamed body's first chunk and answers, leaving the rest unread.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

import anyio

from shallot import apply_middleware, build_server, stream_body
from shallot._types import Request, Response, Scope
from shallot.middlewares import wrap_routes
from shallot.response import json, respond404, sse, text

#: The limits of ``limits_app``.
BODY_TIMEOUT = 0.5
MAX_BODY_SIZE = 1024

# shallot's log records go to stderr, where the harness collects them into ``server.logs``.
_handler = logging.StreamHandler()
_handler.setFormatter(logging.Formatter("[shallot] %(levelname)s %(message)s"))
logging.getLogger("shallot").addHandler(_handler)
logging.getLogger("shallot").setLevel(logging.INFO)


async def _start(scope: Scope) -> dict[str, Any]:
    return {"streams": {}}


def _closed_event(streams: dict[str, anyio.Event], stream_id: str) -> anyio.Event:
    """The event set when the stream ``stream_id`` has run its ``finally``."""
    return streams.setdefault(stream_id, anyio.Event())


async def _ticker(closed: anyio.Event) -> AsyncIterator[bytes]:
    try:
        number = 0
        while True:
            yield f"tick {number:06d}\n".encode() * 64  # 768 bytes
            number += 1
            await anyio.sleep(0.005)
    finally:
        closed.set()


async def _quiet_events(closed: anyio.Event) -> AsyncIterator[dict[str, str]]:
    try:
        yield {"event": "hello", "data": "first\nsecond", "id": "1"}
        await anyio.sleep_forever()
    finally:
        closed.set()


async def core(request: Request) -> Response:
    path: str = request["path"]
    streams: dict[str, anyio.Event] = request["config"]["streams"]
    if path == "/":
        return text("Hello from shallot!\n")
    if path == "/json":
        return json({"hello": "world", "method": request["method"]})
    if path.startswith("/stream/"):  # an endless stream
        closed = _closed_event(streams, path.removeprefix("/stream/"))
        return {"status": 200, "headers": {"content-type": "text/plain"}, "stream": _ticker(closed)}
    if path.startswith("/sse/"):  # one event, then quiet (keep-alives) until the client leaves
        closed = _closed_event(streams, path.removeprefix("/sse/"))
        return sse(_quiet_events(closed), keepalive=0.05)
    if path.startswith("/stream-state/"):  # "closed" once the stream's finally ran
        closed = _closed_event(streams, path.removeprefix("/stream-state/"))
        return json({"state": "closed" if closed.is_set() else "running"})
    if path.startswith("/stream-closed/"):  # answers when the stream's finally has run
        await _closed_event(streams, path.removeprefix("/stream-closed/")).wait()
        return json({"state": "closed"})
    if path.startswith("/boom/"):
        raise RuntimeError(f"boom {path.removeprefix('/boom/')}")
    if path == "/echo":
        return text(f"{len(request['body'])} bytes")
    if path == "/download":  # a header built from user input
        name = parse_qs(request["query_string"].decode()).get("name", ["report.txt"])[0]
        return text("data", headers={"content-disposition": f'attachment; filename="{name}"'})
    return respond404()


async def echo_length(request: Request) -> Response:
    return text(f"{len(request['body'])} bytes")


core_app = build_server(core, on_start=_start)


@stream_body(max_size=64 * MAX_BODY_SIZE)
async def first_chunk(request: Request) -> Response:
    """Answers once the first chunk of the body has come, leaving the rest unread."""
    async for chunk in request["body_stream"]:
        return text(f"first chunk of {len(chunk)} bytes")
    return text("no body")


@stream_body(max_size=64 * MAX_BODY_SIZE)
async def upper(request: Request) -> Response:
    """Answers with the body upper-cased, read as the response streams it."""

    async def chunks() -> AsyncIterator[bytes]:
        async for chunk in request["body_stream"]:
            yield chunk.upper()

    return {"status": 200, "headers": {"content-type": "text/plain"}, "stream": chunks()}


limits_app = build_server(
    apply_middleware(wrap_routes([("/first", ["POST"], first_chunk), ("/upper", ["POST"], upper)]))(
        echo_length
    ),
    body_timeout=BODY_TIMEOUT,
    max_body_size=MAX_BODY_SIZE,
)
