"""Every built-in middleware in front of HTTP and websocket routes, end to end over hypercorn
with the asyncio and the trio worker (issue 4; the app is ``pile_app``).

The server is started once per worker class, from a plain (not async) module-scoped fixture
that runs hypercorn's harness in a blocking portal of its own. That keeps the server out of
the test's event loop, so the HTTP tests can run their client on the worker's backend (httpx
on trio against the trio worker) while the websocket test runs the ``websockets`` client,
which needs asyncio, against both workers. An async module-scoped fixture could not do that:
anyio's pytest plugin keeps one runner for as long as such a fixture lives, whatever backend a
later test asks for.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import anyio.from_thread
import httpx
import pytest
import sniffio
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedOK, InvalidStatus

from . import pile_app
from .pile_app import ORIGIN
from .server import HypercornServer, run_hypercorn

pytestmark = pytest.mark.slow  # real processes and sockets; still part of the default run

STATIC = Path(pile_app.STATIC_FOLDER) / pile_app.STATIC_FILE


@pytest.fixture(scope="module", params=["asyncio", "trio"])
def worker_class(request: pytest.FixtureRequest) -> str:
    """hypercorn's ``--worker-class``."""
    return str(request.param)


@pytest.fixture
def anyio_backend(worker_class: str) -> str:
    """The client's backend: the worker's, unless a test parametrizes it."""
    return worker_class


@pytest.fixture(scope="module")
def pile_server(worker_class: str) -> Iterator[HypercornServer]:
    with (
        anyio.from_thread.start_blocking_portal("asyncio") as portal,
        portal.wrap_async_context_manager(
            run_hypercorn("tests.integration.pile_app:pile_app", worker_class=worker_class)
        ) as server,
    ):
        yield server
    assert "Traceback" not in server.logs, server.logs  # no handler error along the way


@pytest.fixture
async def client(
    pile_server: HypercornServer, anyio_backend: str
) -> AsyncIterator[httpx.AsyncClient]:
    assert sniffio.current_async_library() == anyio_backend == pile_server.worker_class
    async with httpx.AsyncClient(base_url=pile_server.url, timeout=10) as c:
        yield c


async def test_json_route_with_route_and_query_params(client: httpx.AsyncClient) -> None:
    with anyio.fail_after(10):
        got = await client.get("/api/items/42/?tag=a&tag=b")
        posted = await client.post("/api/items/7?tag=a", json={"name": "pen", "n": [1, 2]})
        form = await client.post("/api/items/7?tag=a", data={"tag": "c"})
        bad = await client.post(
            "/api/items/7", content=b"{", headers={"content-type": "application/json"}
        )
    assert got.status_code == 200
    assert got.headers["content-type"] == "application/json"
    assert got.headers["x-item"] == "42"
    assert got.json() == {
        "item": "42",
        "method": "GET",
        "route": "/api/items/{item_id}",
        "query_params": {"tag": ["a", "b"]},
        "form_params": {},
        "params": {"tag": ["a", "b"]},
        "json": None,
    }
    assert posted.json()["json"] == {"name": "pen", "n": [1, 2]}
    assert posted.json()["method"] == "POST"
    assert form.json()["params"] == {"tag": ["a", "c"]}
    assert (bad.status_code, bad.text) == (400, "Malformed JSON")


async def test_cookies_are_set_kept_and_deleted(client: httpx.AsyncClient) -> None:
    with anyio.fail_after(10):
        assert (await client.get("/session")).json() == {}
        login = await client.post("/session")
        after_login = await client.get("/session")
        await client.delete("/session")
        after_logout = await client.get("/session")
    set_cookies = login.headers.get_list("set-cookie")
    assert len(set_cookies) == 2  # one header per cookie, never joined
    assert "session=s3cret; Path=/; HttpOnly; SameSite=Lax" in set_cookies
    assert after_login.json() == {"session": "s3cret", "theme": "dark"}
    assert after_logout.json() == {"theme": "dark"}


