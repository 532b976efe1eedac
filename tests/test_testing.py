"""The HTTP side of ``shallot.testing.TestClient``: lifespan, requests, cookies, headers."""

from __future__ import annotations

import importlib
import json as std_json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest

from shallot import apply_middleware, build_server, standard_not_found
from shallot._types import Message, Receive, Request, Response, Scope, Send
from shallot.middlewares import wrap_routes
from shallot.response import json, text
from shallot.testing import LifespanError, TestClient, WebSocketClosed


async def echo(request: Request) -> Response:
    """Answers with what the app saw of the request."""
    return json(
        {
            "method": request["method"],
            "path": request["path"],
            "query": request["query_string"].decode(),
            "headers": request["headers"],
            "body": request["body"].decode(),
            "config": request["config"],
            "client": list(request["client"]),
        }
    )


async def test_lifespan_runs_around_the_block() -> None:
    events: list[str] = []

    async def on_start(scope: Scope) -> dict[str, Any]:
        events.append("start")
        return {"db": "open"}

    async def on_stop(scope: Scope) -> None:
        events.append("stop")

    with anyio.fail_after(5):
        async with TestClient(build_server(echo, on_start=on_start, on_stop=on_stop)) as client:
            assert events == ["start"]
            response = await client.get("/")
            assert response.json()["config"] == {"db": "open"}
        assert events == ["start", "stop"]


async def test_lifespan_context_runs_around_the_block() -> None:
    events: list[str] = []

    @asynccontextmanager
    async def pool() -> AsyncIterator[dict[str, Any]]:
        events.append("open")
        yield {"pool": True}
        events.append("close")

    with anyio.fail_after(5):
        async with TestClient(build_server(echo, lifespan=pool)) as client:
            assert (await client.get("/")).json()["config"] == {"pool": True}
            assert events == ["open"]
        assert events == ["open", "close"]


async def test_a_test_that_fails_inside_the_block_still_shuts_the_app_down() -> None:
    # as a server that stops would: what on_stop cleans up must not leak into the next test
    log: list[str] = []

    async def on_stop(config: Any) -> None:
        log.append("on_stop")

    async def hello(request: Request) -> Response:
        return text("ok")

    app = build_server(hello, on_stop=on_stop)
    with anyio.fail_after(5), pytest.raises(AssertionError, match="the test's own"):
        async with TestClient(app):
            raise AssertionError("the test's own failure")
    assert log == ["on_stop"]


async def test_a_handler_not_given_to_build_server_is_named_not_answered_with_an_empty_500() -> (
    None
):
    async def hello(request: Request) -> Response:
        return text("hello")

    # mypy --strict says so too; a user without it had only a bare 500 from every request
    pile: Any = apply_middleware(wrap_routes([("/", ["GET"], hello)]))(standard_not_found)
    with anyio.fail_after(5), pytest.raises(TypeError, match="serve build_server"):
        async with TestClient(pile) as client:
            await client.get("/")


async def test_lifespan_false_skips_it() -> None:
    async def on_start(scope: Scope) -> None:
        raise AssertionError("lifespan ran")

    with anyio.fail_after(5):
        async with TestClient(build_server(echo, on_start=on_start), lifespan=False) as client:
            assert (await client.get("/")).json()["config"] == {}


async def test_startup_failure_raises_lifespan_error() -> None:
    async def on_start(scope: Scope) -> None:
        raise RuntimeError("no database")

    with anyio.fail_after(5), pytest.raises(LifespanError, match="RuntimeError: no database"):
        async with TestClient(build_server(echo, on_start=on_start)):
            raise AssertionError("the block must not run")


async def test_shutdown_failure_raises_lifespan_error() -> None:
    async def on_stop(scope: Scope) -> None:
        raise RuntimeError("flush failed")

    with anyio.fail_after(5), pytest.raises(LifespanError, match="RuntimeError: flush failed"):
        async with TestClient(build_server(echo, on_stop=on_stop)) as client:
            await client.get("/")


async def test_startup_failure_of_an_app_that_then_waits_does_not_hang() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "lifespan"
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "nope"})
        await anyio.sleep_forever()  # waits for a shutdown that never comes

    with anyio.fail_after(5), pytest.raises(LifespanError, match="nope"):
        async with TestClient(app):
            pass


async def test_app_without_lifespan_support_still_serves() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise ValueError("only http")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"raw"})

    with anyio.fail_after(5):
        async with TestClient(app) as client:
            assert (await client.get("/")).text == "raw"


