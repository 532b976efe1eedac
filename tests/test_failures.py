"""What a failing request becomes (``shallot._failures``, issue 13): a 500 logged once, naming
the route's handler, the method and the path; a handler's mistaken return value is a 500 too,
never an exception out to the server."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest

from shallot import apply_middleware, build_server, standard_not_found
from shallot._failures import culprit
from shallot._types import Receive, Request, Response, Send
from shallot.middlewares import wrap_routes
from shallot.response import respond404, text
from shallot.testing import TestClient, WebSocketRejected

from ._fakes import FakePeer, http_scope, websocket_scope


def errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "shallot" and r.levelno >= logging.ERROR]


async def show(request: Request, user: str) -> Response:
    raise LookupError(f"no user {user}")


async def inner_page(request: Request) -> Response:
    raise KeyError("inner")


async def failing_chunks(at_once: bool) -> AsyncIterator[bytes]:
    if not at_once:
        yield b"the first chunk went out"
    raise RuntimeError("the feed broke")


async def feed(request: Request, name: str) -> Response:
    # ?at-once: the stream fails before its first chunk
    return {"status": 200, "stream": failing_chunks(request["query_string"] == b"at-once")}


async def inner_feed(request: Request) -> Response:
    return await feed(request, "inner")


def routed(*extra: Any) -> Any:
    inner_routes = [("/inner/page", ["GET"], inner_page), ("/inner/feed", ["GET"], inner_feed)]
    inner = apply_middleware(wrap_routes(inner_routes))(standard_not_found)
    routes = [
        ("/users/{user}", ["GET"], show),
        ("/inner/{rest}", ["GET"], inner),
        ("/feeds/{name}", ["GET"], feed),
        *extra,
    ]
    return build_server(apply_middleware(wrap_routes(routes))(standard_not_found))


async def test_the_500_log_names_the_route_handler_method_and_path(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with anyio.fail_after(5):
        async with TestClient(routed()) as client:
            response = await client.get("/users/ada")
    assert (response.status_code, response.text) == (500, "Internal Server Error")
    (record,) = errors(caplog)
    assert record.getMessage() == "handler show raised on GET /users/ada"
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], LookupError)  # the traceback, in the log only


async def test_an_unprintable_path_is_escaped_in_the_log(caplog: pytest.LogCaptureFixture) -> None:
    with anyio.fail_after(5):
        async with TestClient(routed()) as client:
            await client.get("/users/a%0Ab")
    (record,) = errors(caplog)
    assert record.getMessage() == "handler show raised on GET '/users/a\\nb'"


async def test_a_websocket_handler_that_raises_is_named_too(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def lobby(request: Request) -> Response:
        raise RuntimeError("no lobby")

    app = routed(("/lobby", ["WS"], lobby))
    with anyio.fail_after(5):
        async with TestClient(app) as client:
            with pytest.raises(WebSocketRejected) as rejected:
                async with client.websocket("/lobby"):
                    raise AssertionError("accepted")
    assert rejected.value.status == 500
    (record,) = errors(caplog)
    assert record.getMessage().endswith(".<locals>.lobby raised on WS /lobby")


@pytest.mark.parametrize(
    "returned",
    [
        respond404,  # a helper returned uncalled
        standard_not_found,  # an async handler returned uncalled
        lambda receive, send: {"status": 200},  # a callable that gives no awaitable
    ],
    ids=["helper", "async-handler", "sync-callable"],
)
async def test_a_callable_that_is_no_takeover_is_a_logged_500(
    returned: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async def confused(request: Request) -> Any:
        return returned

    with anyio.fail_after(5):
        async with TestClient(build_server(confused)) as client:
            response = await client.get("/here")
            after = await client.get("/here")
    assert (response.status_code, response.text) == (500, "Internal Server Error")
    assert after.status_code == 500  # and the app keeps serving
    record = errors(caplog)[0]
    assert len(errors(caplog)) == 2
    assert record.getMessage().startswith("GET /here: the handler ")
    assert "confused" in record.getMessage()


async def test_a_helper_returned_uncalled_says_so(caplog: pytest.LogCaptureFixture) -> None:
    app = routed(("/oops", ["GET"], lambda request: _return(respond404)))
    with anyio.fail_after(5):
        async with TestClient(app) as client:
            response = await client.get("/oops")
    assert response.status_code == 500
    (record,) = errors(caplog)
    assert record.getMessage() == (
        "GET /oops: the handler returned the function respond404 instead of calling it; "
        "a handler returns a response dict or a takeover"
    )


async def _return(value: Any) -> Any:
    return value


async def test_a_takeover_that_fails_is_logged_once_and_nothing_escapes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def takeover(receive: Receive, send: Send) -> None:
        raise RuntimeError("the takeover failed")

    async def handler(request: Request) -> Any:
        return takeover

    peer = FakePeer()
    try:
        with anyio.fail_after(5):
            await peer.serve(build_server(handler), websocket_scope("/raw"))  # returns, no raise
    finally:
        peer.close()
    (record,) = errors(caplog)
    assert record.getMessage().endswith(".<locals>.handler raised on WS /raw")
    assert str(record.exc_info[1] if record.exc_info else "") == "the takeover failed"


async def test_a_callable_that_is_no_takeover_denies_a_websocket_with_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def confused(request: Request) -> Any:
        return text  # not called

    with anyio.fail_after(5):
        async with TestClient(build_server(confused)) as client:
            with pytest.raises(WebSocketRejected) as rejected:
                async with client.websocket("/ws"):
                    raise AssertionError("accepted")
    assert rejected.value.status == 500
    (record,) = errors(caplog)
    assert "WS /ws: the handler" in record.getMessage()
    assert "returned the function text instead of calling it" in record.getMessage()


async def test_an_inner_route_handler_is_named_in_a_nested_pile(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with anyio.fail_after(5):
        async with TestClient(routed()) as client:
            response = await client.get("/inner/page")
    assert response.status_code == 500
    (record,) = errors(caplog)
    assert record.getMessage() == "handler inner_page raised on GET /inner/page"


#: A path whose route's handler answers with ``failing_chunks``, and that handler's name.
STREAM_ROUTES = [("/feeds/ada", "feed"), ("/inner/feed", "inner_feed")]


@pytest.mark.parametrize(("path", "handler"), STREAM_ROUTES)
async def test_a_stream_failing_before_its_first_chunk_names_the_route_handler(
    path: str, handler: str, caplog: pytest.LogCaptureFixture
) -> None:
    with anyio.fail_after(5):
        async with TestClient(routed()) as client:
            response = await client.get(path + "?at-once")
    assert response.status_code == 500
    (record,) = errors(caplog)
    assert record.getMessage() == (
        f"stream of handler {handler} failed before its first chunk on GET {path}"
    )
    assert record.exc_info is not None
    assert str(record.exc_info[1]) == "the feed broke"


@pytest.mark.parametrize(("path", "handler"), STREAM_ROUTES)
async def test_a_stream_failing_mid_response_names_the_route_handler(
    path: str, handler: str, caplog: pytest.LogCaptureFixture
) -> None:
    with anyio.fail_after(5):
        async with TestClient(routed()) as client:
            with pytest.raises(httpx.RemoteProtocolError):  # cut short, not complete-looking
                await client.get(path)
    (record,) = errors(caplog)
    assert record.getMessage() == f"stream of handler {handler} failed mid-response on GET {path}"
    assert record.exc_info is not None
    assert str(record.exc_info[1]) == "the feed broke"


def test_culprit_asks_every_router_of_a_pile_and_the_innermost_route_wins() -> None:
    async def a(request: Request) -> Response:
        return text("a")

    async def b(request: Request, x: str) -> Response:
        return text("b")

    inner = apply_middleware(wrap_routes([("/b/{x}", ["GET"], b)]))(standard_not_found)
    pile = apply_middleware(
        wrap_routes([("/a", ["GET"], a), ("/a/ws", ["WS"], a)]),
        wrap_routes([("/b/{x}", ["GET"], inner)]),  # a route whose handler routes again
    )(standard_not_found)
    assert culprit(http_scope("/a"), pile) is a
    assert culprit(websocket_scope("/a/ws"), pile) is a
    assert culprit(http_scope("/b/1"), pile) is b  # found by the second router, then inner
    assert culprit(http_scope("/a", method="POST"), pile) is pile  # no route: the pile
    assert culprit(http_scope("/a"), a) is a  # no router at all
