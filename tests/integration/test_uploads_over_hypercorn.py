"""Uploads against real hypercorn processes, asyncio and trio workers (issue 15): multipart
forms and streamed bodies sent by httpx, limits, a client that leaves mid-upload, and the
server's memory during a 200 MiB upload."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from .server import HypercornServer, run_hypercorn

pytestmark = pytest.mark.slow  # real processes and sockets; still part of the default run

MIB = 1024 * 1024
BOUNDARY = "shallot-upload-test"


@pytest.fixture(scope="module")
def upload_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("uploads")


@pytest.fixture(scope="module")
async def upload_server(worker_class: str, upload_dir: Path) -> AsyncIterator[HypercornServer]:
    async with run_hypercorn(
        "tests.integration.upload_apps:upload_app",
        worker_class=worker_class,
        env={"UPLOAD_DIR": str(upload_dir)},
    ) as server:
        yield server


@pytest.fixture
async def client(upload_server: HypercornServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=upload_server.url, timeout=30) as c:
        yield c


async def temp_files(client: httpx.AsyncClient) -> int:
    return int((await client.get("/temp-files")).json()["temp_files"])


async def wait_for_temp_files(client: httpx.AsyncClient, count: int) -> None:
    """Asks the server until it holds ``count`` upload files: another process, so there is
    nothing to wait on but its answers (bound it with ``anyio.fail_after``)."""
    for _ in range(1000):
        if await temp_files(client) == count:
            return
        await anyio.sleep(0.02)
    raise AssertionError(f"the server never held {count} upload files")


async def test_a_form_with_fields_and_files(client: httpx.AsyncClient, upload_dir: Path) -> None:
    large = os.urandom(3 * MIB)
    with anyio.fail_after(20):
        response = await client.post(
            "/form?a=1",
            data={"a": "2", "note": "café"},
            files=[
                ("doc", ("notes.txt", b"small", "text/plain")),
                ("doc", ("big.bin", large, "application/octet-stream")),
            ],
        )
        left_open = await temp_files(client)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["params"] == {"a": ["1", "2"], "note": ["café"]}
    small, big = result["files"]["doc"]
    assert small == {
        "filename": "notes.txt",
        "content_type": "text/plain",
        "size": 5,
        "sha256": hashlib.sha256(b"small").hexdigest(),
        "in_memory": True,
    }
    assert big["size"] == len(large)
    assert big["sha256"] == hashlib.sha256(large).hexdigest()
    assert big["in_memory"] is False
    assert result["temp_files"] == 1  # the large one, on disk while the handler ran
    assert left_open == 0
    assert os.listdir(upload_dir) == []


async def post_whole(client: httpx.AsyncClient, url: str, **form: Any) -> httpx.Response:
    """Posts a multipart form as one piece. httpx sends a form part by part; when the server
    refuses it part way and closes the connection, parts still in flight make the kernel
    reset it, and the client may lose the 413 (RFC 9112 §9.6). Sent whole, it is all read."""
    request = client.build_request("POST", url, **form)
    body = await request.aread()
    return await client.post(
        url, content=body, headers={"content-type": request.headers["content-type"]}
    )


async def test_limits_get_413_and_malformed_bodies_400(client: httpx.AsyncClient) -> None:
    with anyio.fail_after(20):
        too_big = await post_whole(client, "/small-form", files={"f": ("f", b"x" * 2000)})
        too_many = await post_whole(
            client, "/small-form", data={"a": "1", "b": "2", "c": "3"}, files={"f": ("f", b"")}
        )
        malformed = await client.post(
            "/form",
            content=b"--x\r\nno headers here",
            headers={"content-type": "multipart/form-data; boundary=x"},
        )
        still_serving = await client.post("/form", data={"a": "1"}, files={"f": ("f", b"")})
    assert too_big.status_code == 413
    assert too_big.text == "Payload Too Large: file 'f' exceeds 1024 bytes"
    assert too_many.status_code == 413
    assert too_many.text == "Payload Too Large: more than 3 parts"
    assert malformed.status_code == 400
    assert malformed.text.startswith("Bad Request: ")
    assert still_serving.status_code == 200


async def test_a_streamed_body_arrives_in_chunks(client: httpx.AsyncClient) -> None:
    block = os.urandom(256 * 1024)

    async def body() -> AsyncIterator[bytes]:
        for _ in range(16):
            yield block

    with anyio.fail_after(20):
        response = await client.put("/raw", content=body())
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["sha256"] == hashlib.sha256(block * 16).hexdigest()
    assert result["body"] == 0
    assert result["chunks"] > 1


async def test_a_client_leaving_mid_upload_leaves_no_file_behind(
    upload_server: HypercornServer, client: httpx.AsyncClient
) -> None:
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="f"; filename="f.bin"\r\n\r\n'
    ).encode()
    request = (
        "POST /form HTTP/1.1\r\nhost: test\r\n"
        f"content-type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"content-length: {10 * MIB}\r\n\r\n"
    ).encode()
    with anyio.fail_after(20):
        async with await anyio.connect_tcp("127.0.0.1", upload_server.port) as stream:
            await stream.send(request + head)
            for _ in range(2):  # past the 1 MiB spool: the file is on disk
                await stream.send(b"x" * MIB)
            await wait_for_temp_files(client, 1)  # on disk, the request unfinished
        await wait_for_temp_files(client, 0)  # the client has gone: the file must go too


async def _big_form(size: int, block: bytes) -> AsyncIterator[bytes]:
    yield (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="big"; filename="big.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    for _ in range(size // len(block)):
        yield block
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


async def test_a_200_mib_upload_keeps_server_memory_bounded(client: httpx.AsyncClient) -> None:
    size = 200 * MIB
    block = os.urandom(MIB)
    digest = hashlib.sha256()
    for _ in range(size // MIB):
        digest.update(block)
    with anyio.fail_after(120):
        before: dict[str, Any] = (await client.get("/memory?reset")).json()
        response = await client.post(
            "/form",
            content=_big_form(size, block),
            headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"},
        )
        after: dict[str, Any] = (await client.get("/memory")).json()
    assert response.status_code == 200, response.text
    (big,) = response.json()["files"]["big"]
    assert big["size"] == size
    assert big["sha256"] == digest.hexdigest()
    grown_mib = (after["peak_kib"] - before["rss_kib"]) / 1024
    assert grown_mib < 20, f"server memory grew by {grown_mib:.1f} MiB during the upload"
