"""Static files: ``wrap_static`` answers GET and HEAD requests with files from one folder.

The request path names a file relative to the folder. It is mapped segment by segment, never
decoded again (the server decoded it once) and never normalized: a path with a ``..`` segment, a
backslash, a colon or a NUL byte names no file, and the real path of the candidate (symlinks
resolved) must lie inside the real folder, checked with ``os.path.commonpath``. Requests that
name no regular file in the folder go on to the next middleware. Files are answered with
``etag`` and ``last-modified``, ``304`` for a matching ``if-none-match`` / ``if-modified-since``
(RFC 9110 §13), single byte ranges (RFC 9110 §14) and a stream that reads the file with anyio.
"""

from __future__ import annotations

import mimetypes
import os
import re
import stat
import time
from collections.abc import AsyncIterator, Mapping
from datetime import timezone
from email.utils import formatdate, parsedate_to_datetime
from typing import Literal

import anyio

from .._types import Handler, HandlerResult, Middleware, Next, Request, Response
from ..response import respond_not_modified

__all__ = ["wrap_static"]

#: Files compressed as a whole get the type of their compression, not of what they hold.
_ENCODED_TYPES = {
    "gzip": "application/gzip",
    "bzip2": "application/x-bzip2",
    "xz": "application/x-xz",
    "br": "application/x-brotli",
    "compress": "application/x-compress",
}
#: Common web types missing from older Pythons' built-in table.
_EXTRA_TYPES = {
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".mjs": "text/javascript",
    ".wasm": "application/wasm",
}
_CHARSET_TYPES = ("text/", "application/javascript")
_ETAG = re.compile(r'(?:W/)?"([^"]*)"')
_RANGE = re.compile(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", re.IGNORECASE)
_CLEANUP_TIMEOUT = 5.0


def _safe_segments(path: object) -> list[str] | None:
    """Returns the path's segments, or ``None`` when it cannot name a file in the folder.

    ``%``-escapes stay literal: the server decoded the path once, and decoding again is how
    ``%252e%252e`` would become ``..``.
    """
    if not isinstance(path, str) or "\x00" in path or "\\" in path:
        return None
    segments = [segment for segment in path.split("/") if segment not in ("", ".")]
    for segment in segments:
        # ".." climbs out, and Windows drops trailing dots and spaces (". ." is ".." there);
        # a colon is a Windows drive ("C:") or data stream ("file::$DATA").
        if not segment.rstrip(". ") or ":" in segment:
            return None
    return segments


async def _find_file(real_folder: str, segments: list[str]) -> tuple[str, os.stat_result] | None:
    """Returns the real path and stat of the regular file the segments name inside the
    folder, or ``None``."""
    try:
        real = str(await anyio.Path(os.path.join(real_folder, *segments)).resolve(strict=True))
        if os.path.commonpath([real_folder, real]) != real_folder:
            return None  # a symlink that leads out of the folder
        info = await anyio.Path(real).stat()
    except (OSError, ValueError, RuntimeError):  # missing, too long, unencodable, link loop
        return None
    return (real, info) if stat.S_ISREG(info.st_mode) else None


def _not_modified(headers: Mapping[str, str], etag: str, mtime: float) -> bool:
    """Returns whether the client's cached copy is current (RFC 9110 §13.2.2): ``if-none-match``
    (weak comparison) decides when present, else ``if-modified-since``."""
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        if if_none_match.strip() == "*":
            return True
        ours = etag.removeprefix("W/")
        return any(f'"{tag}"' == ours for tag in _ETAG.findall(if_none_match))
    since = _parse_date(headers.get("if-modified-since"))
    # A date in the future is invalid (RFC 9110 §13.1.3) and is ignored.
    return since is not None and since <= time.time() and int(mtime) <= since


def _parse_date(value: str | None) -> float | None:
    if not value:
        return None
    # Any date that cannot be read, or lies outside what datetime holds (year 99999999999
    # raises OverflowError), is ignored as RFC 9110 §13.1.3 says (issue 13).
    try:
        parsed = parsedate_to_datetime(value)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return parsed.timestamp()
    except (TypeError, ValueError, IndexError, OverflowError, OSError):
        return None


def _byte_range(
    headers: Mapping[str, str], size: int, etag: str, last_modified: str
) -> tuple[int, int] | Literal[False] | None:
    """Returns the single range ``(first, last)`` (inclusive) to send, ``None`` to send the
    whole file, or ``False`` when the range cannot be satisfied (416)."""
    value = headers.get("range")
    if value is None or size == 0:  # an empty file has no satisfiable range: send it all
        return None
    if_range = headers.get("if-range")
    if if_range is not None:  # RFC 9110 §13.1.5: strong comparison, or the exact date
        if_range = if_range.strip()
        if if_range != etag and (etag.startswith("W/") or if_range != last_modified):
            return None
    match = _RANGE.fullmatch(value)
    if match is None:  # another unit, several ranges or bad syntax: send it all (§14.2)
        return None
    try:
        first = int(match[1]) if match[1] else None
        last = int(match[2]) if match[2] else None
    except ValueError:  # more digits than Python converts
        return None
    if first is None:  # a suffix: the last ``last`` bytes
        if last is None:
            return None
        return (max(size - last, 0), size - 1) if last > 0 else False
    if last is not None and last < first:
        return None  # an invalid range is ignored (§14.1.1)
    if first >= size:
        return False
    return first, size - 1 if last is None else min(last, size - 1)


def _content_type(mimes: mimetypes.MimeTypes, name: str) -> str:
    guessed, encoding = mimes.guess_type(name, strict=False)
    if encoding is not None:
        return _ENCODED_TYPES.get(encoding, "application/octet-stream")
    if guessed is None:
        return "application/octet-stream"
    if guessed.startswith(_CHARSET_TYPES):
        return f"{guessed}; charset=utf-8"
    return guessed


async def _read_file(path: str, start: int, length: int, chunk_size: int) -> AsyncIterator[bytes]:
    """Yields ``length`` bytes of the file from ``start``; the file is open only while the
    stream is, and the ``finally`` closes it however the stream ends."""
    file = await anyio.open_file(path, "rb")
    try:
        await file.seek(start)
        while length > 0:
            chunk = await file.read(min(chunk_size, length))
            if not chunk:  # shorter than its content-length says: abort, don't pretend
                raise OSError(f"{path} shrank while it was being sent")
            length -= len(chunk)
            yield chunk
    finally:
        with anyio.move_on_after(_CLEANUP_TIMEOUT, shield=True):
            await file.aclose()


def wrap_static(
    folder: str | os.PathLike[str],
    root_path: str | os.PathLike[str] = ".",
    *,
    chunk_size: int = 64 * 1024,
    content_types: Mapping[str, str] | None = None,
) -> Middleware:
    """Returns a middleware that serves GET and HEAD requests from the files in a folder.

    An absolute ``folder`` is used as it is; a relative one lies inside ``root_path`` (the
    current directory by default), as in shallot 2.0. The request
    path names the file inside the folder: ``GET /css/site.css`` reads
    ``<folder>/css/site.css``. Requests that name no regular file there, and every other
    method, go on to the next middleware. ``chunk_size`` is the read size of the stream;
    ``content_types`` maps extra file suffixes (``".md"``) to media types.

    Returns:
        The middleware. It answers ``200`` (a stream, or no body for HEAD), ``206`` for a
        single byte range, ``304`` when the client's copy is current and ``416`` for a range
        past the end of the file.

    Raises:
        NotADirectoryError: the folder does not exist or is not a directory.
        ValueError: ``chunk_size`` is not a positive int, or a suffix lacks its leading dot.
    """
    # os.path.join keeps an absolute folder as it is and puts a relative one under root_path
    real_folder = os.path.realpath(os.path.join(root_path, os.fspath(folder)))
    if not os.path.isdir(real_folder):
        raise NotADirectoryError(f"wrap_static: {real_folder!r} is not a directory")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size <= 0:
        raise ValueError(f"wrap_static: chunk_size must be a positive int, not {chunk_size!r}")
    mimes = mimetypes.MimeTypes()  # private: add_type elsewhere in the process can't change it
    for suffix, media_type in {**_EXTRA_TYPES, **(content_types or {})}.items():
        if not suffix.startswith("."):
            raise ValueError(f"wrap_static: suffix {suffix!r} must start with a dot")
        mimes.add_type(media_type, suffix, strict=False)

    def respond(request: Request, name: str, path: str, info: os.stat_result) -> Response:
        headers: Mapping[str, str] = request.get("headers") or {}
        size = info.st_size
        etag = f'"{info.st_mtime_ns:x}-{size:x}"'
        last_modified = formatdate(info.st_mtime, usegmt=True)
        validators = {"etag": etag, "last-modified": last_modified, "accept-ranges": "bytes"}
        if _not_modified(headers, etag, info.st_mtime):
            return respond_not_modified(validators)
        response_headers = {**validators, "content-type": _content_type(mimes, name)}
        if request["method"] == "HEAD":  # Range is defined for GET only (RFC 9110 §14.2)
            return {
                "status": 200,
                "headers": {**response_headers, "content-length": str(size)},
                "body": b"",
            }
        byte_range = _byte_range(headers, size, etag, last_modified)
        if byte_range is False:
            return {
                "status": 416,
                "headers": {**validators, "content-range": f"bytes */{size}"},
                "body": b"",
            }
        start, end = byte_range or (0, size - 1)
        length = end - start + 1
        response_headers["content-length"] = str(length)
        if byte_range:
            response_headers["content-range"] = f"bytes {start}-{end}/{size}"
        return {
            "status": 206 if byte_range else 200,
            "headers": response_headers,
            "stream": _read_file(path, start, length, chunk_size),
            "body": b"",  # shallot 2.0 code reads it beside the stream (issue 13)
        }

    def middleware(next_middleware: Next) -> Next:
        async def serve_static(handler: Handler, request: Request) -> HandlerResult:
            if request.get("method") in ("GET", "HEAD"):
                segments = _safe_segments(request.get("path"))
                if segments:
                    found = await _find_file(real_folder, segments)
                    if found is not None:
                        return respond(request, segments[-1], *found)
            return await next_middleware(handler, request)

        return serve_static

    return middleware
