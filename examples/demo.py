"""A small demo for the browser: a page that talks to a websocket echo, and a JSON endpoint.

- ``/``: the page; what you type is echoed back over the websocket (``exit`` closes it).
- ``/hello/{name}``: JSON with the name and the query parameters (``/hello/ada?x=1``).
- ``/echo``: the websocket echo; text comes back as text, binary as binary.

Run it with ``python examples/demo.py`` (add ``trio`` to run on trio; ``$PORT`` for another
port than 8000; Ctrl+C stops it) or ``hypercorn --worker-class trio examples.demo:app``, and
open http://127.0.0.1:8000.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import AsyncIterator

import anyio

from shallot import Receiver, build_server, serve, standard_not_found, websocket, ws_close, ws_send
from shallot.middlewares import apply_middleware, wrap_json, wrap_parameters, wrap_routes
from shallot.response import json_response, text
from shallot.types import Request, Response, Route, WSMessage

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>shallot demo</title>
<h1>shallot</h1>
<p>Type a message; the server echoes it back over a websocket ("exit" closes it).</p>
<form id="form"><input id="message" autocomplete="off" autofocus><button>send</button></form>
<ul id="log"></ul>
<script>
const log = (text) => {
  const item = document.createElement("li");
  item.textContent = text;
  document.getElementById("log").append(item);
};
const socket = new WebSocket(`ws://${location.host}/echo`);
socket.onmessage = (event) => log(event.data);
socket.onclose = (event) => log(`closed with ${event.code}`);
document.getElementById("form").onsubmit = (event) => {
  event.preventDefault();
  const input = document.getElementById("message");
  socket.send(input.value);
  input.value = "";
};
</script>
"""


async def index(request: Request) -> Response:
    return text(PAGE, headers={"content-type": "text/html; charset=utf-8"})


async def hello(request: Request, name: str) -> Response:
    return json_response({"hello": name, "params": request["params"]})


@websocket
async def echo(scope: Request, receiver: Receiver) -> AsyncIterator[WSMessage]:
    async for message in receiver:
        if isinstance(message, str):  # a text frame
            yield ws_send(f"@ECHO: {message}")
        else:  # a binary frame: answer in kind, never with "b'...'"
            yield ws_send(b"@ECHO: " + message)
        if message == "exit":
            yield ws_close(1000, "bye")


routes: list[Route] = [
    ("/", ["GET"], index),
    ("/hello/{name}", ["GET"], hello),
    ("/echo", ["WS"], echo),
]

app = build_server(
    apply_middleware(wrap_parameters(), wrap_json(), wrap_routes(routes))(standard_not_found)
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
