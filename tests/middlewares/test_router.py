"""The route table (``middlewares._router``): lookups, allowed methods, the build-time checks of
a table, and lookups against a brute-force reference."""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shallot import build_server, standard_not_found, websocket, ws_send
from shallot._types import Request, Response
from shallot.middlewares import apply_middleware, wrap_routes
from shallot.middlewares.routing import Router
from shallot.response import text
from shallot.testing import TestClient


def named(label: str) -> Any:
    """Returns a handler that answers with its label and its route arguments."""

    async def handler(request: Request, *args: str) -> Response:
        return text(" ".join([label, *args]))

    handler.__qualname__ = label
    return handler


HOME, USERS, ME, USER, USER_POST, FILE = (
    named(label) for label in ("home", "users", "me", "user", "user_post", "file")
)


def router() -> Router:
    return Router(
        [
            ("/", ["GET"], HOME),
            ("/users/", ["GET", "POST"], USERS),
            ("/users/me", ["GET"], ME),
            ("/users/{id}", ["GET", "DELETE"], USER),
            ("/users/{id}/posts/{post}", ["GET"], USER_POST),
            ("/files/{name}/raw", ["GET"], FILE),
            ("/files/readme/{part}", ["PUT"], FILE),
        ]
    )


# --- the pure router ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "handler", "args", "route"),
    [
        ("GET", "/", HOME, (), "/"),
        ("GET", "", HOME, (), "/"),
        ("GET", "/users", USERS, (), "/users/"),
        ("POST", "/users/", USERS, (), "/users/"),
        ("GET", "/users/me", ME, (), "/users/me"),
        ("GET", "/users/me/", ME, (), "/users/me"),
        ("GET", "/users/42", USER, ("42",), "/users/{id}"),
        ("DELETE", "/users/me", USER, ("me",), "/users/{id}"),  # the static route has no DELETE
        ("GET", "/users/7/posts/x y", USER_POST, ("7", "x y"), "/users/{id}/posts/{post}"),
        ("HEAD", "/users/42", USER, ("42",), "/users/{id}"),
        ("GET", "/files/readme/raw", FILE, ("readme",), "/files/{name}/raw"),  # backtracks
        ("PUT", "/files/readme/raw", FILE, ("raw",), "/files/readme/{part}"),
    ],
)
def test_lookup_finds_the_route(
    method: str, path: str, handler: Any, args: tuple[str, ...], route: str
) -> None:
    match = router().lookup(method, path)
    assert match is not None
    assert (match.handler, match.args, match.route) == (handler, args, route)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/nothing"),
        ("GET", "/users/42/extra"),
        ("GET", "/users//posts/1"),  # a parameter never matches an empty segment
        ("GET", "//users"),
        ("GET", "*"),
        ("POST", "/users/42"),
        ("WS", "/users/42"),
        ("get", "/"),  # ASGI methods are upper case; nothing else is routed
    ],
)
def test_lookup_misses(method: str, path: str) -> None:
    assert router().lookup(method, path) is None


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/users/me", ["DELETE", "GET", "HEAD"]),  # the union over every matching pattern
        ("/users/42", ["DELETE", "GET", "HEAD"]),
        ("/users", ["GET", "HEAD", "POST"]),
        ("/files/readme/raw", ["GET", "HEAD", "PUT"]),
        ("/nothing", None),
        ("*", None),
    ],
)
def test_allowed_methods(path: str, allowed: list[str] | None) -> None:
    assert router().allowed_methods(path) == allowed


def test_backtracking_drops_the_arguments_of_the_dead_end() -> None:
    routes = Router([("/a/{p}/a", ["GET"], HOME), ("/{p}/b/b", ["GET"], USER)])
    assert routes.lookup("GET", "/a/b/b") == (USER, ("a",), "/{p}/b/b")


def test_explicit_head_route_wins_over_get() -> None:
    head = named("head")
    routes = Router([("/x", ["GET"], HOME), ("/x", ["HEAD"], head)])
    match = routes.lookup("HEAD", "/x")
    assert match is not None
    assert match.handler is head


def test_websocket_routes_are_not_http_methods() -> None:
    routes = Router([("/ws", ["WS"], HOME), ("/both", ["ws", "get"], USER)])
    assert routes.lookup("WS", "/ws") is not None
    assert routes.lookup("GET", "/ws") is None
    assert routes.allowed_methods("/ws") == []
    assert routes.allowed_methods("/both") == ["GET", "HEAD"]


