"""The ASGI entry: build_server's arguments and the dispatch on ``scope["type"]``."""

from __future__ import annotations

import inspect
import math
from typing import Any

import pytest

from shallot import build_server
from shallot._types import Message, Request, Response
from shallot.response import text
from shallot.testing import TestClient


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
