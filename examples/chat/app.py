"""The chat demo: a static page and websocket rooms with nicknames, on shallot's broadcast hub.

Serve it with ``hypercorn --worker-class trio --bind 127.0.0.1:8000 examples.chat.app:app`` and
open http://127.0.0.1:8000 in two browser windows. In one process the hub is in memory; with
``SHALLOT_REDIS_URL`` set (``redis://127.0.0.1:6379``, say) it goes through Redis or Valkey and
the rooms span every worker and host: add ``--workers 4``.

The page sends plain text; the server sends JSON events: ``welcome`` (with the id of the
process that serves the connection), ``joined``, ``message``, ``left``, ``unrecovered`` (missed
messages could not be recovered: the page starts its log afresh) and ``error``. Rooms keep a
history (the last 500 events, for an hour): every event from the room carries its position
``pos`` (``[epoch, offset]``), and a page whose connection dropped reconnects by itself (with
backoff) with ``?since=<epoch>:<offset>`` of the last event it showed, and gets what it missed,
once, in order (issue 17).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any

from shallot import (
    Receiver,
    build_server,
    standard_not_found,
    websocket,
    ws_accept,
    ws_send,
)
from shallot.broadcast import (
    BroadcastError,
    Gap,
    History,
    Hub,
    Position,
    Unrecovered,
    hub_lifespan,
)
from shallot.middlewares import apply_middleware, wrap_parameters, wrap_routes, wrap_static
from shallot.response import respond400

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
    """Returns one JSON event for the page."""
    return json.dumps({"type": kind, **fields})


async def check_nick(scope: dict[str, Any]) -> Mapping[str, object]:
    """``on_connect``: a connection needs a nickname (``?nick=``) and a sensible room name."""
    nick = (scope["query_params"].get("nick") or [""])[0].strip()
    room = scope["path"].rstrip("/").rpartition("/")[2]
    if not _NAME.fullmatch(nick) or not _NAME.fullmatch(room):
        return respond400("nick and room: 1 to 32 letters, digits, spaces, - or _")
    since = (scope["query_params"].get("since") or [""])[0]
    found = _SINCE.fullmatch(since)
    if since and found is None:
        return respond400("since: <epoch>:<offset>, as the events' pos gives")
    scope["nick"] = nick
    scope["since"] = Position(found[1], int(found[2])) if found else None
    return ws_accept()


def with_position(message: str | bytes, position: Position | None) -> str:
    """Returns a room event with its position added (the page sends it back as ``since``)."""
    parsed = json.loads(message)
    if position is not None:
        parsed["pos"] = list(position)
    return json.dumps(parsed)


async def announce_leaving(scope: dict[str, Any]) -> None:
    """``on_close``: tell the room, if the handler got as far as joining it."""
    if "channel" in scope:
        hub: Hub = scope["config"]["hub"]
        with suppress(BroadcastError):
            await hub.publish(scope["channel"], event("left", nick=scope["nick"]))


@websocket(on_connect=check_nick, on_close=announce_leaving)
async def room(scope: dict[str, Any], receiver: Receiver, name: str) -> AsyncIterator[Any]:
    """One member of room ``name``: the room's events go to the page, what it types to the
    room."""
    hub: Hub = scope["config"]["hub"]
    nick, channel = scope["nick"], f"room:{name}"
    async with hub.subscribe(channel, since=scope["since"]) as messages:
        scope["channel"] = channel
        position = list(messages.position or ())
        yield ws_send(event("welcome", room=name, nick=nick, pid=os.getpid(), pos=position))
        with suppress(BroadcastError):
            await hub.publish(channel, event("joined", nick=nick))
        async for source, message in receiver.merge(messages):
            if source is receiver:
                text = str(message)[:MAX_TEXT]
                try:
                    await hub.publish(channel, event("message", nick=nick, text=text))
                except BroadcastError as error:
                    yield ws_send(event("error", text=f"not sent: {error}"))
            elif isinstance(message, Unrecovered):
                pos = list(message.position)
                yield ws_send(event("unrecovered", reason=message.reason, pos=pos))
            elif isinstance(message, Gap):  # rooms have history: only if that changes
                yield ws_send(event("gap", reason=message.reason))
            elif isinstance(message, (str, bytes)):
                yield ws_send(with_position(message, messages.position))


routes = [("/rooms/{name}", ["WS"], room)]

app = build_server(
    # wrap_static answers "/" with static/index.html
    apply_middleware(wrap_static(STATIC), wrap_parameters(), wrap_routes(routes))(
        standard_not_found
    ),
    lifespan=hub_lifespan(os.environ.get("SHALLOT_REDIS_URL") or None, history=HISTORY),
)
