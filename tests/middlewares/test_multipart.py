"""wrap_multipart: fields and files of multipart/form-data bodies, read as they arrive, with
413 for each limit, 400 for malformed bodies, and every temporary file closed when the request
ends (issue 15).

Files past ``spool_size`` live in ``temp_dir``, unlinked as they are made, so a leaked one
shows only as an open descriptor: ``files_open_in`` counts the process's descriptors that
point into the folder (and ``os.listdir`` stays empty throughout).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from shallot import UploadedFile, apply_middleware, build_server, standard_not_found
from shallot._types import Request, Response
from shallot.middlewares import wrap_multipart, wrap_parameters, wrap_routes
from shallot.response import text
from shallot.testing import TestClient
from tests.test_http import DISCONNECT, FakeServer, chunk, http_scope, serve, watchdog

KIB = 1024
MIB = 1024 * KIB
BOUNDARY = "b0undary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


def files_open_in(folder: Path) -> int:
    """How many of this process's file descriptors point into ``folder``."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed meanwhile (the listing's own descriptor)
            continue
        count += target.startswith(f"{folder}/")
    return count


def body_of(*parts: tuple[str, str], end: bool = True) -> bytes:
    """A multipart body of (headers, content) parts; lone surrogates become raw bytes."""
    out = b"".join(
        f"--{BOUNDARY}\r\n{headers}\r\n\r\n{content}\r\n".encode("utf-8", "surrogateescape")
        for headers, content in parts
    )
    return out + (f"--{BOUNDARY}--\r\n".encode() if end else b"")


def field(name: str, value: str) -> tuple[str, str]:
    return f'Content-Disposition: form-data; name="{name}"', value


class Seen:
    """A handler that records the request and reads every file, in memory or not."""

    def __init__(self) -> None:
        self.request: Request = {}
        self.contents: dict[str, list[bytes]] = {}
        self.in_memory: list[bool] = []

    async def __call__(self, request: Request) -> Response:
        self.request = request
        for name, uploads in request["files"].items():
            for upload in uploads:
                self.in_memory.append(upload.in_memory)
                self.contents.setdefault(name, []).append(await upload.read())
        return text("ok")


def app_of(handler: Any, *middlewares: Any, **options: Any) -> Any:
    if not middlewares:
        middlewares = (wrap_parameters(), wrap_multipart(**options))
    routes = wrap_routes([("/form", ["POST"], handler)])
    return build_server(apply_middleware(*middlewares, routes)(standard_not_found))


async def test_fields_join_params_and_files_arrive(tmp_path: Path) -> None:
    seen = Seen()
    async with TestClient(app_of(seen, temp_dir=tmp_path)) as client:
        response = await client.post(
            "/form?a=1",
            data={"a": "2", "title": "café"},
            files={"doc": ("notes.txt", b"hello" * 100, "text/markdown")},
        )
    assert response.status_code == 200, response.text
    request = seen.request
    assert request["params"] == {"a": ["1", "2"], "title": ["café"]}
    assert request["form_params"] == {"a": ["2"], "title": ["café"]}
    assert request["query_params"] == {"a": ["1"]}
    assert request["body"] == b""
    (upload,) = request["files"]["doc"]
    assert isinstance(upload, UploadedFile)
    assert (upload.name, upload.filename, upload.content_type) == (
        "doc",
        "notes.txt",
        "text/markdown",
    )
    assert upload.headers["content-type"] == "text/markdown"
    assert 'filename="notes.txt"' in upload.headers["content-disposition"]
    assert upload.size == 500
    assert seen.contents == {"doc": [b"hello" * 100]}
    assert upload.closed  # the request is over


async def test_the_order_of_wrap_parameters_does_not_matter() -> None:
    seen = Seen()
    app = app_of(seen, wrap_multipart(), wrap_parameters())
    async with TestClient(app) as client:
        await client.post("/form?a=1", data={"a": "2"}, files={"f": ("f", b"x")})
    assert seen.request["params"] == {"a": ["1", "2"]}
    assert seen.request["form_params"] == {"a": ["2"]}


