"""wrap_gzip: what gets compressed, the headers, and streams compressed incrementally (issue 4)."""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from pathlib import Path
from typing import Any

import anyio
import pytest

from shallot import build_server
from shallot._types import Handler, HandlerResult, Request, Response
from shallot.middlewares import apply_middleware, wrap_gzip, wrap_static
from shallot.middlewares.gzip import DEFAULT_SKIP_CONTENT_TYPES, _accepts_gzip
from shallot.testing import TestClient

TEXT = b"shallot is a small data-driven framework. " * 40  # 1720 bytes, compresses well


def answering(response: Response) -> Handler:
    async def handler(request: Request) -> Response:
        return response

    return handler


def gz(response: Response, **options: Any) -> Handler:
    return apply_middleware(wrap_gzip(**options))(answering(response))


def request(method: str = "GET", accept: str | None = "gzip, deflate") -> Request:
    headers = {} if accept is None else {"accept-encoding": accept}
    return {"method": method, "path": "/", "headers": headers, "body": b""}


async def call(handler: Handler, req: Request | None = None) -> Response:
    result = await handler(req or request())
    assert isinstance(result, dict)
    return result


def text_response(body: bytes = TEXT, /, **headers: str) -> Response:
    return {"status": 200, "headers": {"content-type": "text/plain", **headers}, "body": body}


# --- accept-encoding


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("gzip", True),
        ("GZIP", True),
        ("x-gzip", True),
        ("deflate, gzip", True),
        ("br;q=1.0, gzip;q=0.8", True),
        ("gzip;Q=0.5", True),
        ("gzip ; q=1", True),
        ("*", True),
        ("gzip;q=0", False),
        ("gzip; q=0.000", False),
        ("*;q=0", False),
        ("gzip;q=0, *", False),  # the explicit refusal wins over the wildcard
        ("*, gzip;q=0", False),
        ("gzip;q=abc", False),
        ("deflate, br", False),
        ("identity", False),
        ("", False),
        (None, False),
        (",,, ;", False),
    ],
)
def test_accepts_gzip(value: str | None, accepted: bool) -> None:
    assert _accepts_gzip(value) is accepted


# --- bodies


async def test_a_body_is_compressed_with_the_right_headers() -> None:
    original = text_response(vary="Cookie", etag='"v1"', **{"accept-ranges": "bytes"})
    snapshot = {**original, "headers": dict(original["headers"])}
    result = await call(gz(original))
    assert gzip.decompress(result["body"]) == TEXT
    assert len(result["body"]) < len(TEXT)
    headers = result["headers"]
    assert headers["content-encoding"] == "gzip"
    assert headers["content-length"] == str(len(result["body"]))
    assert headers["vary"] == "Cookie, Accept-Encoding"
    assert headers["etag"] == 'W/"v1"'  # a strong etag names the identity bytes only
    assert "accept-ranges" not in headers  # ranges of the identity bytes don't apply
    assert original == snapshot  # the handler's response is not mutated


async def test_a_weak_etag_stays_and_header_lists_work() -> None:
    pairs = [("Content-Type", "text/html"), ("ETag", 'W/"x"'), ("set-cookie", "a=1")]
    result = await call(gz({"status": 200, "headers": pairs, "body": TEXT}))
    assert result["headers"] == [
        ("Content-Type", "text/html"),
        ("set-cookie", "a=1"),
        ("content-encoding", "gzip"),
        ("etag", 'W/"x"'),
        ("content-length", str(len(result["body"]))),
        ("vary", "Accept-Encoding"),
    ]


async def test_a_client_without_gzip_gets_the_body_and_vary() -> None:
    for req in (request(accept=None), request(accept="gzip;q=0"), request(accept="br")):
        result = await call(gz(text_response()), req)
        assert result["body"] == TEXT
        assert "content-encoding" not in result["headers"]
        assert result["headers"]["vary"] == "Accept-Encoding"


async def test_head_is_left_uncompressed() -> None:
    result = await call(gz(text_response()), request("HEAD"))
    assert result["body"] == TEXT
    assert "content-encoding" not in result["headers"]
    assert result["headers"]["vary"] == "Accept-Encoding"


async def test_small_bodies_stay_as_they_are() -> None:
    small = text_response(b"x" * 499)
    assert await call(gz(small)) is small
    exact = await call(gz(text_response(b"x" * 500)))
    assert exact["headers"]["content-encoding"] == "gzip"
    empty = text_response(b"")
    assert await call(gz(empty, minimum_size=0)) is empty


async def test_incompressible_bodies_stay_as_they_are() -> None:
    noise = os.urandom(2000)
    result = await call(gz(text_response(noise)))
    assert result["body"] == noise
    assert "content-encoding" not in result["headers"]
    assert result["headers"]["vary"] == "Accept-Encoding"