async def test_what_the_lifespan_puts_in_its_state_reaches_every_request_as_on_a_server() -> None:
    # servers hand each request a shallow copy of the lifespan scope's state (ASGI lifespan)
    seen: list[dict[str, Any]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await receive()
            scope["state"]["db"] = "pool"
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        seen.append(scope["state"])
        scope["state"]["mine"] = scope["type"]  # a copy: the next request does not see it
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
        else:
            await receive()
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": 1000})

    with anyio.fail_after(5):
        async with TestClient(app) as client:
            await client.get("/")
            async with client.stream("GET", "/") as response:
                await response.aread()
            async with client.websocket("/ws") as ws:
                with pytest.raises(WebSocketClosed):
                    await ws.receive()
    assert [state.get("db") for state in seen] == ["pool", "pool", "pool"]
    assert [len(state) for state in seen] == [2, 2, 2]


async def test_requests_carry_method_path_query_headers_and_body() -> None:
    with anyio.fail_after(5):
        async with TestClient(build_server(echo), headers={"x-default": "d"}) as client:
            response = await client.put(
                "/items/1?sort=asc", content=b"payload", headers={"X-Custom": "c"}
            )
    seen = response.json()
    assert seen["method"] == "PUT"
    assert seen["path"] == "/items/1"
    assert seen["query"] == "sort=asc"
    assert seen["headers"]["x-default"] == "d"
    assert seen["headers"]["x-custom"] == "c"
    assert seen["headers"]["host"] == "testserver"
    assert seen["body"] == "payload"
    assert seen["client"] == ["127.0.0.1", 50000]


@pytest.mark.parametrize("method", ["get", "head", "options", "post", "put", "patch", "delete"])
async def test_every_verb_helper(method: str) -> None:
    with anyio.fail_after(5):
        async with TestClient(build_server(echo)) as client:
            response = await getattr(client, method)("/verb")
    assert response.status_code == 200
    if method != "head":
        assert response.json()["method"] == method.upper()
    else:
        assert response.content == b""


async def test_post_json() -> None:
    with anyio.fail_after(5):
        async with TestClient(build_server(echo)) as client:
            response = await client.post("/", json={"name": "shallot", "layers": 3})
    seen = response.json()
    assert seen["headers"]["content-type"] == "application/json"
    assert std_json.loads(seen["body"]) == {"name": "shallot", "layers": 3}


async def test_streamed_request_body_arrives_whole() -> None:
    async def parts() -> AsyncIterator[bytes]:
        yield b"a" * 10
        yield b"b" * 10

    with anyio.fail_after(5):
        async with TestClient(build_server(echo)) as client:
            response = await client.post("/", content=parts())
    assert response.json()["body"] == "a" * 10 + "b" * 10


async def test_cookies_persist_between_requests() -> None:
    async def handler(request: Request) -> Response:
        if request["path"] == "/login":
            return {"status": 200, "headers": [("set-cookie", "session=abc; Path=/")]}
        return text(request["headers"].get("cookie", "no cookie"))

    with anyio.fail_after(5):
        async with TestClient(build_server(handler)) as client:
            assert (await client.get("/")).text == "no cookie"
            await client.get("/login")
            assert client.cookies["session"] == "abc"
            assert (await client.get("/")).text == "session=abc"


async def test_cookies_given_to_the_client_are_sent() -> None:
    async def handler(request: Request) -> Response:
        return text(request["headers"].get("cookie", ""))

    with anyio.fail_after(5):
        async with TestClient(build_server(handler), cookies={"theme": "dark"}) as client:
            assert (await client.get("/")).text == "theme=dark"


async def test_response_headers_and_streams_come_back_as_sent() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"one "
        yield b"two"

    async def handler(request: Request) -> Response:
        return {"status": 200, "headers": [("x-a", "1"), ("x-a", "2")], "stream": chunks()}

    with anyio.fail_after(5):
        async with TestClient(build_server(handler)) as client:
            response = await client.get("/")
    assert response.text == "one two"
    assert response.headers.get_list("x-a") == ["1", "2"]
    assert "content-length" not in response.headers  # a streamed response has none


async def test_response_cut_short_raises_like_a_real_connection() -> None:
    async def breaks() -> AsyncIterator[bytes]:
        yield b"partial"
        raise RuntimeError("boom")

    async def handler(request: Request) -> Response:
        return {"status": 200, "stream": breaks()}

    with anyio.fail_after(5):
        async with TestClient(build_server(handler)) as client:
            with pytest.raises(httpx.RemoteProtocolError):
                await client.get("/")


async def test_app_that_never_responds_gives_500() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            raise ValueError("no lifespan")

    with anyio.fail_after(5):
        async with TestClient(app) as client:
            assert (await client.get("/")).status_code == 500


async def test_app_errors_reach_the_test() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raise KeyError("bug")

    with anyio.fail_after(5):
        async with TestClient(app, lifespan=False) as client:
            with pytest.raises(KeyError):
                await client.get("/")


async def test_the_app_sees_a_disconnect_after_its_response() -> None:
    seen: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})
        seen.append(await receive())

    with anyio.fail_after(5):
        async with TestClient(app, lifespan=False) as client:
            assert (await client.get("/")).text == "done"
    assert seen == [{"type": "http.disconnect"}]


def test_import_without_httpx_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "httpx", None)  # what import sees when it is not installed
    for name in ("shallot.testing", "shallot._testing_http", "shallot._testing_ws"):
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(
        ImportError,
        match=r"needs httpx: install shallot's 'test' extra \(from a checkout: pip install -e",
    ):
        importlib.import_module("shallot.testing")
