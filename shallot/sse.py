"""Server-sent events: ``sse(events)`` turns an async iterable of events into a
``text/event-stream`` response (the WHATWG HTML standard, §9.2 "Server-sent events").

``format_event`` writes one event, pure and synchronous. The response's ``stream`` is an
``EventStream``: when shallot sends it, it enters it as an async context manager, which runs
the events in a task of its own, so that a comment can keep the connection alive while the
events are quiet, and stops that task when the response ends (the client left, the events
ended, or they failed). An error of the events that the response did not see (it had ended)
is raised as the context exits, for the sender to log with the request it answered.
Iterated without entering it (a middleware that wraps the stream), it gives the same bytes
without keep-alive comments.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, TypeAlias

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._streams import close_stream
from ._types import Request, Response

__all__ = ["Event", "EventStream", "format_event", "last_event_id", "sse"]

#: One event: a dict with any of ``data``, ``event``, ``id``, ``retry``, ``comment``, or a str
#: (the data alone).
Event: TypeAlias = "Mapping[str, Any] | str"

_FIELDS = frozenset({"data", "event", "id", "retry", "comment"})
_LINES = re.compile(r"\r\n|\r|\n")
#: Sent first, at once: the response starts without waiting for the first event.
_OPENING = b":\n\n"
_KEEPALIVE = b": keep-alive\n\n"


def _one_line(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"event {name} must be a str, not {type(value).__name__}")
    if "\r" in value or "\n" in value or (name == "id" and "\x00" in value):
        raise ValueError(f"event {name} {value!r} must be one line (and an id holds no NUL)")
    return value


def format_event(event: Event) -> bytes:
    """Returns the bytes of one event, ending in the blank line that dispatches it.

    A str is the event's data. In a dict, ``data`` that is not a str is sent as JSON, and each
    of its lines becomes a ``data:`` line; ``event`` and ``id`` are one line each (an empty
    ``id`` resets the client's last event id); ``retry`` is the client's reconnection delay in
    milliseconds; ``comment`` lines start with ``:`` and are ignored by clients.

    Raises:
        TypeError: the event, or one of its fields, has the wrong type.
        ValueError: a field is unknown, ``event`` or ``id`` spans lines, or ``retry`` is
            negative.
    """
    if isinstance(event, str):
        event = {"data": event}
    if not isinstance(event, Mapping):
        raise TypeError(f"an event is a dict or a str, not {type(event).__name__}")
    unknown = event.keys() - _FIELDS
    if unknown:
        raise ValueError(f"unknown event field(s) {', '.join(sorted(map(str, unknown)))}")
    lines: list[str] = []
    comment = event.get("comment")
    if comment is not None:
        if not isinstance(comment, str):
            raise TypeError(f"event comment must be a str, not {type(comment).__name__}")
        lines.extend(f": {line}" for line in _LINES.split(comment))
    if event.get("event") is not None:
        lines.append(f"event: {_one_line('event', event['event'])}")
    if "data" in event:
        data = event["data"]
        text = (
            data
            if isinstance(data, str)
            else json.dumps(data, separators=(",", ":"), allow_nan=False)
        )
        lines.extend(f"data: {line}" for line in _LINES.split(text))
    if event.get("id") is not None:
        lines.append(f"id: {_one_line('id', event['id'])}")
    retry = event.get("retry")
    if retry is not None:
        if isinstance(retry, bool) or not isinstance(retry, int) or retry < 0:
            raise ValueError(f"event retry must be milliseconds as an int >= 0, not {retry!r}")
        lines.append(f"retry: {retry}")
    if not lines:
        raise ValueError("an event needs at least one of data, event, id, retry, comment")
    return ("\n".join(lines) + "\n\n").encode()


class EventStream:
    """The ``stream`` of an ``sse`` response: the encoded events, with keep-alive comments
    when it is entered as an async context manager (as shallot does when it sends it).

    Raises (from ``__aexit__``): an error of the events that came once the stream it gave
    was no longer read (one that comes while it is read is raised by that stream)."""

    def __init__(self, events: AsyncIterable[Event], keepalive: float | None) -> None:
        self._events = events
        self._keepalive = math.inf if keepalive is None else keepalive
        self._used = False
        self._leaving = False  # the server shuts down: end after the event being sent
        self._waiting: anyio.CancelScope | None = None  # the reader's wait for the next event
        self._entered: list[Any] = []  # the context manager of each entry, None for a refused one
        self._error: Exception | None = None  # what the events raised, until the reader raises it

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._plain()

    def going_away(self) -> None:
        """The server shuts down (``app.begin_shutdown()``): the stream ends once the event
        being sent is out, as a complete response, rather than holding the shutdown for its
        whole grace period. The browser reconnects, to the next server, with ``Last-Event-ID``."""
        self._leaving = True
        if self._waiting is not None:
            self._waiting.cancel()

    async def _plain(self) -> AsyncIterator[bytes]:
        yield _OPENING
        iterator = self._events.__aiter__()
        try:
            async for event in iterator:
                yield format_event(event)
        finally:
            # It shields itself, with a timeout.
            await close_stream(iterator, "the events of an sse() response")  # noqa: ASYNC102

    async def __aenter__(self) -> AsyncIterator[bytes]:
        if self._used:  # the events can be read once: fail this response, not the server
            self._entered.append(None)
            return _fail(RuntimeError("an sse() response was sent twice; make one per request"))
        self._used = True
        opened = self._open()
        result: AsyncIterator[bytes] = await opened.__aenter__()
        self._entered.append(opened)
        return result

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        opened = self._entered.pop()
        if opened is None:
            return None
        # ASYNC102: the exit of the context __aenter__ entered; it bounds its own cleanup
        result: bool | None = await opened.__aexit__(kind, error, tb)  # noqa: ASYNC102
        return result

    @asynccontextmanager
    async def _open(self) -> AsyncIterator[AsyncIterator[bytes]]:
        # No buffer: the events are read only as fast as the client takes them.
        send, receive = anyio.create_memory_object_stream[bytes](0)
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._produce, send)
            try:
                yield self._read(receive)
            finally:
                tg.cancel_scope.cancel()  # the response is over: stop reading events
        if self._error is not None:  # raised after the reader had stopped: the sender logs it
            error, self._error = self._error, None
            raise error

    async def _produce(self, send: MemoryObjectSendStream[bytes]) -> None:
        with send:  # closing it tells the reader the events have ended
            iterator = self._events.__aiter__()
            try:
                async for event in iterator:
                    data = format_event(event)
                    try:
                        await send.send(data)
                    except anyio.BrokenResourceError:
                        return  # the reader stopped first: the response is over, nothing failed
            except Exception as error:  # handed to the reader, which fails the response
                self._error = error
            finally:
                # It shields itself, with a timeout.
                await close_stream(iterator, "the events of an sse() response")  # noqa: ASYNC102

    async def _read(self, receive: MemoryObjectReceiveStream[bytes]) -> AsyncIterator[bytes]:
        # ASYNC119: the response's sender closes this generator (aclose) when it ends
        with receive:
            yield _OPENING  # noqa: ASYNC119
            while not self._leaving:
                chunk = _KEEPALIVE
                with anyio.move_on_after(self._keepalive) as self._waiting:
                    try:
                        chunk = await receive.receive()
                    except anyio.EndOfStream:
                        break
                self._waiting = None
                if chunk is _KEEPALIVE and self._leaving:
                    break
                yield chunk  # noqa: ASYNC119
            if self._leaving:  # an event already made, waiting for the reader, still goes out
                try:
                    yield receive.receive_nowait()  # noqa: ASYNC119
                except (anyio.WouldBlock, anyio.EndOfStream):
                    pass
        if self._error is not None:
            error, self._error = self._error, None
            raise error


async def _fail(error: Exception) -> AsyncIterator[bytes]:
    raise error
    yield b""  # pragma: no cover - makes this an async generator


def sse(
    events: AsyncIterable[Event],
    *,
    keepalive: float | None = 15.0,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """Returns a ``text/event-stream`` response that sends each event of ``events`` as it
    comes (see ``format_event`` for what an event may hold).

    While no event comes for ``keepalive`` seconds, a comment line is sent, so that proxies
    and clients keep the connection open (``None``: never). The response is marked
    ``cache-control: no-cache`` and ``x-accel-buffering: no`` (nginx passes it on at once),
    and ``wrap_gzip`` leaves ``text/event-stream`` alone. When the client leaves, ``events``
    is closed (its ``finally`` runs) promptly.

    Raises:
        ValueError: ``keepalive`` is not a positive number or None.
    """
    if keepalive is not None and (
        isinstance(keepalive, bool) or not isinstance(keepalive, (int, float)) or keepalive <= 0
    ):
        raise ValueError(f"sse: keepalive must be seconds > 0 or None, not {keepalive!r}")
    all_headers = {
        "content-type": "text/event-stream",
        "cache-control": "no-cache",
        "x-accel-buffering": "no",
        **(headers or {}),
    }
    return {"status": status, "headers": all_headers, "stream": EventStream(events, keepalive)}


def last_event_id(request: Request) -> str | None:
    """Returns the ``Last-Event-ID`` a reconnecting client sent (the ``id`` of the last event
    it received), or None: where to resume the events."""
    value = (request.get("headers") or {}).get("last-event-id")
    if not value or "\x00" in value:
        return None
    try:  # browsers send it as UTF-8 (HTML §9.2.4); headers are decoded as latin-1
        value = value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        pass
    return str(value).strip() or None