async def test_str_bodies_and_large_bodies_are_compressed() -> None:
    as_text = await call(gz(text_response(TEXT.decode())))  # type: ignore[arg-type]
    assert gzip.decompress(as_text["body"]) == TEXT
    large = TEXT * 400  # compressed in a worker thread
    result = await call(gz(text_response(large), compresslevel=1))
    assert gzip.decompress(result["body"]) == large


@pytest.mark.parametrize(
    "response",
    [
        text_response(**{"content-encoding": "br"}),
        text_response(**{"content-type": "text/event-stream"}),
        text_response(**{"content-type": "image/png"}),
        text_response(**{"content-type": "video/mp4"}),
        text_response(**{"content-type": "Audio/Ogg; codecs=opus"}),
        text_response(**{"content-type": "application/zip"}),
        text_response(**{"content-range": "bytes 0-1719/5000"}),
        text_response(**{"cache-control": "public, No-Transform"}),
        {"status": 204, "headers": {}, "body": TEXT},
        {"status": 304, "headers": {}, "body": TEXT},
        {"status": 101, "headers": {}, "body": TEXT},
        {"status": 200, "headers": {}, "body": 12345},
    ],
    ids=["encoded", "sse", "png", "video", "audio", "zip", "range", "no-transform", "204", "304",
         "101", "not-bytes"],
)  # fmt: skip
async def test_responses_never_compressed_pass_through(response: Response) -> None:
    assert await call(gz(response)) is response


async def test_svg_and_untyped_bodies_are_compressed() -> None:
    for headers in ({"content-type": "image/svg+xml"}, {}, {"content-encoding": "identity"}):
        result = await call(gz({"status": 200, "headers": headers, "body": TEXT}))
        assert gzip.decompress(result["body"]) == TEXT


async def test_the_skipped_types_are_configurable() -> None:
    skip = DEFAULT_SKIP_CONTENT_TYPES | {"text/*"}
    response = text_response()
    assert await call(gz(response, skip_content_types=skip)) is response
    png = text_response(**{"content-type": "image/png"})
    result = await call(gz(png, skip_content_types=()))
    assert gzip.decompress(result["body"]) == TEXT


async def test_websockets_and_takeovers_pass_through() -> None:
    async def takeover(receive: Any, send: Any) -> None:
        raise AssertionError("not run here")

    async def handler(req: Request) -> HandlerResult:
        return takeover

    wrapped = apply_middleware(wrap_gzip())(handler)
    assert await wrapped(request()) is takeover
    assert await wrapped(request("WS")) is takeover
    response = text_response()
    assert await call(gz(response), request("WS")) is response


# --- streams


async def test_streams_are_compressed_incrementally() -> None:
    to_stream, from_test = anyio.create_memory_object_stream[bytes](4)

    async def chunks() -> AsyncIterator[bytes]:
        with from_test:
            async for chunk in from_test:
                yield chunk

    response = {"status": 200, "headers": {"content-length": "18"}, "stream": chunks()}
    result = await call(gz(response, minimum_size=10))
    assert "content-length" not in result["headers"]
    assert result["headers"]["content-encoding"] == "gzip"
    decompressor = zlib.decompressobj(wbits=31)
    with anyio.fail_after(2):
        async with aclosing(result["stream"]) as stream:
            with to_stream:
                await to_stream.send(b"first chunk ")
                # each piece decodes on its own: the client sees it before the stream ends
                assert decompressor.decompress(await stream.__anext__()) == b"first chunk "
                await to_stream.send(b"")  # an empty chunk sends nothing
                await to_stream.send(b"second")
                assert decompressor.decompress(await stream.__anext__()) == b"second"
            rest = [piece async for piece in stream]
    assert decompressor.decompress(b"".join(rest)) == b""
    assert decompressor.eof


async def test_closing_the_compressed_stream_closes_the_inner_one() -> None:
    closed = anyio.Event()

    async def endless() -> AsyncIterator[bytes]:
        try:
            while True:
                yield b"data " * 50
        finally:
            closed.set()

    result = await call(gz({"status": 200, "headers": {}, "stream": endless()}))
    stream = result["stream"]
    await stream.__anext__()
    await stream.aclose()
    assert closed.is_set()


async def test_closing_before_the_first_chunk_closes_the_inner_one() -> None:
    closed = anyio.Event()

    class Chunks:
        def __aiter__(self) -> Chunks:
            return self

        async def __anext__(self) -> bytes:
            raise StopAsyncIteration

        async def aclose(self) -> None:
            closed.set()

    result = await call(gz({"status": 200, "headers": {}, "stream": Chunks()}))
    async with aclosing(result["stream"]) as stream:
        assert gzip.decompress(b"".join([piece async for piece in stream])) == b""
    assert closed.is_set()


