"""Static files, the parts without a middleware: mapping a request path onto a folder, the
conditional (RFC 9110 §13) and range (§14) rules, media types, and the stream that reads a file.

The request path is mapped segment by segment, never decoded again (the server decoded it once)
and never normalized: a path with a ``..`` segment, a backslash, a colon or a NUL byte names no
file, and the real path of the candidate (symlinks resolved) must lie inside the real folder,
checked with ``os.path.commonpath``.
"""

from __future__ import annotations

import mimetypes
import os
import re
import stat
import time
from collections.abc import AsyncIterator, Mapping
from datetime import timezone
from email.utils import parsedate_to_datetime
from typing import Literal

import anyio

__all__ = [
    "EXTRA_TYPES",
    "byte_range",
    "content_type",
    "find_file",
    "not_modified",
    "read_file",
    "safe_segments",
]

#: Files compressed as a whole get the type of their compression, not of what they hold.
_ENCODED_TYPES = {
    "gzip": "application/gzip",
    "bzip2": "application/x-bzip2",
    "xz": "application/x-xz",
    "br": "application/x-brotli",
    "compress": "application/x-compress",
}
#: Common web types missing from older Pythons' built-in table.
EXTRA_TYPES = {
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


def safe_segments(path: object) -> list[str] | None:
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


async def find_file(real_folder: str, segments: list[str]) -> tuple[str, os.stat_result] | None:
    """Returns the real path and stat of the regular file or the folder the segments name
    inside the folder (no segments: the folder itself), or ``None``."""
    try:
        real = str(await anyio.Path(os.path.join(real_folder, *segments)).resolve(strict=True))
        if os.path.commonpath([real_folder, real]) != real_folder:
            return None  # a symlink that leads out of the folder
        info = await anyio.Path(real).stat()
    except (OSError, ValueError, RuntimeError):  # missing, too long, unencodable, link loop
        return None
    return (real, info) if stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode) else None


def not_modified(headers: Mapping[str, str], etag: str, mtime: float) -> bool:
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


def byte_range(
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


def content_type(mimes: mimetypes.MimeTypes, name: str) -> str:
    guessed, encoding = mimes.guess_type(name, strict=False)
    if encoding is not None:
        return _ENCODED_TYPES.get(encoding, "application/octet-stream")
    if guessed is None:
        return "application/octet-stream"
    if guessed.startswith(_CHARSET_TYPES):
        return f"{guessed}; charset=utf-8"
    return guessed


async def read_file(path: str, start: int, length: int, chunk_size: int) -> AsyncIterator[bytes]:
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