async def test_static_file_with_etag_and_revalidation(client: httpx.AsyncClient) -> None:
    expected = STATIC.read_bytes()
    with anyio.fail_after(10):
        plain = await client.get(
            f"/{pile_app.STATIC_FILE}", headers={"accept-encoding": "identity"}
        )
        zipped = await client.get(f"/{pile_app.STATIC_FILE}")  # httpx accepts gzip
        etag = plain.headers["etag"]
        fresh = await client.get(f"/{pile_app.STATIC_FILE}", headers={"if-none-match": etag})
        # gzip made the tag weak; the weak form still revalidates (weak comparison).
        fresh_weak = await client.get(
            f"/{pile_app.STATIC_FILE}", headers={"if-none-match": zipped.headers["etag"]}
        )
        since = await client.get(
            f"/{pile_app.STATIC_FILE}",
            headers={"if-modified-since": plain.headers["last-modified"]},
        )
        fresh_plain = await client.get(
            f"/{pile_app.STATIC_FILE}",
            headers={"if-none-match": etag, "accept-encoding": "identity"},
        )
    assert plain.status_code == 200
    assert plain.content == expected
    assert plain.headers["content-length"] == str(len(expected))
    assert plain.headers["content-type"].endswith("; charset=utf-8")
    assert plain.headers["accept-ranges"] == "bytes"
    assert etag.startswith('"')
    assert zipped.content == expected
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.headers["etag"] == f"W/{etag}"
    # A 304 carries the etag and vary of the 200 it stands for (RFC 9110 §15.4.5): the
    # gzipped one's for a client that takes gzip, the plain one's for one that does not.
    for not_modified, tag in (
        (fresh, f"W/{etag}"),
        (fresh_weak, f"W/{etag}"),
        (since, f"W/{etag}"),
        (fresh_plain, etag),
    ):
        assert not_modified.status_code == 304
        assert not_modified.content == b""
        assert not_modified.headers["etag"] == tag
        assert "accept-encoding" in not_modified.headers["vary"].lower()


async def test_static_byte_range(client: httpx.AsyncClient) -> None:
    expected = STATIC.read_bytes()
    with anyio.fail_after(10):
        part = await client.get(f"/{pile_app.STATIC_FILE}", headers={"range": "bytes=10-109"})
        tail = await client.get(f"/{pile_app.STATIC_FILE}", headers={"range": "bytes=-20"})
        past = await client.get(
            f"/{pile_app.STATIC_FILE}", headers={"range": f"bytes={len(expected)}-"}
        )
    assert part.status_code == 206
    assert part.content == expected[10:110]
    assert part.headers["content-range"] == f"bytes 10-109/{len(expected)}"
    assert part.headers["content-length"] == "100"
    assert "content-encoding" not in part.headers  # a part of the file is never gzipped
    assert (tail.status_code, tail.content) == (206, expected[-20:])
    assert past.status_code == 416
    assert past.headers["content-range"] == f"bytes */{len(expected)}"


async def test_gzip_of_large_json_and_of_a_stream(client: httpx.AsyncClient) -> None:
    with anyio.fail_after(10):
        zipped = await client.get("/api/big")
        identity = await client.get("/api/big", headers={"accept-encoding": "identity"})
        async with client.stream("GET", "/api/big") as raw:  # the bytes as sent
            compressed = b"".join([chunk async for chunk in raw.aiter_raw()])
        streamed = await client.get("/api/stream")
    assert zipped.status_code == 200
    assert zipped.headers["content-encoding"] == "gzip"
    assert "Accept-Encoding" in zipped.headers["vary"]
    assert zipped.json() == pile_app.big_payload()
    assert int(zipped.headers["content-length"]) == len(compressed)
    assert json.loads(gzip.decompress(compressed)) == pile_app.big_payload()
    assert len(compressed) < len(identity.content) // 4
    assert "content-encoding" not in identity.headers
    assert identity.json() == pile_app.big_payload()
    assert streamed.headers["content-encoding"] == "gzip"
    assert "content-length" not in streamed.headers  # sent chunked
    assert streamed.content == b"".join(pile_app.STREAM_CHUNKS)