async def test_stream_chunks_of_text_are_encoded_and_others_refused() -> None:
    async def mixed() -> AsyncIterator[Any]:
        yield "text "
        yield bytearray(b"bytes ")
        yield 42

    result = await call(gz({"status": 200, "headers": {}, "stream": mixed()}))
    pieces: list[bytes] = []

    async def drain() -> None:
        async with aclosing(result["stream"]) as stream:
            async for piece in stream:
                pieces.append(piece)

    with pytest.raises(TypeError, match="int"):
        await drain()
    assert zlib.decompressobj(wbits=31).decompress(b"".join(pieces)) == b"text bytes "


async def test_a_short_stream_with_a_content_length_stays_as_it_is() -> None:
    async def short() -> AsyncGenerator[bytes, None]:
        yield b"tiny"

    stream = short()
    response = {"status": 200, "headers": {"content-length": "4"}, "stream": stream}
    assert await call(gz(response)) is response
    await stream.aclose()


# --- through a server


async def test_end_to_end_with_static_files(tmp_path: Path) -> None:
    (tmp_path / "site.css").write_bytes(TEXT)
    (tmp_path / "photo.png").write_bytes(TEXT)
    pile = apply_middleware(wrap_gzip(), wrap_static("", str(tmp_path)))
    async with TestClient(build_server(pile(answering(text_response())))) as client:
        css = await client.get("/site.css", headers={"accept-encoding": "gzip"})
        png = await client.get("/photo.png", headers={"accept-encoding": "gzip"})
        part = await client.get(
            "/site.css", headers={"accept-encoding": "gzip", "range": "bytes=0-9"}
        )
        plain = await client.get("/site.css", headers={"accept-encoding": "identity"})
    assert css.headers["content-encoding"] == "gzip"
    assert css.content == TEXT  # httpx decoded it
    assert css.headers["etag"].startswith('W/"')
    assert "content-encoding" not in png.headers
    assert (part.status_code, part.content) == (206, TEXT[:10])
    assert "content-encoding" not in part.headers
    assert "content-encoding" not in plain.headers
    assert plain.headers["content-length"] == str(len(TEXT))
    assert plain.headers["vary"] == "Accept-Encoding"


# --- options


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"minimum_size": -1}, ValueError),
        ({"minimum_size": "500"}, TypeError),
        ({"minimum_size": True}, TypeError),
        ({"compresslevel": 0}, ValueError),
        ({"compresslevel": 10}, ValueError),
        ({"compresslevel": 6.0}, TypeError),
        ({"skip_content_types": "image/png"}, TypeError),
        ({"skip_content_types": ["png"]}, ValueError),
        ({"skip_content_types": ["*/*"]}, ValueError),
    ],
)
def test_bad_options_fail_at_build_time(options: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error, match="wrap_gzip"):
        wrap_gzip(**options)


# --- fixes found by the middleware pile (issue 4)


async def test_head_of_a_static_file_gets_the_vary_its_get_gets(tmp_path: Path) -> None:
    # wrap_static answers HEAD with an empty body and the file's content-length; gzip judged
    # the empty body "too small" and left out the Vary: Accept-Encoding that GET carries.
    (tmp_path / "site.css").write_bytes(TEXT)
    (tmp_path / "tiny.css").write_bytes(b"x" * 10)
    pile = apply_middleware(wrap_gzip(), wrap_static("", str(tmp_path)))
    async with TestClient(build_server(pile(answering(text_response())))) as client:
        get = await client.get("/site.css", headers={"accept-encoding": "gzip"})
        head = await client.head("/site.css", headers={"accept-encoding": "gzip"})
        tiny = await client.head("/tiny.css", headers={"accept-encoding": "gzip"})
    assert get.headers["vary"] == head.headers["vary"] == "Accept-Encoding"
    assert "content-encoding" not in head.headers  # HEAD still describes the identity body
    assert head.headers["content-length"] == str(len(TEXT))
    assert "vary" not in tiny.headers  # under minimum_size, as its GET would be


# --- 304s and 206s carry the Vary and etag of the 200 they stand for (RFC 9110 §15.4.5)


def not_modified(**representation: str) -> Response:
    """A 304 as wrap_static gives it: validators, and the 200's type and size beside them."""
    headers = {"etag": '"v1"', "accept-ranges": "bytes", "cache-control": "no-cache"}
    return {"status": 304, "headers": headers, "representation": representation}


async def test_a_304_gets_the_vary_and_etag_of_the_200_it_stands_for() -> None:
    response = not_modified(**{"content-type": "text/css", "content-length": str(len(TEXT))})
    gzipped = await call(gz(response))
    assert gzipped["status"] == 304
    assert gzipped["headers"] == {
        "cache-control": "no-cache",  # what the compressed 200 has, and no accept-ranges
        "etag": 'W/"v1"',
        "vary": "Accept-Encoding",
    }
    for req in (request(accept="identity"), request("HEAD")):  # their 200 is not compressed
        plain = await call(gz(response), req)
        assert plain["headers"] == {**response["headers"], "vary": "Accept-Encoding"}
    assert response["headers"]["etag"] == '"v1"'  # the handler's response is not mutated


