"""Response builders: pure functions that return response dicts and websocket messages.

Nothing here does I/O except the stream that ``filestream`` returns, which reads its file with
anyio when the response is sent.
"""

from __future__ import annotations

import json as _json
import logging
import os
import re
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

import anyio

from ._errors import WSDisconnect
from ._pages import html, redirect
from ._types import Response, Scope, WSAccept, WSClose, WSSend
from ._ws_messages import accept_headers, check_close, check_subprotocol
from .sse import sse

__all__ = [
    "WSDisconnect",
    "filestream",
    "html",
    "json",
    "json_response",
    "redirect",
    "respond400",
    "respond404",
    "respond_not_modified",
    "sse",
    "standard_disconnect",
    "text",
    "ws_accept",
    "ws_close",
    "ws_send",
    "ws_send_json",
]

logger = logging.getLogger("shallot")

_TEXT_UTF8 = "text/plain; charset=utf-8"
_JSON = "application/json"
#: One encoder for every json() call: json.dumps builds a new one per call for these options.
#: ``allow_nan=False``: ``NaN`` and ``Infinity`` are not JSON (RFC 8259 §6) and ``JSON.parse``
#: refuses them, so a handler that sends one fails here, as for any value JSON cannot hold.
_ENCODER = _json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
#: CPython's C encoder, made once: ``JSONEncoder.encode`` makes one per call (with a dict for
#: spotting circular references), which costs more than encoding a small object does. Without
#: that dict, an object that contains itself ends in a RecursionError, turned into the
#: ValueError the standard library raises. Its arguments: markers, default, encoder, indent,
#: key and item separators, sort_keys, skipkeys and allow_nan (False, as for ``_ENCODER``).
_make_c_encoder: Any = getattr(_json.encoder, "c_make_encoder", None)
_C_ENCODE: Any = (
    None
    if _make_c_encoder is None
    else _make_c_encoder(
        None, _ENCODER.default, _json.encoder.encode_basestring, None, ":", ",", False, False, False
    )
)


