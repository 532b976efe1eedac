"""Reverse routing: named routes and Router.url_for (issue 15)."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
    assert router.url_for("file", name="a b?c#é 100%") == "/files/a%20b%3Fc%23%C3%A9%20100%25"
    assert router.url_for("file", name="k=v;x@y") == "/files/k=v;x@y"
    assert router.url_for("file", name="%2F") == "/files/%252F"  # decodes back to "%2F"


#: One path segment's worth of text: anything but "/", "." and "..", which url_for refuses.
_SEGMENT_VALUES = st.text(min_size=1).filter(lambda v: "/" not in v and v not in (".", ".."))


@settings(max_examples=150, deadline=None)
@given(value=_SEGMENT_VALUES, other=_SEGMENT_VALUES)
def test_what_url_for_builds_routes_back_to_its_route_with_the_same_values(
    value: str, other: str
) -> None:
    router = Router([("/files/{name}/v/{version}", ["GET"], show, "file")])
    url = router.url_for("file", name=value, version=other)
    match = router.lookup("GET", unquote(url))  # ASGI's path: decoded by the server
    assert match is not None
    assert match.args == (value, other)


async def test_a_url_for_path_reaches_its_handler_through_the_app() -> None:
    async def note(request: Request, title: str) -> Response:
        return text(title)

    router = Router([("/notes/{title}", ["GET"], note, "note")])
    app = build_server(apply_middleware(wrap_routes(router))(standard_not_found))
    title = "Réunion de mai, 100% à l'heure?"
    with anyio.fail_after(5):
        async with TestClient(app) as client:
            response = await client.get(router.url_for("note", title=title))
    assert (response.status_code, response.text) == (200, title)


@pytest.mark.parametrize(
    ("name", "params", "error", "words"),
    [
        ("nope", {}, LookupError, "named routes: file"),
        ("file", {}, ValueError, "needs name="),
        ("file", {"name": ""}, ValueError, "must not be empty"),
        ("file", {"name": "a/b"}, ValueError, "name='a/b' holds a '/'"),
        ("file", {"name": ".."}, ValueError, "name='..' is a dot segment"),
        ("file", {"name": "."}, ValueError, "name='.' is a dot segment"),
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


def test_url_for_refuses_a_slash_naming_the_route_and_the_parameter() -> None:
    # Routing matches the decoded path, where %2F is a "/" again: /notes/2024%2F05 would
    # reach no route (or another one), so url_for says so instead of building it.
    router = Router([("/notes/{note}", ["GET"], show, "note")])
    with pytest.raises(ValueError, match="query string") as raised:
        router.url_for("note", note="2024/05 minutes")
    assert str(raised.value) == (
        "url_for('note'): note='2024/05 minutes' holds a '/', and {note} in '/notes/{note}' "
        "matches one path segment (the server decodes %2F to '/' before routing); pass such "
        "a value in the query string"
    )


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
