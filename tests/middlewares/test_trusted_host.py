"""wrap_trusted_host: only requests addressed to the app's own names (issue 14)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from shallot import build_server, websocket, ws_send
from shallot._types import Request, Response
from shallot.middlewares import apply_middleware, wrap_trusted_host
from shallot.testing import TestClient, WebSocketRejected


async def ok(request: Request) -> Response:
    return {"status": 200, "body": b"ok"}


async def call(host: str | None, hosts: Any = ("example.com", "*.example.org")) -> Response:
    handle = apply_middleware(wrap_trusted_host(hosts))(ok)
    headers = {} if host is None else {"host": host}
    result = await handle({"type": "http", "method": "GET", "path": "/", "headers": headers})
    assert isinstance(result, dict)
    return result


@pytest.mark.parametrize(
    "host",
    ["example.com", "EXAMPLE.com:8443", "example.com.", "api.example.org", "a.b.example.org"],
)
async def test_listed_hosts_pass(host: str) -> None:
    assert (await call(host))["status"] == 200


@pytest.mark.parametrize(
    "host", [None, "", "evil.example", "example.org", "example.com.evil.example", "a b", "x:99999"]
)
async def test_other_hosts_get_400(host: str | None) -> None:
    response = await call(host)
    assert response["status"] == 400
    assert b"host" in response["body"]


async def test_star_lets_everything_through() -> None:
    assert (await call("anything.test", "*"))["status"] == 200


async def test_a_websocket_to_an_unknown_host_gets_403() -> None:
    @websocket
    async def hello(scope: Request, receiver: Any) -> AsyncIterator[Any]:
        yield ws_send("hello")

    app = build_server(apply_middleware(wrap_trusted_host(["testserver"]))(hello))
    with anyio.fail_after(5):
        async with TestClient(app) as client:
            async with client.websocket("/") as ws:
                assert await ws.receive() == "hello"
            with pytest.raises(WebSocketRejected) as refused:
                async with client.websocket("/", headers={"host": "evil.example"}):
                    raise AssertionError("accepted")
            assert (await client.get("/", headers={"host": "evil.example"})).status_code == 400
    assert refused.value.status == 403


def test_hosts_are_checked_once() -> None:
    with pytest.raises(ValueError, match="wrap_trusted_host"):
        wrap_trusted_host(["https://example.com"])