async def test_large_files_move_to_disk_and_read_and_seek_there(tmp_path: Path) -> None:
    content = os.urandom(300 * KIB)
    opened: list[int] = []

    async def handler(request: Request) -> Response:
        opened.append(files_open_in(tmp_path))
        small, large = request["files"]["small"][0], request["files"]["large"][0]
        assert small.in_memory
        assert not large.in_memory
        assert await large.read(10) == content[:10]
        assert await large.seek(-10, os.SEEK_END) == len(content) - 10
        assert await large.read() == content[-10:]
        await large.seek(0)
        assert await large.read() == content
        assert await small.read() == b"tiny"
        return text("ok")

    app = app_of(handler, temp_dir=tmp_path, spool_size=100 * KIB)
    async with TestClient(app) as client:
        response = await client.post(
            "/form", files={"small": ("s", b"tiny"), "large": ("l.bin", content)}
        )
    assert response.status_code == 200, response.text
    assert opened == [1]
    assert files_open_in(tmp_path) == 0
    assert os.listdir(tmp_path) == []


async def test_files_are_closed_when_the_handler_fails(tmp_path: Path) -> None:
    uploads: list[UploadedFile] = []

    async def failing(request: Request) -> Response:
        uploads.extend(request["files"]["f"])
        assert files_open_in(tmp_path) == 1
        raise RuntimeError("boom")

    app = app_of(failing, temp_dir=tmp_path, spool_size=KIB)
    async with TestClient(app) as client:
        response = await client.post("/form", files={"f": ("f", b"x" * 10 * KIB)})
    assert response.status_code == 500
    assert len(uploads) == 1
    assert uploads[0].closed
    assert files_open_in(tmp_path) == 0


async def test_files_are_closed_when_the_client_leaves_mid_body(tmp_path: Path) -> None:
    called: list[Request] = []

    async def handler(request: Request) -> Response:
        called.append(request)
        return text("ok")

    half = body_of(('Content-Disposition: form-data; name="f"; filename="f"', "x" * 2 * MIB))
    app = app_of(handler, temp_dir=tmp_path, spool_size=KIB)
    scope = http_scope("POST", "/form", [(b"content-type", MULTIPART.encode())])
    scope["headers"].append((b"content-length", b"%d" % (2 * len(half))))
    with FakeServer(chunk(half[:-20], more=True)) as server, watchdog():
        async with anyio.create_task_group() as tg:
            tg.start_soon(serve, app, server, scope)
            while files_open_in(tmp_path) == 0:  # the file is on disk, the request unfinished
                await anyio.wait_all_tasks_blocked()
            server.client_sends(DISCONNECT)
    assert server.sent == []
    assert called == []
    assert files_open_in(tmp_path) == 0


async def test_files_stay_open_until_a_stream_response_ends(tmp_path: Path) -> None:
    async def send_back(request: Request) -> Response:
        upload = request["files"]["f"][0]

        async def chunks() -> AsyncIterator[bytes]:
            while piece := await upload.read(4 * KIB):
                yield piece

        return {"status": 200, "stream": chunks()}

    content = os.urandom(20 * KIB)
    async with TestClient(app_of(send_back, temp_dir=tmp_path, spool_size=KIB)) as client:
        response = await client.post("/form", files={"f": ("f", content)})
    assert response.content == content
    assert files_open_in(tmp_path) == 0


@pytest.mark.parametrize(
    ("options", "files", "data", "message"),
    [
        ({"max_file_size": 100}, {"f": ("f", b"x" * 101)}, {}, "file 'f' exceeds 100 bytes"),
        ({"max_field_size": 10}, {"f": ("f", b"")}, {"t": "x" * 11}, "field 't' exceeds 10 bytes"),
        ({"max_parts": 2}, {"f": ("f", b"")}, {"a": "1", "b": "2"}, "more than 2 parts"),
        ({"max_request_size": 500}, {"f": ("f", b"x" * 600)}, {}, "the body exceeds 500 bytes"),
    ],
)
async def test_each_limit_gets_413_naming_it(
    options: dict[str, int], files: Any, data: Any, message: str, tmp_path: Path
) -> None:
    seen = Seen()
    async with TestClient(app_of(seen, temp_dir=tmp_path, spool_size=50, **options)) as client:
        response = await client.post("/form", files=files, data=data)
    assert response.status_code == 413
    assert response.text == f"Payload Too Large: {message}"
    assert response.headers["connection"] == "close"
    assert seen.request == {}
    assert files_open_in(tmp_path) == 0


