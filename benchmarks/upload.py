"""A 10 MiB multipart upload, in process: shallot's ``wrap_multipart`` against Starlette's
``request.form()``, with a raw ASGI app that only receives the body as the floor (issue 15).

Each contender is called with one scope and a ``receive`` that hands over the same 10 MiB
``multipart/form-data`` body (one file part and one text field) in 64 KiB chunks, as hypercorn
reads a socket; ``send`` drops the answer once checked. Both frameworks spool the file to the
system's temporary folder past 1 MiB (their default) and answer its size; raw answers the
body's size. Contenders run interleaved, each repeat in a new order, and the table shows
medians (min-max) of the milliseconds per upload on asyncio and trio.

    .venv/bin/python benchmarks/upload.py [--quick] [--repeats N] [--uploads N] [--backend trio]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import anyio
from common import cell, environment, interleaved, ratio, table, verdict

MIB = 1024 * 1024
CHUNK = 64 * 1024
BOUNDARY = "----shallot-bench-boundary"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"
CONTENDERS = ("raw", "shallot", "starlette")


def form_body(size: int) -> bytes:
    """Returns a multipart body: a text field, then a file of ``size`` bytes."""
    head = (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="title"\r\n\r\n'
        "holiday pictures\r\n"
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="file"; filename="photos.tar"\r\n'
        "Content-Type: application/x-tar\r\n\r\n"
    ).encode()
    pattern = bytes(range(256)) * 4  # no boundary inside, not all one byte
    content = (pattern * (size // len(pattern) + 1))[:size]
    return head + content + f"\r\n--{BOUNDARY}--\r\n".encode()


def scope_of(body: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/upload",
        "raw_path": b"/upload",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", CONTENT_TYPE.encode()),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "state": {},
        "extensions": {},
    }


def build(contender: str) -> Any:
    """Returns the ASGI app of a contender: each answers 200 with the file's size."""
    if contender == "raw":

        async def raw(scope: Any, receive: Any, send: Any) -> None:
            size = 0
            more = True
            while more:
                message = await receive()
                size += len(message.get("body", b""))
                more = message.get("more_body", False)
            body = str(size).encode()
            headers = [(b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        return raw
    if contender == "shallot":
        from shallot import apply_middleware, build_server, standard_not_found
        from shallot.middlewares import wrap_multipart, wrap_routes
        from shallot.response import text

        async def upload(request: Any) -> Any:
            return text(str(request["files"]["file"][0].size))

        pile = apply_middleware(wrap_multipart(), wrap_routes([("/upload", ["POST"], upload)]))
        return build_server(pile(standard_not_found))
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def starlette_upload(request: Any) -> Any:
        async with request.form() as form:
            return PlainTextResponse(str(form["file"].size))

    return Starlette(routes=[Route("/upload", starlette_upload, methods=["POST"])])


async def call(app: Any, body: bytes) -> tuple[int, bytes]:
    chunks = [body[start : start + CHUNK] for start in range(0, len(body), CHUNK)]
    index = 0
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        nonlocal index
        if index == len(chunks):
            await anyio.sleep_forever()  # a connection that stays open
        index += 1
        return {"type": "http.request", "body": chunks[index - 1], "more_body": index < len(chunks)}

    async def send(message: Any) -> None:
        sent.append(message)

    await app(scope_of(body), receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


async def time_uploads(app: Any, body: bytes, count: int, answer: bytes) -> float:
    """Returns the milliseconds one upload took, the mean of ``count``."""
    got = await call(app, body)  # warm up, and check the answer
    if got != (200, answer):
        raise AssertionError(f"answered {got!r}, expected {(200, answer)!r}")
    gc.collect()
    started = time.perf_counter()
    for _ in range(count):
        await call(app, body)
    return (time.perf_counter() - started) / count * 1e3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats of 3 uploads")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--uploads", type=int, default=5, help="uploads per measurement")
    parser.add_argument("--size-mib", type=int, default=10)
    parser.add_argument("--backend", choices=("asyncio", "trio"), action="append")
    args = parser.parse_args(argv)
    repeats, uploads = (3, 3) if args.quick else (args.repeats, args.uploads)
    backends = args.backend or ["asyncio", "trio"]
    body = form_body(args.size_mib * MIB)
    print(environment())
    samples: dict[str, dict[str, list[float]]] = {}
    for backend in backends:
        apps = {contender: build(contender) for contender in CONTENDERS}
        answers = {"raw": str(len(body)).encode()}
        answers["shallot"] = answers["starlette"] = str(args.size_mib * MIB).encode()
        for repeat in range(repeats):
            print(f"  {backend} repeat {repeat + 1}/{repeats}", file=sys.stderr)
            for contender in interleaved(CONTENDERS, repeat):
                run: Callable[[], Any] = partial(
                    time_uploads, apps[contender], body, uploads, answers[contender]
                )
                value = anyio.run(run, backend=backend)
                samples.setdefault(backend, {}).setdefault(contender, []).append(value)
    print(f"\n#### {args.size_mib} MiB multipart upload, in process ({repeats} repeats, ms/upload)")
    rows = []
    for backend, by_contender in samples.items():
        raw, ours, theirs = (by_contender[name] for name in CONTENDERS)
        shallot_vs_starlette = ratio(ours, theirs)
        rows.append(
            [
                backend,
                cell(raw),
                cell(ours),
                cell(theirs),
                f"{ratio(ours, raw):.2f}",
                f"{shallot_vs_starlette:.2f}",
                f"{verdict(shallot_vs_starlette, 1.0)} (≤ 1.00)",
            ]
        )
    header = ["backend", "raw", "shallot", "starlette", "shallot/raw", "shallot/starlette", "goal"]
    print(table(header, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
