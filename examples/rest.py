"""A small JSON REST service: a to-do list with routing, parameters, JSON bodies and cookies.

    GET    /todos          the items; ?done=true or ?done=false filters them
    POST   /todos          {"title": "..."} adds one: 201 and the new item
    GET    /todos/{id}     one item, or 404
    PATCH  /todos/{id}     {"title": "...", "done": true} changes it (either key may be left out)
    DELETE /todos/{id}     removes it: 204
    POST   /login          {"name": "..."} sets the "user" cookie; new items record it as author
    POST   /logout         deletes the cookie

The items live in a store that ``on_start`` creates and every handler finds in
``request["config"]``: no module-level state, so two apps built from this module do not share
anything. Run it with ``python examples/rest.py`` (``trio`` as argument for trio) or
``hypercorn examples.rest:app``, then, for example::

    curl -i -X POST localhost:8000/todos -H 'content-type: application/json' -d '{"title": "milk"}'
    curl -i 'localhost:8000/todos?done=false'
"""

from __future__ import annotations

import os
import re
import signal
import sys
from collections.abc import MutableMapping
from typing import Any

import anyio

from shallot import build_server, serve, standard_not_found
from shallot.middlewares import (
    apply_middleware,
    wrap_cookies,
    wrap_json,
    wrap_parameters,
    wrap_routes,
)
from shallot.response import json_response, respond400, respond404
from shallot.types import Request, Response, Route

#: An id as the path may carry one: str.isdigit() is no guard before int(), which refuses
#: "²" (a digit to isdigit) and numbers of more than 4300 digits.
_ID = re.compile(r"[0-9]{1,18}")


class Todos:
    """The to-do items of one app, by id."""

    def __init__(self) -> None:
        self.items: dict[int, dict[str, Any]] = {}
        self.last_id = 0

    def add(self, title: str, author: str | None) -> dict[str, Any]:
        self.last_id += 1
        item = {"id": self.last_id, "title": title, "done": False, "author": author}
        self.items[self.last_id] = item
        return item

    def find(self, todo_id: str) -> dict[str, Any] | None:
        """Returns the item with the id from the path (a str), or None."""
        return self.items.get(int(todo_id)) if _ID.fullmatch(todo_id) else None


async def on_start(scope: MutableMapping[str, Any]) -> dict[str, Any]:
    """Runs once at startup; what it returns is ``request["config"]`` from then on."""
    return {"todos": Todos()}


async def list_todos(request: Request) -> Response:
    todos: Todos = request["config"]["todos"]
    items = list(todos.items.values())
    done = request["params"].get("done")  # a list: ?done=true gives ["true"]
    if done:
        if done[-1] not in ("true", "false"):
            return respond400("done must be true or false")
        items = [item for item in items if item["done"] == (done[-1] == "true")]
    return json_response(items)


async def create_todo(request: Request) -> Response:
    body = request["json"]  # None unless the client sent JSON
    if not isinstance(body, dict) or not isinstance(body.get("title"), str):
        return respond400('send a JSON object with a "title" string')
    item = request["config"]["todos"].add(body["title"], request["cookies"].get("user"))
    return json_response(item, status=201, headers={"location": f"/todos/{item['id']}"})


async def show_todo(request: Request, todo_id: str) -> Response:
    item = request["config"]["todos"].find(todo_id)
    return json_response(item) if item is not None else respond404(f"no to-do {todo_id}")


async def change_todo(request: Request, todo_id: str) -> Response:
    item = request["config"]["todos"].find(todo_id)
    if item is None:
        return respond404(f"no to-do {todo_id}")
    changes = request["json"]
    if not isinstance(changes, dict):
        return respond400("send a JSON object")
    if not isinstance(changes.get("title", ""), str) or not isinstance(
        changes.get("done", False), bool
    ):
        return respond400('"title" must be a string and "done" true or false')
    item.update({key: changes[key] for key in ("title", "done") if key in changes})
    return json_response(item)


async def delete_todo(request: Request, todo_id: str) -> Response:
    todos: Todos = request["config"]["todos"]
    item = todos.find(todo_id)
    if item is None:
        return respond404(f"no to-do {todo_id}")
    del todos.items[item["id"]]
    return {"status": 204}


async def login(request: Request) -> Response:
    body = request["json"]
    if not isinstance(body, dict) or not isinstance(body.get("name"), str):
        return respond400('send a JSON object with a "name" string')
    cookie = {"value": body["name"], "httponly": True, "samesite": "Lax", "path": "/"}
    return {**json_response({"hello": body["name"]}), "cookies": {"user": cookie}}


async def logout(request: Request) -> Response:
    return {"status": 204, "cookies": {"user": None}}  # None deletes the cookie


routes: list[Route] = [
    ("/todos", ["GET"], list_todos),
    ("/todos", ["POST"], create_todo),
    ("/todos/{id}", ["GET"], show_todo),
    ("/todos/{id}", ["PATCH"], change_todo),
    ("/todos/{id}", ["DELETE"], delete_todo),
    ("/login", ["POST"], login),
    ("/logout", ["POST"], logout),
]

app = build_server(
    apply_middleware(
        wrap_cookies(),  # request["cookies"] in, the response's "cookies" out
        wrap_json(),  # request["json"]; malformed JSON gets 400 before any handler runs
        wrap_parameters(),  # request["params"] from the query string (and form bodies)
        wrap_routes(routes),  # last: picks the handler; unmatched requests get 404 or 405
    )(standard_not_found),
    on_start=on_start,
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
