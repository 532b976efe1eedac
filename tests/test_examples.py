"""Every example in ``examples/`` does what its docstring says (issue 6).

The apps are tested in memory with ``TestClient`` on both backends. ``embedding.main`` runs for
real on port 0 next to its worker, and is cancelled. Last, each example is run as the script a
user would run (``python examples/<name>.py [trio]``, with ``PORT=0``), asked for ``/`` and
interrupted with SIGINT, which must stop it cleanly.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from pathlib import Path
from typing import Any, cast

import anyio
import httpx
import pytest

from examples import (
    demo,
    embedding,
    hello,
    live_feed,
    rest,
    static_site,
    uploads,
    websocket_patterns,
)
from shallot.testing import TestClient, WebSocketClosed

from .integration.server import REPO_ROOT, HypercornServer

# -- hello --------------------------------------------------------------------------------------


async def test_hello_answers_every_path_and_method() -> None:
    with anyio.fail_after(2):
        async with TestClient(hello.app) as client:
            response = await client.get("/")
            assert response.status_code == 200
            assert response.text == "Hello, world! You asked for GET /\n"
            response = await client.post("/any/where", content=b"ignored")
            assert response.text == "Hello, world! You asked for POST /any/where\n"


# -- rest ---------------------------------------------------------------------------------------


async def test_rest_creates_lists_changes_and_deletes_todos() -> None:
    with anyio.fail_after(2):
        async with TestClient(rest.app) as client:
            assert (await client.get("/todos")).json() == []
            created = await client.post("/todos", json={"title": "milk"})
            assert created.status_code == 201
            assert created.headers["location"] == "/todos/1"
            assert created.json() == {"id": 1, "title": "milk", "done": False, "author": None}
            await client.post("/todos", json={"title": "bread"})
            changed = await client.patch("/todos/1", json={"done": True})
            assert changed.json()["done"] is True
            assert [t["title"] for t in (await client.get("/todos?done=true")).json()] == ["milk"]
            assert [t["title"] for t in (await client.get("/todos?done=false")).json()] == ["bread"]
            assert (await client.get("/todos/2")).json()["title"] == "bread"
            assert (await client.delete("/todos/1")).status_code == 204
            assert (await client.get("/todos/1")).status_code == 404
            assert [t["id"] for t in (await client.get("/todos")).json()] == [2]


async def test_rest_refuses_bad_input_with_400_and_unknown_things_with_404_or_405() -> None:
    with anyio.fail_after(2):
        async with TestClient(rest.app) as client:
            malformed = await client.post(
                "/todos", content=b"{oops", headers={"content-type": "application/json"}
            )
            assert (malformed.status_code, malformed.text) == (400, "Malformed JSON")
            assert (await client.post("/todos", json={"name": "x"})).status_code == 400
            assert (await client.post("/todos", content=b"title=x")).status_code == 400
            assert (await client.get("/todos?done=maybe")).status_code == 400
            await client.post("/todos", json={"title": "milk"})
            assert (await client.patch("/todos/1", json={"done": "yes"})).status_code == 400
            assert (await client.get("/todos/nope")).status_code == 404
            assert (await client.delete("/todos/7")).status_code == 404
            wrong_method = await client.put("/todos/1", json={})
            assert wrong_method.status_code == 405
            assert wrong_method.headers["allow"] == "DELETE, GET, HEAD, PATCH"


#: Ids that str.isdigit() takes for numbers and int() refuses: a superscript two (percent-encoded
#: in the path, or its UTF-8 bytes in a header) and a number past int()'s 4300 digits.
NOT_NUMBERS = ["\N{SUPERSCRIPT TWO}", "1" * 5000]


@pytest.mark.parametrize("todo_id", NOT_NUMBERS)
async def test_rest_answers_404_to_an_id_that_only_looks_like_a_number(todo_id: str) -> None:
    with anyio.fail_after(2):
        async with TestClient(rest.app) as client:
            await client.post("/todos", json={"title": "milk"})
            path = f"/todos/{todo_id}"
            assert (await client.get(path)).status_code == 404
            assert (await client.patch(path, json={"done": True})).status_code == 404
            assert (await client.delete(path)).status_code == 404
            assert (await client.get("/todos/1")).status_code == 200


async def test_rest_login_cookie_marks_the_author_and_logout_deletes_it() -> None:
    with anyio.fail_after(2):
        async with TestClient(rest.app) as client:
            login = await client.post("/login", json={"name": "ada"})
            assert login.json() == {"hello": "ada"}
            set_cookie = login.headers["set-cookie"]
            assert set_cookie.startswith("user=ada;")
            assert "HttpOnly" in set_cookie
            assert "SameSite=Lax" in set_cookie
            item = (await client.post("/todos", json={"title": "tea"})).json()
            assert item["author"] == "ada"
            logout = await client.post("/logout")
            assert logout.status_code == 204
            assert "Max-Age=0" in logout.headers["set-cookie"]
            assert (await client.post("/todos", json={"title": "x"})).json()["author"] is None


async def test_rest_state_is_made_per_startup_not_per_module() -> None:
    with anyio.fail_after(2):
        async with TestClient(rest.app) as client:
            await client.post("/todos", json={"title": "milk"})
            assert len((await client.get("/todos")).json()) == 1
        async with TestClient(rest.app) as client:  # a new lifespan: a new, empty store
            assert (await client.get("/todos")).json() == []


# -- static_site --------------------------------------------------------------------------------


async def test_static_site_serves_index_with_validators_and_answers_304() -> None:
    with anyio.fail_after(2):
        async with TestClient(static_site.app) as client:
            page = await client.get("/")
            assert page.status_code == 200
            assert page.headers["content-type"] == "text/html; charset=utf-8"
            assert page.headers["cache-control"] == "no-cache"
            assert "<h1>A static site served by shallot</h1>" in page.text
            etag = page.headers["etag"]
            again = await client.get("/", headers={"if-none-match": etag})
            assert again.status_code == 304
            assert again.content == b""
            assert again.headers["cache-control"] == "no-cache"
            since = await client.get(
                "/index.html", headers={"if-modified-since": page.headers["last-modified"]}
            )
            assert since.status_code == 304


async def test_static_site_gzips_and_caches_the_fingerprinted_stylesheet() -> None:
    with anyio.fail_after(2):
        async with TestClient(static_site.app) as client:
            css = await client.get(
                "/assets/style.8d3f2a61.css", headers={"accept-encoding": "gzip"}
            )
            assert css.status_code == 200
            assert css.headers["content-encoding"] == "gzip"
            assert css.headers["cache-control"] == "public, max-age=31536000, immutable"
            assert css.headers["etag"].startswith('W/"')  # gzip makes the etag weak
            assert "--accent" in css.text  # httpx decompressed it
            script = await client.get("/assets/app.js")
            assert "content-encoding" not in script.headers  # too small to be worth it
            assert "cache-control" not in script.headers  # no hash in its name
            # .js is text/javascript or application/javascript, as Python's mimetypes has it
            assert "javascript" in script.headers["content-type"]
            assert (await client.get("/style.8d3f2a61.css")).status_code == 404  # not mounted


async def test_static_site_redirects_a_folder_to_its_index_page() -> None:
    with anyio.fail_after(2):
        async with TestClient(static_site.app) as client:
            moved = await client.get("/docs")
            assert (moved.status_code, moved.headers["location"]) == (301, "/docs/")
            page = await client.get("/docs", follow_redirects=True)
            assert "<h1>Docs</h1>" in page.text
            assert page.headers["cache-control"] == "no-cache"


async def test_static_site_api_route_and_what_is_not_a_file() -> None:
    with anyio.fail_after(2):
        async with TestClient(static_site.app) as client:
            assert "time" in (await client.get("/api/time")).json()
            assert (await client.get("/nothing.html")).status_code == 404
            assert (await client.get("/../rest.py")).status_code == 404
            assert (await client.post("/index.html")).status_code == 404


# -- live_feed ----------------------------------------------------------------------------------
# Its /events stream never ends: tests/integration/test_live_feed_over_hypercorn.py reads it.


async def test_live_feed_signs_in_posts_and_signs_out_with_a_session() -> None:
    with anyio.fail_after(2):
        async with TestClient(live_feed.app) as client:
            page = await client.get("/")
            assert 'action="/login"' in page.text
            assert (await client.post("/say", data={"text": "hi"})).status_code == 403
            signed_in = await client.post("/login", data={"name": "Ada <3"})
            assert (signed_in.status_code, signed_in.headers["location"]) == (303, "/")
            assert "HttpOnly" in signed_in.headers["set-cookie"]
            page = await client.get("/")
            assert "Signed in as <b>Ada &lt;3</b>" in page.text
            assert 'new EventSource("/events")' in page.text
            said = await client.post("/say", data={"text": "hello"})
            assert (said.status_code, said.headers["location"]) == (303, "/")
            assert "set-cookie" not in said.headers  # the session did not change
            assert (await client.post("/login", data={"name": " "})).status_code == 400
            out = await client.post("/logout", follow_redirects=True)
            assert 'action="/login"' in out.text


async def test_live_feed_refuses_forms_posted_from_other_sites() -> None:
    with anyio.fail_after(2):
        async with TestClient(live_feed.app) as client:
            forged = await client.post(
                "/login", data={"name": "x"}, headers={"sec-fetch-site": "cross-site"}
            )
            assert forged.status_code == 403
            assert "set-cookie" not in forged.headers


@pytest.mark.parametrize("last_seen", NOT_NUMBERS)
async def test_live_feed_starts_afresh_after_a_last_event_id_it_cannot_read(
    last_seen: str,
) -> None:
    # ignored, as on a first connection: no history, the lines posted from now on
    with anyio.fail_after(5):
        async with TestClient(live_feed.app) as client:
            await client.post("/login", data={"name": "ada"})
            await client.post("/say", data={"text": "before"})
            headers = {"last-event-id": last_seen.encode()}
            async with client.stream("GET", "/events", headers=headers) as response:
                assert response.status_code == 200
                chunks = cast(AsyncGenerator[bytes, None], response.aiter_raw())
                async with aclosing(chunks):
                    assert await anext(chunks) == b":\n\n"  # the opening comment
                    await anyio.wait_all_tasks_blocked()  # the events wait on the feed
                    await client.post("/say", data={"text": "after"})
                    event = (await anext(chunks)).decode()
            data = next(line for line in event.splitlines() if line.startswith("data: "))
            assert json.loads(data.removeprefix("data: "))["text"] == "after"


# -- websocket_patterns -------------------------------------------------------------------------


async def test_echo_answers_in_kind_until_exit_then_closes_with_1000() -> None:
    with anyio.fail_after(2):
        async with TestClient(websocket_patterns.app) as client:
            async with client.websocket("/echo") as ws:
                await ws.send("hello")
                assert await ws.receive() == "@ECHO: hello"
                await ws.send(b"\x00raw")  # binary stays binary, never "b'...'"
                assert await ws.receive() == b"@ECHO: \x00raw"
                await ws.send("exit")
                assert await ws.receive() == "@ECHO: exit"
                assert await ws.receive() == "bybye"
                assert await ws.wait_closed() == 1000  # a normal end, not "going away"


async def test_chatbot_keeps_its_conversation_per_connection() -> None:
    with anyio.fail_after(2):
        async with TestClient(websocket_patterns.app) as client:
            async with client.websocket("/chatbot") as ada, client.websocket("/chatbot") as bob:
                assert "What is your name?" in await ada.receive_text()
                assert "What is your name?" in await bob.receive_text()
                await ada.send("Ada")
                await bob.send(b"Bob")
                assert (await ada.receive_text()).startswith("Nice to meet you, Ada!")
                assert (await bob.receive_text()).startswith("Nice to meet you, Bob!")
                await ada.send("add 2 3.5")
                assert await ada.receive() == "5.5"
                await ada.send("reverse shallot")
                assert await ada.receive() == "tollahs"
                await bob.send("dance")
                assert await bob.receive() == "Sorry Bob, I know add, time, reverse and bye."
                await ada.send("bye")
                assert await ada.receive() == "Bye, Ada!"
                with pytest.raises(WebSocketClosed) as closed:
                    await ada.receive()
                assert (closed.value.code, closed.value.reason) == (1000, "bye")
                await bob.send("add 1 x")  # bob's conversation goes on
                assert await bob.receive() == "add takes numbers: add 2 3.5"


async def test_votes_fan_in_to_one_counter_and_fan_out_to_every_watcher() -> None:
    with anyio.fail_after(2):
        async with TestClient(websocket_patterns.app) as client:
            async with (
                client.websocket("/results") as first,
                client.websocket("/results") as second,
            ):
                assert await first.receive() == "{}"
                assert await second.receive() == "{}"
                async with client.websocket("/vote") as one, client.websocket("/vote") as two:
                    await one.send("tea")
                    assert await one.receive() == "received: tea"
                    assert await first.receive() == '{"tea": 1}'
                    await two.send("coffee")
                    assert await two.receive() == "received: coffee"
                    assert await first.receive() == '{"coffee": 1, "tea": 1}'
                    await one.send("tea")
                    assert await one.receive() == "received: tea"
                    assert await first.receive() == '{"coffee": 1, "tea": 2}'
                # The second watcher was not reading: its client held the tallies, as a
                # socket's buffers would, and it reads them late, in order.
                assert await second.receive() == '{"tea": 1}'
                assert await second.receive() == '{"coffee": 1, "tea": 1}'
                assert await second.receive() == '{"coffee": 1, "tea": 2}'
                assert (await client.get("/tally")).json() == {"coffee": 1, "tea": 2}
                await second.close()  # a watcher leaving leaves the others alone
                async with client.websocket("/vote") as three:
                    await three.send("tea")
                    assert await three.receive() == "received: tea"
                assert await first.receive() == '{"coffee": 1, "tea": 3}'


async def test_each_lifespan_counts_afresh() -> None:
    with anyio.fail_after(2):
        async with TestClient(websocket_patterns.app) as client:
            async with client.websocket("/vote") as ws:
                await ws.send("tea")
                await ws.receive()
            async with client.websocket("/results") as watcher:
                assert await watcher.receive() == '{"tea": 1}'
        async with TestClient(websocket_patterns.app) as client:
            assert (await client.get("/tally")).json() == {}


# -- uploads ------------------------------------------------------------------------------------


async def test_uploads_saves_form_files_and_streamed_bodies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UPLOAD_FOLDER", str(tmp_path))
    photo = os.urandom(1536 * 1024)  # past the 1 MiB spool: on disk while it is copied

    async def big_body() -> AsyncIterator[bytes]:
        for number in range(8):
            yield bytes([number]) * 100_000

    with anyio.fail_after(5):
        async with TestClient(uploads.app) as client:
            page = await client.get("/")
            assert 'enctype="multipart/form-data"' in page.text
            posted = await client.post(
                "/photos",
                data={"caption": "holiday"},
                files=[("photo", ("C:\\pics\\beach.jpg", photo)), ("photo", ("b.txt", b"hi"))],
            )
            assert (posted.status_code, posted.json()) == (
                201,
                {
                    "caption": "holiday",
                    "saved": [
                        {"name": "beach.jpg", "size": len(photo)},
                        {"name": "b.txt", "size": 2},
                    ],
                },
            )
            put = await client.put("/files/big.bin", content=big_body())
            assert (put.status_code, put.json()) == (201, {"name": "big.bin", "size": 800_000})
            listed = await client.get("/files")
            assert listed.json() == {"b.txt": 2, "beach.jpg": len(photo), "big.bin": 800_000}
            assert (await client.get("/files/beach.jpg")).content == photo
            assert (await client.get("/files/nope")).status_code == 404
    assert (tmp_path / "big.bin").read_bytes() == b"".join([bytes([n]) * 100_000 for n in range(8)])
    assert sorted(os.listdir(tmp_path)) == ["b.txt", "beach.jpg", "big.bin"]


async def test_uploads_refuses_bad_names_and_empty_forms(tmp_path: Path) -> None:
    with anyio.fail_after(5):
        async with TestClient(uploads.app) as client:
            hidden = await client.put("/files/.profile", content=b"x")
            assert (hidden.status_code, hidden.text) == (
                400,
                "Bad Request: unusable file name '.profile'",
            )
            empty = await client.post("/photos", data={"caption": "x"}, files={"other": ("a", b"")})
            assert (empty.status_code, empty.text) == (400, "Bad Request: no photo in the form")


async def test_uploads_removes_its_temporary_folder_at_shutdown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("UPLOAD_FOLDER", raising=False)
    folders: list[Path] = []
    real_mkdtemp = tempfile.mkdtemp

    def mkdtemp(**options: Any) -> str:
        folders.append(Path(real_mkdtemp(**options)))
        return str(folders[-1])

    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)
    with anyio.fail_after(5):
        async with TestClient(uploads.app) as client:
            assert (await client.put("/files/a.txt", content=b"abc")).status_code == 201
            assert (folders[0] / "a.txt").read_bytes() == b"abc"
    assert not folders[0].exists()


# -- demo ---------------------------------------------------------------------------------------


async def test_demo_serves_its_page_json_and_an_echo_that_answers_in_kind() -> None:
    with anyio.fail_after(2):
        async with TestClient(demo.app) as client:
            page = await client.get("/")
            assert page.headers["content-type"] == "text/html; charset=utf-8"
            assert "new WebSocket" in page.text
            hello = await client.get("/hello/ada", params={"x": "1"})
            assert hello.json() == {"hello": "ada", "params": {"x": ["1"]}}
            async with client.websocket("/echo") as ws:
                await ws.send("hi")
                assert await ws.receive() == "@ECHO: hi"
                await ws.send(b"\x01\x02")
                assert await ws.receive() == b"@ECHO: \x01\x02"
                await ws.send("exit")
                assert await ws.receive() == "@ECHO: exit"
                with pytest.raises(WebSocketClosed) as closed:
                    await ws.receive()
                assert (closed.value.code, closed.value.reason) == (1000, "bye")
            assert (await client.get("/nope")).status_code == 404


# -- embedding ----------------------------------------------------------------------------------


async def test_embedding_runs_app_and_worker_in_one_group_and_stops_both(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="examples.embedding")
    returned = anyio.Event()
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            scope = anyio.CancelScope()

            async def run(task_status: Any) -> None:
                with scope:
                    await embedding.main(0, 0.0, task_status=task_status)
                returned.set()

            host, port = await tg.start(run)
            async with httpx.AsyncClient(base_url=f"http://{host}:{port}", trust_env=False) as c:
                submitted = await c.post("/jobs", content=b"count these four words")
                assert (submitted.status_code, submitted.json()) == (202, {"id": 1})
                await anyio.wait_all_tasks_blocked()  # the worker is idle again: job done
                job = (await c.get("/jobs/1")).json()
                assert job == {"id": 1, "state": "done", "words": 4}
                assert (await c.get("/jobs/2")).status_code == 404
            scope.cancel()
            await returned.wait()
    messages = [
        record.getMessage() for record in caplog.records if record.name == "examples.embedding"
    ]
    assert messages[0] == "worker started"
    assert sorted(messages[1:]) == ["app stopped", "worker stopped"]


@pytest.mark.parametrize("job_id", NOT_NUMBERS)
async def test_embedding_answers_404_to_a_job_id_that_only_looks_like_a_number(
    job_id: str,
) -> None:
    jobs_in, jobs_out = anyio.create_memory_object_stream[tuple[int, str]](1)
    with jobs_in, jobs_out, anyio.fail_after(2):
        async with TestClient(embedding.build_app(jobs_in, {})) as client:
            assert (await client.post("/jobs", content=b"one job")).status_code == 202
            assert (await client.get(f"/jobs/{job_id}")).status_code == 404
            assert (await client.get("/jobs/1")).json()["state"] == "queued"


# -- the scripts, as a user runs them ----------------------------------------------------------


async def _interrupt_with_a_websocket_open(server: HypercornServer, name: str) -> None:
    """Talks to the script's websocket over the real socket, then presses Ctrl+C while it is
    open: the client must get 1001 (going away), and the script must still stop cleanly."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    path = "/echo" if name == "demo" else "/rooms/lobby?nick=ada"
    async with connect(server.url.replace("http", "ws", 1) + path) as ws:
        if name == "demo":
            await ws.send("hi")
            assert await ws.recv() == "@ECHO: hi"
        else:
            assert '"welcome"' in str(await ws.recv())
        server.interrupt()
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1001
    await server.process.wait()  # one Ctrl+C is enough (bounded by the caller's fail_after)


