"""Reverse routing: named routes and Router.url_for (issue 15)."""

from __future__ import annotations

from typing import Any

import pytest

from shallot import build_server, standard_not_found
from shallot._types import Request, Response
from shallot.middlewares import apply_middleware, wrap_routes
from shallot.middlewares.routing import Router
from shallot.response import redirect, text
from shallot.testing import TestClient


async def show(request: Request, *args: str) -> Response:
    return text(" ".join(args))


def test_url_for_fills_parameters_and_three_member_entries_keep_working() -> None:
    router = Router(
        [
            ("/", ["GET"], show, "home"),
            ("/todos", ["GET"], show),  # unnamed, as every table before names
            ("/todos/{todo}/", ["GET"], show, "todo"),
            ("/users/{user}/files/{name}", ["GET", "PUT"], show, "file"),
        ]
    )
    assert router.url_for("home") == "/"
    assert router.url_for("todo", todo=12) == "/todos/12"
    assert router.url_for("file", user="ada", name="notes.txt") == "/users/ada/files/notes.txt"


def test_url_for_encodes_each_value_as_one_segment() -> None:
    router = Router([("/files/{name}", ["GET"], show, "file")])
    assert router.url_for("file", name="a b/c?d#é") == "/files/a%20b%2Fc%3Fd%23%C3%A9"
    assert router.url_for("file", name="k=v;x@y") == "/files/k=v;x@y"


@pytest.mark.parametrize(
    ("name", "params", "error", "words"),
    [
        ("nope", {}, LookupError, "named routes: file"),
        ("file", {}, ValueError, "needs name="),
        ("file", {"name": ""}, ValueError, "must not be empty"),
        ("file", {"name": "a", "extra": 1}, ValueError, "no parameter(s) extra"),
    ],
)
def test_url_for_refuses_what_names_no_path(
    name: str, params: dict[str, Any], error: type, words: str
) -> None:
    router = Router([("/files/{name}", ["GET"], show, "file")])
    with pytest.raises(error) as raised:
        router.url_for(name, **params)
    assert words in str(raised.value)


@pytest.mark.parametrize(
    ("routes", "error", "words"),
    [
        ([("/a", ["GET"], show, "x"), ("/b", ["GET"], show, "x")], ValueError, "'/a' and to '/b'"),
        ([("/a", ["GET"], show, "")], TypeError, "non-empty str"),
        ([("/a", ["GET"], show, 3)], TypeError, "non-empty str"),
        ([("/a", ["GET"], show, "x", "y")], TypeError, "(path, methods, handler, name)"),
    ],
)
def test_malformed_names_fail_when_the_table_is_built(
    routes: list[Any], error: type, words: str
) -> None:
    with pytest.raises(error) as raised:
        Router(routes)
    assert words in str(raised.value)


async def test_a_handler_redirects_to_a_named_route() -> None:
    async def create(request: Request) -> Response:
        return redirect(router.url_for("todo", todo=7), status=303)

    router = Router([("/todos", ["POST"], create), ("/todos/{todo}", ["GET"], show, "todo")])
    app = build_server(apply_middleware(wrap_routes(router))(standard_not_found))
    async with TestClient(app) as client:
        created = await client.post("/todos", follow_redirects=True)
    assert created.text == "7"
    assert str(created.url).endswith("/todos/7")
