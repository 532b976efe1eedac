"""The websocket app the integration tests serve with hypercorn (``ws_apps:ws_app``).

Websocket routes (``wrap_routes``, method ``"WS"``), each a small piece of SPEC §4:

- ``/echo`` echoes text and bytes as they came; ``/rooms/{room}`` prefixes them with ``room``;
- ``/close/{how}`` reads one message, then closes with ``ws_close(4001, "bye now")``
  (``code``), ends (``end``) or raises ``RuntimeError("ws boom <message>")`` (``raise``);
- ``/subprotocol`` picks ``"chat"`` when offered and adds an ``x-shallot`` accept header;
  ``/reject`` refuses with ``ws_close()`` (403); ``/deny`` answers 401 with a body;
- ``/hooks/{id}`` echoes, ``/ticker/{id}`` only pushes a tick every 50 ms, ``/sink/{id}`` says
  "ready" and then neither reads nor sends, ``/slow/{count}`` reads ``count`` messages one per
  20 ms (after one pause of 250 ms) and answers how many came and whether in order;
- ``/flood/{id}`` pushes without awaiting anything, ``/merged/{id}`` pushes a feed merged
  with the receiver (``send_timeout`` 0.5 s), ``/arity/{id}`` takes no route parameter
  (routed in a pile, which the build-time check of the routes does not read);
- the limits of issue 14, each an echo: ``/idle/{id}`` (``idle_timeout`` 1 s),
  ``/seats/{id}`` (``max_connections`` 2), ``/rated/{id}`` (``max_rate`` 5, ``max_burst`` 3),
  and ``/json/{id}``, a ``json=True`` echo (issue 16).

What happens to a connection with an ``{id}`` is recorded under that id: how the handler saw
the client leave (``disconnect <code>``), its ``finally``, the hooks. The records live in the
lifespan config (no module state), and ``GET /events/{id}/{event}`` answers them as JSON once
``event`` is recorded (``GET /events/{id}`` at once), so a test waits for the app without
polling. Each record is also logged, which is how a test sees ``on_close`` at shutdown, when
nobody answers HTTP any more. ``GET /pid`` answers the id of the process that serves.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.lowlevel

from shallot import (
    Receiver,
    WSDisconnect,
    apply_middleware,
    build_server,
    standard_not_found,
    websocket,
    ws_accept,
    ws_close,
    ws_send,
    ws_send_json,
)
from shallot._types import Request, Response, Scope
from shallot.middlewares import wrap_routes
from shallot.response import json

#: How long ``GET /events/{id}/{event}`` waits for the event before answering what it has.
EVENT_WAIT = 10.0
#: How often ``/ticker`` ticks, and how long ``/slow`` takes per message.
TICK = 0.05
SLOW_READ = 0.02
#: ``/slow``'s one long pause, after its first message: over the default watch interval.
PAUSE = 0.25
#: ``/merged``'s send_timeout: how long a send to a client that reads nothing may take.
STALL_TIMEOUT = 0.5
#: The limits of ``/idle``, ``/seats`` and ``/rated`` (issue 14).
IDLE_TIMEOUT = 1.0
SEATS = 2
RATE, BURST = 5, 3

# Records go to stderr, where the harness collects them into ``server.logs``; shallot's own
# records (a failing handler) too. ``apps`` may have set this up already in the same process.
logger = logging.getLogger("shallot.integration")
if not logging.getLogger("shallot").handlers:
    _handler = logging.StreamHandler()
    _handler.setFormatter(logging.Formatter("[shallot] %(levelname)s %(message)s"))
    logging.getLogger("shallot").addHandler(_handler)
    logging.getLogger("shallot").setLevel(logging.INFO)


class Record:
    """What happened to one connection, and an event that fires on each change."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self._changed = anyio.Event()

    def add(self, connection_id: str, event: str) -> None:
        self.events.append(event)
        logger.info("ws %s %s", connection_id, event)
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_for(self, event: str) -> None:
        while event not in self.events:
            await self._changed.wait()


async def _start(scope: Scope) -> dict[str, Any]:
    return {"records": {}}


async def _stop(scope: Scope) -> None:
    logger.info("lifespan shutdown")  # shows whether open websockets ended before it


