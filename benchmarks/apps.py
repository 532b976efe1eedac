"""The benchmark contenders: one ASGI app per (contender, scenario), same observable behaviour.

Contenders:

- ``raw``: hand-written ASGI, the floor. It does only what the scenario needs (its routing is
  a dict of static paths plus one prefix check) and no framework work at all.
- ``shallot``: the idiomatic shallot app: ``build_server(apply_middleware(wrap_routes(...))
  (standard_not_found))``, handlers returning ``text()``/``json()``, a ``@websocket`` async
  generator for the echo.
- ``starlette``: the idiomatic Starlette app: ``Starlette(routes=[Route(...), ...])`` with
  ``PlainTextResponse``/``JSONResponse`` and a ``WebSocketRoute`` endpoint.

Scenarios (what every contender answers):

- ``plain``: ``GET /`` -> 200 ``text/plain; charset=utf-8`` ``hello``; other paths 404.
- ``routing``: ``size`` routes, half static (``/static/<i>/page``, answering ``page``), half
  with a parameter (``/items/<i>/{id}``, answering JSON ``{"id": id}``), static ones first; the
  request (``routing_path(size)``) hits a parameter route near the end of the table.
- ``ws``: ``/ws`` is a websocket that echoes every text (and binary) message; ``ws_echo`` and
  ``ws_idle`` both use it (an idle connection is one whose handler sits in its read).

Each contender also answers ASGI lifespan, so servers start it without a warning.

Run ``.venv/bin/python benchmarks/apps.py`` to check every contender once, in process.
"""

from __future__ import annotations

import json as _json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

ASGIApp = Callable[
    [
        MutableMapping[str, Any],
        Callable[[], Awaitable[MutableMapping[str, Any]]],
        Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ],
    Awaitable[None],
]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

CONTENDERS = ("raw", "shallot", "starlette")
SCENARIOS = ("plain", "routing", "ws")
ROUTE_SIZES = (10, 100, 1_000)

PLAIN_PATH = "/"
WS_PATH = "/ws"
TEXT_TYPE = "text/plain; charset=utf-8"
JSON_TYPE = "application/json"
ITEM_ID = "42"


def routing_path(size: int) -> str:
    """Returns the request path of the routing scenario: a parameter route near the end."""
    return f"/items/{size - size // 2 - 2}/{ITEM_ID}"


def expected(scenario: str) -> tuple[int, str, bytes]:
    """Returns the (status, content-type, body) every contender must answer for ``scenario``."""
    if scenario == "plain":
        return 200, TEXT_TYPE, b"hello"
    if scenario == "routing":
        return 200, JSON_TYPE, _json_body({"id": ITEM_ID})
    raise ValueError(f"no HTTP answer for scenario {scenario!r}")


def _json_body(data: Any) -> bytes:
    # The encoding shallot's json() and Starlette's JSONResponse both use.
    return _json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def build(contender: str, scenario: str, size: int = 100) -> ASGIApp:
    """Returns the ASGI app of ``contender`` for ``scenario`` (``size`` routes for routing).

    Raises:
        ValueError: an unknown contender or scenario.
    """
    builders: dict[str, Callable[[str, int], ASGIApp]] = {
        "raw": _raw,
        "shallot": _shallot,
        "starlette": _starlette,
    }
    if contender == "literal" and scenario == "ws":  # ws_shape.py's contender, not e2e's
        from literal import app as literal_app

        return literal_app
    if contender not in builders:
        raise ValueError(f"unknown contender {contender!r}; one of {CONTENDERS}")
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; one of {SCENARIOS}")
    return builders[contender](scenario, size)


# -- raw ASGI: the floor ------------------------------------------------------------------------

_TEXT_HEADERS = [(b"content-type", TEXT_TYPE.encode())]
_JSON_HEADERS = [(b"content-type", JSON_TYPE.encode())]


async def _raw_lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _raw_respond(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _raw_not_found(send: Send) -> None:
    await _raw_respond(send, 404, _TEXT_HEADERS, b"Not Found")


async def _raw_echo(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "websocket.receive":
            text = message.get("text")
            if text is not None:
                await send({"type": "websocket.send", "text": text})
            else:
                await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})
        elif kind == "websocket.connect":
            await send({"type": "websocket.accept"})
        else:  # websocket.disconnect
            return


def _raw(scenario: str, size: int) -> ASGIApp:
    half = size // 2
    static = {f"/static/{i}/page" for i in range(half)}
    dynamic = {str(i) for i in range(size - half)}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            path = scope["path"]
            if scope["method"] not in ("GET", "HEAD"):
                await _raw_respond(send, 405, _TEXT_HEADERS, b"Method Not Allowed")
            elif scenario == "plain" and path == PLAIN_PATH:
                await _raw_respond(send, 200, _TEXT_HEADERS, b"hello")
            elif scenario == "routing" and path in static:
                await _raw_respond(send, 200, _TEXT_HEADERS, b"page")
            elif scenario == "routing" and path.startswith("/items/"):
                parts = path[7:].split("/")
                if len(parts) == 2 and parts[0] in dynamic and parts[1]:
                    await _raw_respond(send, 200, _JSON_HEADERS, _json_body({"id": parts[1]}))
                else:
                    await _raw_not_found(send)
            else:
                await _raw_not_found(send)
        elif kind == "websocket":
            if scenario == "ws" and scope["path"] == WS_PATH:
                await _raw_echo(receive, send)
            elif (await receive())["type"] == "websocket.connect":
                await send({"type": "websocket.close", "code": 1000})
        elif kind == "lifespan":
            await _raw_lifespan(receive, send)

    return app