@pytest.mark.parametrize(
    ("routes", "error", "message"),
    [
        ([("users", ["GET"], HOME)], ValueError, r"route #0 .*must start with '/'"),
        ([("/", ["GET"], HOME), ("/a", ["FETCH"], HOME)], ValueError, r"route #1 .*'FETCH'"),
        ([("/a", "GET", HOME)], TypeError, r"route #0 .*list of method names"),
        ([("/a", [], HOME)], ValueError, r"route #0 .*empty"),
        ([("/a/{id}/{id}", ["GET"], HOME)], ValueError, r"route #0 .*\{id\} appears twice"),
        ([("/a", ["GET"], "home")], TypeError, r"route #0 .*not callable"),
        ([("/a/{id", ["GET"], HOME)], ValueError, r"route #0 .*malformed segment '\{id'"),
        ([("/a/id}", ["GET"], HOME)], ValueError, r"route #0 .*malformed segment"),
        ([("/a/x{id}", ["GET"], HOME)], ValueError, r"route #0 .*whole segment"),
        ([("/a/{}", ["GET"], HOME)], ValueError, r"route #0 .*malformed parameter"),
        ([("/a//b", ["GET"], HOME)], ValueError, r"route #0 .*empty segment"),
        ([("/a", ["GET"])], TypeError, r"route #0 .*triple"),
        ([(b"/a", ["GET"], HOME)], TypeError, r"route #0 .*must be a str"),
        (
            [("/a/{x}", ["GET", "POST"], HOME), ("/a/{y}/", ["post"], USER)],
            ValueError,
            r"route #1 .*POST /a/\{y\}/ is already routed by route #0",
        ),
        ("/a", TypeError, r"routes must be a list"),
    ],
)
def test_malformed_tables_fail_at_build_time(routes: Any, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        wrap_routes(routes)


async def _no_argument(request: Request) -> Response:
    return text("x")


async def _one_argument(request: Request, name: str) -> Response:
    return text(name)


async def _generator(scope: Request, receiver: Any) -> AsyncIterator[Any]:
    yield ws_send("x")


async def _undecorated(scope: Request, receiver: Any) -> None:
    return None


@pytest.mark.parametrize(
    ("route", "message"),
    [
        (
            ("/u/{name}", ["GET"], _no_argument),
            r"route #0 GET /u/\{name\}: the handler _no_argument takes no route argument but "
            r"\{name\} is in the path",
        ),
        (
            ("/u/{a}/{b}", ["GET", "POST"], _one_argument),
            r"route #0 GET POST /u/\{a\}/\{b\}: the handler _one_argument takes 1 route "
            r"argument but \{a\} and \{b\} are in the path",
        ),
        (("/u", ["GET"], _one_argument), r"needs 1 route argument \(name\) but the path has"),
        (("/ws", ["WS"], _generator), r"route #0 WS /ws: .* decorate it with @websocket$"),
        (("/ws", ["GET"], _generator), r"@websocket and route it under \"WS\""),
        (("/ws", ["WS"], _undecorated), r"like a websocket handler: decorate it with @websocket"),
        (("/r/{room}", ["WS"], websocket(_generator)), r"takes no route argument after the rec"),
        (("/", ["GET"], apply_middleware()), r"apply_middleware\(...\) returned, which wants"),
    ],
)
def test_handlers_that_cannot_take_the_route_fail_at_build_time(
    route: tuple[str, list[str], Any], message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        wrap_routes([route])


class _Items:
    async def item(self, request: Request, name: str) -> Response:
        return text(f"method {name}")

    async def __call__(self, request: Request, *args: str) -> Response:
        return text(f"object {','.join(args)}")


async def test_every_kind_of_handler_still_routes() -> None:
    async def defaults(request: Request, name: str = "none", page: str = "1") -> Response:
        return text(f"defaults {name} {page}")

    async def joined(request: Request, *args: str) -> Response:
        return text(f"joined {','.join(args)}")

    routes: list[Any] = [
        ("/partial/{name}", ["GET"], functools.partial(defaults, page="2")),
        ("/method/{name}", ["GET"], _Items().item),
        ("/object/{a}/{b}", ["GET"], _Items()),
        ("/lambda/{name}", ["GET"], lambda request, name: defaults(request, name)),
        ("/pile/{a}/{b}", ["GET"], apply_middleware()(joined)),
        ("/defaults", ["GET"], defaults),
        ("/ws/{room}", ["GET"], websocket(_generator)),  # HTTP gets 426: never called
    ]
    app = build_server(apply_middleware(wrap_routes(routes))(standard_not_found))
    async with TestClient(app) as client:
        answers = [
            (await client.get(path)).text
            for path in (
                "/partial/p",
                "/method/m",
                "/object/x/y",
                "/lambda/l",
                "/pile/p/q",
                "/defaults",
            )
        ]
        assert (await client.get("/ws/r")).status_code == 426
    assert answers == [
        "defaults p 2",
        "method m",
        "object x,y",
        "defaults l 1",
        "joined p,q",
        "defaults none 1",
    ]


# --- the router against a brute-force reference ------------------------------------------------

_SEGMENTS = ["a", "b", "{p}"]
_METHODS = ["GET", "HEAD", "POST", "WS"]


def reference(
    table: list[tuple[str, list[str], Any]], method: str, path: str
) -> tuple[Any, tuple[str, ...], str] | None:
    """Every route is tried as a regex; the best match is the one whose leftmost differing
    segment is static. HEAD falls back to GET where no route of the same shape lists HEAD."""

    def shape(pattern: str) -> str:
        return re.sub(r"\{[^/]*\}", "{}", pattern.rstrip("/"))

    def regex(pattern: str) -> str:
        parts = pattern.rstrip("/").split("/")[1:]
        return "".join(
            "/([^/]+)" if part.startswith("{") else "/" + re.escape(part) for part in parts
        )

    head_shapes = {shape(pattern) for pattern, methods, _ in table if "HEAD" in methods}
    candidates = []
    for pattern, methods, handler in table:
        usable = method in methods or (
            method == "HEAD" and "GET" in methods and shape(pattern) not in head_shapes
        )
        match = re.fullmatch(regex(pattern), path.rstrip("/"))
        if usable and match:
            rank = tuple(not part.startswith("{") for part in pattern.strip("/").split("/"))
            candidates.append((rank, handler, match.groups(), pattern))
    if not candidates:
        return None
    _, handler, args, pattern = max(candidates, key=lambda candidate: candidate[0])
    return handler, args, pattern


@st.composite
def tables(draw: st.DrawFn) -> list[tuple[str, list[str], Any]]:
    table: list[tuple[str, list[str], Any]] = []
    taken: set[tuple[str, str]] = set()
    for index in range(draw(st.integers(0, 12))):
        segments = draw(st.lists(st.sampled_from(_SEGMENTS), max_size=4))
        params = iter(range(10))
        pattern = "/" + "/".join(
            f"{{p{next(params)}}}" if part == "{p}" else part for part in segments
        )
        shape = "/" + "/".join(segments)
        methods = [
            m
            for m in draw(st.lists(st.sampled_from(_METHODS), min_size=1, max_size=3, unique=True))
            if (shape, m) not in taken
        ]
        if methods:
            taken.update((shape, m) for m in methods)
            table.append((pattern + draw(st.sampled_from(["", "/"])), methods, named(str(index))))
    return table


_PATH_SEGMENTS = st.sampled_from(["a", "b", "c", ""])


@st.composite
def tables_and_paths(draw: st.DrawFn) -> tuple[list[tuple[str, list[str], Any]], str]:
    """A table and a path; most paths are one of the table's patterns, filled in, so that
    lookups mostly hit and backtracking gets exercised."""
    table = draw(tables())
    from_table = draw(st.booleans())
    if table and from_table:
        pattern = draw(st.sampled_from(table))[0].rstrip("/")
        parts = [
            draw(_PATH_SEGMENTS) if part.startswith("{") else part
            for part in pattern.split("/")[1:]
        ]
    else:
        parts = draw(st.lists(_PATH_SEGMENTS, max_size=5))
    return table, "/" + "/".join(parts) + draw(st.sampled_from(["", "/", "//"]))


@settings(max_examples=150, deadline=None)
@given(table_and_path=tables_and_paths(), method=st.sampled_from(_METHODS))
def test_lookup_equals_brute_force(
    table_and_path: tuple[list[tuple[str, list[str], Any]], str], method: str
) -> None:
    table, path = table_and_path
    match = Router(table).lookup(method, path)
    expected = reference(table, method, path)
    assert (None if match is None else tuple(match)) == expected


@settings(max_examples=60, deadline=None)
@given(table_and_path=tables_and_paths())
def test_allowed_methods_equal_brute_force(
    table_and_path: tuple[list[tuple[str, list[str], Any]], str],
) -> None:
    table, path = table_and_path
    http = [m for m in _METHODS if m != "WS"]
    matched = [reference(table, method, path) is not None for method in [*http, "WS"]]
    allowed = sorted(m for m, hit in zip(http, matched[:-1], strict=True) if hit)
    assert Router(table).allowed_methods(path) == (allowed if any(matched) else None)