@pytest.mark.parametrize(
    "response",
    [
        not_modified(**{"content-type": "text/css", "content-length": "499"}),
        not_modified(**{"content-type": "image/png", "content-length": "5000"}),
        not_modified(**{"content-type": "text/css"}),  # a size it does not know
        not_modified(),
        {"status": 304, "headers": {"etag": '"v1"'}},  # no representation: nothing to judge
        {**text_response(**{"content-range": "bytes 0-9/499"}), "status": 206},
        {**text_response(**{"content-range": "bytes 0-9/*"}), "status": 206},
        {**text_response(**{"content-type": "video/mp4", "content-range": "bytes 0-9/5000"}),
         "status": 206},
        {**text_response(**{"content-type": "multipart/byteranges; boundary=x"}), "status": 206},
    ],
    ids=["small-304", "png-304", "unsized-304", "empty-304", "bare-304", "small-206",
         "unsized-206", "video-206", "multipart-206"],
)  # fmt: skip
async def test_304s_and_206s_of_what_is_never_compressed_pass_through(
    response: Response,
) -> None:
    assert await call(gz(response)) is response


async def test_a_206_of_a_compressible_file_gets_vary() -> None:
    part = {**text_response(etag='"v1"', **{"content-range": "bytes 0-9/5000"}), "status": 206}
    for req in (request(), request(accept=None)):
        result = await call(gz(part), req)
        assert result["body"] == TEXT  # a part of the identity bytes, never compressed
        assert result["headers"]["vary"] == "Accept-Encoding"
        assert result["headers"]["etag"] == '"v1"'  # if-range compares it strongly


async def test_conditional_requests_through_static_files(tmp_path: Path) -> None:
    (tmp_path / "site.css").write_bytes(TEXT)
    (tmp_path / "tiny.css").write_bytes(b"x" * 10)
    pile = apply_middleware(wrap_gzip(), wrap_static("", str(tmp_path)))
    zipped = {"accept-encoding": "gzip"}
    plain = {"accept-encoding": "identity"}
    async with TestClient(build_server(pile(answering(text_response())))) as client:
        full = await client.get("/site.css", headers=zipped)
        weak = full.headers["etag"]
        strong = weak.removeprefix("W/")
        # the weak etag the client holds matches (weak comparison, RFC 9110 §13.1.2), and so
        # does the strong one: each 304 names what this client's 200 would have been
        answers = [
            await client.get("/site.css", headers={**zipped, "if-none-match": weak}),
            await client.get("/site.css", headers={**zipped, "if-none-match": strong}),
            await client.get("/site.css", headers={**plain, "if-none-match": weak}),
            await client.get("/site.css", headers={**plain, "if-none-match": strong}),
            await client.head("/site.css", headers={**zipped, "if-none-match": weak}),
        ]
        part = await client.get("/site.css", headers={**zipped, "range": "bytes=0-9"})
        by_strong = await client.get(
            "/site.css", headers={**zipped, "range": "bytes=0-9", "if-range": strong}
        )
        by_weak = await client.get(
            "/site.css", headers={**zipped, "range": "bytes=0-9", "if-range": weak}
        )
        tiny = await client.get("/tiny.css", headers=zipped)
        tiny_304 = await client.get(
            "/tiny.css", headers={**zipped, "if-none-match": tiny.headers["etag"]}
        )
    assert (full.headers["content-encoding"], full.headers["vary"]) == ("gzip", "Accept-Encoding")
    assert weak.startswith('W/"')
    etags = [weak, weak, strong, strong, strong]  # HEAD describes the identity body
    for answer, etag in zip(answers, etags, strict=True):
        assert answer.status_code == 304
        assert (answer.headers["etag"], answer.headers["vary"]) == (etag, "Accept-Encoding")
    assert "accept-ranges" not in answers[0].headers  # as on the compressed 200
    assert (part.status_code, part.content, part.headers["etag"]) == (206, TEXT[:10], strong)
    assert part.headers["vary"] == "Accept-Encoding"
    assert (by_strong.status_code, by_strong.headers["vary"]) == (206, "Accept-Encoding")
    # if-range compares strongly: the weak etag gets the whole (compressed) file
    assert (by_weak.status_code, by_weak.headers["content-encoding"]) == (200, "gzip")
    assert (tiny_304.status_code, tiny_304.headers["etag"]) == (304, tiny.headers["etag"])
    assert "vary" not in tiny_304.headers  # under minimum_size, as its 200 is
