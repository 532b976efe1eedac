"""Uploads: an HTML form with a file field, and a route that stores a raw body as it arrives.

    GET  /               a form: a caption and one or more files
    POST /photos         the form's multipart body (wrap_multipart): each file saved, 201
    PUT  /files/{name}   the body streamed straight to a file (stream_body), up to 1 GiB: 201
    GET  /files          the saved files and their sizes, as JSON
    GET  /files/{name}   one file, streamed back

Files go to a folder that the lifespan creates (``UPLOAD_FOLDER``, or a new temporary one
that it removes at shutdown) and every handler finds in ``request["config"]``. Neither route
holds a whole upload in memory: the form's files are spooled to disk past 1 MiB and copied in
chunks, the raw body is written chunk by chunk as it comes. Run it with
``python examples/uploads.py`` (``trio`` as argument for trio), then, for example::

    curl -i -F caption=holiday -F photo=@beach.jpg localhost:8000/photos
    curl -i -T big.iso localhost:8000/files/big.iso
    curl -s localhost:8000/files
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio

from shallot import UploadedFile, build_server, serve, standard_not_found, stream_body
from shallot.middlewares import apply_middleware, wrap_multipart, wrap_parameters, wrap_routes
from shallot.response import json, respond400, respond404

Request = dict[str, Any]
Response = dict[str, Any]

CHUNK = 64 * 1024
FORM = b"""<!doctype html>
<title>Uploads</title>
<form method="post" action="/photos" enctype="multipart/form-data">
  <input name="caption" placeholder="caption">
  <input type="file" name="photo" multiple>
  <button>Upload</button>
</form>
"""


@asynccontextmanager
async def lifespan() -> AsyncIterator[dict[str, Any]]:
    """The upload folder, for the app's whole life."""
    given = os.environ.get("UPLOAD_FOLDER")
    folder = Path(given) if given else Path(tempfile.mkdtemp(prefix="shallot-uploads-"))
    try:
        yield {"folder": folder}
    finally:
        if not given:
            shutil.rmtree(folder, ignore_errors=True)


def target(request: Request, name: str) -> Path | None:
    """Returns where a file called ``name`` goes: its last path segment, in the upload folder
    (a client's filename is never used as a path unchanged); None for a name with nothing
    usable, or a hidden one."""
    plain = name.replace("\\", "/").rsplit("/", 1)[-1]
    if not plain or plain.startswith("."):
        return None
    return Path(request["config"]["folder"]) / plain


async def index(request: Request) -> Response:
    return {"status": 200, "headers": {"content-type": "text/html; charset=utf-8"}, "body": FORM}


async def save(upload: UploadedFile, path: Path) -> int:
    """Copies an upload to ``path`` a chunk at a time; returns its size."""
    async with await anyio.open_file(path, "wb") as out:
        while chunk := await upload.read(CHUNK):
            await out.write(chunk)
    return upload.size


async def add_photos(request: Request) -> Response:
    uploads = request["files"].get("photo", [])
    if not uploads:
        return respond400("Bad Request: no photo in the form")
    saved = []
    for upload in uploads:
        path = target(request, upload.filename)
        if path is None:
            return respond400(f"Bad Request: unusable file name {upload.filename!r}")
        saved.append({"name": path.name, "size": await save(upload, path)})
    caption = request["params"].get("caption", [""])[0]
    return json({"caption": caption, "saved": saved}, status=201)


@stream_body(max_size=1024**3)
async def put_file(request: Request, name: str) -> Response:
    path = target(request, name)
    if path is None:
        return respond400(f"Bad Request: unusable file name {name!r}")
    partial = path.with_name(f".{path.name}.part")
    try:
        async with await anyio.open_file(partial, "wb") as out:
            async for chunk in request["body_stream"]:
                await out.write(chunk)
        await anyio.Path(partial).rename(path)
    finally:  # a refused or abandoned upload leaves nothing behind, even when cancelled
        with anyio.CancelScope(shield=True), anyio.move_on_after(5):
            await anyio.Path(partial).unlink(missing_ok=True)
    return json({"name": path.name, "size": request["body_stream"].received}, status=201)


async def list_files(request: Request) -> Response:
    folder = anyio.Path(request["config"]["folder"])
    files = {}
    async for path in folder.iterdir():
        if not path.name.startswith("."):
            files[path.name] = (await path.stat()).st_size
    return json(dict(sorted(files.items())))


async def get_file(request: Request, name: str) -> Response:
    path = target(request, name)
    if path is None or not await anyio.Path(path).is_file():
        return respond404()

    # ASYNC119: shallot closes a response's stream (aclose) as soon as the response ends, so
    # the file is closed then, not left to the garbage collector.
    async def chunks() -> AsyncIterator[bytes]:
        async with await anyio.open_file(path, "rb") as source:
            while chunk := await source.read(CHUNK):
                yield chunk  # noqa: ASYNC119

    return {
        "status": 200,
        "headers": {"content-type": "application/octet-stream"},
        "stream": chunks(),
    }


app = build_server(
    apply_middleware(
        wrap_parameters(),  # request["params"] from the query string
        wrap_multipart(max_file_size=50 * 1024**2),  # the form's fields join params
        wrap_routes(
            [
                ("/", ["GET"], index),
                ("/photos", ["POST"], add_photos),
                ("/files", ["GET"], list_files),
                ("/files/{name}", ["GET"], get_file),
                ("/files/{name}", ["PUT"], put_file),
            ]
        ),
    )(standard_not_found),
    lifespan=lifespan,
)


async def interrupted() -> None:
    """Returns at the first Ctrl+C (SIGINT) or SIGTERM: serve's cue to shut down gracefully."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            return


async def main() -> None:
    await serve(app, port=int(os.environ.get("PORT", "8000")), shutdown_trigger=interrupted)


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