def _record(scope: Request, connection_id: str) -> Record:
    records: dict[str, Record] = scope["config"]["records"]
    return records.setdefault(connection_id, Record())


def _add(scope: Request, event: str) -> None:
    """Records ``event`` for the connection whose id is the last segment of its path."""
    connection_id = scope["path"].rstrip("/").rsplit("/", 1)[-1]
    _record(scope, connection_id).add(connection_id, event)


async def _on_disconnect(scope: Request) -> None:
    _add(scope, "on_disconnect")


async def _on_close(scope: Request) -> None:
    _add(scope, "on_close")


# -- HTTP side channel ---------------------------------------------------------------------


async def pid(request: Request) -> Response:
    return json({"pid": os.getpid()})


async def events_now(request: Request, connection_id: str) -> Response:
    return json(_record(request, connection_id).events)


async def events_once(request: Request, connection_id: str, event: str) -> Response:
    record = _record(request, connection_id)
    with anyio.move_on_after(EVENT_WAIT):  # bounded: the test sees what there was
        await record.wait_for(event)
    return json(record.events)


# -- websocket routes ------------------------------------------------------------------------


@websocket
async def echo(scope: Request, receiver: Receiver) -> AsyncIterator[Any]:
    async for message in receiver:
        yield ws_send(message)


@websocket
async def room(scope: Request, receiver: Receiver, name: str) -> AsyncIterator[Any]:
    async for message in receiver:
        yield ws_send(f"{name}: {message}" if isinstance(message, str) else message)


@websocket
async def closer(scope: Request, receiver: Receiver, how: str) -> AsyncIterator[Any]:
    message = await receiver.receive()
    if how == "code":
        yield ws_close(4001, "bye now")
    elif how == "raise":
        raise RuntimeError(f"ws boom {message!s}")
    # "end": the generator just ends


async def choose_chat(scope: Request) -> Any:
    subprotocol = "chat" if "chat" in scope["subprotocols"] else None
    return ws_accept(subprotocol, headers={"x-shallot": "accepted"})


@websocket(on_connect=choose_chat)
async def with_subprotocol(scope: Request, receiver: Receiver) -> AsyncIterator[Any]:
    async for message in receiver:
        yield ws_send(message)


async def refuse(scope: Request) -> Any:
    return ws_close()


@websocket(on_connect=refuse)
async def rejected(scope: Request, receiver: Receiver) -> AsyncIterator[Any]:
    yield ws_send("unreachable")  # pragma: no cover


async def unauthorized(scope: Request) -> Any:
    return {
        "status": 401,
        "headers": {"www-authenticate": 'Bearer realm="shallot"'},
        "body": b"who are you?",
    }


@websocket(on_connect=unauthorized)
async def denied(scope: Request, receiver: Receiver) -> AsyncIterator[Any]:
    yield ws_send("unreachable")  # pragma: no cover


@websocket(on_disconnect=_on_disconnect, on_close=_on_close)
async def hooks(scope: Request, receiver: Receiver, connection_id: str) -> AsyncIterator[Any]:
    try:
        async for message in receiver:
            yield ws_send(message)
    except WSDisconnect as disconnect:
        _add(scope, f"disconnect {disconnect.code}")
        raise
    finally:
        _add(scope, "finally")


@websocket(on_disconnect=_on_disconnect, on_close=_on_close)
async def ticker(scope: Request, receiver: Receiver, connection_id: str) -> AsyncIterator[Any]:
    number = 0
    try:
        while True:  # never reads
            yield ws_send(f"tick {number}")
            number += 1
            await anyio.sleep(TICK)
    finally:
        _add(scope, "finally")


@websocket(on_disconnect=_on_disconnect, on_close=_on_close)
async def sink(scope: Request, receiver: Receiver, connection_id: str) -> AsyncIterator[Any]:
    try:
        yield ws_send("ready")
        await anyio.sleep_forever()  # neither reads nor sends
    finally:
        _add(scope, f"dropped {receiver.dropped}")
        _add(scope, "finally")


