"""``apply_middleware``: composing middlewares around a default handler (SPEC §1)."""

from __future__ import annotations

import logging

import pytest

from shallot import apply_middleware, build_server, standard_not_found
from shallot._types import (
    Handler,
    HandlerResult,
    Middleware,
    Next,
    Receive,
    Request,
    Response,
    Send,
)
from shallot.middlewares import wrap_json, wrap_routes, wrap_static
from shallot.response import text
from shallot.testing import TestClient


def as_response(result: HandlerResult) -> Response:
    assert isinstance(result, dict)
    return result


def tracing(name: str, trace: list[str]) -> Middleware:
    """A middleware that records when it is entered and left, and tags the request."""

    def middleware(next_middleware: Next) -> Next:
        async def inner(handler: Handler, request: Request) -> HandlerResult:
            trace.append(f"{name} in")
            tagged = {**request, "tags": [*request.get("tags", []), name]}
            response = await next_middleware(handler, tagged)
            trace.append(f"{name} out")
            if isinstance(response, dict):
                return {**response, "headers": {**response.get("headers", {}), f"x-{name}": "1"}}
            return response

        return inner

    return middleware


async def test_first_middleware_is_outermost() -> None:
    trace: list[str] = []

    async def handler(request: Request) -> HandlerResult:
        trace.append("handler")
        return text(",".join(request["tags"]))

    wrapped = apply_middleware(tracing("m1", trace), tracing("m2", trace), tracing("m3", trace))(
        handler
    )
    response = as_response(await wrapped({"path": "/"}))
    assert trace == ["m1 in", "m2 in", "m3 in", "handler", "m3 out", "m2 out", "m1 out"]
    assert response["body"] == b"m1,m2,m3"
    assert {"x-m1", "x-m2", "x-m3"} <= set(response["headers"])


async def test_the_callers_request_is_not_changed() -> None:
    async def handler(request: Request) -> HandlerResult:
        return text("ok")

    request: Request = {"path": "/"}
    await apply_middleware(tracing("m", []))(handler)(request)
    assert request == {"path": "/"}


async def test_no_middleware_calls_the_handler() -> None:
    async def handler(request: Request) -> HandlerResult:
        return text(request["path"])

    assert as_response(await apply_middleware()(handler)({"path": "/p"}))["body"] == b"/p"


async def test_a_middleware_may_answer_by_itself() -> None:
    def deny(next_middleware: Next) -> Next:
        async def inner(handler: Handler, request: Request) -> HandlerResult:
            if request["path"] == "/secret":
                return text("no", status=403)
            return await next_middleware(handler, request)

        return inner

    called: list[str] = []

    async def handler(request: Request) -> HandlerResult:
        called.append(request["path"])
        return text("yes")

    wrapped = apply_middleware(deny)(handler)
    assert as_response(await wrapped({"path": "/secret"}))["status"] == 403
    assert as_response(await wrapped({"path": "/open"}))["status"] == 200
    assert called == ["/open"]


async def test_a_middleware_may_call_a_different_handler() -> None:
    async def other(request: Request) -> HandlerResult:
        return text("other")

    def route(next_middleware: Next) -> Next:
        async def inner(handler: Handler, request: Request) -> HandlerResult:
            return await next_middleware(other if request["path"] == "/other" else handler, request)

        return inner

    async def default(request: Request) -> HandlerResult:
        return text("default")

    wrapped = apply_middleware(route, tracing("inner", []))(default)
    assert as_response(await wrapped({"path": "/other"}))["body"] == b"other"
    assert as_response(await wrapped({"path": "/"}))["body"] == b"default"


async def test_a_takeover_passes_through() -> None:
    async def takeover(receive: Receive, send: Send) -> None:
        raise AssertionError("not run here")

    async def handler(request: Request) -> HandlerResult:
        return takeover

    assert await apply_middleware(tracing("m", []))(handler)({"path": "/"}) is takeover


def test_middlewares_are_checked_when_applied() -> None:
    with pytest.raises(TypeError, match="#1"):
        apply_middleware(tracing("ok", []), "not a middleware")  # type: ignore[arg-type]


def test_the_default_handler_is_checked_when_wrapped() -> None:
    with pytest.raises(TypeError, match="default handler"):
        apply_middleware()(None)  # type: ignore[arg-type]


def test_the_applier_is_refused_where_a_handler_is_wanted() -> None:
    applier = apply_middleware(tracing("m", []))
    with pytest.raises(TypeError, match=r"^build_server: .*apply_middleware\(\.\.\.\) returned"):
        build_server(applier)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"^route #0 GET /: .*wants the default handler: call it with one"
    ):
        wrap_routes([("/", ["GET"], applier)])  # type: ignore[list-item]


def test_the_applier_given_a_request_says_it_wants_the_default_handler() -> None:
    with pytest.raises(TypeError, match=r"called with a request, not a default handler"):
        apply_middleware()({"path": "/"})  # type: ignore[arg-type]


def test_middleware_factories_run_once_when_wrapped() -> None:
    built: list[str] = []

    def counting(next_middleware: Next) -> Next:
        built.append("built")
        return next_middleware

    async def handler(request: Request) -> HandlerResult:
        return text("ok")

    wrap = apply_middleware(counting)
    assert built == []
    wrap(handler)
    assert built == ["built"]


async def test_errors_in_the_pile_are_logged_naming_the_default_handler(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def profile(request: Request) -> HandlerResult:
        raise LookupError("no such profile")

    app = build_server(apply_middleware(tracing("m", []))(profile))
    async with TestClient(app) as client:
        response = await client.get("/")
    assert response.status_code == 500
    (record,) = [r for r in caplog.records if r.name == "shallot" and r.levelno >= logging.ERROR]
    assert "profile" in record.getMessage()


async def test_a_pile_serves_through_build_server() -> None:
    trace: list[str] = []

    async def handler(request: Request) -> HandlerResult:
        return text(",".join(request["tags"]))

    app = build_server(apply_middleware(tracing("a", trace), tracing("b", trace))(handler))
    async with TestClient(app) as client:
        response = await client.get("/")
    assert response.text == "a,b"
    assert response.headers["x-a"] == response.headers["x-b"] == "1"


async def test_a_pile_can_be_a_routes_handler_with_route_arguments() -> None:
    async def item(request: Request, item_id: str) -> Response:
        return text(f"item {item_id} json={request['json']}")

    routes = [("/items/{item_id}", ["POST"], apply_middleware(wrap_json())(item))]
    app = build_server(apply_middleware(wrap_routes(routes))(standard_not_found))
    async with TestClient(app) as client:
        response = await client.post("/items/7", json={"a": 1})
    assert response.text == "item 7 json={'a': 1}"


def test_shallot_2_import_paths_still_work() -> None:
    from shallot.middlewares.staticfiles import wrap_static as old_wrap_static
    from shallot.ring import build_server as old_build_server

    assert old_build_server is build_server
    assert old_wrap_static is wrap_static
