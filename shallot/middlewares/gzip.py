"""Compression: ``wrap_gzip`` gzips response bodies and streams for clients that accept it.

Whether a response is worth compressing depends on the response alone (status, size, media
type, ``content-encoding``, ``content-range``, ``cache-control: no-transform``); whether it is
compressed also depends on the request's ``accept-encoding`` (RFC 9110 §12.5.3), so every
response worth compressing gets ``Vary: Accept-Encoding``. Streams are compressed chunk by chunk
and flushed after each chunk, so a slow stream stays incremental. A compressed response has no
byte ranges of its own, so its ``accept-ranges`` is dropped and a strong ``etag`` becomes weak.
A ``304`` carries the ``etag`` and ``vary`` of the ``200`` it stands for (RFC 9110 §15.4.5),
judged by its ``representation`` key (``wrap_static`` sets it); a ``206`` of a file worth
compressing gets ``vary`` too.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from typing import Any

import anyio

from .._streams import as_bytes, close_stream
from .._types import Handler, HandlerResult, Middleware, Next, Request, Response
from ._headers import Headers, add_vary, get_header, split_list, with_headers

__all__ = ["DEFAULT_SKIP_CONTENT_TYPES", "wrap_gzip"]

#: Media types whose content is compressed already; ``"type/*"`` covers a whole top-level type.
DEFAULT_SKIP_CONTENT_TYPES = frozenset(
    {
        "image/png", "image/apng", "image/jpeg", "image/gif", "image/webp", "image/avif",
        "image/heic", "image/heif", "image/jxl", "video/*", "audio/*", "font/woff", "font/woff2",
        "application/zip", "application/gzip", "application/x-gzip", "application/x-bzip2",
        "application/x-xz", "application/zstd", "application/x-7z-compressed",
        "application/vnd.rar", "application/x-rar-compressed", "application/x-brotli",
    }
)  # fmt: skip
#: Bodies larger than this are compressed in a worker thread, off the event loop.
_THREAD_THRESHOLD = 256 * 1024
_GZIP = 31  # zlib wbits for a gzip header and trailer


def _accepts_gzip(accept_encoding: str | None) -> bool:
    """Returns whether an ``accept-encoding`` value admits gzip: ``gzip`` (or ``x-gzip``) or
    ``*`` listed with a weight above zero, an explicit ``gzip;q=0`` winning over ``*``."""
    weights: dict[str, float] = {}
    for member in split_list(accept_encoding):
        coding, *params = (part.strip() for part in member.split(";"))
        weight = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0  # a weight we cannot read is no consent
        weights.setdefault(coding.lower(), weight)
    for coding in ("gzip", "x-gzip", "*"):
        if coding in weights:
            return weights[coding] > 0
    return False


def _media_type(headers: Headers) -> str:
    content_type = get_header(headers, "content-type") or ""
    return content_type.partition(";")[0].strip().lower()


def _size(value: str | None) -> int:
    """Returns the size a ``content-length`` (or a ``content-range``'s complete length) states,
    ``-1`` when it states none."""
    return int(value) if value is not None and value.isdigit() else -1


def _weak(etag: str | None) -> str | None:
    if etag is None or etag.startswith("W/"):
        return etag
    return f"W/{etag}"


def _as_bytes(chunk: Any) -> bytes:
    data = as_bytes(chunk)
    if data is None:
        raise TypeError(f"stream yielded a {type(chunk).__name__}; it must yield bytes")
    return data


def _compress(data: bytes, level: int) -> bytes:
    compressor = zlib.compressobj(level, zlib.DEFLATED, _GZIP)
    return compressor.compress(data) + compressor.flush()


async def _compress_stream(stream: AsyncIterable[Any], level: int) -> AsyncIterator[bytes]:
    """Yields the gzip of ``stream``, one sync-flushed piece per chunk. Closing this stream
    closes ``stream`` too, so its ``finally`` runs however the response ends."""
    iterator = stream.__aiter__()
    compressor = zlib.compressobj(level, zlib.DEFLATED, _GZIP)
    try:
        async for chunk in iterator:
            data = _as_bytes(chunk)
            if data:  # a flush without data would still send a few bytes
                yield compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
        yield compressor.flush()
    finally:
        # It shields itself, with a timeout.
        await close_stream(iterator, "a stream under wrap_gzip")  # noqa: ASYNC102


def wrap_gzip(
    minimum_size: int = 500,
    compresslevel: int = 6,
    *,
    skip_content_types: Iterable[str] = DEFAULT_SKIP_CONTENT_TYPES,
) -> Middleware:
    """Returns a middleware that gzips responses for clients whose ``accept-encoding`` admits
    gzip.

    Bodies shorter than ``minimum_size`` bytes stay as they are, as do streams whose
    ``content-length`` says they are; ``compresslevel`` is zlib's (1 fastest, 9 smallest).
    Never compressed: responses without content (1xx, 204, 304), those that already have a
    ``content-encoding``, a ``content-range`` (a part of a file) or ``cache-control:
    no-transform``, ``text/event-stream``, and media types in ``skip_content_types`` (exact
    types or ``"type/*"``; ``DEFAULT_SKIP_CONTENT_TYPES`` lists compressed formats). HEAD
    responses are left uncompressed: their headers describe the identity encoding. A 304
    whose ``representation`` (the 200's ``content-type`` and ``content-length``) is worth
    compressing, and a 206 of such a file, get ``vary``; the 304 also gets the weak ``etag``
    when the client's 200 would be compressed.

    Returns:
        The middleware.

    Raises:
        ValueError: ``minimum_size`` is negative, ``compresslevel`` not from 1 to 9, or a
            skipped type is not ``type/subtype``.
        TypeError: an option has the wrong type.
    """
    if isinstance(minimum_size, bool) or not isinstance(minimum_size, int):
        raise TypeError(f"wrap_gzip: minimum_size must be an int, not {minimum_size!r}")
    if minimum_size < 0:
        raise ValueError(f"wrap_gzip: minimum_size must not be negative, not {minimum_size}")
    if isinstance(compresslevel, bool) or not isinstance(compresslevel, int):
        raise TypeError(f"wrap_gzip: compresslevel must be an int, not {compresslevel!r}")
    if not 1 <= compresslevel <= 9:
        raise ValueError(f"wrap_gzip: compresslevel must be from 1 to 9, not {compresslevel}")
    if isinstance(skip_content_types, str):
        raise TypeError("wrap_gzip: skip_content_types must be a collection of media types")
    skipped = frozenset(media_type.lower() for media_type in skip_content_types)
    for media_type in skipped:
        kind, slash, sub = media_type.partition("/")
        if not (kind and slash and sub) or "*" in kind:
            raise ValueError(f"wrap_gzip: {media_type!r} in skip_content_types is not type/subtype")

    def compressible(headers: Headers) -> bool:
        """Returns whether a 200 with these headers may be compressed, whatever its size."""
        encoding = get_header(headers, "content-encoding")
        if encoding is not None and encoding.strip().lower() != "identity":
            return False
        cache_control = split_list(get_header(headers, "cache-control"))
        if "no-transform" in (directive.lower() for directive in cache_control):
            return False  # RFC 9111 §5.2.2.6
        media_type = _media_type(headers)
        if media_type == "text/event-stream" or media_type in skipped:
            return False
        return media_type.partition("/")[0] + "/*" not in skipped

    def worth_compressing(response: Response, head: bool = False) -> bool:
        status = response.get("status")
        headers = response.get("headers")
        if not isinstance(status, int) or status < 200 or status in (204, 206, 304):
            return False  # 206 and 304 are judged by stands_for_compressed, never compressed
        if get_header(headers, "content-range") is not None or not compressible(headers):
            return False
        if response.get("stream") is not None:
            size = _size(get_header(headers, "content-length"))
            return not 0 <= size < minimum_size  # unknown, or not known to be short
        body = response.get("body", b"")
        sized = isinstance(body, (bytes, bytearray, memoryview, str))
        if head and sized and not body:
            # A HEAD answer without its body (wrap_static's) states GET's size: judge by that,
            # so HEAD gets the Vary that GET gets (RFC 9110 §9.3.2: the same header fields).
            return _size(get_header(headers, "content-length")) >= max(minimum_size, 1)
        return sized and len(body) >= max(minimum_size, 1)  # nothing to gain on an empty body

    def stands_for_compressed(response: Response, status: int) -> bool:
        """Returns whether the 200 that a 304 stands for, or that a 206 is a part of, is worth
        compressing: judged by the 304's ``representation`` (the 200's ``content-type`` and
        ``content-length``), or by the 206's type and the complete length in its
        ``content-range``."""
        headers = response.get("headers")
        if status == 304:
            representation = response.get("representation")
            if not isinstance(representation, Mapping):
                return False  # a 304 that does not say what it stands for stays as it is
            headers = with_headers(headers, representation)
            size = _size(get_header(headers, "content-length"))
        else:
            content_range = get_header(headers, "content-range")
            if content_range is None:
                return False
            size = _size(content_range.rpartition("/")[2].strip())
        return size >= max(minimum_size, 1) and compressible(headers)

    async def compress(response: Response) -> Response:
        headers = response.get("headers")
        changes = {
            "content-encoding": "gzip",
            "accept-ranges": None,
            "etag": _weak(get_header(headers, "etag")),
        }
        stream = response.get("stream")
        if stream is not None:
            new_headers = with_headers(headers, {**changes, "content-length": None})
            return {
                **response,
                "headers": new_headers,
                "stream": _compress_stream(stream, compresslevel),
            }
        body = _as_bytes(response.get("body", b""))
        if len(body) > _THREAD_THRESHOLD:
            compressed = await anyio.to_thread.run_sync(_compress, body, compresslevel)
        else:
            compressed = _compress(body, compresslevel)
        if len(compressed) >= len(body):  # incompressible: the original is the better answer
            return response
        new_headers = with_headers(headers, {**changes, "content-length": str(len(compressed))})
        return {**response, "headers": new_headers, "body": compressed}

    def middleware(next_middleware: Next) -> Next:
        async def gzip_response(handler: Handler, request: Request) -> HandlerResult:
            response = await next_middleware(handler, request)
            method = request.get("method")
            if method == "WS" or not isinstance(response, dict):
                return response
            status = response.get("status")
            if status == 304 or status == 206:
                if not stands_for_compressed(response, status):
                    return response
                headers = add_vary(response.get("headers"), "Accept-Encoding")
                accept_encoding = (request.get("headers") or {}).get("accept-encoding")
                if status == 304 and method != "HEAD" and _accepts_gzip(accept_encoding):
                    # the validators of the compressed 200 this client would have got
                    changes = {"etag": _weak(get_header(headers, "etag")), "accept-ranges": None}
                    headers = with_headers(headers, changes)
                return {**response, "headers": headers}
            if not worth_compressing(response, method == "HEAD"):
                return response
            headers = request.get("headers") or {}
            if method != "HEAD" and _accepts_gzip(headers.get("accept-encoding")):
                response = await compress(response)
            return {**response, "headers": add_vary(response.get("headers"), "Accept-Encoding")}

        return gzip_response

    return middleware