# -- shallot --------------------------------------------------------------------------------------


def _shallot(scenario: str, size: int) -> ASGIApp:
    from shallot import apply_middleware, build_server, standard_not_found, websocket, ws_send
    from shallot.middlewares import wrap_routes
    from shallot.response import json, text

    async def hello(request: dict[str, Any]) -> dict[str, Any]:
        return text("hello")

    async def page(request: dict[str, Any]) -> dict[str, Any]:
        return text("page")

    async def item(request: dict[str, Any], item_id: str) -> dict[str, Any]:
        return json({"id": item_id})

    @websocket
    async def echo(request: dict[str, Any], receiver: Any) -> Any:
        async for message in receiver:
            yield ws_send(message)

    routes: list[tuple[str, list[str], Any]]
    if scenario == "plain":
        routes = [(PLAIN_PATH, ["GET"], hello)]
    elif scenario == "routing":
        half = size // 2
        routes = [(f"/static/{i}/page", ["GET"], page) for i in range(half)]
        routes += [(f"/items/{i}/{{id}}", ["GET"], item) for i in range(size - half)]
    else:
        routes = [(WS_PATH, ["WS"], echo)]
    app: ASGIApp = build_server(apply_middleware(wrap_routes(routes))(standard_not_found))
    return app


# -- Starlette ------------------------------------------------------------------------------------


def _starlette(scenario: str, size: int) -> ASGIApp:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, Response
    from starlette.routing import BaseRoute, Route, WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect

    async def hello(request: Request) -> Response:
        return PlainTextResponse("hello")

    async def page(request: Request) -> Response:
        return PlainTextResponse("page")

    async def item(request: Request) -> Response:
        return JSONResponse({"id": request.path_params["id"]})

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                if message.get("text") is not None:
                    await websocket.send_text(message["text"])
                else:
                    await websocket.send_bytes(message.get("bytes") or b"")
        except WebSocketDisconnect:
            pass

    routes: list[BaseRoute]
    if scenario == "plain":
        routes = [Route(PLAIN_PATH, hello)]
    elif scenario == "routing":
        half = size // 2
        routes = [Route(f"/static/{i}/page", page) for i in range(half)]
        routes += [Route(f"/items/{i}/{{id}}", item) for i in range(size - half)]
    else:
        routes = [WebSocketRoute(WS_PATH, echo)]
    return Starlette(routes=routes)


# -- a quick self-check -------------------------------------------------------------------------


def http_scope(path: str, method: str = "GET") -> dict[str, Any]:
    """Returns an HTTP scope as hypercorn builds it for a small GET from a load generator."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"bench"), (b"accept", b"*/*")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "extensions": {},
    }


async def empty_body() -> MutableMapping[str, Any]:
    """A ``receive`` for timing loops: the empty body of a GET, at once."""
    return {"type": "http.request", "body": b"", "more_body": False}


def declare_plain_sender(owner: type) -> None:
    """Declares to shallot that the ``send`` of ``owner`` opens no cancel scope (see ``Sink``)."""
    try:
        from shallot import _sending
    except ImportError:  # a shallot from before it (a before/after run)
        return
    known = getattr(_sending, "PLAIN_SENDERS", None)
    if known is not None:
        known.add(f"{owner.__module__}.{owner.__qualname__}")


class Sink:
    """Stands in for a server in timing loops: its ``send`` drops what the app sends.

    Like hypercorn's and uvicorn's sends, it opens no cancel scope, so it is declared to
    shallot as a server's own (``shallot._sending.PLAIN_SENDERS``): shallot then takes the path
    it takes under those servers, and bounds a send by the response timeout only once it waits.
    """

    async def send(self, message: MutableMapping[str, Any]) -> None:
        """Drops ``message``."""


drop = Sink().send
declare_plain_sender(Sink)


def ws_scope(path: str = WS_PATH) -> dict[str, Any]:
    """Returns a websocket scope as hypercorn builds it."""
    return {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "scheme": "ws",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"upgrade", b"websocket")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "subprotocols": [],
        "extensions": {"websocket.http.response": {}},
    }


async def call_http(app: ASGIApp, path: str, method: str = "GET") -> tuple[int, str, bytes]:
    """Returns (status, content-type, body) of one in-process request."""
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await app(http_scope(path, method), receive, send)
    start, *bodies = sent
    if start["type"] != "http.response.start" or bodies[-1].get("more_body", False):
        raise AssertionError(f"not a complete response: {sent!r}")
    headers = {bytes(k).lower(): bytes(v) for k, v in start["headers"]}
    body = b"".join(message.get("body", b"") for message in bodies)
    if headers.get(b"content-length") != str(len(body)).encode():
        raise AssertionError(f"content-length {headers.get(b'content-length')!r} for {body!r}")
    return start["status"], headers.get(b"content-type", b"").decode(), body


def main() -> None:
    import anyio

    async def check() -> None:
        for contender in CONTENDERS:
            for scenario, path in (("plain", PLAIN_PATH), ("routing", routing_path(100))):
                got = await call_http(build(contender, scenario, 100), path)
                assert got == expected(scenario), (contender, scenario, got)
                missing = await call_http(build(contender, scenario, 100), "/nothing/here")
                assert missing[0] == 404, (contender, scenario, missing)
            print(f"{contender}: ok")

    for backend in ("asyncio", "trio"):
        anyio.run(check, backend=backend)


if __name__ == "__main__":
    main()
