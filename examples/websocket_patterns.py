"""Four websocket patterns in one app, each a route:

- ``/echo``: the echo of shallot's original websocket guide; ``exit`` ends it with 1000.
- ``/chatbot``: one-to-one. A conversation with state of its own (the client's name), kept in
  local variables of the handler, one handler run per connection.
- ``/vote``: fan-in. Many clients send votes; one counting task, started with the app, receives
  them all through one memory object stream. ``GET /tally`` answers the count so far.
- ``/results``: fan-out server push. Every client gets the tally when it connects and again
  whenever it changes. The handler never reads from its receiver: shallot still notices
  when the client leaves, and bounds what the client could make it buffer.

Nothing lives at module level: the stream, the tally and the ``Latest`` value that the
``/results`` handlers watch are made by ``lifespan`` for each app and reach handlers through
``request["config"]`` (``scope["config"]`` in a websocket handler, the same dict).

Run it with ``python examples/websocket_patterns.py`` (``trio`` as argument for trio) or
``hypercorn examples.websocket_patterns:app``, then talk to it with any websocket client, for
instance ``python -m websockets ws://127.0.0.1:8000/chatbot``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream

from shallot import Receiver, build_server, serve, standard_not_found, websocket, ws_close, ws_send
from shallot.middlewares import apply_middleware, wrap_routes
from shallot.response import json_response, text
from shallot.types import Request, Response, Route

# -- the seed's echo ------------------------------------------------------------------------


@websocket
async def echo(scope: Request, receiver: Receiver) -> AsyncIterator[Mapping[str, Any]]:
    async for message in receiver:
        if isinstance(message, str):  # a text frame
            yield {"text": f"@ECHO: {message}", "type": "websocket.send"}  # the raw form
        else:  # a binary frame: echoed as binary, never as "b'...'"
            yield ws_send(b"@ECHO: " + message)
        if message == "exit":
            yield ws_send("bybye")
            yield ws_close(1000)  # a normal end (1001 means going away); nothing after it


# -- one-to-one: a chatbot ------------------------------------------------------------------


def as_text(message: str | bytes) -> str:
    return message if isinstance(message, str) else message.decode("utf-8", "replace")


def answer(name: str, message: str) -> str:
    command, _, rest = message.strip().partition(" ")
    if command == "add":
        try:
            return str(sum(float(number) for number in rest.split()))
        except ValueError:
            return "add takes numbers: add 2 3.5"
    if command == "time":
        return datetime.now(timezone.utc).strftime("%H:%M:%S UTC")
    if command == "reverse":
        return rest[::-1]
    return f"Sorry {name}, I know add, time, reverse and bye."


@websocket
async def chatbot(scope: Request, receiver: Receiver) -> AsyncIterator[Mapping[str, Any]]:
    yield ws_send("Hello! I am shallot's bot. What is your name?")
    name = as_text(await receiver.receive()).strip() or "stranger"
    yield ws_send(f"Nice to meet you, {name}! Try: add 2 3, time, reverse some text, bye.")
    async for message in receiver:
        if as_text(message).strip() == "bye":
            yield ws_send(f"Bye, {name}!")
            yield ws_close(1000, "bye")
            return
        yield ws_send(answer(name, as_text(message)))


# -- fan-in: many voters, one counter ---------------------------------------------------------


@websocket
async def vote(scope: Request, receiver: Receiver) -> AsyncIterator[Mapping[str, Any]]:
    votes = scope["config"]["votes"]  # the send end of the counter's stream, shared by all
    async for choice in receiver:
        await votes.send(as_text(choice).strip())  # a busy counter slows voters down
        yield ws_send(f"received: {as_text(choice).strip()}")


async def count_votes(
    votes: MemoryObjectReceiveStream[str], tally: dict[str, int], latest: Latest
) -> None:
    """The one task that counts: each vote from every connection passes through here."""
    async for choice in votes:
        tally[choice] = tally.get(choice, 0) + 1
        latest.set(json.dumps(tally, sort_keys=True))


async def show_tally(request: Request) -> Response:
    return json_response(request["config"]["tally"])


# -- fan-out: push the tally to every watcher ------------------------------------------------


class Latest:
    """A value that changes, watched by many. A watcher slower than the changes skips the
    states it missed, never the newest one, so a slow client costs no memory here."""

    def __init__(self, value: str) -> None:
        self.value = value
        self.version = 0
        self._changed = anyio.Event()

    def set(self, value: str) -> None:
        self.value = value
        self.version += 1
        self._changed.set()
        self._changed = anyio.Event()

    async def newer_than(self, version: int) -> tuple[int, str]:
        """Waits until the value is newer than ``version``; returns its version and value."""
        while version == self.version:
            await self._changed.wait()
        return self.version, self.value


# The handler waits on the tally, not on the client: when the client leaves, shallot cancels
# that wait after disconnect_timeout (0.5 s by default), which a pure push handler can shorten.
@websocket(disconnect_timeout=0.1)
async def results(scope: Request, receiver: Receiver) -> AsyncIterator[Mapping[str, Any]]:
    latest: Latest = scope["config"]["latest"]
    seen = -1  # older than any version: the current tally goes out at once
    while True:  # ends when the client leaves: WSDisconnect at the yield, or a cancellation
        seen, tally = await latest.newer_than(seen)
        yield ws_send(tally)


# -- the app --------------------------------------------------------------------------------


async def index(request: Request) -> Response:
    return text("Websocket routes: /echo, /chatbot, /vote, /results. GET /tally for the count.\n")


@asynccontextmanager
async def lifespan() -> AsyncIterator[dict[str, Any]]:
    """Starts the counting task with the app and stops it with the app."""
    votes_in, votes_out = anyio.create_memory_object_stream[str](100)
    tally: dict[str, int] = {}
    latest = Latest("{}")
    with votes_in, votes_out:
        async with anyio.create_task_group() as tg:
            tg.start_soon(count_votes, votes_out, tally, latest)
            yield {"votes": votes_in, "tally": tally, "latest": latest}
            tg.cancel_scope.cancel()


routes: list[Route] = [
    ("/", ["GET"], index),
    ("/tally", ["GET"], show_tally),
    ("/echo", ["WS"], echo),
    ("/chatbot", ["WS"], chatbot),
    ("/vote", ["WS"], vote),
    ("/results", ["WS"], results),
]

app = build_server(apply_middleware(wrap_routes(routes))(standard_not_found), lifespan=lifespan)


async def interrupted() -> None:
    """Returns at the first Ctrl+C (SIGINT) or SIGTERM: serve's cue to shut down gracefully."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            return


async def main() -> None:
    await serve(app, port=int(os.environ.get("PORT", "8000")), shutdown_trigger=interrupted)


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