EXAMPLES = [
    "hello",
    "rest",
    "static_site",
    "websocket_patterns",
    "embedding",
    "uploads",
    "live_feed",
    "demo",
    "chat/app",
]


@pytest.mark.slow
@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # the test's side; the script varies
@pytest.mark.parametrize("script_backend", ["asyncio", "trio"])
@pytest.mark.parametrize("name", EXAMPLES)
async def test_script_serves_and_stops_cleanly_on_ctrl_c(name: str, script_backend: str) -> None:
    process = await anyio.open_process(
        [sys.executable, f"examples/{name}.py", script_backend],
        cwd=REPO_ROOT,
        env={**os.environ, "PORT": "0", "PYTHONUNBUFFERED": "1"},
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    server = HypercornServer(process, script_backend)  # reads the port from "Running on"
    assert process.stderr is not None
    assert process.stdout is not None
    async with process, anyio.create_task_group() as tg:
        tg.start_soon(server._drain, process.stderr)
        tg.start_soon(server._drain, process.stdout)
        try:
            with anyio.fail_after(20):
                await server._wait_for_port()
                async with httpx.AsyncClient(base_url=server.url, trust_env=False) as client:
                    response = await client.get("/")
                assert response.status_code in (200, 404)  # rest and embedding have no "/"
                if name in ("demo", "chat/app"):  # pages with a websocket
                    await _interrupt_with_a_websocket_open(server, name)
        finally:
            with anyio.CancelScope(shield=True):
                returncode = await server.stop(grace=10)
    assert returncode == 0, server.logs
    assert "Traceback" not in server.logs
