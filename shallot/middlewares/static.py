"""Static files: ``wrap_static`` answers GET and HEAD requests with files from one folder.

The request path (below an optional URL ``prefix``) names a file relative to the folder, mapped
by ``_static_files`` so that no path, however encoded, leaves the folder. A folder is answered
with its index file (``index.html``), and a folder path without its trailing slash is
redirected to the path with it, so that the page's relative links resolve; a file answers only
without one. Requests that name nothing there go on to the next middleware. Files are answered
with ``etag`` and ``last-modified``, ``304`` for a matching ``if-none-match`` /
``if-modified-since`` (RFC 9110 §13), single byte ranges (RFC 9110 §14), an optional
``cache-control``, and a stream that reads the file with anyio.
"""

from __future__ import annotations

import math
import mimetypes
import os
import re
import stat
from collections.abc import Mapping
from email.utils import formatdate
from urllib.parse import quote

from .._checks import positive
from .._pages import redirect
from .._types import Handler, HandlerResult, Middleware, Next, Request, Response
from ..response import respond_not_modified
from ._static_files import (
    EXTRA_TYPES,
    byte_range,
    content_type,
    find_file,
    not_modified,
    read_file,
    safe_segments,
)

__all__ = ["FINGERPRINT", "IMMUTABLE", "wrap_static"]

#: What ``fingerprinted=True`` looks for in a file name: a dot or dash, then 8 or more hex
#: digits with at least one digit among them, then the suffix (``app.3f9a1c2b.js``,
#: ``site-0a1b2c3d4e5f.css``), as bundlers write content hashes.
FINGERPRINT = r"[.-](?=[a-f]*[0-9])[0-9a-f]{8,}\.[^.]+$"
#: The ``cache-control`` of a fingerprinted file: its name changes whenever its content does.
IMMUTABLE = "public, max-age=31536000, immutable"
#: Characters a ``location`` keeps as they are when a folder path is redirected.
_PATH_SAFE = "/!$&'()*+,;=:@-._~"


def _check_options(
    prefix: str, index: str | None, cache_control: str | None, fingerprinted: bool | str
) -> re.Pattern[str] | None:
    """Checks the options that shape answers; returns the fingerprint pattern, if any."""
    if not isinstance(prefix, str) or (prefix and not prefix.startswith("/")):
        raise ValueError(f"wrap_static: prefix must be '' or start with '/', not {prefix!r}")
    if index is not None and (not isinstance(index, str) or safe_segments(index) != [index]):
        raise ValueError(f"wrap_static: index must be a file name or None, not {index!r}")
    if cache_control is not None and not isinstance(cache_control, str):
        raise TypeError(f"wrap_static: cache_control must be a str, not {cache_control!r}")
    if fingerprinted is False:
        return None
    pattern = FINGERPRINT if fingerprinted is True else fingerprinted
    if not isinstance(pattern, str):
        raise TypeError(
            f"wrap_static: fingerprinted must be a bool or a regex str, not {pattern!r}"
        )
    try:
        return re.compile(pattern)
    except re.error as error:
        raise ValueError(f"wrap_static: fingerprinted {pattern!r} is no regex: {error}") from None


