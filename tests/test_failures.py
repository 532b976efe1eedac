"""What a failing request becomes (``shallot._failures``, issue 13): a 500 logged once, naming
the route's handler, the method and the path; a handler's mistaken return value is a 500 too,
never an exception out to the server."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pytest

from shallot import apply_middleware, build_server, standard_not_found
from shallot._types import Receive, Request, Response, Send
from shallot.middlewares import wrap_routes
from shallot.response import respond404, text
from shallot.testing import TestClient, WebSocketRejected

from ._fakes import FakePeer, websocket_scope


def errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "shallot" and r.levelno >= logging.ERROR]


async def show(request: Request, user: str) -> Response:
    raise LookupError(f"no user {user}")


async def inner_page(request: Request) -> Response:
    raise KeyError("inner")


def routed(*extra: Any) -> Any:
    inner = apply_middleware(wrap_routes([("/inner/page", ["GET"], inner_page)]))(
        standard_not_found
    )
    routes = [("/users/{user}", ["GET"], show), ("/inner/{rest}", ["GET"], inner), *extra]
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