async def test_an_announced_body_over_the_request_limit_is_refused_before_it_is_read() -> None:
    scope = http_scope("POST", "/form", [(b"content-type", MULTIPART.encode())])
    scope["headers"].append((b"content-length", b"1000"))
    seen = Seen()
    with FakeServer() as server, watchdog():
        async with anyio.create_task_group() as tg:
            tg.start_soon(serve, app_of(seen, max_request_size=999), server, scope)
            await server.next_sent()
            await server.next_sent()
            server.client_sends(chunk(b"x" * 1000))  # answered while the client still wrote it
    assert server.status == 413
    assert server.completed
    assert seen.contents == {}  # read and dropped by shallot, never parsed


async def test_the_multipart_limit_replaces_the_apps_body_limit() -> None:
    seen = Seen()
    pile = apply_middleware(wrap_multipart(), wrap_routes([("/form", ["POST"], seen)]))
    async with TestClient(build_server(pile(standard_not_found), max_body_size=100)) as client:
        response = await client.post("/form", files={"f": ("f", b"x" * 10 * KIB)})
    assert response.status_code == 200
    assert seen.contents == {"f": [b"x" * 10 * KIB]}


@pytest.mark.parametrize(
    ("content_type", "body", "reason"),
    [
        ("multipart/form-data", body_of(field("a", "1")), "without a boundary"),
        (MULTIPART, body_of(field("a", "1"), end=False), "ends before its closing boundary"),
        (MULTIPART, b"no boundary anywhere", "does not open with its boundary line"),
        (MULTIPART, b"a preamble\r\n" + body_of(field("a", "1")), "a preamble before it"),
        (MULTIPART, f"--{BOUNDARY}x\r\n".encode(), "does not open with its boundary line"),
        (MULTIPART, body_of(("Content-Type: text/plain", "x")), "no content-disposition"),
        (MULTIPART, body_of(("Content-Disposition: form-data", "x")), "has no name"),
        (MULTIPART, f"--{BOUNDARY}\r\nno colon\r\n\r\n".encode(), "malformed multipart body"),
        (MULTIPART, body_of(field("a", "\udcff")), "field 'a' is not valid utf-8"),
        (f"{MULTIPART}{'x' * 300}", body_of(field("a", "1")), "boundary is too long"),
    ],
)
async def test_malformed_bodies_get_400(content_type: str, body: bytes, reason: str) -> None:
    seen = Seen()
    async with TestClient(app_of(seen)) as client:
        response = await client.post("/form", content=body, headers={"content-type": content_type})
    assert response.status_code == 400
    assert response.text.startswith("Bad Request: ")
    assert reason in response.text
    assert seen.request == {}


async def test_other_requests_pass_through() -> None:
    seen: list[Request] = []

    async def handler(request: Request) -> Response:
        seen.append(request)
        return text("ok")

    async with TestClient(app_of(handler)) as client:
        await client.post("/form", json={"a": 1})
    assert seen[0]["body"] == b'{"a":1}'
    assert "files" not in seen[0]


async def test_a_body_read_before_is_parsed_too() -> None:
    seen = Seen()
    handle = wrap_multipart()(lambda handler, request: handler(request))
    request = {"method": "POST", "headers": {"content-type": MULTIPART}}
    response = await handle(seen, {**request, "body": body_of(field("a", "1"))})
    assert isinstance(response, dict)
    assert response["status"] == 200
    assert seen.request["params"] == {"a": ["1"]}


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"max_file_size": 0}, ValueError),
        ({"max_parts": True}, ValueError),
        ({"spool_size": 1.5}, ValueError),
        ({"encoding": "no-such-codec"}, ValueError),
    ],
)
def test_options_are_checked_when_built(options: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error, match="wrap_multipart"):
        wrap_multipart(**options)
