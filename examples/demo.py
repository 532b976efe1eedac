"""The demo app README's first command serves: a page, a JSON endpoint and a websocket echo.

Run it with ``hypercorn --worker-class trio examples.demo:app`` and open http://127.0.0.1:8000.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from shallot import Receiver, build_server, standard_not_found, websocket, ws_close, ws_send
from shallot.middlewares import apply_middleware, wrap_json, wrap_parameters, wrap_routes
from shallot.response import json, text

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


async def index(request: dict[str, Any]) -> dict[str, Any]:
    return text(PAGE, headers={"content-type": "text/html; charset=utf-8"})


async def hello(request: dict[str, Any], name: str) -> dict[str, Any]:
    return json({"hello": name, "params": request["params"]})


@websocket
async def echo(scope: dict[str, Any], receiver: Receiver) -> AsyncIterator[dict[str, Any]]:
    async for message in receiver:
        yield ws_send(f"@ECHO: {message}")
        if message == "exit":
            yield ws_close(1000, "bye")


routes = [
    ("/", ["GET"], index),
    ("/hello/{name}", ["GET"], hello),
    ("/echo", ["WS"], echo),
]

app = build_server(
    apply_middleware(wrap_parameters(), wrap_json(), wrap_routes(routes))(standard_not_found)
)