@websocket
async def slow(scope: Request, receiver: Receiver, count: str) -> AsyncIterator[Any]:
    got: list[str | bytes] = [await receiver.receive()]
    # Away from the receiver longer than the watch interval once, so that shallot reads on
    # its behalf into the bounded queue until it is full; then directly again, slowly.
    await anyio.sleep(PAUSE)
    while len(got) < int(count):
        got.append(await receiver.receive())
        await anyio.sleep(SLOW_READ)
    in_order = got == [str(number) for number in range(int(count))]
    yield ws_send(f"{len(got)} {'in order' if in_order else 'out of order'}")


@websocket(on_disconnect=_on_disconnect, on_close=_on_close)
async def flood(scope: Request, receiver: Receiver, connection_id: str) -> AsyncIterator[Any]:
    """Pushes as fast as it can, awaiting nothing but its yields (issue 12, bug 1)."""
    number = 0
    try:
        while True:
            yield ws_send(f"flood {number}")
            number += 1
    finally:
        _add(scope, "finally")


async def _forever(block: bytes) -> AsyncIterator[bytes]:
    while True:
        yield block
        await anyio.lowlevel.checkpoint()


@websocket(
    on_disconnect=_on_disconnect,
    on_close=_on_close,
    send_timeout=STALL_TIMEOUT,
    watch_interval=0.05,
)
async def merged_push(scope: Request, receiver: Receiver, connection_id: str) -> AsyncIterator[Any]:
    """The chat room's loop: what the client sends and a feed, merged; the feed is pushed
    to the client (issue 12, bug 2)."""
    try:
        async for source, item in receiver.merge(_forever(b"x" * 65536)):
            if source is not receiver:
                yield {"type": "websocket.send", "bytes": item}
    finally:
        _add(scope, "finally")


@websocket(on_close=_on_close)
async def wrong_arity(scope: Request, receiver: Receiver) -> AsyncIterator[Any]:
    """Routed with a parameter it does not take (issue 12, bug 3)."""
    yield ws_send("unreachable")  # pragma: no cover


def _limited_echo(**options: Any) -> Any:
    """An echo (of JSON values as JSON with ``json=True``) with ``options``, recording how the
    client left and its ``finally``."""

    @websocket(on_close=_on_close, **options)
    async def echo(scope: Request, receiver: Receiver, connection_id: str) -> AsyncIterator[Any]:
        try:
            async for message in receiver:
                yield ws_send_json(message) if options.get("json") else ws_send(message)
        except WSDisconnect as disconnect:
            _add(scope, f"disconnect {disconnect.code} {disconnect.reason}".rstrip())
            raise
        finally:
            _add(scope, "finally")

    return echo


idle = _limited_echo(idle_timeout=IDLE_TIMEOUT)
seats = _limited_echo(max_connections=SEATS)
rated = _limited_echo(max_rate=RATE, max_burst=BURST)
json_echo = _limited_echo(json=True)


ROUTES: list[tuple[str, list[str], Any]] = [
    ("/pid", ["GET"], pid),
    ("/events/{id}", ["GET"], events_now),
    ("/events/{id}/{event}", ["GET"], events_once),
    ("/echo", ["WS"], echo),
    ("/rooms/{room}", ["WS"], room),
    ("/close/{how}", ["WS"], closer),
    ("/subprotocol", ["WS"], with_subprotocol),
    ("/reject", ["WS"], rejected),
    ("/deny", ["WS"], denied),
    ("/hooks/{id}", ["WS"], hooks),
    ("/ticker/{id}", ["WS"], ticker),
    ("/sink/{id}", ["WS"], sink),
    ("/slow/{count}", ["WS"], slow),
    ("/flood/{id}", ["WS"], flood),
    ("/merged/{id}", ["WS"], merged_push),
    # in a pile, which passes the route's argument on unread: routed bare, wrong_arity is
    # refused when the routes are built
    ("/arity/{id}", ["WS"], apply_middleware()(wrong_arity)),
    ("/idle/{id}", ["WS"], idle),
    ("/seats/{id}", ["WS"], seats),
    ("/rated/{id}", ["WS"], rated),
    ("/json/{id}", ["WS"], json_echo),
]

ws_app = build_server(
    apply_middleware(wrap_routes(ROUTES))(standard_not_found), on_start=_start, on_stop=_stop
)