async def test_cors_preflight_and_simple_request(client: httpx.AsyncClient) -> None:
    with anyio.fail_after(10):
        preflight = await client.options(
            "/api/items/1",
            headers={
                "origin": ORIGIN,
                "access-control-request-method": "POST",
                "access-control-request-headers": "content-type, x-token",
            },
        )
        refused = await client.options(
            "/api/items/1",
            headers={"origin": ORIGIN, "access-control-request-method": "PUT"},
        )
        simple = await client.get("/api/items/1", headers={"origin": ORIGIN})
        other = await client.get("/api/items/1", headers={"origin": "https://evil.example"})
    assert preflight.status_code == 204
    assert preflight.content == b""
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert preflight.headers["access-control-allow-methods"] == "DELETE, GET, POST"
    assert preflight.headers["access-control-allow-headers"] == "content-type, x-token"
    assert preflight.headers["access-control-allow-credentials"] == "true"
    assert preflight.headers["access-control-max-age"] == "600"
    assert "Origin" in preflight.headers["vary"]
    assert refused.status_code == 403
    assert "access-control-allow-origin" not in refused.headers
    assert simple.status_code == 200
    assert simple.headers["access-control-allow-origin"] == ORIGIN
    assert simple.headers["access-control-allow-credentials"] == "true"
    assert simple.headers["access-control-expose-headers"] == "x-item"
    assert "Origin" in simple.headers["vary"]
    assert other.status_code == 200
    assert "access-control-allow-origin" not in other.headers


async def test_wrong_method_is_405_ws_only_is_426_and_unknown_path_is_404(
    client: httpx.AsyncClient,
) -> None:
    with anyio.fail_after(10):
        wrong = await client.delete("/api/items/1")
        options = await client.options("/api/items/1")  # not a preflight: it reaches routing
        missing = await client.get("/no/such/thing")
        websocket_only = await client.get("/ws/lobby")
        outside = await client.get("/%2e%2e/server.py")
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "GET, HEAD, POST"
    assert options.status_code == 405
    assert (missing.status_code, missing.text) == (404, "Not Found")
    assert missing.headers["content-type"] == "text/plain; charset=utf-8"
    assert websocket_only.status_code == 426  # issue 13: as docs/migration.md says
    assert websocket_only.headers["upgrade"] == "websocket"
    assert outside.status_code == 404


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # the websockets client is asyncio's
async def test_websocket_echo_behind_the_pile(pile_server: HypercornServer) -> None:
    assert sniffio.current_async_library() == "asyncio"
    url = f"ws://127.0.0.1:{pile_server.port}"
    headers = {"cookie": "session=s3cret", "origin": ORIGIN}
    with anyio.fail_after(15):
        async with connect(
            f"{url}/ws/lobby?user=ada&tag=a&tag=b",
            additional_headers=headers,
            open_timeout=10,
            close_timeout=5,
        ) as ws:
            assert json.loads(await ws.recv()) == {
                "room": "lobby",
                "route": "/ws/{room}",
                "cookies": {"session": "s3cret"},
                "query_params": {"user": ["ada"], "tag": ["a", "b"]},
                "json": None,
            }
            await ws.send("hello")
            assert await ws.recv() == "echo: hello"
            await ws.send(b"\x00\xff" * 1000)  # large enough for gzip, which leaves it alone
            assert await ws.recv() == b"\x00\xff" * 1000
            await ws.send("bye")
            with pytest.raises(ConnectionClosedOK) as closed:
                await ws.recv()
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1000, "bye")
        # A page of another site, with the same cookie, is refused before the handler runs.
        evil = {"cookie": "session=s3cret", "origin": "https://evil.example"}
        with pytest.raises(InvalidStatus) as foreign:
            async with connect(f"{url}/ws/lobby", additional_headers=evil, open_timeout=10):
                raise AssertionError("the handshake was accepted")
        assert foreign.value.response.status_code == 403
        # A websocket to a path routed for HTTP only: standard_not_found's 404, as the
        # handshake's answer (hypercorn offers the websocket.http.response extension).
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"{url}/session", open_timeout=10):
                raise AssertionError("the handshake was accepted")
    assert refused.value.response.status_code == 404
    assert refused.value.response.body == b"Not Found"
