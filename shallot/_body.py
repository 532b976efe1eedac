"""The request body as a stream: ``BodyStream`` reads it from ASGI ``receive`` chunk by chunk
within the app's limits, and the ``streams_body`` rule tells the server, before it reads a
body, that a handler wants to read it itself (issue 15).

A handler, a middleware or a pile may carry ``streams_body(scope, headers) -> bool``.
``stream_body`` puts one on a route's handler, ``wrap_multipart`` on its middleware,
``wrap_routes`` asks the matched route's handler, and ``apply_middleware`` gives its pile the
rule of everything it holds; ``build_server`` reads the rule of the handler it serves. Requests
without a body never ask it, and apps without a rule pay nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, overload

import anyio

from ._request import ClientGone, Refused, plain
from ._types import Handler, HandlerResult, Receive, Request

__all__ = ["BodyStream", "StreamsBody", "any_streams_body", "stream_body", "streams_body_of"]

#: The rule: does this request (scope and decoded headers) get its body as a ``BodyStream``?
StreamsBody = Callable[[Any, dict[str, str]], bool]


class BodyStream:
    """The request body as it arrives: ``async for chunk in request["body_stream"]``.

    Each chunk is ``bytes``. ``max_size`` bounds the whole body (413, and the rest never
    read); a reader that knows better may change it before it reads. ``timeout`` bounds the
    time spent waiting for the client, summed over the chunks (408); the time the reader spends
    on each chunk does not count. A client that leaves ends the request: iteration raises an
    exception that shallot handles, so let it pass (clean up in ``finally``).
    """

    __slots__ = (
        "_announced",
        "_done",
        "_ended_event",
        "_receive",
        "_waited",
        "ended",
        "max_size",
        "received",
        "timeout",
    )

    def __init__(
        self, receive: Receive, headers: dict[str, str], max_size: int, timeout: float
    ) -> None:
        self._receive = receive
        self._announced = headers.get("content-length")
        self._done = False
        self._waited = 0.0
        #: The client's last body message (or its disconnect) has been read: nothing more comes.
        self.ended = False
        self._ended_event: anyio.Event | None = None  # made by wait_ended
        self.max_size = max_size
        self.timeout = timeout
        #: How many body bytes have been read so far.
        self.received = 0

    @classmethod
    def of_bytes(cls, body: bytes) -> BodyStream:
        """Returns a stream of a body already read (one chunk, or none when empty)."""
        chunks = iter((body,) if body else ())

        async def receive() -> dict[str, Any]:
            chunk = next(chunks, b"")
            return {"type": "http.request", "body": chunk, "more_body": False}

        return cls(receive, {}, max(len(body), 1), float("inf"))

    def __repr__(self) -> str:
        return f"<BodyStream {self.received} bytes read, max_size={self.max_size}>"

    def __aiter__(self) -> BodyStream:
        return self

    async def __anext__(self) -> bytes:
        """Returns the next chunk of the body.

        Raises:
            StopAsyncIteration: the body is complete.
        """
        if self._done:
            raise StopAsyncIteration
        if self.received == 0 and self._announced is not None:
            self._check_announced(self._announced)
        while True:
            message = await self._next_message()
            if message["type"] != "http.request":  # http.disconnect
                self._end()
                raise ClientGone
            chunk = message.get("body", b"")
            if not message.get("more_body", False):
                self._end()
            if chunk:
                self.received += len(chunk)
                if self.received > self.max_size:  # refuse now; the rest is never held
                    self._done = True
                    raise Refused(self.too_large())
                return bytes(chunk)
            if self._done:
                raise StopAsyncIteration

    def _end(self) -> None:
        self._done = self.ended = True
        if self._ended_event is not None:
            self._ended_event.set()

    async def wait_ended(self) -> None:
        """Waits until the body has been read to its end (or the client's disconnect)."""
        if not self.ended:
            if self._ended_event is None:
                self._ended_event = anyio.Event()
            await self._ended_event.wait()

    async def _next_message(self) -> Any:
        started = anyio.current_time()
        with anyio.move_on_after(self.timeout - self._waited):
            message = await self._receive()
            self._waited += anyio.current_time() - started
            return message
        self._done = True
        raise Refused(plain(408, "Request Timeout", close=True))

    def too_large(self) -> dict[str, Any]:
        """Returns the 413 response of a body over ``max_size``."""
        return plain(413, f"Payload Too Large: the body exceeds {self.max_size} bytes", close=True)

    def _check_announced(self, length: str) -> None:
        self._announced = None
        # 1*DIGIT only (RFC 9110 §8.6), as for buffered bodies.
        if not (length.isascii() and length.isdigit()):
            self._done = True
            raise Refused(plain(400, "Bad Request: invalid content-length", close=True))
        if int(length) > self.max_size:
            self._done = True
            raise Refused(self.too_large())


def streams_body_of(handler: Any) -> StreamsBody | None:
    """Returns the ``streams_body`` rule a handler or middleware carries, if any."""
    rule = getattr(handler, "streams_body", None)
    return rule if callable(rule) else None


def any_streams_body(owners: Iterable[Any]) -> StreamsBody | None:
    """Returns the rule that holds when any of the ``owners``' rules holds, or None when
    none of them has a rule."""
    rules = tuple(rule for rule in map(streams_body_of, owners) if rule is not None)
    if not rules:
        return None
    if len(rules) == 1:
        return rules[0]

    def any_rule(scope: Any, headers: dict[str, str]) -> bool:
        return any(rule(scope, headers) for rule in rules)

    return any_rule


def _always(scope: Any, headers: dict[str, str]) -> bool:
    return True


@overload
def stream_body(handler: Handler, /) -> Handler: ...
@overload
def stream_body(*, max_size: int | None = None) -> Callable[[Handler], Handler]: ...
def stream_body(
    handler: Handler | None = None, /, *, max_size: int | None = None
) -> Handler | Callable[[Handler], Handler]:
    """Marks an HTTP handler that reads its request body itself, as it arrives, from
    ``request["body_stream"]`` (a ``BodyStream``) instead of ``request["body"]`` (then
    ``b""``). Use it as ``@stream_body``, or ``@stream_body(max_size=...)`` to bound this
    handler's bodies otherwise than the app's ``max_body_size``.

    Returns:
        The handler, wrapped: it carries the rule that makes the server stream its bodies.

    Raises:
        TypeError: the handler is not callable.
        ValueError: ``max_size`` is not a whole number of bytes.
    """
    if max_size is not None and (
        isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 0
    ):
        raise ValueError(f"stream_body: max_size must be a whole number of bytes, not {max_size!r}")

    def mark(handler: Handler) -> Handler:
        if not callable(handler):
            raise TypeError(f"stream_body: {handler!r} is not callable")

        @functools.wraps(handler)
        async def streamed(request: Request, *args: Any) -> HandlerResult:
            stream = request.get("body_stream")
            if not isinstance(stream, BodyStream):  # read already (no rule reached the server)
                stream = BodyStream.of_bytes(request.get("body") or b"")
                request = {**request, "body_stream": stream}
            if max_size is not None:
                stream.max_size = max_size
            return await handler(request, *args)

        streamed.streams_body = _always  # type: ignore[attr-defined]
        return streamed

    return mark if handler is None else mark(handler)
