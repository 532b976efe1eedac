"""Content types: ``wrap_content_type`` labels a response that has no ``content-type``.

The type is guessed from the extension of the request path's last segment with a private
``mimetypes.MimeTypes`` table, so adding types never touches the process-wide ``mimetypes``
state and two apps in one process stay independent (SPEC §2). That table is Python's built-in
one plus a few modern types, the same on every platform and supported Python, not the system's
``mime.types`` files or the Windows registry.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterable, Mapping
from typing import Any

from .._types import Handler, HandlerResult, Middleware, Next, Request

__all__ = ["wrap_content_type"]

#: Statuses whose response has no content to describe (RFC 9110 §15.2, §15.3.5, §15.4.5).
_NO_CONTENT = frozenset({204, 304})
#: A compressed file is sent as it is, without content-encoding, so it gets the type of the
#: compression (``x.tar.gz`` is ``application/gzip``), not the type of what it holds.
_COMPRESSED = {
    "gzip": "application/gzip",
    "bzip2": "application/x-bzip2",
    "xz": "application/x-xz",
    "compress": "application/x-compress",
    "br": "application/x-brotli",
}

#: Types that older Pythons' table lacks or gives differently (RFC 9239 made JavaScript
#: ``text/javascript``), so the answer is the same on every supported Python.
_MODERN = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".wasm": "application/wasm",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
}


def _has_content_type(headers: Any) -> bool:
    names = headers.keys() if isinstance(headers, Mapping) else (pair[0] for pair in headers)
    for name in names:
        text = name.decode("latin-1") if isinstance(name, (bytes, bytearray)) else str(name)
        if text.lower() == "content-type":
            return True
    return False


def _check_types(additional: Any) -> list[tuple[str, str]]:
    """Returns the (content type, ``.extension``) pairs of ``additional_content_types``."""
    if additional is None:
        return []
    if not isinstance(additional, Mapping):
        raise TypeError(
            "wrap_content_type: additional_content_types must be a dict of "
            f"content type -> extensions, not {additional!r}"
        )
    pairs: list[tuple[str, str]] = []
    for content_type, extensions in additional.items():
        if not isinstance(content_type, str) or content_type.count("/") != 1:
            raise ValueError(
                f"wrap_content_type: {content_type!r} is not a content type such as 'text/markdown'"
            )
        if isinstance(extensions, (str, bytes)) or not isinstance(extensions, Iterable):
            raise TypeError(
                f"wrap_content_type: the extensions of {content_type!r} must be a "
                f"list such as ['md', '.markdown'], not {extensions!r}"
            )
        for extension in extensions:
            if not isinstance(extension, str) or not extension.lstrip(".") or "/" in extension:
                raise ValueError(
                    f"wrap_content_type: {extension!r} (for {content_type!r}) "
                    "is not a file extension"
                )
            pairs.append((content_type, "." + extension.lstrip(".").lower()))
    return pairs


def wrap_content_type(
    additional_content_types: Mapping[str, Iterable[str]] | None = None,
    default_content_type: str | None = "application/octet-stream",
    strict: bool = False,
) -> Middleware:
    """Returns a middleware that adds a ``content-type`` header, guessed from the extension
    of ``request["path"]``, to responses that have none (names compared case-insensitively).

    ``additional_content_types`` maps content types to extensions (with or without the dot)
    and wins over the built-in table; ``default_content_type`` is used when nothing fits
    (None: leave such responses unlabelled); ``strict=False`` also uses the common
    non-standard types (``mimetypes``' own ``strict`` flag). Responses with status 1xx, 204
    or 304 and websocket takeovers pass through untouched.

    Returns:
        The middleware.

    Raises:
        TypeError: an option has the wrong type.
        ValueError: a content type or extension is malformed.
    """
    pairs = _check_types(additional_content_types)
    if default_content_type is not None and (
        not isinstance(default_content_type, str) or "/" not in default_content_type
    ):
        raise ValueError(
            "wrap_content_type: default_content_type must be a content type "
            f"or None, not {default_content_type!r}"
        )
    if not isinstance(strict, bool):
        raise TypeError(f"wrap_content_type: strict must be a bool, not {strict!r}")
    table = mimetypes.MimeTypes()
    for content_type, extension in [*((t, e) for e, t in _MODERN.items()), *pairs]:
        table.add_type(content_type, extension, strict=True)  # seen in both modes

    def guess(path: str) -> str | None:
        name = path.rpartition("/")[2]
        if "." not in name:
            return default_content_type
        guessed, encoding = table.guess_type("/" + name, strict=strict)
        if encoding is not None:
            return _COMPRESSED.get(encoding, default_content_type)
        return guessed or default_content_type

    def middleware(next_middleware: Next) -> Next:
        async def add_content_type(handler: Handler, request: Request) -> HandlerResult:
            response = await next_middleware(handler, request)
            if not isinstance(response, dict):  # a websocket takeover: pass it through
                return response
            status = response.get("status")
            if isinstance(status, int) and (status < 200 or status in _NO_CONTENT):
                return response
            headers = response.get("headers") or {}
            if _has_content_type(headers):
                return response
            content_type = guess(str(request.get("path", "")))
            if content_type is None:
                return response
            return {**response, "headers": _with_content_type(headers, content_type)}

        return add_content_type

    return middleware


def _with_content_type(headers: Any, content_type: str) -> Any:
    if isinstance(headers, Mapping):
        return {**headers, "content-type": content_type}
    return [*headers, ("content-type", content_type)]