#: What UTF-8 cannot hold: a lone surrogate, which Python's JSON parser accepts (``"\\ud800"``).
_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape_surrogate(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def _with_content_type(content_type: str, headers: Mapping[str, str]) -> dict[str, str]:
    """Returns ``headers`` with ``content_type`` first unless they name their own content type,
    in any case (header names are case-insensitive, RFC 9110 §5.1)."""
    merged = dict(headers)
    if "content-type" in merged or any(name.lower() == "content-type" for name in merged):
        return merged
    return {"content-type": content_type, **merged}


def _to_json(data: Any) -> str:
    if _C_ENCODE is None:  # pragma: no cover - Pythons without the C accelerator
        return _ENCODER.encode(data)
    try:
        return "".join(_C_ENCODE(data, 0))
    except RecursionError:
        raise ValueError("data refers to itself or nests too deeply to be JSON") from None


def text(
    body: str = "",
    status: int = 200,
    encoding: str = "utf-8",
    headers: Mapping[str, str] | None = None,
) -> Response:
    """Returns a ``text/plain`` response with ``body`` encoded as ``encoding``."""
    content_type = _TEXT_UTF8 if encoding == "utf-8" else f"text/plain; charset={encoding}"
    all_headers = (
        _with_content_type(content_type, headers) if headers else {"content-type": content_type}
    )
    return {"status": status, "headers": all_headers, "body": body.encode(encoding)}


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """Returns an ``application/json`` response holding ``data`` as UTF-8 JSON. A string
    holding a lone surrogate, which JSON parsers accept and UTF-8 cannot hold, is written
    with a ``\\uXXXX`` escape.

    Also importable as ``json``, its shallot 2.0 name, which hides the standard library's
    ``json`` module in a module that imports it (or ``*``) from here.

    Raises:
        TypeError: ``data`` is not JSON serializable.
        ValueError: ``data`` holds ``NaN`` or an infinity, or contains itself (or nests too
            deeply).
    """
    encoded = _to_json(data)
    try:
        body = encoded.encode()
    except UnicodeEncodeError:  # only inside JSON strings: escaping keeps the same value
        body = _SURROGATE.sub(_escape_surrogate, encoded).encode()
    if headers:
        return {"status": status, "headers": _with_content_type(_JSON, headers), "body": body}
    return {"status": status, "headers": {"content-type": _JSON}, "body": body}


#: shallot 2.0's name of ``json_response``.
json = json_response


def filestream(
    path: str | os.PathLike[str],
    headers: Mapping[str, str] | None = None,
    chunk_size: int = 64 * 1024,
    status: int = 200,
) -> Response:
    """Returns a response that streams the file at ``path`` in chunks of ``chunk_size`` bytes,
    read with anyio's file I/O, and an empty ``body`` (the stream is what is sent). A file that
    cannot be opened gives a 500 when sent."""

    async def chunks() -> AsyncIterator[bytes]:
        # A file opens no cancel scope, and the response's sender closes this generator
        # as soon as it is done with it (_http._close_iterator), so the file is closed then.
        async with await anyio.open_file(path, "rb") as file:
            while chunk := await file.read(chunk_size):
                yield chunk  # noqa: ASYNC119

    # "body" beside "stream", as shallot 2.0 gave it: 2.0 code reads it (issue 13)
    return {"status": status, "headers": dict(headers or {}), "stream": chunks(), "body": b""}


def respond404(message: str = "Not Found") -> Response:
    """Returns a 404 plain-text response."""
    return text(message, status=404)


def respond400(message: str = "Bad Request") -> Response:
    """Returns a 400 plain-text response."""
    return text(message, status=400)


def respond_not_modified(headers: Mapping[str, str] | None = None) -> Response:
    """Returns a 304 response, which carries no body (RFC 9110 §15.4.5)."""
    return {"status": 304, "headers": dict(headers or {})}


def ws_send(data: str | bytes) -> WSSend:
    """Returns the message that sends ``data`` as a text (str) or binary (bytes) frame.

    Raises:
        TypeError: ``data`` is neither str nor bytes.
    """
    if isinstance(data, str):
        return {"type": "websocket.send", "text": data}
    if isinstance(data, (bytes, bytearray, memoryview)):
        return {"type": "websocket.send", "bytes": bytes(data)}
    raise TypeError(f"ws_send takes str or bytes, not {type(data).__name__}")


def ws_send_json(data: Any) -> WSSend:
    """Returns the message that sends ``data`` as compact JSON in a text frame.

    Raises:
        TypeError: ``data`` is not JSON serializable.
        ValueError: ``data`` holds ``NaN`` or an infinity, or contains itself (or nests too
            deeply).
    """
    return {"type": "websocket.send", "text": _to_json(data)}


def ws_close(code: int = 1000, reason: str = "") -> WSClose:
    """Returns the message that closes the websocket with ``code`` and ``reason``.

    Raises:
        TypeError: ``code`` is not an int or ``reason`` not a str.
        ValueError: ``code`` may not be sent in a close frame (RFC 6455 §7.4), or ``reason``
            is longer than 123 bytes in UTF-8.
    """
    check_close(code, reason)
    return {"type": "websocket.close", "code": code, "reason": reason}


def ws_accept(
    subprotocol: str | None = None,
    headers: Mapping[str, str | bytes] | Iterable[tuple[str | bytes, str | bytes]] | None = None,
) -> WSAccept:
    """Returns the message that accepts a websocket handshake, with an optional
    ``subprotocol`` (agreed to when the client offered it, else the connection opens without
    one) and extra response ``headers`` (names and values str or bytes).

    Raises:
        TypeError: ``subprotocol`` is not a str, or a header is not a pair of str or bytes.
        ValueError: a header name is not a token or is one the server writes itself
            (``sec-websocket-protocol``: give ``subprotocol``; ``upgrade``, ...), a value
            holds a control character other than tab, or a str does not fit latin-1.
    """
    check_subprotocol(subprotocol)
    message: WSAccept = {"type": "websocket.accept", "subprotocol": subprotocol}
    if headers:
        message["headers"] = accept_headers(headers)
    return message


async def standard_disconnect(scope: Scope) -> None:
    """A ready-made ``on_disconnect`` hook: logs the client's leaving at debug level."""
    logger.debug("websocket client disconnected from %s", scope.get("path", "?"))
