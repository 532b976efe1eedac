"""ASGI receive -> request dict: header decoding, the request dict, and reading the body
within its limits (size, then 413; time, then 408) without reading past a refusal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio

from ._types import Message, Receive, Request, Response, Scope

#: HTTP versions where a request without content-length or transfer-encoding has no body.
_NO_BODY_VERSIONS = ("1.1", "1.0")


class Limits:
    """The HTTP limits of one app, fixed when it is built, and its header decoder."""

    __slots__ = (
        "body_timeout",
        "decode_headers",
        "max_body_size",
        "response_timeout",
        "streams_body",
    )

    def __init__(self, max_body_size: int, body_timeout: float, response_timeout: float) -> None:
        self.max_body_size = max_body_size
        self.body_timeout = body_timeout
        self.response_timeout = response_timeout
        self.decode_headers = HeaderDecoder().decode
        #: Which requests read their body as a stream (``_body``); None: none of them.
        self.streams_body: Callable[[Scope, dict[str, str]], bool] | None = None


class Refused(Exception):
    """The request body cannot be accepted; ``response`` says why to the client."""

    def __init__(self, response: Response) -> None:
        super().__init__(response["status"])
        self.response = response


class ClientGone(Exception):
    """The client disconnected before its request was read."""


class BodyEnd:
    """ASGI ``receive`` of a request whose response ends one stream of a connection (HTTP/2,
    HTTP/3), which notes whether the body has ended; ``discard_rest`` reads what is left.

    On such a connection the client goes on sending a body the app refused (413), or left
    unread, after the response is complete; hypercorn 0.18 then fails on DATA for a stream it
    has forgotten (a ``KeyError``, which takes down its trio worker). Reading the rest of the
    body first keeps that from happening, within a bound: no HTTP/1 request needs it, since
    its refusal closes the connection.
    """

    __slots__ = ("ended", "receive")

    def __init__(self, receive: Receive) -> None:
        self.receive = receive
        #: The last ``http.request`` message (or ``http.disconnect``) has been received.
        self.ended = False

    async def __call__(self) -> Message:
        message = await self.receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            self.ended = True
        return message

    async def discard_rest(self, seconds: float) -> None:
        """Reads and drops the rest of the body, for at most ``seconds``."""
        with anyio.move_on_after(seconds):
            while not self.ended:
                await self()


def ends_one_stream(scope: Scope) -> bool:
    """Whether the response ends one stream of the connection (HTTP/2 or HTTP/3), not the
    connection, so that a refused body may still be on its way (``BodyEnd``)."""
    return scope.get("http_version") not in _NO_BODY_VERSIONS


def plain(status: int, text: str, *, close: bool = False) -> Response:
    """Returns a short plain-text response; ``close`` when the rest of the request is unread."""
    body = text.encode()
    headers = {"content-type": "text/plain; charset=utf-8"}
    if close:  # the rest of the request was not read, so the connection cannot be reused
        headers["connection"] = "close"
    return {"status": status, "headers": headers, "body": body}


#: Headers whose values repeat from client to client: their values are shared too.
_VALUES_REPEAT = frozenset(
    (
        "accept",
        "accept-encoding",
        "accept-language",
        "cache-control",
        "connection",
        "content-type",
        "dnt",
        "host",
        "origin",
        "pragma",
        "sec-ch-ua",
        "sec-ch-ua-mobile",
        "sec-ch-ua-platform",
        "sec-fetch-dest",
        "sec-fetch-mode",
        "sec-fetch-site",
        "sec-websocket-extensions",
        "sec-websocket-version",
        "te",
        "upgrade",
        "upgrade-insecure-requests",
        "user-agent",
    )
)


class HeaderDecoder:
    """Turns ASGI header lists into request header dicts, for one app.

    Requests repeat the same few header names, so each name is decoded and lower-cased once and
    every request shares that string instead of making its own; the values of the headers in
    ``_VALUES_REPEAT`` are shared the same way (a websocket request holds its user-agent, say,
    for hours). Both tables are bounded, so names and values a client makes up cannot grow
    them for ever; past the bound, headers are simply decoded each time.

    A whole header list made only of such headers (a load balancer's health check, a client
    library's ``host``/``user-agent``/``accept``) is remembered too, decoded dict and all: the
    next request that sends the same list gets a copy of that dict. A list with any other
    header (a cookie, a ``sec-websocket-key``, a header repeated) is never remembered. At most
    ``max_lists`` are kept; the table is emptied when it fills up.
    """

    __slots__ = ("_lists", "_names", "_values", "decode", "max_lists", "max_names", "max_values")

    #: Values longer than this are never shared.
    max_shared_length = 512

    def __init__(self, max_names: int = 1024, max_values: int = 2048, max_lists: int = 256) -> None:
        self.max_names = max_names
        self.max_values = max_values
        self.max_lists = max_lists
        #: Header lists of ``_VALUES_REPEAT`` headers only, as tuples -> their decoded dict.
        self._lists: dict[tuple[Any, ...], dict[str, str]] = {}
        #: Every name learnt (those of ``_VALUES_REPEAT`` from the start): one lookup a header.
        self._names = {name.encode(): name for name in _VALUES_REPEAT}
        #: Values of ``_VALUES_REPEAT`` headers. Only those are ever stored, so a hit is always
        #: such a value, whatever header it is looked up for (never a cookie or a key).
        self._values: dict[bytes, str] = {}
        #: The bound method, made once: the hot path calls it, not ``self(...)`` (issue 18).
        self.decode = self._decode

    def remembered(self) -> tuple[int, int, int]:
        """Returns how many header names, values and whole lists the tables hold."""
        return len(self._names), len(self._values), len(self._lists)

    def __call__(self, raw: Any) -> dict[str, str]:
        """Returns the ASGI header list as a dict: lower-cased names, latin-1 values, repeats
        joined with ``","`` (RFC 9110 §5.3), or ``"; "`` for cookie (RFC 9113 §8.2.3)."""
        return self._decode(raw)

    def _decode(self, raw: Any) -> dict[str, str]:
        try:
            known = self._lists.get(tuple(raw))
        except TypeError:  # pairs that are not hashable (lists, bytearrays): decoded below
            known = None
        if known is not None:
            return known.copy()  # each request gets a dict of its own to change
        names, values = self._names, self._values
        headers = {}
        try:
            for name, value in raw:  # a loop, not a comprehension: no function call on 3.11
                key = names[name]
                text = values.get(value)
                if text is None:
                    text = self._value(value) if key in _VALUES_REPEAT else value.decode("latin-1")
                headers[key] = text
        except (KeyError, TypeError):  # a name not seen yet (or not bytes): learn it below
            headers = {}
        if len(headers) == len(raw):  # names all known and none repeated: the common case
            if _VALUES_REPEAT.issuperset(headers):
                self._remember(raw, headers)
            return headers
        headers = {}
        for name, value in raw:
            key = self._name(name)
            text = self._value(value) if key in _VALUES_REPEAT else value.decode("latin-1")
            if key in headers:
                headers[key] = f"{headers[key]}{'; ' if key == 'cookie' else ','}{text}"
            else:
                headers[key] = text
        return headers

    def _remember(self, raw: Any, headers: dict[str, str]) -> None:
        for value in headers.values():
            if len(value) > self.max_shared_length:
                return
        if len(self._lists) >= self.max_lists:
            self._lists.clear()  # bounded; the lists in use come back with their next request
        self._lists[tuple(raw)] = headers.copy()

    def _name(self, raw: bytes) -> str:
        known = type(raw) is bytes
        name = self._names.get(raw) if known else None
        if name is None:
            name = bytes(raw).decode("latin-1").lower()
            if known and len(self._names) < self.max_names:
                self._names[raw] = name
        return name

    def _value(self, raw: bytes) -> str:
        known = type(raw) is bytes
        value = self._values.get(raw) if known else None
        if value is None:
            value = bytes(raw).decode("latin-1")
            if known and len(raw) <= self.max_shared_length and len(self._values) < self.max_values:
                self._values[raw] = value
        return value


def build_request(
    scope: Scope, headers: dict[str, str], body: bytes, method: str, config: dict[str, Any]
) -> Request:
    """Returns the request dict: a copy of the scope plus shallot's keys (SPEC §1)."""
    request = dict(scope)
    request["headers"] = headers
    request["headers_list"] = scope.get("headers", [])
    request["body"] = body
    request["method"] = method
    request["config"] = config
    return request


async def read_body(
    scope: Scope, headers: dict[str, str], receive: Receive, limits: Limits
) -> bytes:
    """Returns the whole request body.

    Raises:
        Refused: the body is too large (413) or arrives too slowly (408).
        ClientGone: the client disconnected first.
    """
    length = headers.get("content-length")
    if length is not None:
        # 1*DIGIT only (RFC 9110 §8.6): int() would also take "-1", " 1", "+1" and "1_0".
        if not (length.isascii() and length.isdigit()):
            raise Refused(plain(400, "Bad Request: invalid content-length", close=True))
        announced = int(length)
        if announced > limits.max_body_size:
            raise Refused(plain(413, "Payload Too Large", close=True))
        if announced == 0 and "transfer-encoding" not in headers:
            return await _read_announced_empty(receive, limits)
    elif bodiless(scope, headers):
        return await _read_announced_empty(receive, limits)
    return await read_rest(receive, limits)


def bodiless(scope: Scope, headers: dict[str, str]) -> bool:
    """Returns whether the request has no body on the wire: HTTP/1 without content-length
    or transfer-encoding (RFC 9112 §6.3)."""
    return (
        "content-length" not in headers
        and "transfer-encoding" not in headers
        and scope.get("http_version") in _NO_BODY_VERSIONS
    )


async def _read_announced_empty(receive: Receive, limits: Limits) -> bytes:
    # The server holds this message already (no body on the wire), so no timeout is needed.
    message = await receive()
    if message["type"] == "http.request" and not message.get("more_body", False):
        return bytes(message.get("body", b""))
    return await read_rest(receive, limits, message)  # a body came after all


async def read_rest(receive: Receive, limits: Limits, message: Message | None = None) -> bytes:
    with anyio.move_on_after(limits.body_timeout):
        return await _read_chunks(receive, limits.max_body_size, message)
    raise Refused(plain(408, "Request Timeout", close=True))


async def _read_chunks(receive: Receive, max_size: int, message: Message | None) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        if message is None:
            message = await receive()
        if message["type"] != "http.request":  # http.disconnect
            raise ClientGone
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > max_size:  # refuse now; the rest is never read into memory
                raise Refused(plain(413, "Payload Too Large", close=True))
            chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
        message = None
