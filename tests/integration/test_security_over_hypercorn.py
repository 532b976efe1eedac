"""Safe defaults over hypercorn, asyncio and trio workers, with real clients (issue 14).

``shallot.serve`` runs the app in the test's own event loop (so on the test's backend's
worker); the ``websockets`` client sends ``Origin`` as a browser would. A page of another site
is refused with 403 before ``on_connect``; the app's own page, a client without ``Origin``
and, behind a TLS-ending proxy, the public origin as ``wrap_proxy_headers`` reconstructs it,
are let in; ``wrap_trusted_host`` refuses unknown hosts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio
import httpx
import pytest
from websockets.exceptions import InvalidStatus

from shallot import Receiver, build_server, standard_not_found, websocket, ws_accept, ws_send
from shallot._types import ASGIApp, Request, Response
from shallot.middlewares import (
    apply_middleware,
    wrap_proxy_headers,
    wrap_routes,
    wrap_trusted_host,
)
from shallot.response import text

from ..test_serve import running

pytestmark = pytest.mark.slow


def ws_connect(backend: str, url: str, **options: Any) -> AbstractAsyncContextManager[Any]:
    """The ``websockets`` client of the test's backend, with ``origin=`` and headers."""
    if backend == "trio":
        from websockets.trio.client import connect as trio_connect

        return trio_connect(url, proxy=None, open_timeout=5, close_timeout=5, **options)
    from websockets.asyncio.client import connect as asyncio_connect

    return asyncio_connect(url, proxy=None, open_timeout=5, close_timeout=5, **options)


def make_app(connected: list[str]) -> ASGIApp:
    async def on_connect(scope: Request) -> Any:
        connected.append(scope["headers"].get("origin", "-"))
        return ws_accept()

    @websocket(on_connect=on_connect)
    async def hello(scope: Request, receiver: Receiver) -> AsyncIterator[Any]:
        yield ws_send(f"hello {scope['client'][0]} over {scope['scheme']}")

    async def page(request: Request) -> Response:
        return text(f"page for {request['headers']['host']}")

    pile = apply_middleware(
        wrap_proxy_headers("127.0.0.1"),
        wrap_trusted_host(["127.0.0.1", "app.example"]),
        wrap_routes([("/", ["GET"], page), ("/ws", ["WS"], hello)]),
    )
    return build_server(pile(standard_not_found))


async def refused_status(backend: str, url: str, **options: Any) -> int:
    with pytest.raises(InvalidStatus) as refused:
        async with ws_connect(backend, url, **options):
            raise AssertionError("the handshake was accepted")
    return refused.value.response.status_code


async def test_a_foreign_origin_is_refused_and_the_apps_own_passes(anyio_backend: str) -> None:
    connected: list[str] = []
    with anyio.fail_after(15):
        async with running(make_app(connected), grace_period=1) as server:
            url = f"ws://127.0.0.1:{server.port}/ws"
            own = f"http://127.0.0.1:{server.port}"
            assert await refused_status(anyio_backend, url, origin="https://evil.example") == 403
            assert connected == []  # refused before on_connect
            async with ws_connect(anyio_backend, url, origin=own) as ws:
                assert await ws.recv() == "hello 127.0.0.1 over ws"
            async with ws_connect(anyio_backend, url) as ws:  # no Origin: not a browser
                assert await ws.recv() == "hello 127.0.0.1 over ws"
    assert connected == [own, "-"]


async def test_behind_a_tls_proxy_the_public_origin_passes(anyio_backend: str) -> None:
    connected: list[str] = []
    forwarded = {
        "x-forwarded-for": "203.0.113.7",
        "x-forwarded-proto": "https",
        "x-forwarded-host": "app.example",
    }
    with anyio.fail_after(15):
        async with running(make_app(connected), grace_period=1) as server:
            url = f"ws://127.0.0.1:{server.port}/ws"
            async with ws_connect(
                anyio_backend, url, origin="https://app.example", additional_headers=forwarded
            ) as ws:
                assert await ws.recv() == "hello 203.0.113.7 over wss"
            status = await refused_status(
                anyio_backend, url, origin="http://app.example", additional_headers=forwarded
            )
    assert status == 403  # the page was served over https: http is another origin
    assert connected == ["https://app.example"]


async def test_unknown_hosts_are_refused(anyio_backend: str) -> None:
    with anyio.fail_after(15):
        async with running(make_app([]), grace_period=1) as server:
            base = f"http://127.0.0.1:{server.port}"
            async with httpx.AsyncClient(base_url=base, timeout=10, trust_env=False) as client:
                assert (await client.get("/")).text == f"page for 127.0.0.1:{server.port}"
                evil = await client.get("/", headers={"host": "evil.example"})
            assert (evil.status_code, evil.text) == (400, "Bad Request: unknown host")
            # "localhost" reaches the server too, but is not one of its names.
            url = f"ws://localhost:{server.port}/ws"
            assert await refused_status(anyio_backend, url) == 403
