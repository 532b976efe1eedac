"""The ASGI entry: build_server's arguments and the dispatch on ``scope["type"]``."""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from shallot import apply_middleware, build_server, websocket, ws_accept, ws_send
from shallot._types import Message, Request, Response
from shallot.response import text
from shallot.testing import TestClient, WebSocketRejected


async def hello(request: Request) -> Response:
    return text(f"hello {request['path']}")


def test_build_server_returns_an_asgi3_callable() -> None:
    app = build_server(hello)
    assert inspect.iscoroutinefunction(app)
    assert list(inspect.signature(app).parameters) == ["scope", "receive", "send"]


def test_handler_must_be_callable() -> None:
    with pytest.raises(TypeError, match="not callable"):
        build_server("hello")  # type: ignore[arg-type]


@pytest.mark.parametrize("hook", ["on_start", "on_stop", "lifespan"])
def test_hooks_must_be_callable(hook: str) -> None:
    arguments: dict[str, Any] = {hook: "not callable"}
    with pytest.raises(TypeError, match=hook):
        build_server(hello, **arguments)


async def _events(request: Request) -> AsyncIterator[Any]:
    yield ws_send("x")


async def _takes_nothing() -> None:
    return None


@asynccontextmanager
async def _starlette_style(app: Any) -> AsyncIterator[None]:
    yield


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"handler": _events}, r"^build_server: the handler _events is an async generator"),
        (
            {"handler": apply_middleware()},
            r"^build_server: .*wants the default handler: call it with one",
        ),
        ({"on_start": _takes_nothing}, r"^on_start _takes_nothing cannot be called as"),
        ({"on_stop": _events}, r"^on_stop _events is a generator function"),
        ({"on_start": _starlette_style}, r"pass it as lifespan=_starlette_style"),
        ({"lifespan": _starlette_style}, r"^lifespan _starlette_style takes arguments"),
        ({"lifespan": _takes_nothing}, r"whose call gives a coroutine"),
    ],
)
def test_what_certainly_fails_when_called_is_refused_at_build(
    arguments: dict[str, Any], message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        build_server(**{"handler": hello, **arguments})


@pytest.mark.parametrize(
    ("argument", "value", "named"),
    [
        ("body_timeout", 0, "body_timeout"),
        ("body_timeout", -1.0, "body_timeout"),
        ("body_timeout", "30", "body_timeout"),
        ("body_timeout", True, "body_timeout"),
        ("body_timeout", math.nan, "body_timeout"),
        ("response_timeout", 0.0, "response_timeout"),
        ("max_receive_timeout_s", -5, "body_timeout"),
        ("max_responde_timeout_s", 0, "response_timeout"),
        ("max_body_size", -1, "max_body_size"),
        ("max_body_size", 1.5, "max_body_size"),
        ("max_body_size", True, "max_body_size"),
        ("max_body_size", "10", "max_body_size"),
    ],
)
def test_limits_are_checked_when_the_app_is_built(argument: str, value: Any, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        build_server(hello, **{argument: value})


@pytest.mark.parametrize(
    "limits",
    [
        {"body_timeout": math.inf, "response_timeout": math.inf},
        {"max_body_size": 0},
        {"body_timeout": 1, "response_timeout": 2.5, "max_body_size": 1},
        {"max_receive_timeout_s": 15, "max_responde_timeout_s": 30},
    ],
)
async def test_valid_limits_build_a_working_app(limits: dict[str, Any]) -> None:
    async with TestClient(build_server(hello, **limits)) as client:
        response = await client.get("/there")
    assert response.status_code == 200
    assert response.text == "hello /there"


async def test_unknown_scope_type_raises() -> None:
    async def receive() -> Message:
        raise AssertionError("not called")

    async def send(message: Message) -> None:
        raise AssertionError("not called")

    with pytest.raises(ValueError, match="'webtransport'"):
        await build_server(hello)({"type": "webtransport"}, receive, send)


async def test_apps_built_from_one_handler_are_independent() -> None:
    async def on_start_a(scope: Any) -> dict[str, Any]:
        return {"name": "a"}

    async def show(request: Request) -> Response:
        return text(request["config"].get("name", "none"))

    app_a = build_server(show, on_start=on_start_a)
    app_b = build_server(show)
    async with TestClient(app_a) as client_a, TestClient(app_b) as client_b:
        assert (await client_a.get("/")).text == "a"
        assert (await client_b.get("/")).text == "none"


async def _hello(request: Request) -> Response:
    return text("hi")


async def test_shallot_2_positional_order_still_works() -> None:
    started: list[str] = []

    async def on_start(scope: Any) -> dict[str, Any]:
        started.append("start")
        return {}

    app = build_server(_hello, 30, 15, on_start)
    async with TestClient(app) as client:
        assert (await client.get("/")).text == "hi"
    assert started == ["start"]


def test_a_timeout_under_both_names_is_refused() -> None:
    with pytest.raises(TypeError, match="not both"):
        build_server(_hello, body_timeout=5, max_receive_timeout_s=5)
    with pytest.raises(TypeError, match="not both"):
        build_server(_hello, 5, response_timeout=5)


# The Origin check of websocket handshakes (issue 14): a page of another site may not open a
# websocket, whatever cookies its browser sends along.


def origin_app(connected: list[str], **options: Any) -> Any:
    async def on_connect(scope: Request) -> Any:
        connected.append(scope["headers"].get("origin", "-"))
        return ws_accept()

    @websocket(on_connect=on_connect)
    async def hello(scope: Request, receiver: Any) -> AsyncIterator[Any]:
        yield ws_send("hello")

    return build_server(hello, **options)


async def test_a_foreign_origin_is_refused_with_403_before_on_connect(
    caplog: pytest.LogCaptureFixture,
) -> None:
    connected: list[str] = []
    caplog.set_level(logging.INFO, logger="shallot")
    with anyio.fail_after(5):
        async with TestClient(origin_app(connected)) as client:
            with pytest.raises(WebSocketRejected) as refused:
                async with client.websocket("/", headers={"origin": "https://evil.example"}):
                    raise AssertionError("accepted")
    assert refused.value.status == 403
    assert b"origin" in refused.value.body
    assert connected == []
    [record] = [r for r in caplog.records if "refused" in r.getMessage()]
    assert record.levelno == logging.INFO
    assert "'https://evil.example'" in record.getMessage()


@pytest.mark.parametrize("origin", [None, "http://testserver", "http://testserver:80"])
async def test_the_apps_own_origin_and_no_origin_pass(origin: str | None) -> None:
    connected: list[str] = []
    headers = {} if origin is None else {"origin": origin}
    with anyio.fail_after(5):
        async with TestClient(origin_app(connected)) as client:
            async with client.websocket("/", headers=headers) as ws:
                assert await ws.receive() == "hello"
    assert connected == [origin or "-"]


async def opened(client: TestClient, origin: str) -> bool:
    """Whether a handshake from a page of ``origin`` opens (and gets "hello"); a refusal must
    be a 403."""
    status = 101
    try:
        async with client.websocket("/", headers={"origin": origin}) as ws:
            assert await ws.receive() == "hello"
    except WebSocketRejected as refused:
        status = refused.status
    assert status in (101, 403)
    return status == 101


async def test_allowed_origins_lists_other_sites_and_star_turns_the_check_off() -> None:
    connected: list[str] = []
    listed = origin_app(connected, allowed_origins=["https://*.example.com"])
    anything = origin_app(connected, allowed_origins="*")
    with anyio.fail_after(5):
        async with TestClient(listed) as client:
            assert await opened(client, "https://a.example.com")
            assert not await opened(client, "https://example.org")
        async with TestClient(anything) as client:
            assert await opened(client, "https://example.org")
    assert connected == ["https://a.example.com", "https://example.org"]


async def test_a_raw_takeover_is_checked_too() -> None:
    ran: list[bool] = []

    async def takeover(receive: Any, send: Any) -> None:
        ran.append(True)

    async def handler(request: Request) -> Any:
        return takeover

    with anyio.fail_after(5):
        async with TestClient(build_server(handler)) as client:
            assert not await opened(client, "https://evil.example")  # a 403
    assert ran == []


async def test_the_check_sees_the_request_as_the_middlewares_left_it() -> None:
    # A TLS-ending proxy: the page is https://app.example, the app is reached as ws://backend.
    def wrap_as_proxied(next_middleware: Any) -> Any:
        async def proxied(handler: Any, request: Request) -> Any:
            headers = {**request["headers"], "host": "app.example"}
            return await next_middleware(handler, {**request, "scheme": "wss", "headers": headers})

        return proxied

    @websocket
    async def hello(scope: Request, receiver: Any) -> AsyncIterator[Any]:
        yield ws_send("hello")

    app = build_server(apply_middleware(wrap_as_proxied)(hello))
    with anyio.fail_after(5):
        async with TestClient(app) as client:
            assert await opened(client, "https://app.example")
            assert not await opened(client, "http://testserver")
