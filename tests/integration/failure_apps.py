"""Apps whose handlers go wrong, served by hypercorn for ``test_failures_over_hypercorn``
("tests.integration.failure_apps:<name>"), issue 13.

``failing_app`` is a routed pile, as a user builds it, with handlers that raise, return a
helper uncalled, or stream. ``slow_reader_app`` has a short response timeout and answers with
large headers and an empty stream, so that every send of its responses is a start or a final
message, the sends a client that stopped reading used to hold for good.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from shallot import apply_middleware, build_server, standard_not_found, websocket
from shallot._types import Request, Response
from shallot.middlewares import wrap_cors, wrap_routes
from shallot.response import respond404, text, ws_send

from . import apps  # noqa: F401 - its logging setup: shallot's records go to stderr

#: The response timeout of ``slow_reader_app``.
RESPONSE_TIMEOUT = 1.0
#: The size of ``slow_reader_app``'s ``/sized`` body: under 64 KiB, sent at once.
SIZED = 60_000
#: The size of the padding header of ``slow_reader_app``'s responses.
PAD = 60_000


async def explode(request: Request, token: str) -> Response:
    raise RuntimeError(f"boom {token}")


async def uncalled(request: Request) -> Any:
    return respond404  # the mistake of issue 13: the helper, not its response


async def count(request: Request, number: str) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        for index in range(int(number)):
            yield f"chunk {index}\n".encode()

    return {"status": 200, "headers": {"content-type": "text/plain"}, "stream": chunks()}


async def broken_stream(request: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        raise RuntimeError("the stream failed at once")
        yield b""  # pragma: no cover - makes this an async generator

    return {"status": 200, "stream": chunks()}


@websocket
async def echo(scope: dict[str, Any], receiver: Any) -> AsyncIterator[Any]:
    async for message in receiver:
        yield {"type": "websocket.send", "text": message}


#: Raw accept messages an ``on_connect`` hook returns: str header pairs (the raw form's are
#: bytes; shallot encodes them, as ``ws_accept`` does), and a value that would split in two.
RAW_ACCEPTS: dict[str, Any] = {
    "str-headers": {"type": "websocket.accept", "headers": [("X-A", "1")]},
    "crlf": {"type": "websocket.accept", "headers": [(b"x-a", b"1\r\nx-injected: 1")]},
    # the server writes it from "subprotocol"; given here, hypercorn's trio worker died of it
    "own-header": {"type": "websocket.accept", "headers": [(b"sec-websocket-protocol", b"x")]},
}


async def raw_accept(request: Request) -> Any:
    return RAW_ACCEPTS[request["path"].rsplit("/", 1)[1]]


@websocket(on_connect=raw_accept)
async def raw_accepted(scope: Request, receiver: Any, kind: str) -> AsyncIterator[Any]:
    yield ws_send(kind)


failing_app = build_server(
    apply_middleware(
        wrap_cors(["http://example.org"]),
        wrap_routes(
            [
                ("/boom/{token}", ["GET"], explode),
                ("/uncalled", ["GET", "WS"], uncalled),
                ("/count/{number}", ["GET"], count),
                ("/broken-stream", ["GET"], broken_stream),
                ("/echo", ["WS"], echo),
                ("/raw-accept/{kind}", ["WS"], raw_accepted),
            ]
        ),
    )(standard_not_found)
)


async def padded(request: Request) -> Response:
    async def nothing() -> AsyncIterator[bytes]:
        return
        yield b""  # pragma: no cover - makes this an async generator

    if request["path"] == "/text":
        return text("small")
    if request["path"] == "/sized":
        return text("x" * SIZED)
    return {"status": 200, "headers": {"x-pad": "p" * PAD}, "stream": nothing()}


slow_reader_app = build_server(padded, response_timeout=RESPONSE_TIMEOUT)
