"""The HTTP features of issue 15 over real hypercorn processes (asyncio and trio workers):
server-sent events read by a real streaming client, sessions, CSRF, redirects and a static
site, served by the examples as users run them."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import cast

import anyio
import httpx
import pytest

from .server import HypercornServer, run_hypercorn

pytestmark = [
    pytest.mark.slow,
    # httpx and httpcore leave inner async generators unfinished when a stream is closed early
    pytest.mark.filterwarnings("ignore:Async generator 'httpcore.:ResourceWarning"),
    pytest.mark.filterwarnings("ignore:Async generator 'httpx.:ResourceWarning"),
]


@pytest.fixture(scope="module")
async def feed_server(worker_class: str) -> AsyncIterator[HypercornServer]:
    async with run_hypercorn("examples.live_feed:app", worker_class=worker_class) as server:
        yield server


@pytest.fixture(scope="module")
async def site_server(worker_class: str) -> AsyncIterator[HypercornServer]:
    async with run_hypercorn("examples.static_site:app", worker_class=worker_class) as server:
        yield server


async def next_event(lines: AsyncIterator[str]) -> dict[str, str]:
    """Reads the next event from an event stream's lines, as a browser does: comments
    skipped, ``data`` lines joined."""
    fields: dict[str, str] = {}
    async for line in lines:
        if line == "":
            if fields:
                return fields
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(": ")
        if name == "data" and "data" in fields:  # data lines join with newlines
            value = fields["data"] + "\n" + value
        fields[name] = value
    raise AssertionError("the event stream ended")


async def test_a_real_client_reads_the_feed_as_server_sent_events(
    feed_server: HypercornServer,
) -> None:
    url = feed_server.url
    with anyio.fail_after(15):
        async with (
            httpx.AsyncClient(base_url=url, timeout=10) as ada,
            httpx.AsyncClient(base_url=url, timeout=10) as reader,
        ):
            signed_in = await ada.post("/login", data={"name": "ada"})
            assert signed_in.status_code == 303
            # Last-Event-ID 0: lines posted before the subscription took hold are replayed
            headers = {"last-event-id": "0"}
            async with reader.stream("GET", "/events", headers=headers) as response:
                assert response.status_code == 200
                assert response.headers["content-type"] == "text/event-stream"
                assert "content-length" not in response.headers
                lines = cast(AsyncGenerator[str, None], response.aiter_lines())
                async with aclosing(lines):
                    await ada.post("/say", data={"text": "first"})
                    first = await next_event(lines)
                    await ada.post("/say", data={"text": "second"})
                    second = await next_event(lines)
            assert first["event"] == second["event"] == "line"
            assert json.loads(first["data"])["text"] == "first"
            assert json.loads(second["data"]) == {
                "id": int(second["id"]),
                "name": "ada",
                "text": "second",
            }
            # a page that reconnects gets what it missed, from the id it last saw
            await ada.post("/say", data={"text": "missed"})
            again = {"last-event-id": first["id"]}
            async with reader.stream("GET", "/events", headers=again) as response:
                lines = cast(AsyncGenerator[str, None], response.aiter_lines())
                async with aclosing(lines):
                    replayed = [await next_event(lines), await next_event(lines)]
            texts = [json.loads(event["data"])["text"] for event in replayed]
            assert texts == ["second", "missed"]


async def test_forms_from_other_sites_are_refused_and_redirects_are_303(
    feed_server: HypercornServer,
) -> None:
    with anyio.fail_after(10):
        async with httpx.AsyncClient(base_url=feed_server.url, timeout=10) as client:
            forged = await client.post(
                "/login", data={"name": "x"}, headers={"origin": "https://evil.example"}
            )
            assert (forged.status_code, forged.text) == (
                403,
                f"cross-site request refused (Origin https://evil.example is not "
                f"127.0.0.1:{feed_server.port})",
            )
            own = await client.post(
                "/login", data={"name": "bob"}, headers={"origin": feed_server.url}
            )
            assert (own.status_code, own.headers["location"]) == (303, "/")
            assert "Signed in as <b>bob</b>" in (await client.get("/")).text
            tampered = own.cookies["session"][:-3] + "abc"
            client.cookies.clear()
            client.cookies.set("session", tampered)
            assert 'action="/login"' in (await client.get("/")).text


async def test_the_static_site_over_hypercorn(site_server: HypercornServer) -> None:
    with anyio.fail_after(10):
        async with httpx.AsyncClient(base_url=site_server.url, timeout=10) as client:
            moved = await client.get("/docs?x=1")
            assert (moved.status_code, moved.headers["location"]) == (301, "/docs/?x=1")
            docs = await client.get("/docs/")
            assert "<h1>Docs</h1>" in docs.text
            css = await client.get("/assets/style.8d3f2a61.css")
            assert css.headers["cache-control"] == "public, max-age=31536000, immutable"
            absurd = await client.get(  # issue 13: ignored, never a 500
                "/", headers={"if-modified-since": "Mon, 01 Jan 99999999999 00:00:00 GMT"}
            )
            assert absurd.status_code == 200
            assert "static site" in absurd.text
    assert "Traceback" not in site_server.logs


async def test_server_sent_events_keep_alive_and_stop_when_the_client_leaves(
    core_server: HypercornServer,
) -> None:
    stream_id = uuid.uuid4().hex
    async with httpx.AsyncClient(base_url=core_server.url, timeout=10) as client:
        with anyio.fail_after(10):
            async with client.stream("GET", f"/sse/{stream_id}") as response:
                assert response.headers["content-type"] == "text/event-stream"
                lines = cast(AsyncGenerator[str, None], response.aiter_lines())
                async with aclosing(lines):
                    assert await next_event(lines) == {
                        "event": "hello",
                        "data": "first\nsecond",
                        "id": "1",
                    }
                    seen = [await anext(lines) for _ in range(4)]
                    assert seen.count(": keep-alive") == 2  # each comment, then its blank line
                    state = await client.get(f"/stream-state/{stream_id}")
                    assert state.json() == {"state": "running"}
            # the connection is closed: the events' finally must run on the server
            closed = await client.get(f"/stream-closed/{stream_id}")
            assert closed.json() == {"state": "closed"}
