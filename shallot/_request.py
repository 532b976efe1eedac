"""ASGI receive -> request dict: the request dict (its headers decoded by ``_header_decoding``),
and reading the body within its limits (size, then 413; time, then 408), keeping nothing past
a refusal; and ``BodyEnd``, which ends an answer only once the body has ended.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio

from ._header_decoding import HeaderDecoder
from ._sending import send_within
from ._types import Message, Receive, Request, Response, Scope, Send

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
    """ASGI ``receive`` of a request whose body may still be coming when it is answered, which
    notes whether the body has ended; and, for the answer, a ``send`` that holds the response's
    end back until it has (``holding``, ``finish``).

    Over HTTP/2 (and HTTP/3) a client goes on sending a body the app refused (413, 408), or left
    unread, after the response has started; hypercorn 0.18 fails on DATA for a stream whose
    response is complete (a ``KeyError``, which takes down its trio worker). Over HTTP/1 it
    closes the connection as the response completes, and a client that writes its whole body
    before it reads (httpx, requests) then meets a reset instead of its 413. So the answer goes
    out at once, all but its end; the rest of the body is read and dropped, and the end follows:
    over HTTP/2 for as long as the body keeps coming, over HTTP/1 (``lingers``) within
    ``body_timeout`` and a bounded number of bytes.
    """

    __slots__ = ("ended", "held", "lingers", "receive", "send", "stream")

    def __init__(
        self, receive: Receive, send: Send, *, lingers: bool = False, stream: Any = None
    ) -> None:
        self.receive = receive
        self.send = send
        self.lingers = lingers
        #: The ``BodyStream`` that reads the same body with the server's receive (HTTP/1): a
        #: response stream may read it to its end after the handler returned.
        self.stream = stream
        #: The last ``http.request`` message (or ``http.disconnect``) has been received.
        self.ended = False
        #: The response's end was held back (``finish`` sends it).
        self.held = False

    async def __call__(self) -> Message:
        message = await self.receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            self.ended = True
        return message

    def holding(self) -> Send:
        """Returns the ``send`` to answer with: the server's once the body has ended, else
        one that sends everything at once but the response's end, which ``finish`` sends."""
        return self.send if self._body_ended() else self._send_holding_end

    def _body_ended(self) -> bool:
        return self.ended or (self.stream is not None and self.stream.ended)

    async def _send_holding_end(self, message: Message) -> None:
        if self._body_ended():
            await self.send(message)  # read to its end meanwhile: nothing to wait for
            return
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            message = {**message, "more_body": True}  # what it carries goes out now
            self.held = True
        await self.send(message)

    async def finish(self, limits: Limits, how: int) -> None:
        """Once the answer is out: reads and drops the rest of the body (see the class), then
        sends the response's end, if it was held back (``how``: what ``plan`` said of the
        server's send)."""
        if not self.held:
            return
        if self.lingers:  # HTTP/1: for a while, for so much
            left = max(4 * limits.max_body_size, _LINGER_BYTES)
            with anyio.move_on_after(limits.body_timeout):
                while not self._body_ended() and left > 0:
                    left -= len((await self()).get("body", b""))
        else:  # HTTP/2: for as long as the client keeps sending
            while not self._body_ended():
                with anyio.move_on_after(limits.body_timeout) as waiting:
                    await self()
                if waiting.cancelled_caught:
                    break  # it fell quiet without ending the body: end the response anyway
        await send_within(self.send, _END, limits.response_timeout, how)


#: The end of a response whose last body message was held back (``BodyEnd``).
_END: Message = {"type": "http.response.body", "body": b"", "more_body": False}
#: How much of a body an HTTP/1 answer waits for at least (``BodyEnd``; more for larger limits).
_LINGER_BYTES = 16 * 1024 * 1024


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
