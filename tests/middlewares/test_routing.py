"""wrap_routes: the middleware end to end, around the route table (``test_router``)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from shallot import build_server, standard_not_found
from shallot._types import HandlerResult, Receive, Request, Response, Send
from shallot.middlewares import apply_middleware, wrap_routes
from shallot.response import text
from shallot.testing import TestClient

from .test_router import HOME, ME, USER, named

# --- the middleware ------------------------------------------------------------------------------


async def record_request(request: Request) -> Response:
    return {"status": 299, "request": request}


async def test_route_arguments_are_positional_and_route_is_recorded() -> None:
    seen: list[tuple[Request, tuple[str, ...]]] = []

    async def post(request: Request, *args: str) -> Response:
        seen.append((request, args))
        return text("ok")

    handle = apply_middleware(wrap_routes([("/u/{user}/p/{post}", ["GET"], post)]))(
        standard_not_found
    )
    request = {"method": "GET", "path": "/u/ann/p/3", "headers": {}}
    response = await handle(request)
    assert isinstance(response, dict)
    assert response["status"] == 200
    [(received, args)] = seen
    assert args == ("ann", "3")
    assert received["route"] == "/u/{user}/p/{post}"
    assert "route" not in request  # the caller's dict is left alone


async def test_a_route_with_arguments_hands_on_a_handler_named_and_marked_as_its_own() -> None:
    # What middlewares after routing (and failure logs) read of the handler they are given.
    seen: list[Any] = []

    def look(next_middleware: Any) -> Any:
        async def middleware(handler: Any, request: Request) -> HandlerResult:
            seen.append(handler)
            result: HandlerResult = await next_middleware(handler, request)
            return result

        return middleware

    post = named("post_view")
    post.marker = "set by a decorator"
    handle = apply_middleware(wrap_routes([("/p/{post}", ["GET"], post)]), look)(standard_not_found)
    response = await handle({"method": "GET", "path": "/p/3", "headers": {}})
    assert isinstance(response, dict)
    assert response["body"] == b"post_view 3"
    [handler] = seen
    assert handler.__qualname__ == "post_view"
    assert handler.marker == "set by a decorator"
    with pytest.raises(AttributeError):
        handler.no_such_attribute  # noqa: B018


async def test_unmatched_requests_reach_the_default_handler_unchanged() -> None:
    handle = apply_middleware(wrap_routes([("/a", ["GET"], HOME)]))(record_request)
    request = {"method": "GET", "path": "/b", "headers": {}}
    response = await handle(request)
    assert isinstance(response, dict)
    assert response["request"] is request


async def test_wrong_method_sets_allowed_methods_for_the_default_handler() -> None:
    handle = apply_middleware(wrap_routes([("/a", ["GET", "PUT"], HOME)]))(record_request)
    request = {"method": "POST", "path": "/a", "headers": {}}
    response = await handle(request)
    assert isinstance(response, dict)
    assert response["request"]["allowed_methods"] == ["GET", "HEAD", "PUT"]
    assert "allowed_methods" not in request


async def test_websocket_route_passes_the_takeover_through_untouched() -> None:
    async def takeover(receive: Receive, send: Send) -> None:
        raise AssertionError("not run here")

    async def chat(request: Request, room: str) -> HandlerResult:
        assert room == "lobby"
        return takeover

    handle = apply_middleware(wrap_routes([("/chat/{room}", ["WS"], chat)]))(standard_not_found)
    assert await handle({"method": "WS", "path": "/chat/lobby", "headers": {}}) is takeover
    # A websocket request to an HTTP-only path gets the default handler's 404 (the denial).
    denied = await handle({"method": "WS", "path": "/chat", "headers": {}})
    assert isinstance(denied, dict)
    assert denied["status"] == 404


def app() -> Any:
    async def echo_method(request: Request) -> Response:
        return text(f"{request['method']} {request['route']}")

    routes = [
        ("/", ["GET"], HOME),
        ("/items/{id}", ["GET", "DELETE"], USER),
        ("/items/special", ["GET"], ME),
        ("/method/", ["GET", "POST"], echo_method),
        ("/ws", ["WS"], HOME),
    ]
    return build_server(apply_middleware(wrap_routes(routes))(standard_not_found))


async def test_end_to_end_statuses() -> None:
    with anyio.fail_after(5):
        async with TestClient(app()) as client:
            assert (await client.get("/")).text == "home"
            assert (await client.get("/items/42/")).text == "user 42"
            assert (await client.get("/items/special")).text == "me"
            assert (await client.delete("/items/special")).text == "user special"
            assert (await client.get("/items/caf%C3%A9")).text == "user café"
            assert (await client.post("/method")).text == "POST /method/"
            missing = await client.get("/items")
            assert missing.status_code == 404
            wrong = await client.put("/items/1")
            assert (wrong.status_code, wrong.headers["allow"]) == (405, "DELETE, GET, HEAD")
            upgrade = await client.get("/ws")  # only a websocket route there
            assert (upgrade.status_code, upgrade.headers["upgrade"]) == (426, "websocket")


async def test_head_is_served_by_the_get_route() -> None:
    with anyio.fail_after(5):
        async with TestClient(app()) as client:
            response = await client.head("/items/7")
            assert response.status_code == 200
            assert response.content == b""
            assert response.headers["content-length"] == str(len("user 7"))