def wrap_static(
    folder: str | os.PathLike[str],
    root_path: str | os.PathLike[str] = ".",
    *,
    prefix: str = "",
    index: str | None = "index.html",
    cache_control: str | None = None,
    fingerprinted: bool | str = False,
    chunk_size: int = 64 * 1024,
    content_types: Mapping[str, str] | None = None,
) -> Middleware:
    """Returns a middleware that serves GET and HEAD requests from the files in a folder.

    An absolute ``folder`` is used as it is; a relative one lies inside ``root_path`` (the
    current directory by default), as in shallot 2.0. The request path names the file inside
    the folder: ``GET /css/site.css`` reads ``<folder>/css/site.css``; with ``prefix="/static"``
    only paths under ``/static`` are looked at, and ``/static/css/site.css`` reads the same file.
    A folder holding ``index`` is answered with that file when its path ends in ``/``, and
    redirected there (``301``) when it does not (``index=None`` turns both off). A file's path
    with a trailing slash, and a path starting with ``//``, name nothing.
    ``cache_control`` is set on every file answer; files whose name matches ``fingerprinted``
    (``True`` for ``FINGERPRINT``, or a regex str searched in the name) get ``IMMUTABLE``
    instead. Requests that name nothing to serve, and every other method, go on to the next
    middleware. ``chunk_size`` is the read size of the stream; ``content_types`` maps extra
    file suffixes (``".md"``) to media types.

    Returns:
        The middleware. It answers ``200`` (a stream, or no body for HEAD), ``206`` for a
        single byte range, ``301`` to add a folder's slash, ``304`` when the client's copy is
        current (its ``representation`` key holds the 200's ``content-type`` and
        ``content-length``, for ``wrap_gzip``) and ``416`` for a range past the end of the
        file.

    Raises:
        NotADirectoryError: the folder does not exist or is not a directory.
        ValueError: ``chunk_size`` is not a positive int, a suffix lacks its leading dot,
            ``prefix`` does not start with ``/``, ``index`` is not a file name, or
            ``fingerprinted`` is not a regex.
        TypeError: ``cache_control`` or ``fingerprinted`` has the wrong type.
    """
    # os.path.join keeps an absolute folder as it is and puts a relative one under root_path
    real_folder = os.path.realpath(os.path.join(root_path, os.fspath(folder)))
    if not os.path.isdir(real_folder):
        raise NotADirectoryError(f"wrap_static: {real_folder!r} is not a directory")
    if chunk_size == math.inf:
        raise ValueError(f"wrap_static: chunk_size must be a finite int, not {chunk_size!r}")
    positive("wrap_static: chunk_size", chunk_size, whole=True)
    fingerprint = _check_options(prefix, index, cache_control, fingerprinted)
    prefix = prefix.rstrip("/")
    mimes = mimetypes.MimeTypes()  # private: add_type elsewhere in the process can't change it
    for suffix, media_type in {**EXTRA_TYPES, **(content_types or {})}.items():
        if not suffix.startswith("."):
            raise ValueError(f"wrap_static: suffix {suffix!r} must start with a dot")
        mimes.add_type(media_type, suffix, strict=False)

    def respond(request: Request, name: str, path: str, info: os.stat_result) -> Response:
        headers: Mapping[str, str] = request.get("headers") or {}
        size = info.st_size
        etag = f'"{info.st_mtime_ns:x}-{size:x}"'
        last_modified = formatdate(info.st_mtime, usegmt=True)
        validators = {"etag": etag, "last-modified": last_modified, "accept-ranges": "bytes"}
        if fingerprint is not None and fingerprint.search(name):
            validators["cache-control"] = IMMUTABLE
        elif cache_control is not None:
            validators["cache-control"] = cache_control
        media_type = content_type(mimes, name)
        if not_modified(headers, etag, info.st_mtime):
            # what the 200 would hold, which a 304 must not state (RFC 9110 §15.4.5), for
            # wrap_gzip to give the 304 the vary and etag of that 200
            representation = {"content-type": media_type, "content-length": str(size)}
            return {**respond_not_modified(validators), "representation": representation}
        response_headers = {**validators, "content-type": media_type}
        if request["method"] == "HEAD":  # Range is defined for GET only (RFC 9110 §14.2)
            return {
                "status": 200,
                "headers": {**response_headers, "content-length": str(size)},
                "body": b"",
            }
        ranged = byte_range(headers, size, etag, last_modified)
        if ranged is False:
            return {
                "status": 416,
                "headers": {**validators, "content-range": f"bytes */{size}"},
                "body": b"",
            }
        start, end = ranged or (0, size - 1)
        length = end - start + 1
        response_headers["content-length"] = str(length)
        if ranged:
            response_headers["content-range"] = f"bytes {start}-{end}/{size}"
        return {
            "status": 206 if ranged else 200,
            "headers": response_headers,
            "stream": read_file(path, start, length, chunk_size),
            "body": b"",  # shallot 2.0 code reads it beside the stream (issue 13)
        }

    def add_slash(request: Request) -> Response:
        # the path as the client sent it, with the slash that makes relative links resolve
        location = quote(f"{request.get('root_path', '')}{request['path']}/", safe=_PATH_SAFE)
        query = request.get("query_string") or b""
        if query:
            location += "?" + bytes(query).decode("latin-1")
        return redirect(location, status=301)

    async def lookup(request: Request) -> Response | None:
        path = request.get("path")
        if not isinstance(path, str) or path.startswith("//"):
            # As a link, "//name" is the host "name" (RFC 3986 §4.2): neither a file nor a folder
            # redirect (location "//name/") may answer it.
            return None
        if prefix:
            if not path.startswith(prefix) or path[len(prefix) : len(prefix) + 1] not in ("", "/"):
                return None
            path = path[len(prefix) :]
        segments = safe_segments(path)
        if segments is None:
            return None
        # a path ending in a slash (or "/.", the same once dot segments are removed) names a
        # folder: a file has one URL, without it, so caches and relative links see one file
        slashed = path.endswith(("/", "/."))
        if segments:  # no segments: the folder itself, a directory (checked at startup)
            found = await find_file(real_folder, segments)
            if found is None:
                return None
            real, info = found
            if stat.S_ISREG(info.st_mode):
                return None if slashed else respond(request, segments[-1], real, info)
        if index is None:
            return None
        found = await find_file(real_folder, [*segments, index])
        if found is None or not stat.S_ISREG(found[1].st_mode):
            return None
        if not slashed:
            return add_slash(request)
        return respond(request, index, *found)

    def middleware(next_middleware: Next) -> Next:
        async def serve_static(handler: Handler, request: Request) -> HandlerResult:
            if request.get("method") in ("GET", "HEAD"):
                response = await lookup(request)
                if response is not None:
                    return response
            return await next_middleware(handler, request)

        return serve_static

    return middleware
