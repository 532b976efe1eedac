"""The upload app the integration tests serve ("tests.integration.upload_apps:upload_app").

Multipart forms on ``/form`` (``/small-form`` with tiny limits), a streamed body on ``/raw``,
and what a test needs to look inside the server process: ``/memory`` (resident and peak
memory, the peak reset first with ``?reset``) and ``/temp-files`` (descriptors open in the
upload folder, ``UPLOAD_DIR`` in the environment).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from shallot import apply_middleware, build_server, standard_not_found, stream_body
from shallot._types import Request, Response
from shallot.middlewares import wrap_multipart, wrap_parameters, wrap_routes
from shallot.response import json

MIB = 1024 * 1024
#: Where spooled files go: a folder of the test's own, so it can count them.
UPLOAD_DIR = Path(os.environ.get("UPLOAD_DIR", "/tmp"))


def _memory_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise LookupError(field)


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (proc(5))


def _temp_files() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith(f"{UPLOAD_DIR}/")
        except OSError:
            continue
    return count


async def form(request: Request) -> Response:
    files: dict[str, list[dict[str, Any]]] = {}
    for name, uploads in request["files"].items():
        files[name] = []
        for upload in uploads:
            digest = hashlib.sha256()
            while chunk := await upload.read(MIB):
                digest.update(chunk)
            files[name].append(
                {
                    "filename": upload.filename,
                    "content_type": upload.content_type,
                    "size": upload.size,
                    "sha256": digest.hexdigest(),
                    "in_memory": upload.in_memory,
                }
            )
    return json({"params": request["params"], "files": files, "temp_files": _temp_files()})


@stream_body(max_size=300 * MIB)
async def raw(request: Request) -> Response:
    digest = hashlib.sha256()
    chunks = 0
    async for chunk in request["body_stream"]:
        digest.update(chunk)
        chunks += 1
    return json({"sha256": digest.hexdigest(), "chunks": chunks, "body": len(request["body"])})


async def memory(request: Request) -> Response:
    if "reset" in request["params"]:
        _reset_peak()
    return json({"rss_kib": _memory_kib("VmRSS"), "peak_kib": _memory_kib("VmHWM")})


async def temp_files(request: Request) -> Response:
    return json({"temp_files": _temp_files()})


_multipart = wrap_multipart(
    max_file_size=300 * MIB, max_request_size=300 * MIB, temp_dir=UPLOAD_DIR
)
_small = wrap_multipart(max_file_size=1024, max_parts=3, temp_dir=UPLOAD_DIR)

upload_app = build_server(
    apply_middleware(
        wrap_parameters(keep_blank_values=True),
        wrap_routes(
            [
                ("/form", ["POST"], apply_middleware(_multipart)(form)),
                ("/small-form", ["POST"], apply_middleware(_small)(form)),
                ("/raw", ["PUT"], raw),
                ("/memory", ["GET"], memory),
                ("/temp-files", ["GET"], temp_files),
            ]
        ),
    )(standard_not_found),
    max_body_size=1024,  # multipart and streamed routes set their own limits
)
