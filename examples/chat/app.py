"""The chat demo: a static page and websocket rooms with nicknames, on shallot's broadcast hub.

Run it with ``python examples/chat/app.py`` (add ``trio`` to run on trio; ``$PORT`` for another
port than 8000; Ctrl+C stops it) or serve it with
``hypercorn --worker-class trio --bind 127.0.0.1:8000 examples.chat.app:app``, and open
http://127.0.0.1:8000 in two browser windows. In one process the hub is in memory; with
``SHALLOT_REDIS_URL`` set (``redis://127.0.0.1:6379``, say) it goes through Redis or Valkey and
the rooms span every worker and host: add ``--workers 4`` to the hypercorn command.

The page sends plain text; the server sends JSON events: ``welcome`` (with the id of the
process that serves the connection, for the multi-worker tests), ``joined`` (with a member id,
so that a member is not told of its own join twice), ``message``, ``left``, ``unrecovered``
(missed messages could not be recovered: the page starts its log afresh) and ``error``. A
nickname or room the server refuses closes the connection with 1008 and the reason, which a
browser can show: the body of a refused handshake never reaches a page's script.

Rooms keep a history (the last 500 events, for an hour): every event from the room carries its
position ``pos`` (``[epoch, offset]``), and a page whose connection dropped reconnects by itself
(with backoff) with ``?since=<epoch>:<offset>`` of the last event it showed, and gets what it
missed, once, in order. A page that reads too slowly is closed (1008 "too slow", or 1013 when
the room went on without it) and comes back the same way.

Each connection is present in its room under its nickname (``hub.presence``), so that a page
that reconnects is not announced again: ``joined`` only for a nickname's first connection to
the room, ``left`` only when none of its connections is there a moment after one closed
(``LEAVE_GRACE``: the page is back by then), and a page that comes back with ``since=`` is
announced only if the room was told it left.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import anyio

from shallot import Receiver, build_server, serve, standard_not_found, websocket, ws_close
from shallot.broadcast import BroadcastError, Gap, History, Hub, Position, Unrecovered, hub_lifespan
from shallot.middlewares import apply_middleware, wrap_parameters, wrap_routes, wrap_static
from shallot.response import ws_send, ws_send_json
from shallot.types import Request, Route, WSMessage

STATIC = Path(__file__).parent / "static"
_NAME = re.compile(r"[\w\- ]{1,32}")
_SINCE = re.compile(r"([0-9a-f]{1,64}):([0-9]{1,18})")
HISTORY = {"room:*": History(size=500, ttl=3600)}
MAX_TEXT = 2000

if not logging.getLogger("shallot").handlers:  # say what the hub does (reconnects, gaps)
    _handler = logging.StreamHandler()
    _handler.setFormatter(logging.Formatter("[chat %(process)d] %(levelname)s %(message)s"))
    logging.getLogger("shallot").addHandler(_handler)
    logging.getLogger("shallot").setLevel(logging.INFO)


def event(kind: str, **fields: Any) -> str:
    """Returns one JSON event for the room (the hub carries text)."""
    return json.dumps({"type": kind, **fields})


def with_position(message: str | bytes, position: Position | None) -> str:
    """Returns a room event with its position added (the page sends it back as ``since``)."""
    parsed = json.loads(message)
    if position is not None:
        parsed["pos"] = list(position)
    return json.dumps(parsed)


async def connections(hub: Hub, channel: str, nick: str) -> int:
    """Returns how many connections of ``nick`` are present in ``channel``, in every process.

    Raises:
        BrokerUnavailable: the broker cannot be reached.
    """
    return sum(1 for present in (await hub.presence(channel)).values() if present.member == nick)


#: How long a member whose connection closed has to come back before the room is told it
#: left: the page reconnects after 0.25 s (within on_close's bound: close_timeout and
#: disconnect_timeout, 1.5 s).
LEAVE_GRACE = 1.0


async def announce_leaving(scope: Request) -> None:
    """``on_close``: tell the room, if the handler got as far as joining it, and no connection
    of the member is present a moment later (its subscription, left by now, no longer counts;
    a page that reconnects is back by then)."""
    if "channel" in scope:
        hub: Hub = scope["config"]["hub"]
        await anyio.sleep(LEAVE_GRACE)
        with suppress(BroadcastError):
            if not await connections(hub, scope["channel"], scope["nick"]):
                await hub.publish(scope["channel"], event("left", nick=scope["nick"]))


def leaving_of(message: str | bytes, nick: str) -> bool:
    """Whether a room event says that ``nick`` left."""
    try:
        parsed = json.loads(message)
    except ValueError:
        return False
    return isinstance(parsed, dict) and parsed.get("type") == "left" and parsed.get("nick") == nick


@websocket(on_close=announce_leaving)
async def room(scope: Request, receiver: Receiver, name: str) -> AsyncIterator[WSMessage]:
    """One member of room ``name``: the room's events go to the page, what it types to the
    room. A bad nickname (``?nick=``) or room name closes with 1008 and says why: a browser
    sees a close reason, never the body of a refused handshake. ``?since=`` (a position the
    page saw last) asks for what the room said after it."""
    nick = (scope["query_params"].get("nick") or [""])[0].strip()
    if not _NAME.fullmatch(nick) or not _NAME.fullmatch(name):
        yield ws_close(1008, "nick and room: 1 to 32 letters, digits, spaces, - or _")
        return
    since = (scope["query_params"].get("since") or [""])[0]
    found = _SINCE.fullmatch(since)
    if since and found is None:
        yield ws_close(1008, "since: <epoch>:<offset>, as the events' pos gives")
        return
    position = Position(found[1], int(found[2])) if found else None
    hub: Hub = scope["config"]["hub"]
    channel = f"room:{name}"
    joined = event("joined", nick=nick, id=secrets.token_hex(8))
    # The yields below are inside the subscription, which flake8-async's ASYNC119 flags: a
    # subscription opens no cancel scope or task group, and shallot closes the handler with
    # aclosing(), so it is left as soon as the connection ends (docs/websockets.md).
    async with hub.subscribe(channel, since=position, member=nick) as messages:
        scope["nick"], scope["channel"] = nick, channel
        welcome = {
            "type": "welcome",
            "room": name,
            "nick": nick,
            "pid": os.getpid(),
            "pos": list(messages.position or ()),
        }
        yield ws_send_json(welcome)  # noqa: ASYNC119
        # A page that came back (since=) is announced only if the room was told it left.
        returning = position is not None
        with suppress(BroadcastError):
            if not returning and await connections(hub, channel, nick) == 1:
                await hub.publish(channel, joined)
        async for source, message in receiver.merge(messages):
            if message == joined:
                continue  # the welcome told this member already
            if source is receiver:
                if not isinstance(message, str):  # the page sends text; say so and leave
                    reason = "the chat takes text messages, not binary ones"
                    yield ws_close(1003, reason)  # noqa: ASYNC119
                    return
                text = message[:MAX_TEXT]
                try:
                    await hub.publish(channel, event("message", nick=nick, text=text))
                except BroadcastError as error:
                    problem = {"type": "error", "text": f"not sent: {error}"}
                    yield ws_send_json(problem)  # noqa: ASYNC119
            elif isinstance(message, Unrecovered):
                lost = {
                    "type": "unrecovered",
                    "reason": message.reason,
                    "pos": list(message.position),
                }
                yield ws_send_json(lost)  # noqa: ASYNC119
            elif isinstance(message, Gap) and message.position is not None:
                # the page read too slowly and events were dropped: it comes back with the
                # position of the last one it showed and gets them all (1013: try again)
                yield ws_close(1013, "fell behind the room: come back")  # noqa: ASYNC119
                return
            elif isinstance(message, Gap):  # rooms have history: only if that changes
                yield ws_send_json({"type": "gap", "reason": message.reason})  # noqa: ASYNC119
            elif isinstance(message, (str, bytes)):
                if returning and leaving_of(message, nick):  # it was told: back again
                    returning = False
                    with suppress(BroadcastError):
                        await hub.publish(channel, joined)
                yield ws_send(with_position(message, messages.position))  # noqa: ASYNC119


routes: list[Route] = [("/rooms/{name}", ["WS"], room)]

app = build_server(
    # wrap_static answers "/" with static/index.html
    apply_middleware(wrap_static(STATIC), wrap_parameters(), wrap_routes(routes))(
        standard_not_found
    ),
    lifespan=hub_lifespan(os.environ.get("SHALLOT_REDIS_URL") or None, history=HISTORY),
)


async def interrupted() -> None:
    """Returns at the first Ctrl+C (SIGINT) or SIGTERM: serve's cue to shut down gracefully."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            return


async def main() -> None:
    await serve(app, port=int(os.environ.get("PORT", "8000")), shutdown_trigger=interrupted)


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
