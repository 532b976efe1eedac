"""A live feed: sign in with a name kept in a session, post lines, watch everyone's lines arrive
as server-sent events.

- ``wrap_session`` keeps the name in a signed cookie; ``wrap_csrf`` refuses forms that other
  sites post with that cookie.
- ``/events`` is ``sse(...)`` over the broadcast hub: each line posted is published once and
  every open page gets it. A page that reconnects sends ``Last-Event-ID`` and gets the lines
  it missed from a short history first.
- The routes are named, and the forms answer with ``redirect(router.url_for("home"),
  status=303)``, so no path is written twice.

Run it with ``python examples/live_feed.py`` (``trio`` as argument for trio) or
``hypercorn examples.live_feed:app`` and open http://127.0.0.1:8000 in two windows. Set
``SESSION_KEY`` to keep sessions across restarts.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import secrets
import signal
import sys
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from html import escape
from typing import Any

import anyio

from shallot import build_server, serve, standard_not_found
from shallot.broadcast import Gap, open_hub
from shallot.middlewares import (
    Router,
    apply_middleware,
    wrap_csrf,
    wrap_parameters,
    wrap_routes,
    wrap_session,
)
from shallot.response import html, redirect, respond400, sse, text
from shallot.sse import last_event_id

Request = dict[str, Any]
Response = dict[str, Any]

#: How many lines a reconnecting page can catch up on.
HISTORY = 100
#: A line number as Last-Event-ID may carry one: str.isdigit() is no guard before int(),
#: which refuses "²" (a digit to isdigit) and numbers of more than 4300 digits.
_NUMBER = re.compile(r"[0-9]{1,18}")
MAX_LINE = 500

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>live feed</title></head>
<body>
  <p>Signed in as <b>{name}</b>.</p>
  <form method="post" action="{say}"><input name="text" autofocus> <button>Post</button></form>
  <form method="post" action="{logout}"><button>Sign out</button></form>
  <ul id="feed"></ul>
  <script>
    const feed = document.getElementById("feed");
    new EventSource("{events}").addEventListener("line", (event) => {{
      const line = JSON.parse(event.data);
      const item = document.createElement("li");
      item.textContent = `${{line.name}}: ${{line.text}}`;
      feed.prepend(item);
    }});
  </script>
</body></html>
"""

LOGIN = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>live feed</title></head>
<body>
  <form method="post" action="{login}">
    <label>Your name <input name="name" required maxlength="32"></label> <button>Sign in</button>
  </form>
</body></html>
"""


@asynccontextmanager
async def feed_lifespan() -> AsyncIterator[dict[str, Any]]:
    """The hub, the recent lines and the line numbers: one set per app, from startup on."""
    async with open_hub() as hub:
        yield {"hub": hub, "history": deque(maxlen=HISTORY), "numbers": itertools.count(1)}


def form_value(request: Request, name: str) -> str:
    value: str = (request["params"].get(name) or [""])[0]
    return value.strip()


async def home(request: Request) -> Response:
    name = request["session"].get("name")
    if name is None:
        return html(LOGIN.format(login=router.url_for("login")))
    paths = {key: router.url_for(key) for key in ("say", "logout", "events")}
    return html(PAGE.format(name=escape(name), **paths))


async def login(request: Request) -> Response:
    name = form_value(request, "name")[:32]
    if not name:
        return respond400("a name, please")
    return {**redirect(router.url_for("home"), status=303), "session": {"name": name}}


async def logout(request: Request) -> Response:
    return {**redirect(router.url_for("home"), status=303), "session": None}


async def say(request: Request) -> Response:
    """Publishes one line to every open page; answers the form with the page again."""
    name = request["session"].get("name")
    if name is None:
        return text("sign in first", status=403)
    line = form_value(request, "text")[:MAX_LINE]
    if line:
        config = request["config"]
        number = next(config["numbers"])
        message = json.dumps({"id": number, "name": name, "text": line})
        config["history"].append((number, message))
        await config["hub"].publish("feed", message)
    return redirect(router.url_for("home"), status=303)


async def events(request: Request) -> Response:
    """The feed as server-sent events, starting after ``Last-Event-ID`` when the page is
    reconnecting."""
    config = request["config"]
    after = last_event_id(request)
    seen = int(after) if after is not None and _NUMBER.fullmatch(after) else None

    # ASYNC119 below: sse() closes the events (aclose) when the response ends, which leaves the
    # subscription at once.
    async def lines() -> AsyncIterator[dict[str, Any]]:
        async with config["hub"].subscribe("feed") as feed:
            last = seen
            if seen is not None:  # subscribed first, so nothing falls between the two
                for number, message in list(config["history"]):
                    if number > seen:
                        last = number
                        yield {"event": "line", "id": str(number), "data": message}  # noqa: ASYNC119
            async for message in feed:
                if isinstance(message, Gap):
                    continue  # only with a broker: some lines may be missing
                number = json.loads(message)["id"]
                if last is None or number > last:
                    yield {"event": "line", "id": str(number), "data": message}  # noqa: ASYNC119

    return sse(lines(), keepalive=15)


router = Router(
    [
        ("/", ["GET"], home, "home"),
        ("/login", ["POST"], login, "login"),
        ("/logout", ["POST"], logout, "logout"),
        ("/say", ["POST"], say, "say"),
        ("/events", ["GET"], events, "events"),
    ]
)

app = build_server(
    apply_middleware(
        wrap_csrf(),
        wrap_session(os.environ.get("SESSION_KEY") or secrets.token_urlsafe(32)),
        wrap_parameters(),
        wrap_routes(router),
    )(standard_not_found),
    lifespan=feed_lifespan,
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
